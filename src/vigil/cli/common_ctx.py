"""The CLI's application context and identity."""

from __future__ import annotations

from vigil.cli.common import settings


def ctx():
    """(Vigil context, acting user). Initialises a fresh data directory on first use.

    The acting user is ``VIGIL_TOKEN``'s, read from this invocation's settings (a context is
    shared by every command on the same data directory within a process), else the Vigil user
    mapped to the operating-system account the process runs as.

    Galleries the settings name as sharded (``cluster.sharded_galleries``) are searched, and
    their subjects erased, on their shards over NATS (``cluster.nats``), reached only when a
    command first needs them (docs/cluster.md)."""
    from vigil.services import get_vigil
    from vigil.services.accounts import cli_actor

    current = settings()
    vigil = get_vigil(current)
    if current.cluster.sharded_galleries:  # searches and erasures of these galleries go to their shards
        from vigil.cluster.gallery import use_configured_galleries

        use_configured_galleries(vigil, current)
    return vigil, cli_actor(vigil, current.token)
