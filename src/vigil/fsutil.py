"""Writing files safely: atomically (temporary file, fsync, rename) and private (0600)."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o600, dir_mode: int | None = 0o700) -> int:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if dir_mode is not None:
        os.chmod(path.parent, dir_mode)
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(payload)


PRIVATE_UMASK = 0o077


def private_by_default() -> None:
    """Every file this process creates from now on is 0600 and every directory 0700 (the umask
    0o077): SQLite's WAL and shared-memory files, exports, contact sheets, clips, the audit head,
    the demo's files. Set once when a data directory is opened; the process is Vigil's."""
    os.umask(PRIVATE_UMASK)


def make_private(path: Path, mode: int) -> None:
    """``chmod`` that ignores a file that is not there (or not ours to change)."""
    try:
        os.chmod(path, mode)
    except (FileNotFoundError, PermissionError):
        pass
