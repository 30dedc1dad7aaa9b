"""Recording an export: the export row and its audit entry, in the use case's transaction."""

from __future__ import annotations

from pathlib import Path

from vigil.store.exports import add_export_record


def record_export(uow, kind: str, path: Path, details: dict):
    row = add_export_record(uow.session, uow.actor.username, kind, path, details)
    uow.audit("export.written", kind, row.id, {"path": str(path), **details})
    return row
