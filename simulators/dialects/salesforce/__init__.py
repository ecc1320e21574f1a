"""The Salesforce REST dialect (CRM)."""

from simulators.dialects.salesforce.dialect import SalesforceDialect

__all__ = ["SalesforceDialect"]
