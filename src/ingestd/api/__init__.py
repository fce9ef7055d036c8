"""The HTTP API: ``ingestd.api.app.create_app``. Importing this package imports nothing heavy."""
