"""Vendor authentication shared by the dialects: access tokens and OAuth 1.0a signatures."""
