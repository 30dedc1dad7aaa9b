"""First run: the first admin, mapped to the operating-system user, with a generated
password printed once. ``vigil init`` calls it explicitly; every command calls it implicitly
so a script's first command on a fresh data directory just works."""

from __future__ import annotations

import sys

from sqlalchemy import func, select

from vigil.governance.users import create_user, os_username
from vigil.store.schema import User


def ensure_initialised(store, *, announce: bool = True) -> dict | None:
    with store.session() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return None
        name = os_username()
        user, password = create_user(session, name, "admin", created_by="vigil-init",
                                     display_name=f"{name} (administrator)", os_user=name)
        store.audit.record(session, "vigil-init", "system.initialised", "user", user.username,
                           {"role": "admin", "os_user": name, "home": str(store.home)})
    info = {"home": str(store.home), "admin": name, "password": password}
    store.first_run = info
    if announce:
        sys.stderr.write(
            f"Initialised Vigil data directory {store.home}\n"
            f"  first admin user: {name} (mapped to the operating-system user)\n"
            f"  password (shown once, for the web console and API): {password}\n"
        )
    return info
