"""Error-injection scenarios: throttling, refusals and failures the connector must survive loudly."""
