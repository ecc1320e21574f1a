"""The NetSuite SuiteTalk REST dialect (ERP)."""

from syncert.simulators.dialects.netsuite.dialect import NetSuiteDialect

__all__ = ["NetSuiteDialect"]
