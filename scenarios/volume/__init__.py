"""Volume scenarios: surges of business activity acted out by Locust while the connector syncs."""
