"""The fault engine: seeded rules (`rules`) and what each fault does to a request (`actions`)."""
