"""What the server may reach: deployments read registered cameras only (issue #12, SSRF), FFmpeg
is held to the protocols a source's kind needs, and a camera that cannot be reached is said at
once."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from tests.live.conftest import two_people_video
from tests.services.live_helpers import api_client, audit_entries, cli
from tests.store.conftest import admin, vigil  # noqa: F401 (fixtures)
from tests.live.conftest import watchlist  # noqa: F401 (fixture)
from vigil.errors import VigilError


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        type(self).hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"secret")

    def log_message(self, *args):
        pass


@pytest.fixture()
def internal_server():
    """An 'internal admin' HTTP endpoint on loopback that counts every request it gets."""
    handler = type("Handler", (_Counting,), {"hits": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler.hits
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed: connections are refused


def _deployment_body(cameras):
    return {"name": "street", "location": "W1", "cameras": cameras, "watchlists": ["wanted"], "legal_basis": "test"}


def test_an_operator_cannot_make_the_server_fetch_a_url_or_read_its_disk(vigil, admin, watchlist, settings,
                                                                         internal_server, tmp_path):  # noqa: F811
    base, hits = internal_server
    client, headers = api_client(vigil, settings, admin)
    frames = tmp_path / "server-folder"
    frames.mkdir()
    two_people_video(frames / "clip.mp4")
    for camera in ({"camera": "c1", "source": f"{base}/internal/admin?secret=1"},
                   {"camera": "c2", "source": str(frames)},
                   {"camera": "c3", "source": "concat:/etc/passwd|/etc/hosts"}):
        r = client.post("/api/deployments", json=_deployment_body([camera]), headers=headers["operator"])
        assert r.status_code in (400, 403, 422), r.text
        assert "not a registered camera" in r.text and "Traceback" not in r.text
    # a supervisor is never asked to authorise it: nothing was created
    assert client.get("/api/deployments", headers=headers["supervisor"]).json() == {"items": [], "next_cursor": None}
    refused = audit_entries(vigil, "camera.source_refused")
    assert len(refused) == 3 and {e["actor"] for e in refused} == {"operator1"}
    assert "secret" not in json.dumps(refused) or "/internal/admin" in json.dumps(refused)
    time.sleep(0.3)
    assert hits == []  # the internal endpoint was never contacted


def test_administrators_register_cameras_and_operators_pick_them_by_name(vigil, admin, watchlist, settings,
                                                                        tmp_path):  # noqa: F811
    client, headers = api_client(vigil, settings, admin)
    media = settings.home / "media"
    media.mkdir(exist_ok=True)
    video = two_people_video(media / "street.mp4")
    r = client.post("/api/cameras", json={"name": "north", "source": str(video)}, headers=headers["operator"])
    assert r.status_code == 403  # operators do not extend the allow-list
    outside = two_people_video(tmp_path / "elsewhere.mp4")
    r = client.post("/api/cameras", json={"name": "north", "source": str(outside)}, headers=headers["admin"])
    assert r.status_code in (400, 422) and "outside the media root" in r.text
    r = client.post("/api/cameras", json={"name": "gopher", "source": "gopher://10.0.0.1/"}, headers=headers["admin"])
    assert r.status_code in (400, 422) and "not allowed" in r.text
    for name, source in (("north", str(video)), ("gate", "rtsp://viewer:hunter2@10.0.0.7/stream1")):
        r = client.post("/api/cameras", json={"name": name, "source": source}, headers=headers["admin"])
        assert r.status_code == 201, r.text
    listed = client.get("/api/cameras", headers=headers["operator"]).json()["items"]
    assert {c["name"] for c in listed} == {"north", "gate"}
    assert "hunter2" not in json.dumps(listed)  # a camera's password is never shown
    r = client.post("/api/deployments", json=_deployment_body([{"camera": "north"}, {"camera": "gate"}]),
                    headers=headers["operator"])
    assert r.status_code == 201, r.text
    shown = client.get(f"/api/deployments/{r.json()['id']}", headers=headers["supervisor"]).json()
    assert {c["camera"] for c in shown["cameras"]} == {"north", "gate"} and "hunter2" not in json.dumps(shown)
    # the camera is removed after the plan was made: the deployment can no longer start
    client.post(f"/api/deployments/{r.json()['id']}/authorise", json={}, headers=headers["supervisor"])
    assert client.delete("/api/cameras/gate", headers=headers["admin"]).status_code == 200
    r = client.post(f"/api/deployments/{r.json()['id']}/start", json={"fast": True}, headers=headers["operator"])
    assert r.status_code in (403, 409, 422) and "no longer registered" in r.text


def test_ffmpeg_may_use_only_the_protocols_a_source_kind_needs(internal_server, tmp_path):
    from vigil.live.sources import open_capture, open_source

    base, hits = internal_server
    for spec in ("concat:/etc/hosts|/etc/hosts", "subfile,,start,0,end,10,,:/etc/hosts", "file:///etc/hosts",
                 "gopher://127.0.0.1/", "data:video/mp4;base64,AAAA"):
        with pytest.raises(VigilError):
            open_source(spec, "c")
    # a playlist in the media folder that points at the network: FFmpeg refuses to follow it
    playlist = tmp_path / "cam.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{base}/internal/admin.ts\n#EXT-X-ENDLIST\n")
    cap = open_capture(str(playlist))
    if cap.isOpened():
        cap.read()
    cap.release()
    time.sleep(0.3)
    assert hits == []
    # a real file still opens (the whitelist lets the file protocol through)
    video = two_people_video(tmp_path / "ok.mp4", seconds=0.5)
    assert open_capture(str(video)).isOpened()


def test_a_refused_rtsp_port_is_said_at_once_and_kept_in_the_camera_health():
    from vigil.live.sources import CameraReader, StreamSource

    source = StreamSource(f"rtsp://127.0.0.1:{_closed_port()}/stream", "gate", max_backoff=0.5, give_up_after=60)
    reader = CameraReader(source, keep_latest=True).start()
    try:
        deadline = time.monotonic() + 5
        warnings = []
        while not warnings and time.monotonic() < deadline:
            warnings = reader.pop_warnings()
            time.sleep(0.05)
        assert warnings and "cannot be opened" in warnings[0] and "retrying" in warnings[0]
        time.sleep(1.2)
        health = reader.health()
        assert health["status"] == "unreachable" and health["reconnects"] >= 1
        assert "cannot be opened" in health["warning"]
        assert reader.pop_warnings() == []  # said once, not on every retry
    finally:
        reader.stop()
        reader.join(2)


def test_the_cli_registers_a_camera_and_warns_at_once_when_it_cannot_be_reached(vigil, admin, watchlist,
                                                                               home):  # noqa: F811
    url = f"rtsp://127.0.0.1:{_closed_port()}/stream"
    out = cli(home, "camera", "add", "gate", url, "--json")
    assert out.returncode == 0, out.stderr
    out = cli(home, "watch", "--watchlist", "wanted", "--camera", "gate", "--max-seconds", "4", "--json")
    assert "Traceback" not in out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    notices = [p for p in lines if p.get("type") == "notice" and p.get("camera") == "gate"]
    assert notices and "cannot be opened" in notices[0]["message"]
    summary = [p for p in lines if p.get("type") == "summary"][-1]
    assert summary["cameras"][0]["status"] == "unreachable" and "cannot be opened" in summary["cameras"][0]["warning"]
    # an unregistered URL is not a trial source, even for an administrator on the command line
    out = cli(home, "watch", "--watchlist", "wanted", "--camera", "http://127.0.0.1:9/x", "--json")
    assert out.returncode != 0 and "not a registered camera" in out.stderr and "Traceback" not in out.stderr
