"""Migration 0002 (login sessions; API tokens remember their session) goes up, down and up
again on SQLite and on PostgreSQL (in a database of its own), and matches the ORM."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import need_service
from vigil.store.db import alembic_config, normalise_url

PG_URL = os.environ.get("VIGIL_TEST_POSTGRES_URL")


def _migrate(engine, target: str, down: bool = False) -> None:
    from alembic import command

    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)


def _check_round_trip(engine) -> None:
    from vigil.store.schema import ApiToken, LoginSession

    _migrate(engine, "0002")
    found = inspect(engine)
    assert {c["name"] for c in found.get_columns("sessions")} == set(LoginSession.__table__.columns.keys())
    assert "session_id" in {c["name"] for c in found.get_columns("api_tokens")}
    assert set(ApiToken.__table__.columns.keys()) <= {c["name"] for c in found.get_columns("api_tokens")}
    assert any(fk["referred_table"] == "sessions" for fk in found.get_foreign_keys("api_tokens"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (username, display_name, role, disabled, created_at, created_by) "
                          "VALUES ('u', 'u', 'admin', false, CURRENT_TIMESTAMP, 't')"))
        conn.execute(text("INSERT INTO sessions (id, user_id, created_at, client) "
                          "SELECT 'sid1', id, CURRENT_TIMESTAMP, '' FROM users"))
        conn.execute(text("INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at, session_id) "
                          "SELECT id, 't', 'h', 'p', CURRENT_TIMESTAMP, 'sid1' FROM users"))
    _migrate(engine, "0001", down=True)
    found = inspect(engine)
    assert "sessions" not in found.get_table_names()
    assert "session_id" not in {c["name"] for c in found.get_columns("api_tokens")}
    _migrate(engine, "0002")
    assert "sessions" in inspect(engine).get_table_names()


def test_migration_0002_round_trip_on_sqlite(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        _check_round_trip(engine)
    finally:
        engine.dispose()


def test_migration_0002_round_trip_on_postgresql():
    reachable = False
    if PG_URL:
        try:
            probe = create_engine(normalise_url(PG_URL))
            with probe.connect() as conn:
                conn.execute(text("SELECT 1"))
            reachable = True
        except Exception:  # noqa: BLE001 - reported by need_service
            reachable = False
    need_service(reachable, "PostgreSQL not configured or not reachable (set VIGIL_TEST_POSTGRES_URL)")
    name = "vigil_mig_" + secrets.token_hex(4)
    server = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(normalise_url(PG_URL).rsplit("/", 1)[0] + f"/{name}")
    try:
        _check_round_trip(engine)
    finally:
        engine.dispose()
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
        server.dispose()
