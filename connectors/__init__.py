"""Connectors bundled with syncert: the reference connector and flawed variants of it."""
