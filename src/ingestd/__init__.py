"""ingestd: durable background ingestion for slow AI work."""
