"""Simulated CRM and ERP services speaking vendor dialects over canonical domain engines."""
