"""``vigil synth crowd``: a crowd video made from real face photos, with its ground truth.

Live recognition can only be measured against a video in which we know who appears, where
and when. Filming volunteers does not scale to a 1,000-person watchlist; this composes one:
real people's photos (LFW, or the shipped demo portraits) walk across a procedural scene,
some of them on the watchlist through a *different* photo. The truth file lists every
face box as pasted, frame by frame, with how much of it was hidden, so a benchmark can
count true alerts, false alerts and time to alert. Faces of 20-40 px (people at the back)
are deliberately common: that is where plain downscaling of a still photo stops working.

Modules: :mod:`vigil.synth.faces` (people, photo choice, head cutting), :mod:`vigil.synth.scene`
(geometry, walks, background), :mod:`vigil.synth.render` (drawing a frame). docs/synth.md
documents the truth format.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from vigil.errors import VigilError
from vigil.synth import render
from vigil.synth.faces import CastMember, FaceCutter, choose_others, choose_watchlist, demo_people, folder_people
from vigil.synth.scene import Layout, fit_background, layout, plan_occluders, plan_walk, procedural_background

TRUTH_FORMAT = "vigil-synth-crowd/1"
MIN_VISIBLE = 0.5  # a face less than half visible is not listed in ``boxes``
SMALL_FACE = 40  # faces up to this width make up most of the crowd


@dataclass
class CrowdOptions:
    out: Path
    truth: Path | None = None
    people_dir: Path | None = None
    watchlist_size: int = 100
    appear: int | None = None  # default: min(watchlist_size, 40)
    others: int | None = None  # default: enough people for ``density``
    width: int = 1280
    height: int = 720
    fps: float = 25.0
    seconds: float = 30.0
    min_face: int = 20
    max_face: int = 90
    density: float = 8.0
    occlusion: float = 0.15
    seed: int = 0
    manifest: Path | None = None
    background: Path | None = None
    category: str = "person-of-interest"
    references: int = 1  # enrolment photos per watchlisted person in the manifest (up to 3)

    def check(self) -> None:
        if self.width < 64 or self.height < 64 or self.fps <= 0 or self.seconds <= 0:
            raise VigilError("the video needs at least 64x64 pixels, a positive fps and duration")
        if not 1 <= self.references <= 3:
            raise VigilError("--references must be 1, 2 or 3 (enrolment photos per watchlisted person)")
        if not 6 <= self.min_face <= self.max_face:
            raise VigilError("--min-face must be at least 6 px and not above --max-face")
        if self.max_face * 1.6 > self.height * 0.9:
            raise VigilError(f"--max-face {self.max_face} px does not fit a {self.height} px high frame")
        if self.watchlist_size < 0 or (self.appear or 0) < 0 or (self.others or 0) < 0 or self.density <= 0:
            raise VigilError("counts must not be negative and --density must be positive")


def generate_crowd(opts: CrowdOptions, *, engine=None, on_frame: Callable[[int, int], None] | None = None) -> dict:
    """Write the video, the truth JSON and (optionally) the enrolment manifest; return a summary."""
    opts.check()
    started = time.perf_counter()
    if engine is None:
        from vigil.config import Settings
        from vigil.engine.face_engine import FaceEngine

        engine = FaceEngine.from_settings(Settings(), "sface")
    rng = np.random.default_rng(opts.seed)
    people = folder_people(opts.people_dir) if opts.people_dir else demo_people()
    source = str(Path(opts.people_dir).expanduser().resolve()) if opts.people_dir else "demo"
    appear = min(opts.watchlist_size, 40) if opts.appear is None else min(opts.appear, opts.watchlist_size)
    cutter = FaceCutter(engine)
    watchlist, walkers = choose_watchlist(people, cutter, rng, size=opts.watchlist_size, appear=appear,
                                          references=opts.references)
    others = opts.others
    if others is None:  # about 4.5 s on screen each at natural speed
        others = max(0, int(round(opts.density * opts.seconds / 4.5)) - len(walkers))
    walkers += choose_others(people, cutter, rng, exclude={m.person.person_id for m in watchlist}, count=others)
    warnings = _shortfalls(opts, appear, others, watchlist, walkers)

    lay = layout(opts.width, opts.height, opts.min_face, opts.max_face)
    _plan(lay, rng, len(walkers), opts)
    background, bg_info = _background(opts, rng, engine)
    frames = max(1, int(round(opts.seconds * opts.fps)))
    writer, video_path, codec = _open_writer(Path(opts.out), opts.fps, opts.width, opts.height)
    camera = render.Camera(opts.width, opts.height, rng)
    tracks = [{"boxes": [], "occluded": [], "partial": [], "enter": None, "exit": None} for _ in walkers]
    pasted, sizes, on_screen = 0, [], 0
    owner = np.empty((opts.height, opts.width), np.int16)
    try:
        for fi in range(frames):
            t = fi / opts.fps
            frame = background.copy()
            owner.fill(-1)
            active = []
            for i, walk in enumerate(lay.walks):
                st = walk.state(t, lay.horizon)
                if st is not None:
                    active.append((st[2], i, st))
            active.sort()  # far (small) people first: nearer ones are drawn over them
            placed = {}
            for _, i, (x, y, fw) in active:
                walk = lay.walks[i]
                nxt = walk.state(t + 1.0 / opts.fps, lay.horizon) or (x, y, fw)
                gain = walk.gain * (0.93 + 0.07 * np.cos(np.pi * (x / opts.width - 0.5)))
                box = _draw_person(frame, owner, i, walkers[i], walk, x, y, fw, gain, (nxt[0] - x, nxt[1] - y),
                                   walk.stride(t))
                placed[i] = box
            for occ in lay.occluders:
                rect = occ.rect(t)
                if rect is not None:
                    render.draw_occluder(frame, owner, rect, occ.colour)
            on_screen += len(placed)
            for i, box in placed.items():
                pasted += _record(tracks[i], fi, box, render.visible_share(owner, i, box), opts, sizes)
            writer.write(camera.finish(frame, fi, opts.fps))
            if on_frame:
                on_frame(fi + 1, frames)
    finally:
        writer.release()

    truth_path = Path(opts.truth) if opts.truth else _default_truth(Path(opts.out))
    truth = _truth(opts, source, video_path, truth_path, codec, frames, watchlist, walkers, tracks, lay, bg_info)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, separators=(",", ":")) + "\n", encoding="utf-8")
    if opts.manifest:
        write_manifest(Path(opts.manifest), watchlist, opts.category, opts.seed)
    elapsed = time.perf_counter() - started
    hist = np.histogram(sizes, bins=[0, 20, 30, 40, 60, 90, 10_000])[0] if sizes else np.zeros(6, int)
    return {
        "video": str(video_path), "truth": str(truth_path), "manifest": str(opts.manifest) if opts.manifest else None,
        "codec": codec, "frames": frames, "width": opts.width, "height": opts.height, "fps": opts.fps,
        "seconds": round(elapsed, 2), "size_bytes": video_path.stat().st_size,
        "watchlist": len(watchlist), "walkers": len(walkers),
        "watchlisted_walkers": sum(1 for w in walkers if w.watchlist_image),
        "faces_pasted": pasted, "visible_face_boxes": len(sizes),
        "mean_people_on_screen": round(on_screen / frames, 2),
        "face_width_px": {"min": int(min(sizes)) if sizes else None,
                          "median": float(np.median(sizes)) if sizes else None,
                          "max": int(max(sizes)) if sizes else None,
                          "histogram": dict(zip(["<20", "20-29", "30-39", "40-59", "60-89", ">=90"], hist.tolist()))},
        "background": bg_info, "warnings": warnings,
    }


def _draw_person(frame, owner, i, member: CastMember, walk, x, y, fw, gain, velocity, stride) -> np.ndarray:
    """Body first (its box follows the head's), then the head over it."""
    sprite = member.sprite
    fh = fw * float(sprite.face_box[3] / sprite.face_box[2])
    render.draw_body(frame, owner, i, np.array([x - fw / 2, y - fh / 2, fw, fh]), walk.colour, gain, stride)
    return render.paste_head(frame, owner, i, sprite, x, y, fw, gain, velocity)


def _record(track: dict, fi: int, box: np.ndarray, share: float, opts: CrowdOptions, sizes: list) -> int:
    """Add one frame to a person's truth. Returns 1 if any of the face was visible.

    ``boxes``: the face lies wholly inside the frame and at least half of it is unhidden;
    ``occluded``: those of them with 10 % or more hidden; ``partial``: every other frame in
    which some of the face shows (cut by the frame edge or mostly hidden), so a benchmark
    can still attribute a detection there to the right person."""
    x, y, w, h = (int(round(float(v))) for v in box)
    if share <= 0.0:
        return 0
    track["enter"] = fi if track["enter"] is None else track["enter"]
    track["exit"] = fi
    inside = x >= 0 and y >= 0 and x + w <= opts.width and y + h <= opts.height
    if inside and share >= MIN_VISIBLE:
        track["boxes"].append([fi, x, y, w, h])
        sizes.append(w)
        if share < 0.9:
            track["occluded"].append([fi, int(round(100 * (1.0 - share)))])
    else:
        track["partial"].append([fi, x, y, w, h, int(round(100 * share))])
    return 1


def _plan(lay: Layout, rng: np.random.Generator, count: int, opts: CrowdOptions) -> None:
    """Nearest face sizes spread evenly over the size distribution (so even two walkers span
    ``min_face`` to ``max_face``), then speeds scaled (x0.67-1.5) towards ``density``
    people on screen, then start times drawn so each walk overlaps the video."""
    lo, hi = float(opts.min_face), float(opts.max_face)
    small_hi = min(float(SMALL_FACE), hi)
    qs = np.linspace(0.0, 1.0, count) if count > 1 else np.array([0.5])
    sizes = []
    for q in qs[rng.permutation(count)]:
        if hi <= SMALL_FACE or q < 0.6:
            band_q = q / 0.6 if hi > SMALL_FACE else q
            sizes.append(lo * (small_hi / lo) ** band_q)
        else:
            sizes.append(small_hi * (hi / small_hi) ** ((q - 0.6) / 0.4))
    lay.walks = [plan_walk(lay, rng, s, lo) for s in sizes]
    load = sum(min(w.duration, opts.seconds) for w in lay.walks) / opts.seconds
    factor = float(np.clip(load / opts.density, 1 / 1.5, 1.5)) if lay.walks else 1.0
    for walk in lay.walks:
        walk.duration /= factor
        slack = opts.seconds - walk.duration
        walk.start = float(rng.uniform(0.0, slack) if slack > 0 else rng.uniform(slack, 0.0))
    lay.occluders = plan_occluders(lay, rng, opts.seconds, opts.occlusion)


def _background(opts: CrowdOptions, rng: np.random.Generator, engine) -> tuple[np.ndarray, dict]:
    """The scene behind the crowd, checked with Vigil's own detector (including its low-threshold
    and upscaled retries): a face in the background would be an alert the truth cannot explain."""
    if opts.background:
        from vigil.engine.images import read_image_file

        image = fit_background(read_image_file(opts.background), opts.width, opts.height)
        found = engine.detect(image)
        if found:
            raise VigilError(f"{opts.background}: the background holds {len(found)} face(s) "
                             f"(e.g. at {found[0].box_list()}); the truth file could not account for them")
        return image, {"kind": "image", "path": str(Path(opts.background).resolve())}
    for attempt in range(8):
        image = procedural_background(opts.width, opts.height, rng)
        if not engine.detect(image):
            return image, {"kind": "procedural", "attempts": attempt + 1}
    raise VigilError("could not draw a background free of face-like patterns in 8 attempts; try another --seed")


def _open_writer(out: Path, fps: float, width: int, height: int):
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if writer.isOpened():
        return writer, out, "mp4v"
    writer.release()
    fallback = out.with_suffix(".avi")
    writer = cv2.VideoWriter(str(fallback), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise VigilError(f"{out}: OpenCV cannot write video here (neither mp4v nor MJPG)")
    return writer, fallback, "MJPG"


def _default_truth(out: Path) -> Path:
    return out.with_name(out.stem + ".truth.json")


def _shortfalls(opts: CrowdOptions, appear: int, others: int, watchlist, walkers) -> list[str]:
    notes = []
    if len(watchlist) < opts.watchlist_size:
        notes.append(f"watchlist: {len(watchlist)} of {opts.watchlist_size} people available "
                     "(each needs two photos, one passing the enrolment quality gate)")
    shown = sum(1 for w in walkers if w.watchlist_image)
    if shown < min(appear, len(watchlist)):
        notes.append(f"only {shown} of {min(appear, len(watchlist))} watchlisted people could walk through "
                     "(each needs a second photo with a clear face)")
    if opts.others is not None and len(walkers) - shown < others:
        notes.append(f"only {len(walkers) - shown} of {others} non-watchlisted people available")
    return notes


def _truth(opts, source, video_path, truth_path, codec, frames, watchlist, walkers, tracks, lay, bg_info) -> dict:
    try:
        rel = Path(video_path).resolve().relative_to(truth_path.resolve().parent)
    except ValueError:
        rel = Path(video_path).resolve()
    people = []
    for member, walk, track in zip(walkers, lay.walks, tracks):
        widths = [b[3] for b in track["boxes"]]
        people.append({
            "person_id": member.person.person_id, "name": member.person.name, "folder": member.person.folder,
            "watchlisted": member.watchlist_image is not None,
            "watchlist_image": str(member.watchlist_image) if member.watchlist_image else None,
            "crowd_image": str(member.sprite.source), "walk": walk.kind,
            "enter_frame": track["enter"], "exit_frame": track["exit"],
            "first_frame": track["boxes"][0][0] if widths else None,
            "last_frame": track["boxes"][-1][0] if widths else None,
            "min_face_px": min(widths) if widths else None, "max_face_px": max(widths) if widths else None,
            "visible_frames": len(widths), "boxes": track["boxes"], "occluded": track["occluded"],
            "partial": track["partial"],
        })
    return {
        "format": TRUTH_FORMAT,
        "video": {"path": rel.as_posix(), "width": opts.width, "height": opts.height, "fps": float(opts.fps),
                  "frames": frames, "codec": codec},
        "seed": opts.seed, "source": source, "background": bg_info,
        "options": {"min_face": opts.min_face, "max_face": opts.max_face, "density": float(opts.density),
                    "occlusion": float(opts.occlusion), "min_visible": MIN_VISIBLE},
        "watchlist": [{"name": m.person.name, "folder": m.person.folder, "path": str(m.watchlist_image)}
                      for m in watchlist],
        "people": people,
        "occluders": [asdict(o) for o in lay.occluders],
    }


def write_manifest(path: Path, watchlist: list[CastMember], category: str, seed: int) -> None:
    """The enrolment CSV for ``vigil enroll --watchlist W --csv PATH``: a row per enrolment photo
    of each watchlisted person (one, or up to ``references``), ``name`` exactly as the truth
    file names them (rows of one name enrol one subject)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["path", "name", "category", "reference"])
        for m in watchlist:
            for photo in [m.watchlist_image, *m.more_references]:
                out.writerow([str(Path(photo).resolve()), m.person.name, category,
                              f"synth-crowd seed {seed}: {m.person.folder}"])
