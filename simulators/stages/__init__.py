"""The request pipeline and its stages: journal, control plane, auth, governance, faults, drift, dialect."""
