"""End-to-end scenarios: records flow between the systems and both sides agree."""
