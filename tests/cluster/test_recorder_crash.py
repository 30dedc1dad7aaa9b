"""The recorder acknowledges an alert only after its transaction committed, and the alert's
node-given id is unique in the database (issue #14): a recorder that crashes between commit and
acknowledgement gets the alert again and records nothing twice; a node's retried publish is
stored once by the stream; an evidence clip larger than a message arrives in chunks and is
stored once, after its alert."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import func, select

from tests.cluster.node_cluster import NatsCluster, cluster_deployment, run_async, wait_until
from tests.services.live_helpers import audit_entries
from tests.store.conftest import admin, vigil  # noqa: F401  (shared fixtures)

pytestmark = pytest.mark.slow


class Crash(Exception):
    """The recorder dies here (as a kill -9 would: nothing after it runs)."""


@pytest.fixture()
def cluster(tmp_path):
    nats = NatsCluster(tmp_path / "nats", 3).start()
    yield nats
    nats.stop()


def _running_deployment(vigil, admin) -> dict:
    from vigil.services.live_runs import start_deployment

    dep = cluster_deployment(vigil, admin, {"door": 5.0})
    return start_deployment(vigil, admin, dep["id"])


def _obama(vigil) -> dict:
    from vigil.store.schema import Subject

    with vigil.store.session() as s:
        subject = s.scalars(select(Subject)).first()
        return {"subject_id": subject.id, "name": subject.display_name}


def _publish(urls, vigil, dep: dict, uid: str, *, times: int = 1, clip: bytes | None = None) -> list:
    """What a node sends for one alert (and its clip), sealed, ``times`` times (its retries)."""
    from tests.conftest import demo_bytes
    from vigil.cluster import alert_stream, leases
    from vigil.cluster.connection import connect
    from vigil.cluster.sealing import Sealer

    sealer = Sealer(vigil.store.keyring)
    who = _obama(vigil)
    header = {"alert_uid": uid, "deployment_id": dep["id"], "deployment": dep["name"], "camera": "door",
              "source_time": 1.5, "track_id": 3, "subject_id": who["subject_id"], "name": who["name"],
              "category": "wanted", "watchlist_id": None, "image_blob_id": None, "score": 0.71, "threshold": 0.6,
              "fmr": 1e-6, "redaction": {"method": "test"}, "runner_up": None, "node": "test-node",
              "raised_at": time.time(), "frame_at": time.time() - 0.2, "person_checked_late": False}
    probe = demo_bytes("obama_small.jpg")

    async def main():
        nc = await connect(urls, name="test-node", attempts=5)
        js = nc.jetstream(timeout=5)
        await leases.until_ready(lambda: alert_stream.ensure_stream(js, 3), give_up_after=30)
        body = alert_stream.seal(sealer, "alert", uid, header, [probe, probe])
        acks = [await alert_stream.publish(js, alert_stream.alert_subject(dep["id"]), body, uid,
                                           {"Vigil-Alert-Id": uid, "Vigil-Kind": "alert"}) for _ in range(times)]
        if clip is not None:
            parts = alert_stream.chunks(clip, 100_000)
            for i, part in enumerate(parts):
                part_body = alert_stream.seal(sealer, "clip", uid, {"alert_uid": uid, "part": i, "of": len(parts),
                                                                     "frames": 12, "redaction": {},
                                                                     "deployment_id": dep["id"]}, [part], part=i)
                await alert_stream.publish(js, alert_stream.clip_subject(dep["id"]), part_body, f"{uid}.clip.{i}",
                                           {"Vigil-Alert-Id": uid, "Vigil-Kind": "clip",
                                            "Vigil-Part": f"{i}/{len(parts)}"})
        await nc.close()
        return acks

    return run_async(main())


class RecorderThread:
    def __init__(self, vigil, urls, before_ack=None, ack_wait: float = 3.0):
        from vigil.cluster.recorder import Recorder, RecorderOptions

        self.events, self.error = [], None
        self.recorder = Recorder(vigil, RecorderOptions(servers=urls, ack_wait=ack_wait, control=False),
                                 say=self.events.append, before_ack=before_ack)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.recorder.run()
        except BaseException as exc:  # noqa: BLE001 - the crash under test
            self.error = exc

    def of(self, kind):
        return [e for e in self.events if e.get("type") == kind]

    def stop(self):
        self.recorder.request_stop()
        self.thread.join(20)


def _rows(vigil, uid):
    from vigil.store.schema import Alert

    with vigil.store.session() as s:
        return s.scalar(select(func.count()).select_from(Alert).where(Alert.alert_uid == uid))


def test_a_crash_between_commit_and_acknowledgement_duplicates_nothing(vigil, admin, cluster):
    dep = _running_deployment(vigil, admin)
    uid = str(uuid.uuid4())

    def crash(event):
        raise Crash("killed after the commit, before the acknowledgement")

    first = RecorderThread(vigil, cluster.urls, before_ack=crash)
    _publish(cluster.urls, vigil, dep, uid)
    first.thread.join(30)
    assert isinstance(first.error, Crash)
    assert _rows(vigil, uid) == 1  # committed before it died
    second = RecorderThread(vigil, cluster.urls)
    try:
        again = wait_until(lambda: second.of("alert_recorded"), 30, "the alert delivered again")
    finally:
        second.stop()
    assert again[0]["alert_uid"] == uid and again[0]["already_recorded"] is True
    assert again[0]["delivery"] >= 2
    assert _rows(vigil, uid) == 1
    raised = [e for e in audit_entries(vigil, "alert.raised") if e.get("alert_uid") == uid]
    assert len(raised) == 1 and raised[0]["node"] == "test-node"


def test_a_retried_publish_is_stored_once_and_a_chunked_clip_once_after_its_alert(vigil, admin, cluster):
    from vigil.store.schema import Alert

    dep = _running_deployment(vigil, admin)
    uid = str(uuid.uuid4())
    clip = bytes(range(256)) * 1200  # 307 kB: four chunks of at most 100 kB
    acks = _publish(cluster.urls, vigil, dep, uid, times=3, clip=clip)
    assert [bool(a.duplicate) for a in acks] == [False, True, True] and len({a.seq for a in acks}) == 1
    recorder = RecorderThread(vigil, cluster.urls)
    try:
        wait_until(lambda: recorder.of("clip_recorded"), 30, "the clip recorded")
        time.sleep(1.0)
    finally:
        recorder.stop()
    assert [e["alert_uid"] for e in recorder.of("alert_recorded")] == [uid]
    assert recorder.of("clip_recorded")[0]["parts"] == 4
    with vigil.store.session() as s:
        alert = s.scalar(select(Alert).where(Alert.alert_uid == uid))
        assert alert.clip_blob_id and alert.camera == "door"
    assert vigil.store.blobs.get(alert.clip_blob_id) == clip
    assert vigil.store.blobs.get(alert.probe_blob_id)[:3] == b"\xff\xd8\xff"


def test_an_alert_sealed_with_other_keys_is_left_on_the_stream_and_said(vigil, admin, cluster):
    from vigil.cluster import alert_stream
    from vigil.cluster.sealing import Sealer
    from vigil.store.crypto import Keyring

    dep = _running_deployment(vigil, admin)
    uid = str(uuid.uuid4())
    other_site = Sealer(Keyring.generate())
    body = alert_stream.seal(other_site, "alert", uid, {"alert_uid": uid}, [b"x"])

    async def send():
        from vigil.cluster.connection import connect

        nc = await connect(cluster.urls, name="other-site", attempts=5)
        js = nc.jetstream(timeout=5)
        await alert_stream.ensure_stream(js, 3)
        await alert_stream.publish(js, alert_stream.alert_subject(dep["id"]), body, uid,
                                   {"Vigil-Alert-Id": uid, "Vigil-Kind": "alert"})
        await nc.close()

    run_async(send())
    recorder = RecorderThread(vigil, cluster.urls)
    try:
        said = wait_until(lambda: [e for e in recorder.events if e.get("event") == "cannot_open"], 30, "the refusal")
    finally:
        recorder.stop()
    assert uid in said[0]["message"] and "does not hold" in said[0]["message"]
    assert _rows(vigil, uid) == 0


def test_the_api_server_is_the_recorder_with_serve_nats(vigil, admin, settings, cluster):
    """``vigil serve --nats``: the server records the cluster's alerts; its API and the console's
    live stream read them from the database as they read every alert."""
    from fastapi.testclient import TestClient

    from vigil.server import create_app
    from vigil.services.accounts import create_token

    dep = _running_deployment(vigil, admin)
    uids = [str(uuid.uuid4()), str(uuid.uuid4())]
    token = create_token(vigil, admin, name="test")["token"]
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(settings, retention_every=None, recorder_nats=cluster.urls)
    with TestClient(app) as client:
        for uid in uids:
            _publish(cluster.urls, vigil, dep, uid)

        def listed():
            items = client.get(f"/api/alerts?deployment_id={dep['id']}", headers=headers).json()["items"]
            return items if len(items) == 2 else None

        second, first = wait_until(listed, 30, "the alerts in the API")  # newest first
        streamed = client.get(f"/api/alerts/stream?once=true&after_id={first['id']}", headers=headers)
    assert first["camera"] == "door" and first["deployment_id"] == dep["id"]
    assert f"id: {second['id']}\nevent: alert" in streamed.text
    assert [_rows(vigil, uid) for uid in uids] == [1, 1]
