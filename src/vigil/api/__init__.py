"""The REST API (FastAPI): thin routes over the services the CLI uses too."""
