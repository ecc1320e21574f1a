"""Schema-drift scenarios: the vendor API changes under the connector (contracts/drift/ profiles)."""
