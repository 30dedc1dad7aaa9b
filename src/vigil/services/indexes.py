"""Keeping each collection's in-memory index in step with the database (moving here from
``vigil.index.manager``: it is glue between persistence and search)."""

from vigil.index.manager import IndexManager  # noqa: F401  (transitional re-export)
