"""Users, tokens, logins and the CLI's identity (being built out: see issue #11)."""

from __future__ import annotations

from vigil.governance.permissions import Actor
from vigil.governance.users import cli_actor as _cli_actor


def cli_actor(vigil) -> Actor:
    """The CLI's identity: VIGIL_TOKEN if given, else the user mapped to the OS account."""
    with vigil.store.session() as session:
        return _cli_actor(session, vigil.settings.token)
