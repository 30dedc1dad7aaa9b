#!/usr/bin/env python
"""Bystanders in evidence: are any recognisable in what a live run stores?

    nice -n 5 python -m bench.bystanders [--data ../shared/data] [--json]

For each video, a watchlist of one person who is in it, a real ``vigil watch`` run with
evidence clips (2 s either side), as fast as possible and at the video's frame rate; then,
for every stored image (each alert's thumbnail, probe crop and every evidence-clip frame,
decrypted from the store), faces are detected at full resolution (global pass, 1:1 and, for
images under 1,200 px, 2x; threshold 0.3, the still-image fallback) and matched with the
people in the video at the threshold for a false match rate of 1e-3:

- street: the shared 1080p street clip; the watchlisted person is the largest face of an
  early frame (its crop enrolled). Its people are every face YuNet finds at full resolution
  in every original frame; a face that matches the enrolled crop is the alerted person's.
- synthetic: ``vigil synth crowd`` from LFW (720p, faces 40-160 px, so that bystanders are
  large enough to be recognised at all); its people are the photos each walker is drawn from
  (and their watchlist photos).

A detected face in an alert's stored image is the alerted person's when it matches them,
else a *recognisable bystander* when it matches anyone else in the video (watchlisted or
not), else an unrecognised detection. The same count on the unredacted frames at the same moments (the thumbnail's
frame scaled alike; each clip's span of original frames at the clip's width) shows what
redaction removed. Result: ``bench/results/bystanders.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from bench.common import SHARED, skip, write_result
from vigil.config import Settings

CLIP_SECONDS = 2.0


def faces_in(engine, image: np.ndarray):
    longest = max(image.shape[:2])
    scales = [min(1.0, 640 / longest), 1.0] + ([2.0] if longest < 1200 else [])
    faces = engine.pack.detector.detect_scales(image, scales, threshold=0.3)
    return engine.analyse(image, faces) if faces else []


class People:
    """Reference templates of everyone in the video, by person; an alert names its person."""

    def __init__(self, by_person: dict[str, np.ndarray], threshold: float):
        self.by_person, self.threshold = by_person, threshold

    def classify(self, vector: np.ndarray, subject: str) -> str:
        own = self.by_person.get(subject)
        if own is not None and float((own @ vector).max()) >= self.threshold:
            return "alerted"
        if any(float((refs @ vector).max()) >= self.threshold for name, refs in self.by_person.items()
               if name != subject):
            return "recognisable_bystander"
        return "unrecognised"

    def count(self, engine, images) -> dict:
        """``images``: (image, the alerted person's name) pairs."""
        out = {"images": 0, "faces_detected": 0, "alerted": 0, "recognisable_bystander": 0, "unrecognised": 0,
               "images_with_recognisable_bystander": 0}
        for image, subject in images:
            out["images"] += 1
            kinds = [self.classify(f.vector, subject) for f in faces_in(engine, image)]
            out["faces_detected"] += len(kinds)
            for kind in kinds:
                out[kind] += 1
            out["images_with_recognisable_bystander"] += "recognisable_bystander" in kinds
        return out


def video_frames(video: Path, start: float = 0.0, end: float = 1e9, width: int | None = None):
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            return
        t = index / fps
        index += 1
        if start - 1e-6 <= t <= end + 1e-6:
            if width and frame.shape[1] > width:
                frame = cv2.resize(frame, None, fx=width / frame.shape[1], fy=width / frame.shape[1],
                                  interpolation=cv2.INTER_AREA)
            yield t, frame


def watch(home: Path, watchlist: str, video: Path, fast: bool) -> dict:
    env = {**os.environ, "VIGIL_HOME": str(home)}
    args = [sys.executable, "-m", "vigil", "watch", "--watchlist", watchlist, "--source", str(video), "--json",
            "--evidence-clips", str(CLIP_SECONDS)] + (["--fast"] if fast else [])
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"vigil watch failed: {out.stderr[-2000:]}")
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return next(line for line in lines if line.get("type") == "summary")


def stored_evidence(vigil, deployment_id: int, work: Path) -> list[dict]:
    """Every alert of the run: its stored images, decrypted, and the clip's audited redaction."""
    from sqlalchemy import select

    from vigil.engine.images import decode_image
    from vigil.store.schema import Alert, AuditEntry

    alerts = []
    with vigil.store.session() as s:
        rows = s.scalars(select(Alert).where(Alert.deployment_id == deployment_id).order_by(Alert.id)).all()
        for a in rows:
            audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "alert.clip_recorded",
                                                       AuditEntry.object_id == str(a.id))).first()
            alerts.append({"id": a.id, "time": a.source_time, "subject": a.subject_name,
                           "thumbnail": decode_image(vigil.store.blobs.get(a.frame_blob_id)),
                           "probe": decode_image(vigil.store.blobs.get(a.probe_blob_id)),
                           "clip": vigil.store.blobs.get(a.clip_blob_id) if a.clip_blob_id else None,
                           "clip_audit": json.loads(audit.details) if audit else None})
    for a in alerts:
        frames = []
        if a["clip"]:
            path = work / f"clip-{a['id']}.avi"
            path.write_bytes(a["clip"])
            cap = cv2.VideoCapture(str(path))
            while (item := cap.read())[0]:
                frames.append(item[1])
            path.unlink()
        a["clip_frames"] = frames
    return alerts


def measure(vigil, engine, people: People, video: Path, deployment_id: int, work: Path) -> dict:
    alerts = stored_evidence(vigil, deployment_id, work)
    stored = {"thumbnails": people.count(engine, [(a["thumbnail"], a["subject"]) for a in alerts]),
              "probes": people.count(engine, [(a["probe"], a["subject"]) for a in alerts]),
              "clip_frames": people.count(engine, [(f, a["subject"]) for a in alerts for f in a["clip_frames"]])}
    width = alerts[0]["thumbnail"].shape[1] if alerts else None
    thumbs = [next(((f, a["subject"]) for _, f in video_frames(video, a["time"] - 0.02, a["time"] + 0.02, width)))
              for a in alerts]
    spans = [(a["clip_audit"]["redaction"]["frames_source_seconds"], a["subject"]) for a in alerts
             if a["clip_audit"] and "redaction" in a["clip_audit"]]
    clip_width = alerts[0]["clip_frames"][0].shape[1] if alerts and alerts[0]["clip_frames"] else None
    unredacted = {"thumbnails": people.count(engine, thumbs),
                  "clip_frames": people.count(engine, [(f, who) for (s, e), who in spans
                                                       for _, f in video_frames(video, s, e, clip_width)])}
    return {"alerts": len(alerts), "alerted": sorted({a["subject"] for a in alerts}),
            "clip_redaction_audited": [a["clip_audit"] for a in alerts],
            "stored": stored, "unredacted_same_moments": unredacted,
            "recognisable_bystanders": sum(v["recognisable_bystander"] for v in stored.values())}


def runs(vigil, engine, people: People, home: Path, watchlist: str, video: Path, work: Path) -> dict:
    from sqlalchemy import func, select

    from vigil.store.schema import Deployment

    out = {}
    for mode, fast in (("fast", True), ("realtime", False)):
        summary = watch(home, watchlist, video, fast)
        with vigil.store.session() as s:
            dep_id = s.scalar(select(func.max(Deployment.id)))
        out[mode] = {"summary": {k: summary[k] for k in ("frames", "frames_processed", "frames_dropped", "alerts",
                                                         "duplicates_suppressed", "faces_seen", "fps")},
                     **measure(vigil, engine, people, video, dep_id, work)}
        print(f"  {mode}: {out[mode]['alerts']} alerts, stored {out[mode]['stored']}, "
              f"unredacted {out[mode]['unredacted_same_moments']}", flush=True)
    return out


def setup(work: Path, name: str):
    from vigil.services import get_vigil

    vigil = get_vigil(Settings(home=work / name))
    return vigil, vigil.cli_actor(), vigil.engine()


def street(video: Path, work: Path) -> dict:
    from vigil.retro.manifests import EnrolItem
    from vigil.services.collections import authorise_watchlist, create_collection
    from vigil.services.enrolment import enrol_image
    from vigil.engine.images import encode_jpeg

    vigil, actor, engine = setup(work, "street-home")
    threshold = engine.pack.calibration.threshold_for(1e-3)
    originals = [(t, f) for t, f in video_frames(video)]
    first = max(faces_in(engine, originals[5][1]), key=lambda f: f.face.box[2])
    x, y, w, h = [int(v) for v in first.face.box]
    m = int(max(w, h) * 0.6)
    crop = originals[5][1][max(0, y - m): y + h + m, max(0, x - m): x + w + m]
    create_collection(vigil, actor, "watchlist", "street", pack="sface", purpose="benchmark", category="wanted")
    enrol_image(vigil, actor, "watchlist", "street", encode_jpeg(crop), EnrolItem("crop", "street person"),
                quality_gate=False)
    authorise_watchlist(vigil, actor, "street")
    alerted, others = [first.vector], []
    for _, frame in originals:  # everyone in the video, face by face, at full resolution
        for f in faces_in(engine, frame):
            (alerted if float(f.vector @ first.vector) >= threshold else others).append(f.vector)
    # the faces of the other people are not grouped by person: any of them matched is someone else
    people = People({"street person": np.stack(alerted), "anyone else": np.stack(others)}, threshold)
    print(f"street: enrolled a {w}x{h} px face of frame 5; reference faces: {len(alerted)} of that person, "
          f"{len(others)} of others", flush=True)
    return {"video": str(video), "enrolled_face_px": [w, h], "reference_faces_alerted_person": len(alerted),
            "reference_faces_others": len(others), "threshold_fmr_1e-3": threshold,
            **runs(vigil, engine, people, work / "street-home", "street", video, work)}


def synthetic(lfw: Path, work: Path, seconds: float) -> dict:
    from vigil.engine.images import decode_image
    from vigil.retro.manifests import items_from_csv
    from vigil.services.collections import authorise_watchlist, create_collection
    from vigil.services.enrolment import enrol_files
    from vigil.synth import CrowdOptions, generate_crowd

    vigil, actor, engine = setup(work, "synth-home")
    threshold = engine.pack.calibration.threshold_for(1e-3)
    crowd = generate_crowd(CrowdOptions(out=work / "crowd.mp4", people_dir=lfw, watchlist_size=10, appear=5,
                                        others=40, width=1280, height=720, fps=25, seconds=seconds, min_face=40,
                                        max_face=160, density=8, seed=3, manifest=work / "watchlist.csv"),
                           engine=engine)
    truth = json.loads(Path(crowd["truth"]).read_text())
    create_collection(vigil, actor, "watchlist", "synth", pack="sface", purpose="benchmark", category="wanted")
    enrol_files(vigil, actor, "watchlist", "synth", items_from_csv(work / "watchlist.csv"), quality_gate=False,
                show_progress=False)
    authorise_watchlist(vigil, actor, "synth")

    def refs(person) -> list[np.ndarray]:
        paths = [person["crowd_image"]] + ([person["watchlist_image"]] if person["watchlist_image"] else [])
        found = []
        for p in paths:
            try:
                found.append(engine.primary(decode_image(Path(p).read_bytes())).vector)
            except Exception:  # noqa: BLE001 - a photo without a usable face adds no reference
                pass
        return found

    listed = [p for p in truth["people"] if p["watchlisted"]]
    # in an alert's images, everyone but the alerted person is a bystander (watchlisted or not)
    people = People({p["name"]: np.stack(r) for p in truth["people"] if (r := refs(p))}, threshold)
    print(f"synthetic: {len(truth['people'])} walkers ({len(listed)} watchlisted)", flush=True)
    return {"crowd": {k: crowd[k] for k in crowd if k not in ("video", "truth")}, "walkers": len(truth["people"]),
            "watchlisted_walkers": len(listed), "threshold_fmr_1e-3": threshold,
            **runs(vigil, engine, people, work / "synth-home", "synth", Path(crowd["video"]), work)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--synth-seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    data = Path(args.data) if args.data else SHARED
    video = data / "samples" / "crowd" / "street_crowd_1080p.mp4"
    if not video.exists() or not (data / "lfw" / "lfw").is_dir():
        skip(f"the street clip or LFW not found under {data}; pass --data")
    work = Path(tempfile.mkdtemp(prefix="vigil-bystanders-"))
    result = {"clip_seconds_each_side": CLIP_SECONDS, "street": street(video, work),
              "synthetic": synthetic(data / "lfw", work, args.synth_seconds)}
    result["recognisable_bystanders_total"] = sum(result[v][m]["recognisable_bystanders"]
                                                  for v in ("street", "synthetic") for m in ("fast", "realtime"))
    path = write_result("bystanders", result)
    print(json.dumps(result) if args.json else f"recognisable bystanders: {result['recognisable_bystanders_total']}"
          f" -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
