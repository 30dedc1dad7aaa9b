"""Exports leave the encrypted store only on an explicit command, to a path the user names,
and each one is recorded. This module holds the rows and the target checks; the audit
entry that goes with every export is written by the use case (``vigil.services.exports``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from vigil.errors import VigilError
from vigil.store.schema import ExportRecord


def check_target(path: Path, *, directory: bool) -> Path:
    path = Path(path).expanduser().resolve()
    if directory:
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise VigilError(f"{path}: export folder must be new or empty")
    elif path.exists() and path.is_dir():
        raise VigilError(f"{path}: is a folder; name a file")
    return path


def add_export_record(session: Session, actor_name: str, kind: str, path: Path, details: dict) -> ExportRecord:
    row = ExportRecord(actor=actor_name, kind=kind, path=str(path), details=details)
    session.add(row)
    session.flush()
    return row

