"""Vendor dialects: thin API layers that translate vendor shapes to the canonical domain."""

from syncert.simulators.dialects.base import ApiDialect
from syncert.simulators.dialects.netsuite import NetSuiteDialect
from syncert.simulators.dialects.salesforce import SalesforceDialect

CRM_DIALECTS: dict[str, type[ApiDialect]] = {"salesforce": SalesforceDialect}
ERP_DIALECTS: dict[str, type[ApiDialect]] = {"netsuite": NetSuiteDialect}

__all__ = ["CRM_DIALECTS", "ERP_DIALECTS", "ApiDialect"]
