"""The store on a real PostgreSQL server (VIGIL_TEST_POSTGRES_URL), each run in its own schema.
Skips where no server is configured, fails instead when VIGIL_REQUIRE_SERVICES=1 (CI)."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, func, select, text

from tests.conftest import demo_bytes, demo_path, need_service
from vigil.config import Settings

PG_URL = os.environ.get("VIGIL_TEST_POSTGRES_URL")


def _reachable(url: str | None) -> bool:
    if not url:
        return False
    try:
        from vigil.store.db import normalise_url

        engine = create_engine(normalise_url(url))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture()
def pg_url():
    need_service(_reachable(PG_URL), "PostgreSQL not configured or not reachable (set VIGIL_TEST_POSTGRES_URL)")
    from vigil.store.db import normalise_url

    schema = "vigil_test_" + secrets.token_hex(4)
    admin = create_engine(normalise_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture()
def pg_vigil(home, pg_url, monkeypatch):
    from vigil.services import forget_contexts, get_vigil

    monkeypatch.setenv("VIGIL_DATABASE_URL", pg_url)
    forget_contexts()
    v = get_vigil(Settings(home=home, database_url=pg_url))
    yield v
    forget_contexts()


@pytest.mark.postgres
def test_enrol_search_erase_and_audit_on_postgres(pg_vigil, tmp_path):
    from tests.store.test_enrol_search import enrol, make_gallery, search
    from vigil.services.subjects import erase_subject
    from vigil.store.schema import FaceImage

    vigil = pg_vigil
    assert vigil.store.engine.dialect.name == "postgresql"
    admin = vigil.cli_actor()
    coll = make_gallery(vigil, admin)
    obama = enrol(vigil, admin, coll, "obama.jpg", "Barack Obama")
    enrol(vigil, admin, coll, "biden.jpg", "Joe Biden")
    result = search(vigil, admin, coll, demo_path("obama_small.jpg", tmp_path), "PG-1", "postgres test", 2)
    assert result["faces"][0]["candidates"][0]["subject_id"] == obama["subject_id"]
    erase_subject(vigil, admin, obama["subject_id"], "test erasure")
    with vigil.store.session() as s:
        assert s.scalar(select(func.count()).select_from(FaceImage)) == 1
        verdict = vigil.audit.verify(s)
        assert verdict["ok"], verdict


@pytest.mark.postgres
def test_db_copy_from_embedded_sqlite_to_postgres(home, pg_url):
    from vigil.services import forget_contexts, get_vigil
    from vigil.store.backup import copy_database
    from vigil.store.schema import AuditEntry, Subject
    from tests.store.test_enrol_search import enrol, make_gallery

    forget_contexts()
    local = get_vigil(Settings(home=home))
    admin = local.cli_actor()
    coll = make_gallery(local, admin)
    enrol(local, admin, coll, "obama.jpg", "Barack Obama")
    counts = copy_database(local.settings.db_url, pg_url)
    assert counts["subjects"] == 1 and counts["audit_log"] >= 3
    forget_contexts()
    server = get_vigil(Settings(home=home, database_url=pg_url))
    with server.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Subject)) == 1
        assert server.audit.verify(s)["ok"]
        # sequences continue after the copied ids
        server.audit.record(s, admin, "test.after_copy")
        assert s.scalar(select(func.max(AuditEntry.seq))) == counts["audit_log"] + 1
    forget_contexts()


@pytest.mark.postgres
def test_a_collection_may_name_a_fused_pair_of_any_two_models(pg_url):
    """``fusion:sface+faceplugin`` is 23 characters; PostgreSQL enforces VARCHAR lengths."""
    from vigil.store.db import make_engine, upgrade

    engine = make_engine(pg_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            length = conn.execute(text(
                "SELECT character_maximum_length FROM information_schema.columns "
                "WHERE table_name = 'collections' AND column_name = 'pack' AND table_schema = current_schema()"
            )).scalar()
        assert length >= len("fusion:sface+faceplugin")
    finally:
        engine.dispose()
