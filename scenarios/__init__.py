"""The syncert scenario catalogue, as pytest modules grouped by category."""
