"""A small cluster end to end (issue #14): 3 NATS servers, 2 ``vigil node`` processes, one
``vigil recorder``; a deployment placed on the cluster with one synthetic camera (Obama, on
the watchlist, and Biden, who is not). One node claims the camera, its alert reaches the
database exactly once, and nothing that crossed NATS holds a face of anybody else."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.cluster.node_cluster import (
    NatsCluster, alert_rows, cluster_deployment, node_ready, start_node, start_recorder, wait_until)
from tests.conftest import demo_bytes
from tests.store.conftest import admin, vigil  # noqa: F401  (shared fixtures)

pytestmark = pytest.mark.slow

JPEG, PNG = b"\xff\xd8\xff", b"\x89PNG"


class Capture:
    """Every message on every subject (``>``) while the cluster runs, in a thread of its own."""

    def __init__(self, urls):
        import threading

        self.urls, self.messages, self.ready = urls, [], threading.Event()
        self.stop = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        assert self.ready.wait(20), "capture did not subscribe"

    async def _run(self):
        import nats

        self.stop = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        async def quiet(*_):
            pass

        nc = await nats.connect(self.urls, error_cb=quiet, disconnected_cb=quiet, closed_cb=quiet)

        async def keep(msg):
            self.messages.append((msg.subject, dict(msg.headers or {}), bytes(msg.data)))

        await nc.subscribe(">", cb=keep)
        await nc.flush()
        self.ready.set()
        await self.stop.wait()
        await nc.close()

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


@pytest.fixture()
def cluster(tmp_path):
    nats = NatsCluster(tmp_path / "nats", 3).start()
    yield nats
    nats.stop()


def test_a_node_claims_a_camera_and_its_alert_reaches_the_database_once(vigil, admin, home, cluster):
    from vigil.cluster import alert_stream
    from vigil.cluster.sealing import Sealer
    from vigil.engine.images import decode_image
    from vigil.services.deployments import deployment_status
    from vigil.services.live_runs import start_deployment

    capture = Capture(cluster.urls)
    dep = cluster_deployment(vigil, admin, {"entrance": 14.0})
    nodes = [start_node(cluster.urls, "node-a", 1), start_node(cluster.urls, "node-b", 1)]
    recorder = start_recorder(cluster.urls)
    try:
        for node in nodes:
            node_ready(node)
        recorder.wait_for(lambda e: e.get("event") == "started", 60, "recorder start")
        start_deployment(vigil, admin, dep["id"])
        # exactly one node claims the camera
        claimed = wait_until(lambda: [n for n in nodes if n.of("camera", "claimed")], 30, "a node to claim the camera")
        assert len(claimed) == 1
        runner = claimed[0]
        _, published = runner.wait_for(lambda e: e.get("type") == "alert_published", 60, "an alert on the stream")
        _, recorded = recorder.wait_for(lambda e: e.get("type") == "alert_recorded", 30, "the alert recorded")
        assert recorded["alert_uid"] == published["alert_uid"] and not recorded["already_recorded"]
        # the camera's status reaches the deployment through the recorder
        status = wait_until(lambda: (s := deployment_status(vigil, admin, dep["id"]))["cameras"][0]["state"]
                            == "running" and s["cameras"][0]["frames"] and s, 20, "the camera's status")
        camera = status["cameras"][0]
        assert camera["node"] == runner.args[runner.args.index("--name") + 1]
        assert camera["state"] == "running" and camera["health"] in ("ok", "starting")
        assert camera["frames"] and camera["lag_s"] is not None and camera["heartbeat_age_s"] < 10
        # the clip ends: the deployment ends, every alert recorded once
        wait_until(lambda: deployment_status(vigil, admin, dep["id"])["status"] == "ended", 60, "the deployment to end")
        time.sleep(2.0)
    finally:
        capture.close()
        recorder.stop()
        for node in nodes:
            node.stop()
    published = [e for n in nodes for e in n.of("alert_published")]
    rows = alert_rows(vigil, dep["id"])
    assert published and sorted(r["uid"] for r in rows) == sorted(e["alert_uid"] for e in published)
    assert len({r["uid"] for r in rows}) == len(rows)  # each once
    obama = {e["subject_id"] for e in published}
    assert len(obama) == 1 and len(published) == 1  # one person, one alert (dedup window 10 s, clip 14 s)

    # what crossed NATS: no image in clear anywhere, alert bodies sealed for this site only
    assert capture.messages
    clear_images = [s for s, _, data in capture.messages if JPEG in data or PNG in data]
    assert clear_images == []
    alerts = [(h, data) for s, h, data in capture.messages
              if s.startswith("vigil.alerts.") and h.get("Vigil-Kind") == "alert"]
    assert alerts
    sealer = Sealer(vigil.store.keyring)
    engine = vigil.engine(None)
    # the bystander benchmark's rule: a face in the evidence is the alerted person's when it
    # matches the photo they walk in with at the threshold for 1 false match in 1,000; any other
    # face that matches Biden at that threshold is a recognisable bystander
    threshold = engine.pack.calibration.threshold_for(1e-3)
    own = engine.primary(decode_image(demo_bytes("obama_speech.jpg")))
    biden = engine.primary(decode_image(demo_bytes("biden.jpg")))
    faces = 0
    for headers, body in alerts:
        header, images = alert_stream.unseal(sealer, "alert", headers["Vigil-Alert-Id"], body)
        assert header["subject_id"] in obama and set(headers) >= {"Nats-Msg-Id", "Vigil-Alert-Id"}
        for image in images:  # the probe crop and the frame: Biden was washed out of both
            for face in engine.analyse(decode_image(image)):
                faces += 1
                if float(face.vector @ own.vector) >= threshold:
                    continue
                assert float(face.vector @ biden.vector) < threshold, "a non-matched face left the node"
    assert faces >= 1  # the alerted face itself is there to be adjudicated
