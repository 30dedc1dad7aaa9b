"""A NATS JetStream stream as the audit anchor's witness (``pip install 'vigil[nats]'``).

``audit.anchor = "nats://[user:password@]host:4222/STREAM?subject=vigil.audit.head"`` (or
``tls://``), with ``audit.anchor_credentials`` naming a ``.creds`` file where the server uses
NATS accounts. Give Vigil's NATS user its own credentials, allowed to publish on the subject
and to read the stream, not to delete or purge it. A stream that does not exist yet is
created with ``deny_delete`` and ``deny_purge``, so that not even the credentials that write
it can remove a head.

nats-py is asynchronous; the witness runs its own event loop in a daemon thread, so it can
be called from any thread, an API request handler's included.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from vigil.governance.anchor import AnchorError

DEFAULT_STREAM = "VIGIL_AUDIT"
DEFAULT_SUBJECT = "vigil.audit.head"
_witnesses: dict[tuple, "NatsWitness"] = {}
_witnesses_lock = threading.Lock()


async def _quiet(*_args) -> None:
    """nats-py prints connection errors unless given callbacks; the witness reports them."""


class NatsWitness:
    kind = "nats"

    def __init__(self, server: str, stream: str, subject: str, credentials: Path | None, timeout: float):
        self.server, self.stream, self.subject = server, stream, subject
        self.credentials = credentials
        self.timeout = timeout
        self._nc = None
        self._js = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard = threading.Lock()

    @classmethod
    def from_url(cls, url: str, credentials: Path | None, timeout: float) -> "NatsWitness":
        try:
            import nats  # noqa: F401
        except ImportError as exc:
            raise AnchorError("a nats:// anchor needs nats-py: pip install 'vigil[nats]'") from exc
        parts = urlsplit(url)
        if not parts.hostname:
            raise AnchorError(f"audit.anchor {parts.scheme}://...: no NATS host given")
        stream = unquote(parts.path.strip("/")) or DEFAULT_STREAM
        subject = (parse_qs(parts.query).get("subject") or [DEFAULT_SUBJECT])[0]
        if "/" in stream or not subject or any(c in subject for c in " *>"):
            raise AnchorError(f"audit.anchor: stream {stream!r} and subject {subject!r} must be plain names")
        server = f"{parts.scheme}://{parts.netloc}"
        key = (server, stream, subject, str(credentials or ""), timeout)
        with _witnesses_lock:
            if key not in _witnesses:
                _witnesses[key] = cls(server, stream, subject, Path(credentials) if credentials else None, timeout)
            return _witnesses[key]

    def describe(self) -> str:
        host = self.server.split("@", 1)[-1].split("://", 1)[-1]
        return f"nats://{host}/{self.stream} subject {self.subject}"

    def append(self, lines: list[str]) -> None:
        self._call(self._append(lines))

    def read(self) -> list[str]:
        return self._call(self._read())

    # -- inside the witness's event loop -------------------------------------------------
    async def _jetstream(self):
        if self._nc is None or self._nc.is_closed:
            import nats

            options = {"servers": [self.server], "connect_timeout": self.timeout, "allow_reconnect": False,
                       "max_reconnect_attempts": 0, "name": "vigil-audit-anchor", "error_cb": _quiet,
                       "disconnected_cb": _quiet, "closed_cb": _quiet}
            if self.credentials:
                options["user_credentials"] = str(self.credentials)
            self._nc = await nats.connect(**options)
            self._js = self._nc.jetstream(timeout=self.timeout)
            await self._ensure_stream()
        return self._js

    async def _ensure_stream(self) -> None:
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(StreamConfig(name=self.stream, subjects=[self.subject], deny_delete=True,
                                                   deny_purge=True))

    async def _append(self, lines: list[str]) -> None:
        js = await self._jetstream()
        for line in lines:  # the message id lets JetStream drop a head a retry sends twice
            await js.publish(self.subject, line.encode(), stream=self.stream, timeout=self.timeout,
                             headers={"Nats-Msg-Id": hashlib.sha256(line.encode()).hexdigest()})

    async def _read(self) -> list[str]:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        js = await self._jetstream()
        info = await js.stream_info(self.stream, subjects_filter=self.subject)
        if not (info.state.subjects or {}).get(self.subject):
            return []
        sub = await js.pull_subscribe(self.subject, stream=self.stream, config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=60.0))
        lines: list[str] = []
        try:
            while True:
                batch = await sub.fetch(1000, timeout=self.timeout)
                lines.extend(m.data.decode() for m in batch)
                if not batch or batch[-1].metadata.num_pending == 0:
                    return lines
        finally:
            await sub.unsubscribe()

    # -- from any thread -------------------------------------------------------------------
    def _call(self, coro):
        with self._guard:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, daemon=True, name="audit-anchor-nats").start()
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(self.timeout * 3 + 1)
        except Exception as exc:  # noqa: BLE001 - every failure of the witness is an AnchorError to the caller
            future.cancel()
            asyncio.run_coroutine_threadsafe(self._drop(), self._loop)
            raise AnchorError(f"NATS anchor {self.describe()}: {exc or type(exc).__name__}") from exc

    async def _drop(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except Exception:  # noqa: BLE001 - a broken connection is dropped either way
                pass
