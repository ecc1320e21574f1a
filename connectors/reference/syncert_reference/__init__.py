"""The syncert reference connector: Salesforce <-> NetSuite, every flow, the example to copy.

Run one cycle with `python -m syncert_reference sync`, or a long-running service with
`python -m syncert_reference serve`. Configuration comes from the SYNCERT_* environment.
"""
