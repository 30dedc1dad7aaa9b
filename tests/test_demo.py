"""`vigil demo` end to end on a fresh data directory (what the README's first command runs)."""

import inspect
import json
import shutil

import pytest

from tests.demo_run import run_vigil


@pytest.mark.slow
def test_demo_no_serve_json(demo_run, tmp_path):
    data = demo_run["result"]
    verdicts = {(v["a"], v["b"]): v["match"] for v in data["engine"]["verifications"]}
    assert verdicts[("obama.jpg", "obama_speech.jpg")] and not verdicts[("obama.jpg", "biden.jpg")]
    assert {f["top"] for f in data["retrospective"]["faces"]} == {"Barack Obama", "Joe Biden"}
    live = data["live"]
    assert [a["name"] for a in live["alerts"]] == ["Barack Obama"]  # Biden walks by and is discarded
    assert live["faces_seen"] >= 2
    assert data["login"]["username"] == "demo" and len(data["login"]["password"]) >= 16
    assert "password (shown once" in demo_run["stderr"]  # the first admin's, printed once
    # Run it again, as the README's first command does (no --home), with the real data directory
    # configured: the demo goes to its own directory beside it ("vigil" -> "vigil-demo"), here a
    # copy of the first run's (other tests read the original meanwhile), and real work's stays empty.
    real, home = tmp_path / "vigil", tmp_path / "vigil-demo"
    shutil.copytree(demo_run["home"], home, symlinks=True)
    again = run_vigil(real, "demo", "--no-serve", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["login"]["password"] is None  # never printed twice
    assert not real.exists() or not any(real.iterdir())  # the demo never entered real work's directory
    verify = run_vigil(home, "audit", "verify", "--json")
    assert json.loads(verify.stdout)["ok"]
    _the_trail_names_the_acting_administrator(home)


def _the_trail_names_the_acting_administrator(home):
    """Every step went through its use case, so the audit log holds each one's own entry,
    written by the user who ran the demo (not by a made-up "vigil-demo")."""
    from sqlalchemy import select

    from vigil.config import Settings
    from vigil.services import forget_contexts, get_vigil
    from vigil.store.schema import AuditEntry

    forget_contexts()
    vigil = get_vigil(Settings(home=home))
    with vigil.store.session() as s:
        entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    forget_contexts()
    actions = {e.action for e in entries}
    assert {"gallery.created", "watchlist.created", "watchlist.authorised", "search.run", "user.created"} <= actions
    assert any(a.startswith("deployment.") and "authoris" in a for a in actions)
    admin = entries[0].object_id  # system.initialised names the first admin
    assert entries[0].action == "system.initialised"
    demo_user = [e for e in entries if e.action == "user.created" and e.object_id == "demo"]
    assert len(demo_user) == 1 and demo_user[0].actor == admin
    assert not [e for e in entries if e.actor == "vigil-demo"]


def test_the_demo_composes_use_cases_and_holds_no_transaction_of_its_own():
    from vigil.services import demo

    source = inspect.getsource(demo)
    for token in ("session(", "audit.record", "store.audit", "require("):
        assert token not in source, token

