"""The tamper-evident audit log: append-only, hash-chained, HMAC-signed, with its head
kept outside the database.

Each entry's hash covers the previous entry's hash and its own canonical content; its
signature is an HMAC of that hash under the audit key, which lives apart from the
database (``$VIGIL_HOME/keys/audit.key``, mode 0600, or ``VIGIL_AUDIT_KEY``). After each
commit the head (sequence number, hash, HMAC) is written to ``$VIGIL_HOME/audit/head.json``
so that cutting the newest entries off the table is caught too.

Entries are added in the same transaction as the action they describe: an action and its
audit entry commit together or not at all. They hold pseudonymous ids and metadata only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.errors import VigilError
from vigil.governance.permissions import Actor
from vigil.store.crypto import write_secret_file
from vigil.store.db import take_write_lock
from vigil.store.schema import AuditEntry
from vigil.timeutil import utcnow

GENESIS = "0" * 64
AUDIT_LOCK_KEY = 774411  # PostgreSQL advisory lock shared by every audit writer
_head_lock = threading.Lock()


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock between processes (flock; where there is none, threads only)."""
    try:
        import fcntl
    except ImportError:  # Windows: the thread lock and os.replace still apply
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
FORBIDDEN_KEYS = {"vector", "vectors", "embedding", "template", "image", "image_bytes", "password", "token", "crop"}


def canonical(data: dict) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(prev_hash: str, seq: int, ts: str, actor: str, action: str, object_type: str,
               object_id: str, details: str) -> str:
    body = canonical({"seq": seq, "ts": ts, "actor": actor, "action": action, "object_type": object_type,
                      "object_id": object_id, "details": details})
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


class AuditKey:
    def __init__(self, key: bytes):
        if len(key) < 32:
            raise VigilError("the audit key must be at least 32 bytes")
        self.key = key

    @classmethod
    def load_or_create(cls, path: Path, env_value: str | None, create: bool = True) -> "AuditKey":
        if env_value:
            return cls(base64.b64decode(env_value))
        if path.is_file():
            return cls(base64.b64decode(path.read_text().strip()))
        if not create:
            raise VigilError(f"audit key {path} not found (set VIGIL_AUDIT_KEY or restore the key file)")
        key = secrets.token_bytes(32)
        write_secret_file(path, base64.b64encode(key).decode())
        return cls(key)

    def sign(self, message: str) -> str:
        return hmac.new(self.key, message.encode(), hashlib.sha256).hexdigest()


@dataclass
class AuditLog:
    key: AuditKey
    head_path: Path

    def record(self, session: Session, actor: Actor | str, action: str, object_type: str = "",
               object_id: str | int | None = "", details: dict | None = None) -> AuditEntry:
        details = dict(details or {})
        bad = FORBIDDEN_KEYS & {k.lower() for k in details}
        if bad:
            raise ValueError(f"audit details may not hold {sorted(bad)} (no biometric data or secrets)")
        who = actor.username if isinstance(actor, Actor) else str(actor)
        if isinstance(actor, Actor) and actor.via != "cli":
            details.setdefault("via", actor.via)
        self.lock(session)
        last = session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        ts = utcnow().isoformat(timespec="microseconds").replace("+00:00", "Z")
        body = canonical(details)
        digest = entry_hash(prev, seq, ts, who, action, object_type, str(object_id or ""), body)
        entry = AuditEntry(seq=seq, ts=ts, actor=who, action=action, object_type=object_type,
                           object_id=str(object_id or ""), details=body, prev_hash=prev, hash=digest,
                           signature=self.key.sign(digest))
        session.add(entry)
        session.flush()
        session.info["audit_head"] = (seq, digest)
        return entry

    @staticmethod
    def lock(session: Session) -> None:
        """Take the audit writers' lock for the rest of this transaction, so that reading the
        last entry and appending the next cannot interleave with another writer (thread or
        process). Use cases that read-then-write other rows under the same guarantee (login
        counters) take it first too."""
        take_write_lock(session, AUDIT_LOCK_KEY)

    # -- head outside the database --------------------------------------------------------
    def write_head(self, seq: int, digest: str) -> None:
        """Record the newest committed entry outside the database, safely from any number of
        threads and processes: under a lock (a thread lock and an flock on a file next to the
        head), re-read the head and never move it backwards; write a uniquely named temporary
        file in the same directory and ``os.replace`` it, so a reader sees the old head or the
        new one, never half of either."""
        data = {"seq": seq, "hash": digest, "mac": self.key.sign(f"head:{seq}:{digest}")}
        self.head_path.parent.mkdir(parents=True, exist_ok=True)
        with _head_lock, _file_lock(self.head_path.with_name(self.head_path.name + ".lock")):
            current = self.read_head()
            if current and current.get("seq", 0) >= seq:
                return
            fd, tmp = tempfile.mkstemp(prefix=self.head_path.name + ".", suffix=".tmp", dir=self.head_path.parent)
            try:
                with os.fdopen(fd, "w") as fh:
                    fh.write(json.dumps(data))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.head_path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def read_head(self) -> dict | None:
        try:
            return json.loads(self.head_path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def after_commit(self, session: Session) -> None:
        head = session.info.pop("audit_head", None)
        if head:
            self.write_head(*head)

    # -- verification -------------------------------------------------------------------
    def verify(self, session: Session) -> dict:
        """Walk the chain. Returns ok, entries, first_bad_entry (seq) and a reason."""
        count = 0
        prev = GENESIS
        expected_seq = 1
        rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
        for e in rows:
            count += 1
            problem = None
            if e.seq != expected_seq:
                problem = (f"sequence jumps from {expected_seq - 1} to {e.seq}: "
                           f"entr{'y' if e.seq - expected_seq == 1 else 'ies'} deleted or reordered")
                bad = expected_seq
            elif e.prev_hash != prev:
                problem, bad = "does not link to the entry before it (deleted, inserted or reordered)", e.seq
            else:
                recomputed = entry_hash(prev, e.seq, e.ts, e.actor, e.action, e.object_type, e.object_id, e.details)
                if recomputed != e.hash:
                    problem, bad = "content was edited (hash mismatch)", e.seq
                elif not hmac.compare_digest(self.key.sign(e.hash), e.signature):
                    problem, bad = "signature invalid (entry forged or rewritten without the audit key)", e.seq
            if problem:
                return {"ok": False, "entries": self._count(session), "first_bad_entry": bad, "reason": problem}
            prev = e.hash
            expected_seq += 1
        head = self.read_head()
        result = {"ok": True, "entries": count, "first_bad_entry": None, "reason": None,
                  "head": head["seq"] if head else None}
        if head:
            if not hmac.compare_digest(self.key.sign(f"head:{head['seq']}:{head['hash']}"), head.get("mac", "")):
                result.update(ok=False, first_bad_entry=min(head["seq"], count + 1),
                              reason="the head file outside the database was altered")
            elif count < head["seq"]:
                result.update(ok=False, first_bad_entry=count + 1,
                              reason=f"the log ends at entry {count} but the head recorded {head['seq']}: "
                                     f"the newest entries were deleted")
            else:
                at_head = session.execute(select(AuditEntry.hash).where(AuditEntry.seq == head["seq"])).scalar()
                if at_head != head["hash"]:
                    result.update(ok=False, first_bad_entry=head["seq"],
                                  reason="the entry at the recorded head differs from the head file")
                elif count > head["seq"]:
                    result["note"] = (f"{count - head['seq']} entr{'y' if count - head['seq'] == 1 else 'ies'} "
                                      "after the recorded head (written just before a crash); they verify")
        elif count:
            result.update(ok=False, first_bad_entry=count,
                          reason="the head file outside the database is missing, so truncation cannot be ruled out")
        return result

    @staticmethod
    def _count(session: Session) -> int:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
