"""The NetSuite SuiteTalk REST dialect (ERP)."""

from simulators.dialects.netsuite.dialect import NetSuiteDialect

__all__ = ["NetSuiteDialect"]
