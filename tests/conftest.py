"""Shared fixtures. Every test gets its own VIGIL_HOME so runs never share state;
converted models are cached once per session in a shared models folder."""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("VIGIL_REQUIRE_SERVICES") == "1"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def need_service(available: bool, reason: str) -> None:
    """Skip with a reason on a user's machine; fail in CI where the service must exist."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing (VIGIL_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True, scope="session")
def quick_password_hashing():
    """argon2id at one pass over 8 MiB instead of the production 3 passes over 64 MiB: the suite
    creates and logs in hundreds of accounts. Same algorithm, same code path; each hash carries
    its parameters. tests/governance/test_users.py holds the production setting to its cost,
    and commands run as subprocesses use it unchanged."""
    from argon2 import PasswordHasher

    from vigil.governance import users

    quick = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    saved = users._hasher, users._DUMMY_HASH
    users._hasher, users._DUMMY_HASH = quick, quick.hash("a dummy password of the test run")
    yield
    users._hasher, users._DUMMY_HASH = saved


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


def _clean_env(monkeypatch, h: Path) -> None:
    monkeypatch.setenv("VIGIL_HOME", str(h))
    monkeypatch.setenv("VIGIL_CONFIG", str(h / "vigil.toml"))
    for key in list(os.environ):
        if key.startswith("VIGIL_") and key not in ("VIGIL_HOME", "VIGIL_CONFIG", "VIGIL_TEST_POSTGRES_URL",
                                                   "VIGIL_REQUIRE_SERVICES"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def initialised_template(tmp_path_factory, model_cache) -> Path:
    """One data directory initialised once per test session (keys, migrated database, first
    admin for the OS account); each test's ``home`` is a copy of it, which saves the
    migrations, key generation and password hashing every test would otherwise repeat."""
    from vigil.config import Settings
    from vigil.services import forget_contexts, get_vigil

    h = tmp_path_factory.mktemp("template") / "vigil-home"
    h.mkdir()
    forget_contexts()
    get_vigil(Settings(home=h))
    forget_contexts()
    return h


@pytest.fixture()
def home(tmp_path, monkeypatch, model_cache, initialised_template) -> Path:
    """A private, already initialised data directory (a copy of the session's template)."""
    h = tmp_path / "vigil-home"
    shutil.copytree(initialised_template, h, ignore=shutil.ignore_patterns("models"))
    (h / "models").symlink_to(model_cache, target_is_directory=True)
    _clean_env(monkeypatch, h)
    return h


@pytest.fixture()
def fresh_home(tmp_path, monkeypatch, model_cache) -> Path:
    """An empty data directory, for tests of what the first command on a new machine does."""
    h = tmp_path / "fresh-home"
    h.mkdir()
    (h / "models").symlink_to(model_cache, target_is_directory=True)
    _clean_env(monkeypatch, h)
    return h


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, model_cache, worker_id) -> dict:
    """One traced ``vigil demo`` for the whole test run, whichever worker asks first
    (tests/demo_run.py): the others wait for it and read its result."""
    from tests.demo_run import shared_traced_demo

    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    run = shared_traced_demo(shared / "demo-run", model_cache)
    assert run["returncode"] == 0, run["stderr"]
    return run


@pytest.fixture()
def settings(home):
    from vigil.config import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory, model_cache):
    from vigil.config import Settings

    h = tmp_path_factory.mktemp("session-home")
    (h / "models").symlink_to(model_cache, target_is_directory=True)
    return Settings(home=h)


@pytest.fixture(scope="session")
def engine(session_settings):
    from vigil.engine.face_engine import FaceEngine

    return FaceEngine.from_settings(session_settings, "sface")


def demo_bytes(name: str) -> bytes:
    return (resources.files("vigil") / "demo_data" / name).read_bytes()


def demo_path(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    if not target.exists():
        target.write_bytes(demo_bytes(name))
    return target


@pytest.fixture()
def demo_images(tmp_path) -> Path:
    folder = tmp_path / "demo-images"
    folder.mkdir()
    src = resources.files("vigil") / "demo_data"
    for item in src.iterdir():
        if item.name.endswith(".jpg"):
            shutil.copyfile(str(item), folder / item.name)
    return folder
