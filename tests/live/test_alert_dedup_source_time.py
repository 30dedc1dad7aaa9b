"""Alert de-duplication follows the source's clock, not the wall clock: a run that goes faster
than real time (``--fast``) or slower (a loaded machine) de-duplicates exactly as the scene
unfolded. Both runs are real ``vigil watch --fast`` runs; alerts are counted in a fresh session."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from tests.conftest import demo_bytes
from tests.services.live_helpers import cli
from vigil.engine.images import decode_image

FPS = 10


def comings_and_goings(path, visible: list[tuple[float, float]], seconds: float):
    """Obama (not the watchlist photo) in view during each (start, end) interval, else an empty scene."""
    face = decode_image(demo_bytes("obama_speech.jpg"))
    face = cv2.resize(face, None, fx=300 / face.shape[0], fy=300 / face.shape[0])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (640, 400))
    for i in range(int(seconds * FPS)):
        frame = np.full((400, 640, 3), (70, 90, 110), np.uint8)
        if any(a <= i / FPS < b for a, b in visible):
            frame[50 : 50 + face.shape[0], 200 : 200 + face.shape[1]] = face
        writer.write(frame)
    writer.release()
    return path


def alert_rows(vigil) -> list:
    from vigil.store.schema import Alert

    with vigil.store.session() as s:
        return [(a.subject_id, a.source_time) for a in s.scalars(select(Alert).order_by(Alert.id))]


def test_a_fast_run_keeps_two_visits_further_apart_than_the_window(vigil, admin, watchlist, home, tmp_path,
                                                                     monkeypatch):
    # 4 s apart in the scene; a --fast run plays that gap in well under the 3 s window of wall time
    video = comings_and_goings(tmp_path / "twice.mp4", [(0.0, 1.5), (5.5, 7.0)], 7.0)
    monkeypatch.setenv("VIGIL_LIVE__DEDUP_SECONDS", "3")
    out = cli(home, "watch", "--watchlist", "wanted", "--camera", str(video), "--fast", "--json")
    assert out.returncode == 0, out.stderr
    summary = [json.loads(line) for line in out.stdout.splitlines() if '"summary"' in line][-1]
    rows = alert_rows(vigil)
    assert [s for s, _ in rows] == [watchlist["obama"]] * 2, rows
    assert rows[1][1] - rows[0][1] >= 3.0 and summary["duplicates_suppressed"] == 0


@pytest.mark.slow
def test_a_slow_run_merges_two_visits_inside_the_window(vigil, admin, watchlist, home, tmp_path, monkeypatch):
    """Gone for 1.2 s (long enough to end the track: a second track, a second match about 2.4 s
    of source time after the first); the source is read slowly, 0.2 s a frame as on a loaded
    machine, so the second match comes 4.8 s of wall time after the first: outside a 3 s window
    by the wall clock, inside it by the source's."""
    import vigil.live.runner as runner
    from typer.testing import CliRunner

    from vigil.cli import app

    real_open = runner.open_source

    def slow_open(*args, **kwargs):
        source = real_open(*args, **kwargs)
        frames = source.frames

        def slowly(stop):
            for item in frames(stop):
                time.sleep(0.2)
                yield item

        source.frames = slowly
        return source

    monkeypatch.setattr(runner, "open_source", slow_open)
    video = comings_and_goings(tmp_path / "back-soon.mp4", [(0.0, 1.0), (2.2, 3.2)], 3.2)
    vigil.settings.live.dedup_seconds = 3.0
    try:
        result = CliRunner().invoke(app, ["watch", "--watchlist", "wanted", "--camera", str(video), "--fast", "--json"])
    finally:
        vigil.settings.live.dedup_seconds = 10.0
    assert result.exit_code == 0, result.output
    summary = [json.loads(line) for line in result.output.splitlines() if '"summary"' in line][-1]
    assert summary["wall_seconds"] >= 6.0  # 32 frames at 0.2 s each: slower than real time, as intended
    assert summary["tracks"] >= 2 and summary["duplicates_suppressed"] == 1, result.output
    assert [s for s, _ in alert_rows(vigil)] == [watchlist["obama"]]
