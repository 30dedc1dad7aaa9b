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


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture()
def home(tmp_path, monkeypatch, model_cache) -> Path:
    h = tmp_path / "vigil-home"
    h.mkdir()
    (h / "models").symlink_to(model_cache, target_is_directory=True)
    monkeypatch.setenv("VIGIL_HOME", str(h))
    monkeypatch.setenv("VIGIL_CONFIG", str(h / "vigil.toml"))
    for key in list(os.environ):
        if key.startswith("VIGIL_") and key not in ("VIGIL_HOME", "VIGIL_CONFIG", "VIGIL_TEST_POSTGRES_URL",
                                                   "VIGIL_REQUIRE_SERVICES"):
            monkeypatch.delenv(key)
    return h


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
