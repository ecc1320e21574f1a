"""Schema drift: profiles of vendor API changes (contracts/drift/), as documents and as live behaviour."""
