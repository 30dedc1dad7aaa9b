"""The audit chain under concurrent writers: parallel logins (good and failed) through the API
never give a server error, and leave a chain that verifies with no gap in its sequence; the
head file outside the database is written safely by many threads and processes at once."""

from __future__ import annotations

import json
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.services.test_accounts import PASSWORD, app, client, olive  # noqa: F401  (fixtures)
from tests.store.conftest import admin, vigil  # noqa: F401  (shared fixtures)
from tests.store.test_postgres import pg_url  # noqa: F401  (fixture)
from vigil.store.schema import AuditEntry


def test_fifty_parallel_logins_give_no_server_error_and_a_gapless_chain(vigil, app, olive, admin):  # noqa: F811
    from typer.testing import CliRunner

    from vigil.cli import app as cli

    def attempt(i: int) -> int:
        good = i % 5 != 0  # 40 right passwords for olive, 10 wrong ones for names that do not exist
        data = {"username": "olive" if good else f"nobody{i}", "password": PASSWORD if good else "wrong-pass-123"}
        c = TestClient(app, raise_server_exceptions=False)  # no lifespan: requests only
        return c.post("/api/token", data=data).status_code

    with ThreadPoolExecutor(max_workers=25) as pool:
        statuses = list(pool.map(attempt, range(50)))
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses.count(200) == 40 and statuses.count(401) == 10
    with vigil.store.session() as s:  # a fresh session, after every request has finished
        seqs = list(s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
        logins = s.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith("auth."))).all()
    assert seqs == list(range(1, len(seqs) + 1))
    assert logins.count("auth.login") == 40 and logins.count("auth.login_failed") == 10
    result = CliRunner().invoke(cli, ["audit", "verify", "--json"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["ok"] and verdict["entries"] == len(seqs) and verdict["head"] == len(seqs)


def test_parallel_refusals_of_a_locked_account_are_all_audited(vigil, app, olive):  # noqa: F811
    """A refusal's transaction writes nothing but its audit entry: the sequence must be
    reserved before the last entry is read, or two refusals take the same number."""
    vigil.settings.login_audit_per_address_per_minute = 100  # each refusal one by one, no flood summary
    for _ in range(vigil.settings.login_max_failures):
        TestClient(app).post("/api/token", data={"username": "olive", "password": "wrong-pass-123"})

    def attempt(_):
        r = TestClient(app, raise_server_exceptions=False).post(
            "/api/token", data={"username": "olive", "password": PASSWORD})
        return r.status_code, r.text

    with ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(pool.map(attempt, range(40)))
    assert all(code == 401 and "too many failed logins" in detail for code, detail in answers), answers
    with vigil.store.session() as s:
        seqs = list(s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
        refused = s.scalars(select(AuditEntry).where(AuditEntry.action == "auth.login_refused")).all()
    assert seqs == list(range(1, len(seqs) + 1)) and len(refused) == 40


def test_audit_entries_as_the_first_write_of_parallel_transactions(vigil, admin):  # noqa: F811
    def record(i):
        with vigil.store.session() as s:
            vigil.audit.record(s, admin, "test.parallel", "thing", i, {"n": i})

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(record, range(64)))
    with vigil.store.session() as s:
        assert vigil.audit.verify(s)["ok"]
        assert len(s.scalars(select(AuditEntry).where(AuditEntry.action == "test.parallel")).all()) == 64


def test_the_head_file_is_written_safely_by_many_threads(vigil):  # noqa: F811
    audit = vigil.audit
    start = (audit.read_head() or {"seq": 0})["seq"]
    errors = []

    def write(seq):
        try:
            audit.write_head(seq, f"{seq:064x}")
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=write, args=(start + n,)) for n in reversed(range(1, 201))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    head = audit.read_head()
    assert head["seq"] == start + 200 and head["hash"] == f"{start + 200:064x}"  # never moved backwards
    assert not list(audit.head_path.parent.glob("*.tmp"))
    audit.write_head(start + 5, "0" * 64)
    assert audit.read_head()["seq"] == start + 200


def _write_heads(key: bytes, path: str, first: int, count: int) -> None:
    from pathlib import Path

    from vigil.governance.audit import AuditKey, AuditLog

    log = AuditLog(AuditKey(key), Path(path))
    for seq in range(first, first + count):
        log.write_head(seq, f"{seq:064x}")


def test_the_head_file_is_written_safely_by_several_processes(vigil):  # noqa: F811
    audit = vigil.audit
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_write_heads, args=(audit.key.key, str(audit.head_path), 1000 + i, 60))
             for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    head = audit.read_head()
    assert head["seq"] == 1061 and audit.key.sign(f"head:1061:{head['hash']}") == head["mac"]
    assert not list(audit.head_path.parent.glob("*.tmp"))


def test_parallel_logins_on_postgresql(home, pg_url):
    """The same on PostgreSQL (advisory lock), where the server is configured."""
    from vigil.config import Settings
    from vigil.server import create_app
    from vigil.services import forget_contexts
    from vigil.services.accounts import add_user

    forget_contexts()
    try:
        server = create_app(Settings(home=home, database_url=pg_url), retention_every=None)
        vigil = server.state.vigil
        add_user(vigil, vigil.cli_actor(), "olive", "operator", password=PASSWORD)

        def attempt(i: int) -> int:
            data = {"username": "olive", "password": PASSWORD if i % 4 else "wrong-pass-123"}
            return TestClient(server, raise_server_exceptions=False).post("/api/token", data=data).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(attempt, range(24)))
        assert not [s for s in statuses if s >= 500], statuses
        with vigil.store.session() as s:
            verdict = vigil.audit.verify(s)
            seqs = list(s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
        assert verdict["ok"] and seqs == list(range(1, len(seqs) + 1))
    finally:
        forget_contexts()
