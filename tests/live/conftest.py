from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import demo_bytes
from tests.store.conftest import admin, vigil  # noqa: F401  (shared fixtures)
from vigil.engine.images import decode_image


def two_people_video(path, seconds=3.0, fps=10, size=(800, 480)):
    """Obama (a different photo from the watchlist one) and Biden walking across a plain scene."""
    w, h = size
    people = []
    for name, height, x0, dx in (("obama_speech.jpg", 300, 20, 6), ("biden.jpg", 300, 520, -4)):
        face = decode_image(demo_bytes(name))
        scale = height / face.shape[0]
        people.append((cv2.resize(face, None, fx=scale, fy=scale), x0, dx))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(int(seconds * fps)):
        frame = np.full((h, w, 3), (70, 90, 110), np.uint8)
        for img, x0, dx in people:
            x = int(x0 + dx * i)
            x = max(0, min(w - img.shape[1], x))
            frame[60 : 60 + img.shape[0], x : x + img.shape[1]] = img[: h - 60]
        writer.write(frame)
    writer.release()
    return path


def obama_watchlist(vigil, admin, pack: str = "sface") -> dict:
    """An authorised watchlist "wanted" of the given pack holding Barack Obama."""
    from vigil.retro.manifests import EnrolItem
    from vigil.services.collections import authorise_watchlist, create_collection
    from vigil.services.enrolment import enrol_image

    coll = create_collection(vigil, admin, "watchlist", "wanted", pack=pack, purpose="test", category="wanted")
    out = enrol_image(vigil, admin, "watchlist", "wanted", demo_bytes("obama.jpg"), EnrolItem("a", "Barack Obama"))
    authorise_watchlist(vigil, admin, "wanted")
    return {"collection": coll, "obama": out["subject_id"]}


def enrol_biden(vigil, admin) -> None:
    """An edit of the watchlist "wanted" (Joe Biden enrolled)."""
    from vigil.retro.manifests import EnrolItem
    from vigil.services.enrolment import enrol_image

    enrol_image(vigil, admin, "watchlist", "wanted", demo_bytes("biden.jpg"), EnrolItem("b", "Joe Biden"))


@pytest.fixture()
def watchlist(vigil, admin):
    return obama_watchlist(vigil, admin)


@pytest.fixture()
def video(tmp_path):
    return two_people_video(tmp_path / "street.mp4")
