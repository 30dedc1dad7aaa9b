"""Camera leases, node and camera status, and the one-alert-per-person record, in JetStream
key-value buckets.

- ``VIGIL_CAMERA_LEASES``: who runs a camera. A node *claims* a camera by creating its key
  (``create``: only if absent) and keeps it by renewing it with compare-and-set on the
  revision it holds; the bucket's TTL (the lease period) removes the key of a node that
  stopped renewing, and another node's ``create`` then succeeds. A node that cannot renew
  (NATS out of reach) stops the camera itself before the lease can have expired
  (:meth:`Lease.expired_locally`), so two nodes never run one camera for longer than a lease
  period, whatever the network does.
- ``VIGIL_CAMERA_STATUS``: how each camera is doing (node, health, lag, dropped frames,
  counts), and whether it ended (its file finished, its window closed). No TTL: a camera's
  last status outlives its node, and the counts carry over to the node that takes it over.
- ``VIGIL_NODES``: each live node's name, site, capacity (from its calibration), cameras
  held and cameras it had to leave for want of capacity; TTL: a dead node disappears.
- ``VIGIL_ALERT_PEOPLE``: per deployment and watchlist subject, when they were last alerted,
  so the one alert per person per de-duplication window holds across nodes (a
  compare-and-set decides between two nodes that see the same person at once).

Nothing in these buckets is biometric: names of cameras and nodes, counts, times, and a
watchlist subject's pseudonymous id.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field

from vigil.errors import VigilError

LEASES = "VIGIL_CAMERA_LEASES"
STATUS = "VIGIL_CAMERA_STATUS"
NODES = "VIGIL_NODES"
PEOPLE = "VIGIL_ALERT_PEOPLE"
DEFAULT_LEASE_SECONDS = 6.0
FENCE_MARGIN = 1.0  # a node stops a camera this long before its lease could have expired on the server
PEOPLE_TTL = 3600.0  # the person record outlives any de-duplication window
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def camera_key(deployment_id: int, camera: str) -> str:
    """``d12.<camera name, base64url>``: any camera name fits a KV key that way."""
    return f"d{int(deployment_id)}.{base64.urlsafe_b64encode(camera.encode()).decode().rstrip('=')}"


def parse_camera_key(key: str) -> tuple[int, str]:
    dep, _, enc = key.partition(".")
    return int(dep[1:]), base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4)).decode()


def person_key(deployment_id: int, subject_id: str) -> str:
    return f"d{int(deployment_id)}.{base64.urlsafe_b64encode(subject_id.encode()).decode().rstrip('=')}"


def check_name(name: str, what: str = "node name") -> str:
    if not NAME_RE.match(name or ""):
        raise VigilError(f"{what} {name!r}: use 1-64 letters, digits, - and _")
    return name


def dumps(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def loads(data: bytes | None) -> dict:
    return json.loads(data) if data else {}


@dataclass
class Buckets:
    leases: object
    status: object
    nodes: object
    people: object
    lease_seconds: float


async def _bucket(js, name: str, *, ttl: float | None, replicas: int, description: str):
    from nats.js.api import KeyValueConfig
    from nats.js.errors import BucketNotFoundError, NotFoundError

    try:
        return await js.key_value(name)
    except (BucketNotFoundError, NotFoundError):
        pass
    try:
        kv = await js.create_key_value(KeyValueConfig(bucket=name, description=description, history=1,
                                                      ttl=ttl, replicas=replicas))
    except Exception:  # noqa: BLE001 - another process created it meanwhile: use theirs
        kv = await js.key_value(name)
    await wait_for_leader(js, f"KV_{name}")
    return kv


async def until_ready(step, on_retry=None, give_up_after: float | None = None):
    """``await step()`` until it succeeds: a cluster that has just started, or is electing
    leaders, times out requests for a few seconds. ``on_retry(attempt, wait, error)`` hears
    each failure; after ``give_up_after`` seconds the last error propagates."""
    import asyncio

    started, attempt, wait = time.monotonic(), 0, 0.5
    while True:
        attempt += 1
        try:
            return await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - timeouts, no responders, "JetStream not ready"
            if give_up_after is not None and time.monotonic() - started > give_up_after:
                raise
            if on_retry is not None:
                on_retry(attempt, wait, exc)
            await asyncio.sleep(wait)
            wait = min(5.0, wait * 2)


async def wait_for_leader(js, stream: str, timeout: float = 20.0) -> None:
    """A replicated stream just created takes a moment to elect its leader; writes before
    that time out."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        try:
            info = await js.stream_info(stream)
            if info.cluster is None or info.cluster.leader:
                return
        except Exception:  # noqa: BLE001 - not answering yet
            pass
        if time.monotonic() > deadline:
            return  # the caller's own writes retry or say so
        await asyncio.sleep(0.2)


async def open_buckets(js, *, lease_seconds: float = DEFAULT_LEASE_SECONDS, replicas: int = 1) -> Buckets:
    """The cluster's buckets, created on first use. The lease period is the leases bucket's
    TTL: whoever creates the bucket sets it, and every node reads it back from there."""
    leases = await _bucket(js, LEASES, ttl=lease_seconds, replicas=replicas,
                           description="Vigil: which node runs which camera (TTL = lease period)")
    status = await _bucket(js, STATUS, ttl=None, replicas=replicas,
                           description="Vigil: each camera's node, health, lag, dropped frames, counts")
    info = await js.stream_info(f"KV_{LEASES}")
    period = float(info.config.max_age or lease_seconds)
    nodes = await _bucket(js, NODES, ttl=period, replicas=replicas,
                          description="Vigil: live nodes, their site, capacity and cameras")
    people = await _bucket(js, PEOPLE, ttl=PEOPLE_TTL, replicas=replicas,
                           description="Vigil: when each watchlist subject was last alerted, per deployment")
    return Buckets(leases, status, nodes, people, period)


@dataclass
class Lease:
    """A camera (or role) this process holds: the key, the revision it last wrote, and when
    (monotonic) it sent its last successful renewal."""

    key: str
    revision: int
    period: float
    renewed_at: float = field(default_factory=time.monotonic)
    acquired_wall: float = field(default_factory=time.time)

    def expired_locally(self, now: float | None = None) -> bool:
        """True once the server may have let the lease go: the holder must stop now."""
        return (now if now is not None else time.monotonic()) - self.renewed_at > self.period - FENCE_MARGIN


async def claim(kv, key: str, value: dict, period: float) -> Lease | None:
    """Take ``key`` if nobody holds it; None if somebody does."""
    from nats.js.errors import KeyWrongLastSequenceError

    sent = time.monotonic()
    try:
        revision = await kv.create(key, dumps(value))
    except KeyWrongLastSequenceError:
        return None
    return Lease(key, revision, period, renewed_at=sent)


class LeaseLost(Exception):
    """Somebody else holds the key now (ours expired and was claimed)."""


async def renew(kv, lease: Lease, value: dict) -> None:
    """Renew with compare-and-set on our revision. Raises :class:`LeaseLost` if the key moved
    on without us; any other error (NATS out of reach) propagates and the lease runs down."""
    from nats.js.errors import KeyWrongLastSequenceError

    sent = time.monotonic()
    try:
        lease.revision = await kv.update(lease.key, dumps(value), last=lease.revision)
    except KeyWrongLastSequenceError as exc:
        raise LeaseLost(lease.key) from exc
    lease.renewed_at = sent


async def release(kv, lease: Lease) -> None:
    """Give the key up at once (a clean stop), only if it is still ours."""
    try:
        await kv.delete(lease.key, last=lease.revision)
    except Exception:  # noqa: BLE001 - not ours any more, or NATS away: the TTL frees it either way
        pass


async def get(kv, key: str) -> tuple[dict | None, int]:
    """(value, revision), or (None, 0) for a key that is absent or deleted."""
    from nats.js.errors import KeyDeletedError, KeyNotFoundError

    try:
        entry = await kv.get(key)
    except (KeyNotFoundError, KeyDeletedError):
        return None, 0
    if entry is None or entry.value is None or entry.operation in ("DEL", "PURGE"):
        return None, 0
    return loads(entry.value), entry.revision


async def all_values(kv) -> dict[str, dict]:
    """Every live key of a bucket with its value."""
    from nats.js.errors import NoKeysError

    try:
        keys = await kv.keys()
    except NoKeysError:
        return {}
    out = {}
    for key in keys:
        value, _ = await get(kv, key)
        if value is not None:
            out[key] = value
    return out


async def first_alert_of_person(kv, key: str, window: float, value: dict, now: float | None = None) -> bool:
    """Whether this is the first alert of the person in the window, deciding it for the
    whole cluster: True (and the record is now ours), or False when another alert of the
    same person was raised within ``window`` seconds, on this node or another."""
    from nats.js.errors import KeyWrongLastSequenceError

    now = time.time() if now is None else now
    for _ in range(8):
        previous, revision = await get(kv, key)
        if previous is not None and now - float(previous.get("at", 0)) < window:
            return False
        try:
            if revision:
                await kv.update(key, dumps({**value, "at": now}), last=revision)
            else:
                await kv.create(key, dumps({**value, "at": now}))
            return True
        except KeyWrongLastSequenceError:
            continue  # another node wrote it between our read and our write: read again
    return False
