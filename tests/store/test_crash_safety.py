"""Crash safety: an import killed with SIGKILL resumes with every image enrolled once,
and the index never drifts from the database."""

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, func, select, text

from tests.conftest import demo_bytes
from tests.store.conftest import variant
from tests.store.test_enrol_search import enrol, make_gallery
from vigil.store.schema import Blob, Collection, FaceImage, TemplateRow


def _count(db_path) -> int:
    try:
        engine = create_engine(f"sqlite:///{db_path}")
        with engine.connect() as conn:
            n = conn.execute(text("SELECT COUNT(*) FROM face_images")).scalar()
        engine.dispose()
        return int(n)
    except Exception:
        return 0


@pytest.mark.slow
def test_kill_minus_nine_mid_import_then_resume(home, tmp_path):
    folder = tmp_path / "import"
    names = ["obama.jpg", "biden.jpg", "obama_speech.jpg", "obama_standing.jpg"]
    total = 0
    for person in range(6):
        d = folder / f"Person_{person}"
        d.mkdir(parents=True)
        for k in range(3):
            (d / f"{k}.jpg").write_bytes(variant(names[(person + k) % 4], person * 10 + k))
            total += 1
    env = {**os.environ, "VIGIL_HOME": str(home)}
    cmd = [sys.executable, "-m", "vigil"]
    subprocess.run(cmd + ["gallery", "create", "g"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(cmd + ["enroll", "--gallery", "g", "--dir", str(folder), "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and _count(home / "vigil.db") < 4:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _count(home / "vigil.db")
    assert 0 < partial < total, f"kill came too late or too early ({partial} of {total})"
    out = subprocess.run(cmd + ["enroll", "--gallery", "g", "--dir", str(folder), "--json"], env=env,
                         capture_output=True, text=True, check=True)
    import json

    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["skipped"] >= partial
    assert report["enrolled"] + report["skipped"] + len(report["rejected"]) == total
    from vigil.config import Settings
    from vigil.services import forget_contexts, get_vigil

    forget_contexts()
    vigil = get_vigil(Settings(home=home))
    with vigil.store.session() as s:
        images = s.scalars(select(FaceImage)).all()
        assert len(images) == report["enrolled"] + report["skipped"] - 0  # each accepted image exactly once
        assert len({i.content_hash for i in images}) == len(images)
        assert s.scalar(select(func.count()).select_from(TemplateRow)) == len(images)
        for img in images:
            assert vigil.store.blobs.get(img.blob_id)  # every row's blob exists and decrypts
        known = set(s.scalars(select(Blob.id)))
        removed = vigil.store.blobs.collect_garbage(s)
        assert set(s.scalars(select(Blob.id))) == known
    assert removed >= 0


def test_index_replays_changes_after_a_crash_and_rebuilds_a_corrupt_file(vigil, admin):
    from vigil.services.indexes import IndexManager

    coll = make_gallery(vigil, admin)
    enrol(vigil, admin, coll, "obama.jpg", "Barack Obama")
    with vigil.store.session() as s:
        assert vigil.indexes.save(s, s.get(Collection, coll["id"]), force=True)
    enrol(vigil, admin, coll, "biden.jpg", "Joe Biden")  # after the save: a "crash" now
    fresh = IndexManager(vigil.store)  # a new process: loads the file, replays the log
    with vigil.store.session() as s:
        assert len(fresh.get(s, s.get(Collection, coll["id"]))) == 2
    path = vigil.store.home / "index" / f"collection-{coll['id']}.idx"
    path.write_bytes(path.read_bytes()[:50])  # corrupt it
    rebuilt = IndexManager(vigil.store)
    with vigil.store.session() as s:
        assert len(rebuilt.get(s, s.get(Collection, coll["id"]))) == 2
    assert not path.exists()  # the corrupt file was discarded
