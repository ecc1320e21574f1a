"""The Salesforce REST dialect (CRM)."""

from syncert.simulators.dialects.salesforce.dialect import SalesforceDialect

__all__ = ["SalesforceDialect"]
