"""Vendor dialects: thin API layers that translate vendor shapes to the canonical domain."""

from simulators.dialects.base import ApiDialect
from simulators.dialects.netsuite import NetSuiteDialect
from simulators.dialects.salesforce import SalesforceDialect

CRM_DIALECTS: dict[str, type[ApiDialect]] = {"salesforce": SalesforceDialect}
ERP_DIALECTS: dict[str, type[ApiDialect]] = {"netsuite": NetSuiteDialect}

__all__ = ["CRM_DIALECTS", "ERP_DIALECTS", "ApiDialect"]
