"""Opening the audit anchor that the settings name (``audit.anchor``, ``audit.anchor_key``):
a file witness or a NATS JetStream witness, with its signing key, one per process."""

from __future__ import annotations

import threading
from pathlib import Path

import platformdirs

from vigil.governance.anchor import AnchorError, AnchorSigner, AuditAnchor, FileWitness, inside
from vigil.governance.anchor_nats import NatsWitness

_anchors: dict[tuple, AuditAnchor] = {}
_anchors_lock = threading.Lock()


def default_key_path() -> Path:
    return Path(platformdirs.user_config_dir("vigil", appauthor=False)) / "anchor.key"


def open_witness(settings):
    """The witness ``audit.anchor`` names: a file path (or file:// URL) outside the data
    directory, or a nats:// (tls://) URL of a JetStream stream."""
    target = settings.audit.anchor.strip()
    scheme = target.split("://", 1)[0].lower() if "://" in target else ""
    if scheme in ("nats", "tls"):
        return NatsWitness.from_url(target, settings.audit.anchor_credentials, settings.audit.anchor_timeout_seconds)
    if scheme == "file":
        target = target.split("://", 1)[1]
    elif scheme:
        raise AnchorError(f"audit.anchor: {scheme}:// is not a supported anchor (use a file path or nats://)")
    path = Path(target).expanduser()
    if not path.is_absolute():
        raise AnchorError(f"audit.anchor: {target!r} must be an absolute path (or a nats:// URL)")
    if inside(path, settings.home):
        raise AnchorError(f"audit.anchor {path} lies inside the data directory {settings.home}: a rollback of "
                          "the data directory would roll the anchor back too; put it on another volume or account")
    return FileWitness(path)


def open_anchor(settings) -> AuditAnchor | None:
    """The anchor the settings configure (one per process and configuration), or None."""
    if not settings.audit.anchor:
        return None
    key_path = Path(settings.audit.anchor_key or default_key_path()).expanduser()
    cache_key = (settings.audit.anchor, str(key_path), str(settings.audit.anchor_credentials or ""),
                 str(settings.home), settings.audit.anchor_every_seconds)
    with _anchors_lock:
        if cache_key not in _anchors:
            signer = AnchorSigner.load_or_create(key_path, settings.home)
            _anchors[cache_key] = AuditAnchor(signer, open_witness(settings), settings.head_path.parent /
                                              "anchor-spool.jsonl", settings.audit.anchor_every_seconds)
        return _anchors[cache_key]
