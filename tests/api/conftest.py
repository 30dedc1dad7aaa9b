"""An API world for tests: users of every role with tokens, a gallery, an authorised
watchlist, an ended deployment with one alert, and a small probe video."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import demo_bytes
from tests.security.cameras_helper import register_sources
from vigil.engine.images import decode_image

ROLES = ("admin", "supervisor", "operator", "investigator", "auditor")
_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


def moving_face_video(path, seconds=2.0, fps=10, name="obama_speech.jpg"):
    face = decode_image(demo_bytes(name))
    scale = 260 / face.shape[0]
    face = cv2.resize(face, None, fx=scale, fy=scale)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for i in range(int(seconds * fps)):
        frame = np.full((480, 640, 3), 90, np.uint8)
        x = 40 + i * 4
        frame[100 : 100 + face.shape[0], x : x + face.shape[1]] = face[:, : min(face.shape[1], 640 - x)]
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory, model_cache):
    from vigil.server import create_app
    from vigil.config import Settings
    from vigil.governance.users import create_token, create_user
    from vigil.services.deployments import authorise_deployment, create_deployment
    from vigil.services.live_runs import DeploymentRunner, RunOptions, start_deployment
    from vigil.services.collections import authorise_watchlist, create_collection
    from vigil.services.enrolment import EnrolItem, enrol_image
    from vigil.services import forget_contexts

    forget_contexts()
    home = tmp_path_factory.mktemp("api-home")
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    settings = Settings(home=home)
    app = create_app(settings, retention_every=None)
    vigil = app.state.vigil
    admin = vigil.cli_actor()
    tokens = {}
    with vigil.store.session() as s:
        for role in ROLES:
            user, _ = create_user(s, f"{role}1", role, created_by="test", password=f"{role}-password-123")
            tokens[role] = create_token(s, user, "test")[1]
    create_collection(vigil, admin, "gallery", "custody", pack="sface")
    create_collection(vigil, admin, "watchlist", "wanted", pack="sface", purpose="test", category="wanted")
    obama = {}  # one subject per collection: the gallery's is on no watchlist
    for kind, name in (("gallery", "custody"), ("watchlist", "wanted")):
        obama[kind] = enrol_image(vigil, admin, kind, name, demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
        enrol_image(vigil, admin, kind, name, demo_bytes("biden.jpg"), EnrolItem("b", "Joe Biden"))
    authorise_watchlist(vigil, admin, "wanted")
    video = moving_face_video(home / "cam.mp4")
    register_sources(vigil, [{"camera": "c1", "source": str(video)}])
    dep = create_deployment(vigil, admin, name="world", location="test", sources=[{"camera": "c1", "source": str(video)}],
                            watchlists=["wanted"], window_start=None, window_end=None, legal_basis="test basis")
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    vigil.settings.live.evidence_clip_seconds = 1.0  # so the clip route has a clip to serve
    try:
        result = DeploymentRunner(vigil, admin, dep["id"], [], RunOptions(fast=True)).run()
    finally:
        vigil.settings.live.evidence_clip_seconds = 0.0
    assert result.alerts, "the world's deployment should raise an alert"
    client = TestClient(app)
    yield {"app": app, "client": client, "vigil": vigil, "tokens": tokens, "video": str(video),
           "alert_id": result.alerts[0]["id"], "deployment_id": dep["id"],
           "subject_id": obama["watchlist"]["subject_id"], "gallery_subject_id": obama["gallery"]["subject_id"],
           "home": home}
    client.close()
    forget_contexts()


def auth(world, role):
    return {"Authorization": f"Bearer {world['tokens'][role]}"}
