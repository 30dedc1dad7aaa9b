"""The audit chain's external anchor: signed heads published outside the data directory.

The hash chain and its HMAC catch any edit made without the audit key, and the head file
catches truncation, but both live in the data directory: whoever can roll that directory
back (restore an old backup, copy old files over it) or holds ``keys/audit.key`` can make a
shorter or rewritten log that verifies. The anchor closes that gap. After every commit the
new head (sequence number and hash) is signed with an Ed25519 key kept *outside* the data
directory (``audit.anchor_key``; never in a backup) and appended to a witness the data
directory cannot rewrite: an append-only file on another volume or account, or a NATS
JetStream stream that denies deletes and purges. Heads are also republished periodically.

``vigil audit verify`` replays the anchor (:mod:`vigil.governance.anchor_replay`) and
compares it with the chain: every anchored head must still be in the log, unchanged, and
the log may not end before the newest one. A restore, the one legitimate rollback, is
published as a signed ``restore`` record naming the heads before and after, so verify can
say what the restore discarded instead of failing.

A head that cannot be delivered (anchor down) waits, signed, in a spool file and goes out
with the next write or periodic publish; the action it records has committed already.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vigil.errors import VigilError
from vigil.timeutil import utcnow

log = logging.getLogger("vigil.audit")
RECORD_VERSION = 1
DOMAIN = b"vigil-audit-anchor:v1:"
EVENTS = ("write", "periodic", "restore")


class AnchorError(VigilError):
    """The anchor is misconfigured, unreachable or unreadable."""


def canonical(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def inside(path: Path, folder: Path) -> bool:
    path, folder = Path(path).expanduser().resolve(), Path(folder).expanduser().resolve()
    return path == folder or folder in path.parents


class AnchorSigner:
    """The Ed25519 key that signs anchored heads. It must live outside the data directory, so
    that neither a backup nor a copy of the data directory carries it."""

    def __init__(self, private: Ed25519PrivateKey):
        self.private = private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_b64 = base64.b64encode(raw).decode()
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    @classmethod
    def load_or_create(cls, path: Path, home: Path) -> "AnchorSigner":
        path = Path(path).expanduser()
        if inside(path, home):
            raise AnchorError(f"the anchor signing key {path} lies inside the data directory {home}: keep it "
                              "elsewhere (audit.anchor_key), or a copy of the data directory could re-sign heads")
        try:
            if path.is_file():
                private = serialization.load_pem_private_key(path.read_bytes(), password=None)
                if not isinstance(private, Ed25519PrivateKey):
                    raise AnchorError(f"{path} is not an Ed25519 private key")
                return cls(private)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            private = Ed25519PrivateKey.generate()
            pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            return cls(private)
        except (OSError, ValueError) as exc:
            raise AnchorError(f"anchor signing key {path}: {exc}") from exc

    def sign(self, body: dict) -> dict:
        body = {**body, "key": self.key_id}
        return {**body, "sig": base64.b64encode(self.private.sign(DOMAIN + canonical(body))).decode()}

    def valid(self, record: dict) -> bool:
        body = {k: v for k, v in record.items() if k != "sig"}
        try:
            self.private.public_key().verify(base64.b64decode(record.get("sig", "")), DOMAIN + canonical(body))
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


class FileWitness:
    """An append-only log of signed heads, one JSON line each, in a file the data directory's
    owner cannot rewrite (another volume or account; ``chattr +a`` where the system has it)."""

    kind = "file"

    def __init__(self, path: Path):
        self.path = Path(path)

    def describe(self) -> str:
        return str(self.path)

    def append(self, lines: list[str]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as fh, _flock(fh):
                fh.write("".join(line + "\n" for line in lines))
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise AnchorError(f"cannot append to the anchor {self.path}: {exc}") from exc

    def read(self) -> list[str]:
        try:
            return self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AnchorError(f"cannot read the anchor {self.path}: {exc}") from exc


class AuditAnchor:
    """Signs heads and delivers them to a witness; undelivered ones wait in a spool file."""

    def __init__(self, signer: AnchorSigner, witness, spool: Path, every_seconds: float = 0.0):
        self.signer = signer
        self.witness = witness
        self.spool = Path(spool)
        self.every = every_seconds
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._backoff = 1.0
        self._last: tuple[int, str, str | None] | None = None
        self._periodic: threading.Thread | None = None
        self._closed = threading.Event()

    def close(self) -> None:
        """Stop republishing (the context that owned this anchor is gone). Idempotent."""
        self._closed.set()

    def describe(self) -> dict:
        return {"kind": self.witness.kind, "location": self.witness.describe(), "key_id": self.signer.key_id,
                "public_key": self.signer.public_b64}

    # -- publishing -----------------------------------------------------------------------
    def publish(self, seq: int, digest: str, *, chain: str | None, event: str = "write",
                restore: dict | None = None) -> bool:
        """Sign and deliver one head (spooled heads first, in order). True when delivered.
        ``chain`` names the log: the hash of its first entry (a fresh data directory's log is
        another log than the one a backup of the original holds)."""
        body = {"v": RECORD_VERSION, "event": event, "chain": chain, "seq": int(seq), "hash": digest,
                "ts": utcnow().isoformat(timespec="microseconds").replace("+00:00", "Z")}
        if restore is not None:
            body.update(event="restore", replaced=restore.get("replaced"), restored=restore.get("restored"))
        line = json.dumps(self.signer.sign(body), sort_keys=True)
        if event != "periodic":
            self._last = (int(seq), digest, chain)
            self._start_periodic()
        return self._deliver([line])

    def flush(self) -> int:
        """Deliver what waits in the spool; returns how many heads still wait."""
        self._retry_at = 0.0
        self._deliver([])
        return self.pending()

    def pending(self) -> int:
        return len(self._read_spool())

    def _deliver(self, lines: list[str]) -> bool:
        self.spool.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock, _locked(self.spool.with_name(self.spool.name + ".lock")):
            waiting = self._read_spool() + lines
            if not waiting:
                return True
            if time.monotonic() >= self._retry_at:
                try:
                    self.witness.append(waiting)
                except AnchorError as exc:
                    log.warning("audit anchor unreachable, %d head(s) spooled: %s", len(waiting), exc)
                    self._retry_at = time.monotonic() + self._backoff
                    self._backoff = min(self._backoff * 2, 60.0)
                else:
                    self._retry_at, self._backoff = 0.0, 1.0
                    self.spool.unlink(missing_ok=True)
                    return True
            _write_private(self.spool, "".join(line + "\n" for line in waiting))
            return False

    def _read_spool(self) -> list[str]:
        try:
            return [line for line in self.spool.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            return []

    def _start_periodic(self) -> None:
        if self.every <= 0 or self._periodic is not None or self._closed.is_set():
            return
        self._periodic = threading.Thread(target=self._republish, daemon=True, name="audit-anchor")
        self._periodic.start()

    def _republish(self) -> None:
        while not self._closed.wait(self.every):
            if self._last:
                with contextlib.suppress(Exception):  # logged by _deliver; tried again next period
                    seq, digest, chain = self._last
                    self.publish(seq, digest, chain=chain, event="periodic")

    # -- reading --------------------------------------------------------------------------
    def records(self) -> tuple[list[dict], list[str]]:
        """Every signed head the witness holds, then those still spooled, in the order they
        were published; and a problem for each line that is not a validly signed head."""
        records, problems = [], []
        for source, lines in (("anchor", self.witness.read()), ("spool", self._read_spool())):
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    well_formed = (isinstance(record, dict) and record.get("event") in EVENTS
                                   and isinstance(record.get("seq"), int) and isinstance(record.get("hash"), str))
                except ValueError:
                    well_formed = False
                if not well_formed:
                    problems.append(f"{source} record {number} is not a signed head")
                elif not self.signer.valid(record):
                    problems.append(f"{source} record {number} (entry {record['seq']}) has an invalid signature: "
                                    "written by someone without the anchor key")
                else:
                    records.append(record)
        return records, problems


@contextlib.contextmanager
def _flock(fh):
    """An exclusive lock on an open file between processes (where there is no flock: none)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fcntl.flock(fh, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _locked(path: Path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh, _flock(fh):
        yield


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
