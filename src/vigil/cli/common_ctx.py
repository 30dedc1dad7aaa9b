"""The CLI's application context and identity."""

from __future__ import annotations

from vigil.cli.common import settings


def ctx():
    """(Vigil context, acting user). Initialises a fresh data directory on first use."""
    from vigil.services import get_vigil

    vigil = get_vigil(settings())
    return vigil, vigil.cli_actor()
