"""Persistence: database schema and migrations, encryption at rest, blobs, repositories."""
