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

Synthetic crowd, where the truth knows every face: a match to someone else counts as a
recognisable bystander only where a bystander's face really is: the detected box overlaps
(IoU >= ``TRUTH_IOU``) the true face box (wholly or partly visible) of any walker other than the
alerted person on that very source frame, whoever the match names (a real face recognised as
the wrong bystander still counts). A match with no such face under it (the recogniser matching
the grey wash: a detection spanning most of a washed frame, say) is not a bystander; it is
counted apart (``matched_where_no_bystander_face_is``) and listed, never dropped silently.
Each stored clip frame's source frame is found by comparing it with the wash of every
original frame of the clip's span (the washed background is nearly all of the image). The
street clip has no truth: every match to anyone else counts there, as do all probe crops.
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
TRUTH_IOU = 0.3  # a counted bystander's box must overlap a true bystander face this much


def faces_in(engine, image: np.ndarray):
    longest = max(image.shape[:2])
    scales = [min(1.0, 640 / longest), 1.0] + ([2.0] if longest < 1200 else [])
    faces = engine.pack.detector.detect_scales(image, scales, threshold=0.3)
    return engine.analyse(image, faces) if faces else []


def iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - ix * iy
    return ix * iy / union if union > 0 else 0.0


class People:
    """Reference templates of everyone in the video, by person; an alert names its person."""

    def __init__(self, by_person: dict[str, np.ndarray], threshold: float):
        self.by_person, self.threshold = by_person, threshold

    def classify(self, vector: np.ndarray, subject: str) -> tuple[str, str | None, float]:
        own = self.by_person.get(subject)
        if own is not None and float((own @ vector).max()) >= self.threshold:
            return "alerted", subject, float((own @ vector).max())
        scores = {name: float((refs @ vector).max()) for name, refs in self.by_person.items() if name != subject}
        best = max(scores, key=scores.get) if scores else None
        if best is not None and scores[best] >= self.threshold:
            return "recognisable_bystander", best, scores[best]
        return "unrecognised", best, scores[best] if best else 0.0

    def count(self, engine, images) -> dict:
        """``images``: (image, the alerted person's name, truth) triples; truth: None (none known)
        or (source frame, [(name, box)] of the true faces of everyone but the alerted person on
        that frame, in the image's coordinates)."""
        out = {"images": 0, "faces_detected": 0, "alerted": 0, "recognisable_bystander": 0, "unrecognised": 0,
               "images_with_recognisable_bystander": 0, "matched_where_no_bystander_face_is": 0,
               "bystanders_found": [], "matches_where_no_bystander_face_is": []}
        for image, subject, truth in images:
            out["images"] += 1
            found = False
            for face in faces_in(engine, image):
                kind, name, score = self.classify(face.vector, subject)
                box = [round(float(v), 1) for v in face.face.box]
                note = {"frame": truth[0] if truth else None, "box": box, "matched": name, "score": round(score, 3)}
                if kind == "recognisable_bystander" and truth is not None:
                    under = max(((iou(box, b), who) for who, b in truth[1]), default=(0.0, None))
                    note.update(truth_iou=round(under[0], 2), true_face=under[1])
                    if under[0] < TRUTH_IOU:
                        kind = "matched_where_no_bystander_face_is"
                        out["matches_where_no_bystander_face_is"].append(note)
                out["faces_detected"] += 1
                out[kind] += 1
                if kind == "recognisable_bystander":
                    out["bystanders_found"].append(note)
                    found = True
            out["images_with_recognisable_bystander"] += found
        return out


class Truth:
    """The synthetic crowd's true face boxes: by source frame, (name, box) of every walker whose
    face shows there (wholly or partly)."""

    def __init__(self, truth: dict):
        self.fps = float(truth["video"]["fps"])
        self.width = float(truth["video"]["width"])
        self.frames: dict[int, list] = {}
        for person in truth["people"]:
            for row in person["boxes"] + [r[:5] for r in person["partial"]]:
                self.frames.setdefault(int(row[0]), []).append((person["name"], row[1:5]))

    def of(self, frame: int, subject: str, image_width: int):
        s = image_width / self.width
        return frame, [(name, [v * s for v in box]) for name, box in self.frames.get(frame, []) if name != subject]


def source_frames(stored: list[np.ndarray], video: Path, span, fps: float) -> list[int]:
    """The source frame of each stored clip frame: the original frame of the span whose wash is
    nearest to it."""
    from vigil.live.evidence import wash

    if not stored:
        return []
    width = stored[0].shape[1]
    small = (64, 36)
    washed = [(round(t * fps), cv2.resize(wash(f), small, interpolation=cv2.INTER_AREA).astype(np.float32))
              for t, f in video_frames(video, span[0], span[1], width)]
    out = []
    for image in stored:
        mine = cv2.resize(image, small, interpolation=cv2.INTER_AREA).astype(np.float32)
        out.append(min(washed, key=lambda w: float(np.abs(w[1] - mine).mean()))[0])
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
    args = [sys.executable, "-m", "vigil", "watch", "--watchlist", watchlist, "--camera", str(video), "--json",
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


def measure(vigil, engine, people: People, video: Path, deployment_id: int, work: Path,
            truth: Truth | None = None) -> dict:
    alerts = stored_evidence(vigil, deployment_id, work)
    fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS) or 25.0

    def known(frame: int, subject: str, image: np.ndarray):
        return truth.of(frame, subject, image.shape[1]) if truth else None

    clip_items = []
    for a in alerts:
        span = (a["clip_audit"] or {}).get("redaction", {}).get("frames_source_seconds")
        indices = source_frames(a["clip_frames"], video, span, fps) if truth and span else [None] * len(a["clip_frames"])
        clip_items += [(f, a["subject"], known(i, a["subject"], f) if i is not None else None)
                       for f, i in zip(a["clip_frames"], indices)]
    stored = {"thumbnails": people.count(engine, [(a["thumbnail"], a["subject"],
                                                   known(round(a["time"] * fps), a["subject"], a["thumbnail"]))
                                                  for a in alerts]),
              "probes": people.count(engine, [(a["probe"], a["subject"], None) for a in alerts]),
              "clip_frames": people.count(engine, clip_items)}
    width = alerts[0]["thumbnail"].shape[1] if alerts else None
    thumbs = []
    for a in alerts:
        t, f = next(iter(video_frames(video, a["time"] - 0.02, a["time"] + 0.02, width)))
        thumbs.append((f, a["subject"], known(round(t * fps), a["subject"], f)))
    spans = [(a["clip_audit"]["redaction"]["frames_source_seconds"], a["subject"]) for a in alerts
             if a["clip_audit"] and "redaction" in a["clip_audit"]]
    clip_width = alerts[0]["clip_frames"][0].shape[1] if alerts and alerts[0]["clip_frames"] else None
    unredacted = {"thumbnails": people.count(engine, thumbs),
                  "clip_frames": people.count(engine, [(f, who, known(round(t * fps), who, f)) for (s, e), who in spans
                                                       for t, f in video_frames(video, s, e, clip_width)])}
    for counts in unredacted.values():  # thousands of them: the counts say enough
        counts["bystanders_found"] = len(counts["bystanders_found"])
        counts["matches_where_no_bystander_face_is"] = len(counts["matches_where_no_bystander_face_is"])
    return {"alerts": len(alerts), "alerted": sorted({a["subject"] for a in alerts}),
            "clip_redaction_audited": [a["clip_audit"] for a in alerts],
            "stored": stored, "unredacted_same_moments": unredacted,
            "recognisable_bystanders": sum(v["recognisable_bystander"] for v in stored.values()),
            "matched_where_no_bystander_face_is": sum(v["matched_where_no_bystander_face_is"]
                                                      for v in stored.values())}


def runs(vigil, engine, people: People, home: Path, watchlist: str, video: Path, work: Path,
         truth: Truth | None = None) -> dict:
    from sqlalchemy import func, select

    from vigil.store.schema import Deployment

    out = {}
    for mode, fast in (("fast", True), ("realtime", False)):
        summary = watch(home, watchlist, video, fast)
        with vigil.store.session() as s:
            dep_id = s.scalar(select(func.max(Deployment.id)))
        out[mode] = {"summary": {k: summary[k] for k in ("frames", "frames_processed", "frames_dropped", "alerts",
                                                         "duplicates_suppressed", "faces_seen", "fps")},
                     **measure(vigil, engine, people, video, dep_id, work, truth)}
        for where, counts in out[mode]["stored"].items():
            for note in counts["bystanders_found"]:
                print(f"  {mode} {where}: BYSTANDER {note}", flush=True)
            for note in counts["matches_where_no_bystander_face_is"]:
                print(f"  {mode} {where}: match where no bystander face is {note}", flush=True)
        print(f"  {mode}: {out[mode]['alerts']} alerts, {out[mode]['recognisable_bystanders']} recognisable "
              f"bystanders, {out[mode]['matched_where_no_bystander_face_is']} matches where no face is; "
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
            "counted_bystander_rule": "no truth: every match to anyone but the alerted person counts",
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
            "counted_bystander_rule": f"a match to anyone but the alerted person whose detected box overlaps "
                                      f"(IoU >= {TRUTH_IOU}) the true face box of a walker other than the "
                                      f"alerted person on that source frame; other matches are counted apart "
                                      f"as matched_where_no_bystander_face_is",
            **runs(vigil, engine, people, work / "synth-home", "synth", Path(crowd["video"]), work, Truth(truth))}


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
