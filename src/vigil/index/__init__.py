"""Vector search over templates: exact (BLAS) for small collections, an approximate index
with exact re-ranking for large ones, persistence (encrypted) and sync with the database."""
