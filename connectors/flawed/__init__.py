"""Flawed variants of the reference connector: each has one known defect that a scenario must catch."""
