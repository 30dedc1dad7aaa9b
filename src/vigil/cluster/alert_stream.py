"""Alerts on a replicated JetStream stream, sealed with Vigil's keys before they leave a node.

Stream ``VIGIL_ALERTS`` (subjects ``vigil.alerts.>``, file storage, up to 3 replicas,
work-queue retention: a message is gone from the broker once the recorder acknowledges it).

- ``vigil.alerts.d<deployment>``: one alert. Its id is made on the node (a UUID) and sent as
  ``Nats-Msg-Id``, so a publish the node retries (a lost acknowledgement, a leader election)
  is stored once within the stream's duplicate window; the recorder stores it under the same
  id (unique in the database), so a redelivery after that is a no-op too.
- ``vigil.alerts.d<deployment>.clip``: an alert's evidence clip, in chunks of at most
  :data:`CHUNK_BYTES` (a clip is often larger than a message may be: the server's
  ``max_payload`` is 1 MiB by default), each with its own message id ``<alert id>.clip.<i>``.

Every body is sealed (:mod:`vigil.cluster.sealing`: AES-256-GCM under a transport key derived
from the site's data key, which the node and the recorder share as every Vigil process of one
installation does) and bound to its alert id and part, so a body moved to another message
does not open. In clear are only the subject
(the deployment's number) and the headers: the alert id, the kind, the part number. The
images inside are the ones a stored alert keeps: the alerted face's crop and the frame with
everything but that face washed out (:mod:`vigil.live.evidence`); no frame, crop or template
of anybody else leaves the node.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct

from vigil.cluster.sealing import SealError, Sealer

log = logging.getLogger("vigil.cluster")

STREAM = "VIGIL_ALERTS"
SUBJECTS = "vigil.alerts.>"
CONSUMER = "VIGIL_RECORDER"
CHUNK_BYTES = 256 * 1024
DUPLICATE_WINDOW = 600.0  # seconds JetStream remembers a message id (retries within it are dropped)
MAGIC = b"VCA1"


def alert_subject(deployment_id: int) -> str:
    return f"vigil.alerts.d{int(deployment_id)}"


def clip_subject(deployment_id: int) -> str:
    return f"vigil.alerts.d{int(deployment_id)}.clip"


def _context(kind: str, alert_uid: str, part: int = 0) -> bytes:
    return f"vigil-cluster-{kind}:{alert_uid}:{part}".encode()


def seal(sealer: Sealer, kind: str, alert_uid: str, header: dict, parts: list[bytes], part: int = 0) -> bytes:
    """One sealed body: a JSON header (with the parts' lengths) and the parts, bound to
    ``kind``, the alert id and the part number."""
    head = json.dumps({**header, "lengths": [len(p) for p in parts]}, separators=(",", ":"),
                      default=str).encode()
    plain = MAGIC + struct.pack(">I", len(head)) + head + b"".join(parts)
    return sealer.seal(plain, _context(kind, alert_uid, part))


def unseal(sealer: Sealer, kind: str, alert_uid: str, body: bytes, part: int = 0) -> tuple[dict, list[bytes]]:
    """Raises :class:`SealError` for a body that is not sealed with this site's keys for
    this alert and part."""
    plain = sealer.open(body, _context(kind, alert_uid, part))
    if plain[:4] != MAGIC:
        raise SealError("not a Vigil alert message")
    (size,) = struct.unpack(">I", plain[4:8])
    header = json.loads(plain[8:8 + size])
    parts, at = [], 8 + size
    for length in header.pop("lengths"):
        parts.append(plain[at:at + length])
        at += length
    return header, parts


def cluster_size(nc) -> int:
    """How many servers the connected cluster has, as the server announces it."""
    info = getattr(nc, "_server_info", None) or {}
    urls = set(info.get("connect_urls") or [])
    return max(1, len(urls))


async def ensure_stream(js, replicas: int) -> None:
    """The alert stream, created on first use; an existing one is kept as it is."""
    from nats.js.api import RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(STREAM)
        return
    except NotFoundError:
        pass
    from vigil.cluster.leases import wait_for_leader

    try:
        await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECTS], retention=RetentionPolicy.WORK_QUEUE,
                                         storage=StorageType.FILE, num_replicas=replicas,
                                         duplicate_window=DUPLICATE_WINDOW,
                                         description="Vigil alerts (sealed), until the recorder has them"))
    except Exception:  # noqa: BLE001 - created by another process meanwhile
        await js.stream_info(STREAM)
    await wait_for_leader(js, STREAM)


async def publish(js, subject: str, body: bytes, msg_id: str, headers: dict, *, timeout: float = 2.0,
                  until=None):
    """Publish until JetStream acknowledges it (a leader election, a lost connection: retried
    with backoff under the same message id, so it is stored once). ``until()`` True gives up
    (returns None); returns the acknowledgement."""
    delay = 0.1
    while True:
        try:
            return await js.publish(subject, body, timeout=timeout, stream=STREAM,
                                    headers={"Nats-Msg-Id": msg_id, **headers})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - timeouts, no responders, 503 during an election
            if until is not None and until():
                return None
            log.info("publish of %s not acknowledged (%s: %s); retrying in %.1f s", msg_id,
                     type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)


def chunks(data: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]
