"""The deployment lifecycle as a state machine: failed starts erase their snapshot at once, a
dead runner is found by its heartbeat and can be stopped from the CLI or the API, sources are
checked at creation, refusals name the real reason, and plans can be cancelled."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.live.conftest import video, watchlist  # noqa: F401 (fixtures)
from tests.live.test_deployments import make
from tests.services.live_helpers import api_client, audit_entries, cli, deployment_row
from tests.store.conftest import admin, vigil  # noqa: F401 (fixtures)
from vigil.errors import ConflictError, PermissionDenied, VigilError
from vigil.governance.permissions import Actor
from vigil.services.deployments import (
    FINAL, STATES, TRANSITIONS, authorise_deployment, cancel_deployment, list_deployments,
)
from vigil.services.live_runs import DeploymentRunner, RunOptions, end_deployment, start_deployment, stop_deployment
from vigil.store.schema import Deployment
from vigil.timeutil import utcnow


def started(vigil, admin, video, **kw) -> int:
    dep = make(vigil, admin, video, **kw)
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    return dep["id"]


def test_the_transition_table_is_the_lifecycle():
    assert {a for a, _ in TRANSITIONS} | set(TRANSITIONS.values()) <= set(STATES)
    assert not [k for k in TRANSITIONS if k[0] in FINAL], "final states have no way out"
    assert TRANSITIONS[("authorised", "start")] == "running"
    assert {TRANSITIONS[("running", a)] for a in ("end", "fail")} == {"ended", "failed"}
    assert ("running", "cancel") not in TRANSITIONS and ("draft", "start") not in TRANSITIONS


def test_create_checks_each_camera_source(vigil, admin, watchlist, video, tmp_path):  # noqa: F811
    with pytest.raises(VigilError, match="no such file or folder"):
        make(vigil, admin, video, sources=[{"camera": "north", "source": str(tmp_path / "missing.mp4")}])
    with vigil.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Deployment)) == 0  # nothing half-made
    dep = make(vigil, admin, video, sources=[{"camera": "north", "source": str(video)},
                                             {"camera": "gate", "source": "rtsp://10.0.0.7/stream1"}])
    checks = {c["camera"]: c for c in dep["source_checks"]}
    assert checks["north"]["checked"] is True
    assert checks["gate"]["checked"] is False and "without connecting" in checks["gate"]["why"]


def test_watch_with_a_missing_source_is_refused_clearly_and_leaves_nothing_running(vigil, admin, watchlist, home):  # noqa: F811
    out = cli(home, "watch", "--watchlist", "wanted", "--camera", "/nonexistent.mp4", "--json")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "/nonexistent.mp4: no such file or folder" in out.stderr + out.stdout
    with vigil.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Deployment).where(Deployment.status == "running")) == 0


def test_a_run_whose_camera_file_is_gone_fails_and_erases_its_snapshot(vigil, admin, watchlist, video, home):  # noqa: F811
    dep = make(vigil, admin, video)
    authorise_deployment(vigil, admin, dep["id"])
    video.unlink()  # the file existed when the deployment was planned; it is gone when it runs
    out = cli(home, "deployment", "run", str(dep["id"]), "--fast", "--json")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "video file not found" in out.stderr
    row = deployment_row(vigil, dep["id"])
    assert row["status"] == "failed" and row["snapshots"] == 1
    assert row["snapshot_entries"] == 0 and row["snapshots_deleted"]  # the biometric copies went at once
    failed = audit_entries(vigil, "deployment.failed", dep["id"])
    assert len(failed) == 1 and "video file not found" in failed[0]["cause"]


def test_starting_an_ended_deployment_is_refused_with_the_real_reason(vigil, admin, watchlist, video):  # noqa: F811
    dep_id = started(vigil, admin, video)
    end_deployment(vigil, admin, dep_id, {"frames": 0})
    with pytest.raises(ConflictError, match="it has ended"):
        start_deployment(vigil, admin, dep_id)
    refusals = audit_entries(vigil, "deployment.refused", dep_id)
    assert [r["why"] for r in refusals] == ["it has ended"]


def _kill_heartbeat(vigil, dep_id):
    """What a runner whose process died leaves behind: a heartbeat that stopped minutes ago."""
    with vigil.store.session() as s:
        s.get(Deployment, dep_id).heartbeat_at = utcnow() - timedelta(minutes=10)


def test_a_dead_runner_is_detected_and_stopped_from_the_cli(vigil, admin, watchlist, video, home):  # noqa: F811
    dep_id = started(vigil, admin, video)
    _kill_heartbeat(vigil, dep_id)
    listed = {d["id"]: d for d in list_deployments(vigil, admin).items}
    assert listed[dep_id]["status"] == "running" and listed[dep_id]["runner_stale"] is True
    with pytest.raises(ConflictError, match="no heartbeat since"):  # a restart says what is wrong
        start_deployment(vigil, admin, dep_id)
    out = cli(home, "deployment", "stop", str(dep_id), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "failed"
    row = deployment_row(vigil, dep_id)
    assert row["status"] == "failed" and row["snapshot_entries"] == 0
    assert "no heartbeat" in row["record"]["ended_because"]
    assert "its process died" in audit_entries(vigil, "deployment.failed", dep_id)[0]["cause"]


def test_the_api_stops_a_deployment_that_does_not_run_in_this_server(vigil, admin, watchlist, video, settings):  # noqa: F811
    dep_id = started(vigil, admin, video)
    _kill_heartbeat(vigil, dep_id)
    client, headers = api_client(vigil, settings, admin, roles=("auditor",))
    with client:
        assert client.post(f"/api/deployments/{dep_id}/stop", headers=headers["auditor"]).status_code == 403
        r = client.post(f"/api/deployments/{dep_id}/stop", headers=headers["admin"])
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "failed"
    row = deployment_row(vigil, dep_id)
    assert row["status"] == "failed" and row["snapshot_entries"] == 0


def test_a_runner_elsewhere_stops_at_its_next_heartbeat(vigil, admin, watchlist, video):  # noqa: F811
    dep_id = started(vigil, admin, video)
    runner = DeploymentRunner(vigil, admin, dep_id, [], RunOptions(fast=False, heartbeat_every=0.2, max_seconds=60))
    result = {}
    thread = threading.Thread(target=lambda: result.update(r=runner.run()), daemon=True)
    thread.start()
    supervisor = Actor("sam", "supervisor")
    shown = stop_deployment(vigil, supervisor, dep_id, wait_seconds=30)  # no in-process handle: as from elsewhere
    thread.join(timeout=30)
    assert shown["status"] == "ended" and shown["stop"] == "stopped"
    row = deployment_row(vigil, dep_id)
    assert row["status"] == "ended" and row["record"]["ended_because"] == "stop requested by sam"
    assert row["snapshot_entries"] == 0 and row["heartbeat_at"] is None
    assert result["r"].summary["stopped_because"] == "a stop was requested"
    assert audit_entries(vigil, "deployment.stop_requested", dep_id)[0]["actor"] == "sam"


def test_plans_can_be_cancelled_by_a_supervisor_or_their_creator(vigil, admin, watchlist, video):  # noqa: F811
    operator, other = Actor("olive", "operator"), Actor("oscar", "operator")
    mine = make(vigil, operator, video)
    with pytest.raises(PermissionDenied, match="only deployments they created"):
        cancel_deployment(vigil, other, mine["id"])
    assert cancel_deployment(vigil, operator, mine["id"], "plan withdrawn")["status"] == "cancelled"
    with pytest.raises(ConflictError, match="it was cancelled"):
        authorise_deployment(vigil, admin, mine["id"])
    theirs = make(vigil, admin, video)
    authorise_deployment(vigil, admin, theirs["id"])
    assert cancel_deployment(vigil, Actor("sam", "supervisor"), theirs["id"])["status"] == "cancelled"
    with pytest.raises(ConflictError, match="it was cancelled"):
        start_deployment(vigil, admin, theirs["id"])
    running = started(vigil, admin, video)
    with pytest.raises(ConflictError, match="running"):
        cancel_deployment(vigil, admin, running)
    with pytest.raises(PermissionDenied):
        cancel_deployment(vigil, Actor("ann", "auditor"), running)
    assert [e["previous_status"] for e in audit_entries(vigil, "deployment.cancelled")] == ["draft", "authorised"]


class _Collect:
    def __init__(self):
        self.payloads = []

    def send(self, payload):
        self.payloads.append(payload)

    def close(self):
        pass


def test_a_live_run_that_falls_behind_says_so_while_it_runs_and_in_its_summary(vigil, admin, watchlist,  # noqa: F811
                                                                               tmp_path):
    """Issue #15: a real-time `vigil watch` on a file dropped 98 of 105 frames with no warning."""
    from tests.live.conftest import two_people_video

    # 1080p at 300 frames a second: more than any machine looks at in real time (decoding alone)
    video = two_people_video(tmp_path / "fast.mp4", seconds=0.8, fps=300, size=(1920, 1080))
    dep_id = started(vigil, admin, video)
    sink = _Collect()
    summary = DeploymentRunner(vigil, admin, dep_id, [sink], RunOptions(fast=False, health_every=0.3)).run().summary
    behind = [p for p in sink.payloads if p.get("type") == "notice" and p.get("behind")]
    assert behind and "falling behind real time" in behind[0]["message"] and "--fast" in behind[0]["message"], summary
    assert summary["fell_behind"] == [behind[0]["camera"]] and summary["frames_dropped"] > 0
    # such a file with --fast looks at every frame and never says it fell behind
    two_people_video(video, seconds=0.1, fps=300, size=(1920, 1080))  # the camera's file, shorter (a camera keeps its source)
    dep_id = started(vigil, admin, video, name="again")
    sink = _Collect()
    summary = DeploymentRunner(vigil, admin, dep_id, [sink], RunOptions(fast=True, health_every=0.3)).run().summary
    assert summary["fell_behind"] == [] and summary["frames_dropped"] == 0
    assert not [p for p in sink.payloads if p.get("type") == "health"
                and any(c["status"] == "stalled" for c in p["cameras"])]  # waiting for the loop is not a stall


def test_the_supervisor_sees_what_they_authorise_and_can_reject_with_a_reason(vigil, admin, watchlist, video,  # noqa: F811
                                                                             settings):
    """Issue #15: a draft deployment showed watchlist size 0 and no threshold or expected miss
    rate; the authoriser must see what they authorise, approve or reject with a reason, and
    find the plans waiting for them."""
    from vigil.services.authorisation_view import authorisation_view
    from vigil.services.deployments import reject_deployment

    dep = make(vigil, Actor("olive", "operator"), video)
    view = authorisation_view(vigil, admin, dep["id"])
    assert view["watchlists_detail"][0]["subjects"] == 1 and view["watchlist_entries"] == 1
    assert view["watchlists_detail"][0]["authorised"] is True and view["problems"] == []
    default = view["thresholds"]["default"]
    assert default["accepted_false_alerts_per_10000_faces"] == 1.0 and 0 < default["threshold"] < 1
    assert default["expected_miss_rate"] is not None and [c["camera"] for c in view["cameras"]] == ["north"]
    assert [d["id"] for d in list_deployments(vigil, admin, "draft").items] == [dep["id"]]  # waiting for authorisation
    with pytest.raises(VigilError, match="needs a reason"):
        reject_deployment(vigil, admin, dep["id"], " ")
    with pytest.raises(PermissionDenied):
        reject_deployment(vigil, Actor("olive", "operator"), dep["id"], "mine")
    done = reject_deployment(vigil, Actor("sam", "supervisor"), dep["id"], "no intelligence case for this site")
    assert done["status"] == "cancelled" and "rejected by sam: no intelligence case" in done["ended_because"]
    assert audit_entries(vigil, "deployment.rejected", dep["id"])[0]["reason"] == "no intelligence case for this site"
    assert list_deployments(vigil, admin, "draft").items == []
    client, headers = api_client(vigil, settings, admin, roles=("supervisor",))
    other = make(vigil, admin, video, name="second plan")
    r = client.get(f"/api/deployments/{other['id']}/authorisation", headers=headers["supervisor"])
    assert r.status_code == 200 and r.json()["watchlist_entries"] == 1
    assert [d["id"] for d in client.get("/api/deployments", params={"status": "draft"},
                                        headers=headers["supervisor"]).json()["items"]] == [other["id"]]
    out = cli(settings.home, "deployment", "review", str(other["id"]))
    assert out.returncode == 0 and "1 person (1 from 1 photo)," in out.stdout
    assert "false alert(s) per 10,000 faces" in out.stdout


def test_the_supervisor_sees_how_many_photos_each_entry_averages_and_what_that_costs(vigil, admin, watchlist,  # noqa: F811
                                                                                     video, settings):
    """Issue #13: a subject enrolled from several photos is one entry averaging them, with its
    own threshold and expected misses; the plan says so before anyone authorises it."""
    from tests.conftest import demo_bytes
    from vigil.retro.manifests import EnrolItem
    from vigil.services.authorisation_view import authorisation_view
    from vigil.services.collections import authorise_watchlist
    from vigil.services.enrolment import enrol_image

    for photo in ("obama_standing.jpg", "obama_speech.jpg"):
        enrol_image(vigil, admin, "watchlist", "wanted", demo_bytes(photo),
                    EnrolItem(photo, "Barack Obama", subject_id=watchlist["obama"]), quality_gate=False)
    enrol_image(vigil, admin, "watchlist", "wanted", demo_bytes("biden.jpg"), EnrolItem("b", "Joe Biden"))
    authorise_watchlist(vigil, admin, "wanted")  # the edits withdrew its authorisation
    dep = make(vigil, admin, video)
    view = authorisation_view(vigil, admin, dep["id"])
    assert view["photos_averaged_at_most"] == 3 and view["watchlist_entries"] == 2
    assert view["watchlists_detail"][0]["subjects_by_photos"] == {"1": 1, "3": 1}
    default = view["thresholds"]["default"]
    three = default["by_photos"]["3"]
    assert three["threshold"] >= default["threshold"]  # never below the single-photo threshold
    assert three["expected_miss_rate"] < default["expected_miss_rate"]  # averaging photos misses less
    out = cli(settings.home, "deployment", "review", str(dep["id"]))
    assert out.returncode == 0 and "2 people (1 from 1 photo, 1 from 3 photos)" in out.stdout
    assert "entries averaging 3 photos: threshold" in out.stdout
