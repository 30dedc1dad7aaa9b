"""Connecting to NATS: a clear message and retries with backoff when the server is down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from vigil.errors import VigilError

log = logging.getLogger("vigil.cluster")


class ClusterUnavailable(VigilError):
    """NATS could not be reached (or nats-py is not installed)."""


def backoff_delays(first: float = 0.5, factor: float = 2.0, cap: float = 15.0):
    """0.5, 1, 2, 4, 8, 15, 15, ... seconds: the waits between connection attempts."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * factor)


async def _quiet(*_args) -> None:
    """nats-py prints connection errors unless given callbacks; callers report them."""


async def connect(servers: str | list[str], *, name: str, attempts: int | None = None,
                  connect_timeout: float = 2.0, on_retry: Callable[[int, float, Exception], None] | None = None,
                  credentials: str | None = None):
    """A connected nats-py client. ``servers`` is one URL or several (a cluster's seeds).

    Retries with backoff (``attempts`` None: forever) and reports each failure through
    ``on_retry(attempt, next_wait_s, error)``; once connected, nats-py reconnects by itself.
    Raises :class:`ClusterUnavailable` after the last attempt."""
    try:
        import nats
    except ImportError as exc:
        raise ClusterUnavailable("the cluster needs nats-py: pip install 'vigil[nats]'") from exc
    urls = [servers] if isinstance(servers, str) else list(servers)
    # Two tries per server for the first connection (nats-py would otherwise retry an unreachable
    # server forever inside connect(), silently): the backoff and the message are ours. Once
    # connected, nats-py reconnects by itself, forever.
    options = {"servers": urls, "name": name, "connect_timeout": connect_timeout, "allow_reconnect": True,
               "max_reconnect_attempts": 1, "reconnect_time_wait": 0.5, "error_cb": _quiet,
               "disconnected_cb": _quiet, "closed_cb": _quiet}
    if credentials:
        options["user_credentials"] = credentials
    seen: list[Exception] = []

    async def remember(exc: Exception) -> None:  # the real cause behind nats-py's "no servers available"
        seen.append(exc)

    options["error_cb"] = remember
    delays = backoff_delays()
    attempt = 0
    while True:
        attempt += 1
        seen.clear()
        try:
            nc = await nats.connect(**options)
            nc.options["max_reconnect_attempts"] = -1
            nc._error_cb = _quiet  # connected: later errors are the reconnection's, said by the callers
            return nc
        except Exception as exc:
            if seen and type(exc).__name__ == "NoServersError":
                exc = seen[-1]  # nats-py raises several kinds (NoServersError, OSError, timeouts)
            if attempts is not None and attempt >= attempts:
                raise ClusterUnavailable(f"NATS at {', '.join(urls)} is unreachable after {attempt} "
                                         f"attempt(s): {exc or type(exc).__name__}") from exc
            wait = next(delays)
            if on_retry:
                on_retry(attempt, wait, exc)
            else:
                log.warning("NATS at %s unreachable (%s); retrying in %.1f s", ", ".join(urls), exc, wait)
            await asyncio.sleep(wait)


def retry_reporter(say: Callable[[dict], None], who: dict, servers: list[str]) -> Callable[[int, float, Exception], None]:
    """An ``on_retry`` for :func:`connect` that says each failed attempt as one event
    (``who`` names the process: ``{"type": "node", "node": NAME}``)."""

    def report(attempt: int, wait: float, exc: Exception) -> None:
        say({**who, "event": "unreachable", "attempt": attempt, "retry_in_s": wait,
             "message": f"NATS at {', '.join(servers)} is unreachable ({exc or type(exc).__name__}); "
                        f"retrying in {wait:.1f} s"})

    return report


def not_ready_reporter(say: Callable[[dict], None], who: dict) -> Callable[[int, float, Exception], None]:
    """The same for JetStream answering but not ready yet (a cluster electing its leaders)."""

    def report(attempt: int, wait: float, exc: Exception) -> None:
        say({**who, "event": "cluster_not_ready", "attempt": attempt,
             "message": f"JetStream not ready ({exc or type(exc).__name__}); retrying in {wait:.1f} s"})

    return report


def stop_on_signals(loop, stopping) -> None:
    """SIGINT and SIGTERM set ``stopping`` (an ``asyncio.Event``); outside the main thread
    (tests run nodes and recorders in threads) there are no signal handlers to add."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stopping.set)
        except (RuntimeError, ValueError):
            pass


async def connect_with_options(options, *, name: str, who: dict, say: Callable[[dict], None]):
    """:func:`connect` with a node's or recorder's options (servers, attempts, credentials),
    each retry reported through ``say`` as ``who``."""
    return await connect(options.servers, name=name, attempts=options.connect_attempts,
                         on_retry=retry_reporter(say, who, options.servers), credentials=options.credentials)
