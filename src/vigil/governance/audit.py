"""The tamper-evident audit log: append-only, hash-chained, HMAC-signed, with its head
kept outside the database.

Each entry's hash covers the previous entry's hash and its own canonical content; its
signature is an HMAC of that hash under the audit key, which lives apart from the
database (``$VIGIL_HOME/keys/audit.key``, mode 0600, or ``VIGIL_AUDIT_KEY``). After each
commit the head (sequence number, hash, HMAC) is written to ``$VIGIL_HOME/audit/head.json``
so that cutting the newest entries off the table is caught too, and, where ``audit.anchor``
is set, signed with a key kept outside the data directory and published to a witness the
data directory cannot roll back (:mod:`vigil.governance.anchor`).

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
from vigil.governance.anchor import AnchorError, AuditAnchor
from vigil.governance.anchor_replay import AnchorReplay, describe_restores, replay
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
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as fh:
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
    anchor: AuditAnchor | None = None

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
        chain = digest if seq == 1 else session.execute(select(AuditEntry.hash).where(AuditEntry.seq == 1)).scalar()
        session.info["audit_head"] = (seq, digest, chain)
        return entry

    @staticmethod
    def lock(session: Session) -> None:
        """Take the audit writers' lock for the rest of this transaction, so that reading the
        last entry and appending the next cannot interleave with another writer (thread or
        process). Use cases that read-then-write other rows under the same guarantee (login
        counters) take it first too."""
        take_write_lock(session, AUDIT_LOCK_KEY)

    # -- head outside the database --------------------------------------------------------
    def write_head(self, seq: int, digest: str, *, restore: bool = False) -> None:
        """Record the newest committed entry outside the database, safely from any number of
        threads and processes: under a lock (a thread lock and an flock on a file next to the
        head), re-read the head and never move it backwards (only a restore, which the anchor
        records, sets it back); write a uniquely named temporary file (mode 0600) in the same
        directory (0700) and ``os.replace`` it, so a reader sees the old head or the new one,
        never half of either."""
        data = {"seq": seq, "hash": digest, "mac": self.key.sign(f"head:{seq}:{digest}")}
        self.head_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.head_path.parent.chmod(0o700)
        with _head_lock, _file_lock(self.head_path.with_name(self.head_path.name + ".lock")):
            current = self.read_head()
            if current and current.get("seq", 0) >= seq and not restore:
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
        restore = session.info.pop("audit_restore", None)
        if head:
            seq, digest, chain = head
            self.write_head(seq, digest, restore=restore is not None)
            if self.anchor is not None:
                self.anchor.publish(seq, digest, chain=chain, restore=restore)

    @staticmethod
    def note_restore(session: Session, replaced: dict | None, restored: dict | None) -> None:
        """Mark this transaction's entry as the record of a restore: once it commits, the head
        file is set to it even though that moves it back, and the anchor gets a signed
        ``restore`` record naming the head replaced and the head restored, so that verify can
        tell this rollback from an attack."""
        session.info["audit_restore"] = {"replaced": replaced, "restored": restored}

    # -- verification -------------------------------------------------------------------
    def verify(self, session: Session) -> dict:
        """Walk the chain, then compare it with the head file and, where one is configured,
        the anchor. Returns ok, entries, first_bad_entry (seq), the reason, and with an
        anchor what it holds and the restores that explain a rollback."""
        replayed, anchor_info = None, None
        if self.anchor is not None:
            try:
                records, problems = self.anchor.records()
            except AnchorError as exc:
                count = self._count(session)
                return {"ok": False, "entries": count, "first_bad_entry": None, "head": None,
                        "reason": f"{exc}: without the anchor a rollback cannot be ruled out"}
            chain = session.execute(select(AuditEntry.hash).where(AuditEntry.seq == 1)).scalar()
            ours = [r for r in records if r.get("chain") == chain]  # one anchor may serve several logs
            replayed = replay(ours)
            anchor_info = {**self.anchor.describe(), "chain": chain, "records": len(ours),
                           "other_logs_records": len(records) - len(ours), "pending": self.anchor.pending(),
                           "anchored_head": replayed.top["seq"] if replayed.top else None,
                           "restores": replayed.restores, "invalid_records": problems}
        problem = self._walk(session, replayed)
        count = self._count(session)
        result = {"ok": True, "entries": count, "first_bad_entry": None, "reason": None}
        if anchor_info is not None:
            result["anchor"] = anchor_info
            problem = self._compare_anchor(replayed, anchor_info, count, problem)
        if problem:
            result.update(ok=False, first_bad_entry=problem[0], reason=problem[1])
        self._check_head(session, result, count)
        if result["ok"] and anchor_info and anchor_info["restores"]:
            result["note"] = describe_restores(anchor_info["restores"])
        return result

    def _walk(self, session: Session, replayed: AnchorReplay | None) -> tuple[int, str] | None:
        """The first entry that breaks the chain, its signature, or an anchored head."""
        prev, expected_seq = GENESIS, 1
        for e in session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
            if e.seq != expected_seq:
                return expected_seq, (f"sequence jumps from {expected_seq - 1} to {e.seq}: entr"
                                      f"{'y' if e.seq - expected_seq == 1 else 'ies'} deleted or reordered")
            if e.prev_hash != prev:
                return e.seq, "does not link to the entry before it (deleted, inserted or reordered)"
            if entry_hash(prev, e.seq, e.ts, e.actor, e.action, e.object_type, e.object_id, e.details) != e.hash:
                return e.seq, "content was edited (hash mismatch)"
            if not hmac.compare_digest(self.key.sign(e.hash), e.signature):
                return e.seq, "signature invalid (entry forged or rewritten without the audit key)"
            anchored = replayed.expected.get(e.seq) if replayed else None
            if anchored and e.hash not in anchored["hashes"]:
                return e.seq, (f"entry {e.seq} differs from the one anchored {anchored['ts']}: the log was "
                               "rewritten (with the audit key) or rolled back after it was anchored")
            if replayed and e.seq in replayed.restore_entries and e.action != "system.restored":
                return e.seq, f"the anchor records a restore at entry {e.seq} but the log holds {e.action} there"
            prev, expected_seq = e.hash, expected_seq + 1
        return None

    @staticmethod
    def _compare_anchor(replayed: AnchorReplay, info: dict, count: int,
                        problem: tuple[int, str] | None) -> tuple[int, str] | None:
        found = [p for p in (problem, (replayed.first_bad, replayed.reason) if replayed.reason else None) if p]
        top = replayed.top
        if top and count < top["seq"]:
            found.append((count + 1, f"the log ends at entry {count} but the anchor recorded entry {top['seq']} "
                                     f"({top['ts']}): the newest entries were deleted or the database rolled back"))
        elif top is None and count:
            found.append((1, "the anchor holds no head of this log: it was only just configured (run `vigil audit "
                             "anchor` to publish the current head) or it is not this log's anchor"))
        if info["invalid_records"]:
            found.append((top["seq"] if top else 1, "the anchor holds records not signed by the anchor key: "
                                                    + "; ".join(info["invalid_records"][:3])))
        return min(found, key=lambda p: p[0]) if found else None

    def _check_head(self, session: Session, result: dict, count: int) -> None:
        head = self.read_head()
        result["head"] = head["seq"] if head else None
        if not result["ok"]:
            return
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

    @staticmethod
    def _count(session: Session) -> int:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
