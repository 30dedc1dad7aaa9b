"""The sharded gallery turned on by configuration (issue #14): settings name the NATS servers
and the sharded galleries; ``vigil search``, ``vigil subject delete``, ``POST /api/search``
and ``DELETE /api/subjects/{id}`` then use the shards (``vigil shard`` processes, database
backed) through the service layer's seams, and say clearly when they cannot.

Status of a search or an erasure the shards cannot complete: 409 (a ConflictError, exit code
5), the answer Vigil gives for a state that forbids the action. The request is valid, so not
400 or 422 (which tell the caller to change it), and the same request succeeds once a replica
of every shard serves again; 503 would say that too, but Vigil declares no 5xx besides the
unexpected 500 and its OpenAPI document already declares 409 for both operations."""

from __future__ import annotations

import json
import signal

import pytest

from tests.cli_run import run_cli
from tests.cluster.conftest import free_port
from tests.cluster.test_gallery_shards import (
    ShardProcess,
    _add_synthetic_subjects,
    new_gallery,
    unit_vectors,
    wait_for,
)
from tests.cluster.test_gallery_shards import shard_processes  # noqa: F401 (a fixture)
from tests.conftest import demo_bytes, demo_path
from vigil.errors import VigilError

# -- the settings -------------------------------------------------------------------------------

def test_cluster_settings_read_every_form_and_refuse_nonsense_in_one_line(home, monkeypatch):
    from vigil.config import Settings

    toml = home / "vigil.toml"
    toml.write_text('[cluster]\nnats = ["nats://10.0.0.5:4222", "nats://user:secret@10.0.0.6:4222"]\n'
                    'sharded_galleries = { custody = 4, "old files" = 2 }\ntimeout_seconds = 2.5\n')
    cluster = Settings().cluster
    assert cluster.servers() == ["nats://10.0.0.5:4222", "nats://user:secret@10.0.0.6:4222"]
    assert cluster.shard_counts() == {"custody": 4, "old files": 2}
    assert cluster.timeout_seconds == 2.5
    assert Settings().public_dict()["cluster"]["nats"][1] == "nats://***@10.0.0.6:4222"  # no password printed
    monkeypatch.setenv("VIGIL_CLUSTER__NATS", "nats://a:4222, nats://b:4222")
    monkeypatch.setenv("VIGIL_CLUSTER__SHARDED_GALLERIES", "custody:4,other:1")
    cluster = Settings().cluster  # the environment wins over the file
    assert cluster.servers() == ["nats://a:4222", "nats://b:4222"]
    assert cluster.shard_counts() == {"custody": 4, "other": 1}
    assert Settings(cluster={"sharded_galleries": ["a:b:3"]}).cluster.shard_counts() == {"a:b": 3}
    for bad, said in (("custody", "write GALLERY:N, for example custody:4"),
                      ("custody:0", "a whole number from 1 to 4096, not '0'"),
                      ("custody:four", "not 'four'"), ("a:2,a:3", "is given 2 and 3 shards")):
        monkeypatch.setenv("VIGIL_CLUSTER__SHARDED_GALLERIES", bad)
        with pytest.raises(VigilError, match=said):
            Settings().cluster.shard_counts()
    monkeypatch.delenv("VIGIL_CLUSTER__NATS")
    monkeypatch.delenv("VIGIL_CLUSTER__SHARDED_GALLERIES")
    probe = demo_path("obama.jpg", home.parent)
    args = ("search", str(probe), "--gallery", "custody", "--case", "C-1", "--reason", "test")
    # through the CLI: one line naming the setting, no traceback (every command reads it)
    bad = run_cli(home, *args, env={"VIGIL_CLUSTER__SHARDED_GALLERIES": "custody:many"})
    assert bad.returncode == 1 and "cluster.sharded_galleries: gallery 'custody'" in bad.stderr
    assert "Traceback" not in bad.stderr
    toml.write_text('[cluster]\nsharded_galleries = { custody = 4 }\n')
    bad = run_cli(home, *args)
    assert bad.returncode == 1 and "cluster.nats names no NATS server" in bad.stderr
    bad = run_cli(home, *args, env={"VIGIL_CLUSTER__NATS": "10.0.0.5:4222"})
    assert bad.returncode == 1 and "'10.0.0.5:4222' is not a URL; write nats://HOST:PORT" in bad.stderr


# -- NATS unreachable ------------------------------------------------------------------------------

def _gallery_with_obama(name: str) -> dict:
    from vigil.config import get_settings
    from vigil.retro.manifests import EnrolItem
    from vigil.services import forget_contexts, get_vigil
    from vigil.services.collections import create_collection
    from vigil.services.enrolment import enrol_image

    forget_contexts()
    vigil = get_vigil(get_settings())
    admin = vigil.cli_actor()
    create_collection(vigil, admin, "gallery", name)
    out = {"obama": enrol_image(vigil, admin, "gallery", name, demo_bytes("obama.jpg"),
                                EnrolItem("o", "Barack Obama"))["subject_id"],
           "biden": enrol_image(vigil, admin, "gallery", name, demo_bytes("biden.jpg"),
                                EnrolItem("b", "Joe Biden"))["subject_id"]}
    forget_contexts()
    return out


def _audit(home) -> list[tuple[str, str, dict]]:
    from sqlalchemy import select

    from vigil.config import Settings
    from vigil.services import forget_contexts, get_vigil
    from vigil.store.schema import AuditEntry

    vigil = get_vigil(Settings(home=home))
    try:
        with vigil.store.session() as s:
            return [(e.action, e.object_id, json.loads(e.details) if isinstance(e.details, str) else e.details)
                    for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
    finally:
        forget_contexts()


def _token(settings) -> str:
    from vigil.governance.users import create_token, get_user, os_username
    from vigil.services import get_vigil

    with get_vigil(settings).store.session() as s:
        return create_token(s, get_user(s, os_username()), "test")[1]


def _api_search(client, token: str, gallery: str, probe_name: str = "obama_speech.jpg"):
    return client.post("/api/search", headers={"Authorization": f"Bearer {token}"},
                       files={"probe": (probe_name, demo_bytes(probe_name), "image/jpeg")},
                       data={"gallery": gallery, "case_ref": "C-1", "reason": "test", "top": "5"})


def test_unreachable_nats_is_said_at_startup_and_sharded_searches_and_erasures_fail_loudly(home, tmp_path,
                                                                                          monkeypatch):
    from fastapi.testclient import TestClient

    from vigil.config import Settings
    from vigil.server import create_app

    sharded, local = new_gallery(), new_gallery()
    people = _gallery_with_obama(sharded)
    _gallery_with_obama(local)
    dead = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"VIGIL_CLUSTER__NATS": dead, "VIGIL_CLUSTER__SHARDED_GALLERIES": f"{sharded}:2"}
    probe = demo_path("obama_speech.jpg", tmp_path)
    search = ("search", str(probe), "--case", "C-1", "--reason", "test", "--top", "5")

    # vigil search: the sharded gallery fails loudly, never searched locally instead
    failed = run_cli(home, *search, "--gallery", sharded, "--json", env=env)
    assert failed.returncode == 5, failed.stderr
    problem = json.loads(failed.stdout)
    assert problem["status"] == 409 and problem["error"] == "GalleryIncomplete"
    assert problem["detail"].startswith(f"gallery incomplete: all 2 shard(s) of gallery {sharded!r} unavailable "
                                        f"(NATS at {dead} is unreachable after 1 attempt(s)")
    assert "not searched locally" in problem["detail"] and "faces" not in problem
    assert "Traceback" not in failed.stderr and "gallery incomplete" in failed.stderr
    # a gallery the settings do not name is searched locally as before
    plain = run_cli(home, *search, "--gallery", local, "--json", env=env)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["faces"][0]["candidates"][0]["name"] == "Barack Obama"

    # vigil serve says so at startup and serves anyway (uvicorn itself not started here)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: None)
    served = run_cli(home, "serve", "--port", str(free_port()), "--retention-every", "0", env=env)
    assert served.returncode == 0, served.stderr
    assert f"warning: sharded galleries {sharded!r} (2 shards): NATS at {dead} is unreachable" in served.stderr
    assert "their searches and erasures fail until it is reachable" in served.stderr
    assert "Vigil console: http://127.0.0.1" in served.stdout

    # the API: the same 409 problem for the sharded gallery, answers for the other
    settings = Settings(cluster={"nats": [dead], "sharded_galleries": {sharded: 2}})
    app = create_app(settings, retention_every=None)
    assert not app.state.sharded_galleries.connected
    token = _token(settings)
    with TestClient(app) as client:
        r = _api_search(client, token, sharded)
        assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"].startswith("gallery incomplete: all 2 shard(s)") and "faces" not in r.json()
        assert _api_search(client, token, local).status_code == 200

    # vigil subject delete: erased in the database (not undone), the shards' confirmation missing is
    # an error that says both, and is audited
    erased = run_cli(home, "subject", "delete", people["biden"], "--reason", "erasure request", env=env)
    assert erased.returncode == 5 and "Traceback" not in erased.stderr
    assert f"subject {people['biden']} is erased from the database (audited; that is not undone)" in erased.stderr
    assert f"not confirmed: NATS at {dead} is unreachable" in erased.stderr
    actions = {(a, o) for a, o, _ in _audit(home)}
    assert ("subject.erased", people["biden"]) in actions
    assert ("subject.shard_erasure_unconfirmed", people["biden"]) in actions
    assert ("subject.erased_from_shards", people["biden"]) not in actions
    assert run_cli(home, "subject", "show", people["biden"]).returncode == 4  # gone from the database


# -- real shards -----------------------------------------------------------------------------------

def _candidates(result: dict) -> list[tuple[str, float]]:
    return [(c["subject_id"], c["score"]) for c in result["faces"][0]["candidates"]]


def _served(handle, gallery: str) -> int:
    return sum(r.get("served", 0) for r in handle.replicas(gallery))


def test_configured_shards_serve_cli_and_api_searches_and_confirm_erasures(home, nats_url, tmp_path,
                                                                           shard_processes):
    from fastapi.testclient import TestClient

    from vigil.cluster.gallery import ShardedGallery
    from vigil.config import Settings, get_settings
    from vigil.server import create_app
    from vigil.services import forget_contexts, get_vigil

    gallery = new_gallery()
    people = _gallery_with_obama(gallery)
    vigil = get_vigil(get_settings())
    _add_synthetic_subjects(vigil, gallery, unit_vectors(120, 30))
    keyring = vigil.store.keyring
    forget_contexts()
    probe = demo_path("obama_speech.jpg", tmp_path)
    search = ("search", str(probe), "--gallery", gallery, "--case", "C-1", "--reason", "test", "--top", "5",
              "--json")
    local = run_cli(home, *search)  # no cluster settings: the local index
    assert local.returncode == 0, local.stderr
    local = json.loads(local.stdout)
    assert local["gallery_templates"] == 122 and local["faces"][0]["candidates"][0]["subject_id"] == people["obama"]

    for which in ("1/2", "1/2", "2/2", "2/2"):
        shard_processes.append(ShardProcess(nats_url, gallery, which, tmp_path / f"shard-{len(shard_processes)}.log"))
    infos = [p.ready() for p in shard_processes]
    assert sum(i["templates"] for i in infos) == 2 * 122
    env = {"VIGIL_CLUSTER__NATS": nats_url, "VIGIL_CLUSTER__SHARDED_GALLERIES": f"{gallery}:2",
           "VIGIL_CLUSTER__TIMEOUT_SECONDS": "1"}
    settings = Settings(cluster={"nats": [nats_url], "sharded_galleries": {gallery: 2}, "timeout_seconds": 1})
    with ShardedGallery(nats_url, keyring, {gallery: 2}) as watcher:  # reads the replicas' registry
        wait_for(lambda: len(watcher.replicas(gallery)) == 4, what="four replicas in the registry")
        before = _served(watcher, gallery)

        # vigil search: the same candidates and scores as the local index, answered by the shards
        sharded = run_cli(home, *search, env=env)
        assert sharded.returncode == 0, sharded.stderr
        sharded = json.loads(sharded.stdout)
        assert sharded["gallery_templates"] == 122
        assert _candidates(sharded) == _candidates(local)
        # a count and a search on each of the 2 shards (heartbeats carry the counters each second)
        wait_for(lambda: _served(watcher, gallery) >= before + 4, what="the shards answering the CLI's search")

        # POST /api/search: the same
        app = create_app(settings, retention_every=None)
        assert app.state.sharded_galleries.connected
        token = _token(settings)
        headers = {"Authorization": f"Bearer {token}"}
        with TestClient(app) as client:
            r = _api_search(client, token, gallery)
            assert r.status_code == 200, r.text
            assert _candidates(r.json()) == _candidates(local)

            # vigil subject delete: every replica confirms before the answer, which says so
            erased = run_cli(home, "subject", "delete", people["obama"], "--reason", "erasure request", "--json",
                             env=env)
            assert erased.returncode == 0, erased.stderr
            (report,) = json.loads(erased.stdout)["shards"]
            assert report["gallery"] == gallery
            assert sorted(report["replicas_confirmed"]) == sorted(i["replica"] for i in infos)
            assert report["replicas_per_shard"] == {"1/2": 2, "2/2": 2} and report["replicas_down"] == []
            again = json.loads(run_cli(home, *search, env=env).stdout)
            assert again["gallery_templates"] == 121
            assert people["obama"] not in [s for s, _ in _candidates(again)]
            human = run_cli(home, "subject", "delete", people["biden"], "--reason", "erasure request", env=env)
            assert human.returncode == 0, human.stderr
            assert f"Erased from the shards of gallery {gallery!r}: 4 replica(s) confirmed (shard 1/2: 2, " \
                   "shard 2/2: 2)" in human.stdout

            # DELETE /api/subjects: a replica killed just before is named as down, the others confirm
            victim = shard_processes[0]
            victim.kill()
            subject = _synthetic_subject(vigil_settings=settings)
            r = client.request("DELETE", f"/api/subjects/{subject}", headers=headers,
                               json={"reason": "erasure request"})
            assert r.status_code == 200, r.text
            (report,) = r.json()["shards"]
            assert report["replicas_down"] == [victim.info["replica"]]
            assert sorted(report["replicas_confirmed"]) == sorted(i["replica"] for i in infos[1:])
            _fits_the_document(app, "delete", "/api/subjects/{subject_id}", r)

            # every replica of shard 1 down: the CLI and the API refuse, with no partial results
            shard_processes[1].kill(signal.SIGTERM)
            failed = run_cli(home, *search, env=env)
            assert failed.returncode == 5 and "Traceback" not in failed.stderr
            problem = json.loads(failed.stdout)
            assert problem["status"] == 409 and "faces" not in problem
            assert problem["detail"].startswith(f"gallery incomplete: shard 1 of 2 unavailable (gallery {gallery!r}; "
                                                "shard 1: no replica is serving it); no partial results")
            r = _api_search(client, token, gallery)
            assert r.status_code == 409 and r.json()["detail"] == problem["detail"]

    entries = {(a, o): d for a, o, d in _audit(home)}
    for erased_id, confirmed in ((people["obama"], 4), (people["biden"], 4), (subject, 3)):
        (details,) = entries[("subject.erased_from_shards", erased_id)]["galleries"]
        assert details["gallery"] == gallery and details["replicas_confirmed"] == confirmed
        assert details["replicas_down"] == (1 if confirmed == 3 else 0)


def _synthetic_subject(vigil_settings) -> str:
    """One of the gallery's synthetic subjects (each with one template)."""
    from sqlalchemy import select

    from vigil.services import get_vigil
    from vigil.store.schema import Subject

    with get_vigil(vigil_settings).store.session() as s:
        return s.scalar(select(Subject.id).where(Subject.display_name == "synthetic 7"))


def _fits_the_document(app, method: str, path: str, r) -> None:
    """The answer validates against the OpenAPI document (its ``shards`` declared)."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="pip install -e '.[test]'")
    document = app.openapi()
    declared = document["paths"][path][method]["responses"][str(r.status_code)]["content"]["application/json"]
    validator = jsonschema_rs.validator_for({**declared["schema"], "components": document["components"]})
    assert [e.message for e in validator.iter_errors(r.json())] == []




def test_the_seam_is_the_only_way_in(home):
    """No gallery named: the composition roots install nothing and the context keeps its local
    search (the seams stay None), so a site without a cluster pays nothing for it."""
    from vigil.cli.common_ctx import ctx
    from vigil.services import forget_contexts

    vigil, _ = ctx()
    try:
        assert vigil.gallery_search is None and vigil.shard_eraser is None
    finally:
        forget_contexts()
