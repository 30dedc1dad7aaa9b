"""What auditors and administrators asked for (issue #15): the search record (who searched what,
for which case, why, when), a list of API tokens with their ids, and the audit log filtered by
period and exported as CSV or JSON. Through the services, the API and the CLI."""

from __future__ import annotations

import csv
import io
import json
import stat
from datetime import timedelta

import pytest

from tests.cli_run import run_cli
from tests.conftest import demo_bytes
from tests.services.live_helpers import api_client
from tests.store.conftest import admin, vigil  # noqa: F401  (shared fixtures)
from vigil.errors import PermissionDenied
from vigil.services.accounts import add_user, create_token, list_tokens, revoke_token
from vigil.services.collections import create_collection
from vigil.services.enrolment import EnrolItem, enrol_image
from vigil.services.search import run_search
from vigil.services.search_records import list_searches
from vigil.timeutil import utcnow


def _actor(vigil, username):  # noqa: F811
    from vigil.governance.permissions import Actor
    from vigil.governance.users import get_user

    with vigil.store.session() as s:
        user = get_user(s, username)
        return Actor(user.username, user.role, user.id)


def test_searches_are_listed_for_auditors_and_each_investigator_sees_their_own(vigil, admin):  # noqa: F811
    create_collection(vigil, admin, "gallery", "custody", purpose="custody images")
    enrol_image(vigil, admin, "gallery", "custody", demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    for name, role in (("ivy", "investigator"), ("ian", "investigator"), ("aud", "auditor")):
        add_user(vigil, admin, name, role)
    ivy, ian, aud = (_actor(vigil, n) for n in ("ivy", "ian", "aud"))
    run_search(vigil, ivy, "gallery", "custody", case_ref="CASE-7", reason="robbery at the station",
               data=demo_bytes("obama_speech.jpg"))
    everything = list_searches(vigil, aud).items
    assert [(r["by"], r["case_ref"], r["reason"], r["collection"]) for r in everything] == [
        ("ivy", "CASE-7", "robbery at the station", "custody")]
    assert everything[0]["faces"] == 1 and everything[0]["candidates"] >= 1
    assert list_searches(vigil, ivy).items[0]["case_ref"] == "CASE-7" and list_searches(vigil, ian).items == []
    assert list_searches(vigil, aud, case_ref="CASE-8").items == []
    assert list_searches(vigil, aud, since=utcnow() + timedelta(minutes=1)).items == []
    operator = add_user(vigil, admin, "otto", "operator") and _actor(vigil, "otto")
    with pytest.raises(PermissionDenied):
        list_searches(vigil, operator)


def test_tokens_are_listed_with_their_ids_and_never_their_secrets(vigil, admin, settings):  # noqa: F811
    add_user(vigil, admin, "olga", "operator")
    olga = _actor(vigil, "olga")
    made = create_token(vigil, olga, name="olga's script")
    mine = list_tokens(vigil, olga).items
    assert [(t["id"], t["name"], t["active"]) for t in mine] == [(made["id"], "olga's script", True)]
    assert made["token"] not in json.dumps(mine) and made["token"].startswith(mine[0]["prefix"])
    with pytest.raises(PermissionDenied):
        list_tokens(vigil, olga, all_users=True)
    # an administrator finds it by its owner and revokes it by the id the list shows
    found = [t for t in list_tokens(vigil, admin, all_users=True).items if t["user"] == "olga"]
    revoke_token(vigil, admin, found[0]["id"])
    assert list_tokens(vigil, olga).items[0]["active"] is False
    client, headers = api_client(vigil, settings, admin, roles=("auditor", "operator"))
    assert [t["user"] for t in client.get("/api/tokens", headers=headers["auditor"]).json()["items"]].count("olga") == 1
    assert client.get("/api/tokens", headers=headers["operator"]).status_code == 403
    own = client.get("/api/me/tokens", headers=headers["operator"]).json()["items"]
    assert own and all(t["user"] == "operator1" for t in own)
    listed = run_cli(settings.home, "token", "list", "--all", "--json")
    assert listed.returncode == 0 and {"olga", "operator1"} <= {t["user"] for t in json.loads(listed.stdout)["items"]}


def test_the_audit_log_is_filtered_by_period_and_exported(vigil, admin, settings, tmp_path):  # noqa: F811
    create_collection(vigil, admin, "gallery", "custody", purpose="custody images")
    client, headers = api_client(vigil, settings, admin, roles=("auditor",))
    now = utcnow()
    recent = client.get("/api/audit", params={"since": (now - timedelta(minutes=5)).isoformat(), "limit": 1000},
                        headers=headers["auditor"]).json()["items"]
    assert any(e["action"] == "gallery.created" for e in recent)
    assert client.get("/api/audit", params={"until": (now - timedelta(days=1)).isoformat()},
                      headers=headers["auditor"]).json()["items"] == []
    r = client.get("/api/audit", params={"format": "csv", "action": "gallery."}, headers=headers["auditor"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["action"] for row in rows] == ["gallery.created"] and json.loads(rows[0]["details"])
    # the CLI: a period by dates, CSV on stdout, and an export file that is private and recorded
    day = now.date().isoformat()
    out = run_cli(settings.home, "audit", "list", "--since", day, "--until", day, "--format", "csv")
    assert out.returncode == 0 and "gallery.created" in out.stdout and out.stdout.startswith("seq,ts,actor")
    target = tmp_path / "exports" / "audit.json"
    done = run_cli(settings.home, "audit", "list", "--action", "gallery.", "--out", str(target), "--json")
    assert done.returncode == 0, done.stderr
    assert [e["action"] for e in json.loads(target.read_text())] == ["gallery.created"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    exports = client.get("/api/audit", params={"action": "export.written"}, headers=headers["auditor"]).json()["items"]
    assert exports[0]["details"]["format"] == "json" and exports[0]["details"]["entries"] == 1
    bad = run_cli(settings.home, "audit", "list", "--since", "2030-01-02", "--until", "2030-01-01")
    assert bad.returncode != 0 and "after its end" in bad.stderr
