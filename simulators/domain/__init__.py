"""The canonical domain: record kinds, the engines with their business rules, and the store."""
