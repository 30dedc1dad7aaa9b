"""Faces for the synthetic crowd: who exists, which photo enrols, which photo walks by.

The crowd is only useful as ground truth if identities are real and the watchlist photo
differs from the photo that walks through the scene (the live system must recognise a
person, not a picture). So every person comes from a folder of photos of one individual
(LFW's layout, or the demo portraits shipped in the package), the watchlist photo is
chosen among those that pass Vigil's own enrolment quality gate (so ``vigil enroll``
accepts every row of the manifest), and the crowd photo is a *different* file of the same
person in which Vigil's detector finds a clear face.

Heads are cut with a soft elliptical alpha: a hard-edged rectangle pasted on a background
is itself a strong, unnatural edge pattern a detector or tracker could latch on to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from vigil.engine.align import align_face
from vigil.engine.faces import Face, primary_face
from vigil.engine.images import read_image_file
from vigil.engine.quality import assess
from vigil.errors import VigilError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
# Head region around the detector's face box (which spans roughly brows/hairline to chin):
# wide enough for the ears, high enough for the top of the head, a little neck below.
HEAD_SIDE, HEAD_TOP, HEAD_BOTTOM = 0.75, 0.30, 0.14
MIN_CROWD_SCORE = 0.8


@dataclass
class Person:
    """One real individual. ``watch_photos``/``crowd_photos`` are the candidates for each role.

    ``person_id`` is the display name the enrolment creates ("George W Bush" for LFW's
    ``George_W_Bush`` folder), so an alert's subject name compares directly with the truth;
    ``folder`` is the source folder's own name."""

    person_id: str
    folder: str
    watch_photos: list[Path]
    crowd_photos: list[Path]

    @property
    def name(self) -> str:
        return self.person_id

    @property
    def can_be_watchlisted(self) -> bool:
        return any(c != w for w in self.watch_photos for c in self.crowd_photos)


@dataclass
class Sprite:
    """A head cut from one photo: premultiplied BGRA float32 and the face box inside it."""

    rgba: np.ndarray  # (h, w, 4) float32; BGR premultiplied by alpha, alpha in [0, 1]
    face_box: np.ndarray  # x, y, w, h of the detected face, in sprite pixels
    source: Path
    score: float


@dataclass
class CastMember:
    person: Person
    watchlist_image: Path | None  # None: not on the watchlist
    sprite: Sprite | None  # None: on the watchlist but does not walk through the scene
    more_references: list[Path] = field(default_factory=list)  # other enrolment photos, never the crowd one


def display_name(person_id: str) -> str:
    """LFW folder names use underscores; the subject's display name uses spaces."""
    return " ".join(person_id.replace("_", " ").split())


def demo_people() -> list[Person]:
    """The portraits shipped in the package: Obama (enrolled through his official portrait,
    walking through as the speech or standing photo) and Biden (one photo: never watchlisted).
    ``obama_small.jpg`` is a copy of the official portrait and ``obama_and_biden.jpg`` holds
    two people, so neither is used."""
    root = Path(str(resources.files("vigil") / "demo_data"))
    return [
        Person("Barack Obama", "Barack_Obama", [root / "obama.jpg"],
               [root / "obama_speech.jpg", root / "obama_standing.jpg"]),
        Person("Joe Biden", "Joe_Biden", [], [root / "biden.jpg"]),
    ]


def folder_people(root: Path) -> list[Person]:
    """A folder of one sub-folder per person (or an LFW root holding ``lfw/``)."""
    root = Path(root).expanduser()
    if (root / "lfw").is_dir():
        root = root / "lfw"
    if not root.is_dir():
        raise VigilError(f"{root}: not a folder of people (expected <root>/<Person_Name>/<images>)")
    people = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if photos:
            people.append(Person(display_name(folder.name), folder.name, list(photos), list(photos)))
    if not people:
        raise VigilError(f"{root}: no person folders with images found")
    return people


class FaceCutter:
    """Detects, checks and cuts faces with Vigil's own engine. Remembers the last photo only:
    a 1,000-person watchlist is checked one photo at a time without holding them all."""

    def __init__(self, engine):
        self.engine = engine
        self._last: tuple[Path | None, np.ndarray | None, Face | None] = (None, None, None)

    def face(self, path: Path) -> tuple[np.ndarray | None, Face | None]:
        if self._last[0] != path:
            try:
                image = read_image_file(path)
            except VigilError:
                self._last = (path, None, None)
            else:
                self._last = (path, image, primary_face(self.engine.detect(image), image.shape))
        return self._last[1], self._last[2]

    def passes_gate(self, path: Path) -> bool:
        """Would ``vigil enroll`` accept this photo? (same detector, alignment and gate)."""
        image, face = self.face(path)
        if face is None:
            return False
        return assess(face, align_face(image, face.landmarks), self.engine.quality_limits).passed

    def sprite(self, path: Path) -> Sprite | None:
        image, face = self.face(path)
        if face is None or face.score < MIN_CROWD_SCORE:
            return None
        return cut_head(image, face, path)


def _border_black(gray: np.ndarray) -> np.ndarray:
    """Near-black regions touching the image edge: the warp borders of LFW-a photos."""
    dark = (gray <= 6).astype(np.uint8)
    count, labels = cv2.connectedComponents(dark, connectivity=4)
    if count <= 1:
        return np.zeros(gray.shape, bool)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge != 0]
    return np.isin(labels, edge)


def cut_head(image: np.ndarray, face: Face, source: Path) -> Sprite:
    """Cut forehead-to-chin and ear-to-ear around ``face`` with a feathered elliptical alpha.
    Pixels outside the photo or in its black warp border are transparent."""
    x, y, w, h = [float(v) for v in face.box]
    left, right = x + w / 2 - HEAD_SIDE * w, x + w / 2 + HEAD_SIDE * w
    top, bottom = y - HEAD_TOP * h, y + h + HEAD_BOTTOM * h
    l, t, r, b = int(np.floor(left)), int(np.floor(top)), int(np.ceil(right)), int(np.ceil(bottom))
    ih, iw = image.shape[:2]
    pad = max(0, -l, -t, r - iw, b - ih)
    valid = np.ones((ih, iw), np.float32)
    valid[_border_black(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))] = 0.0
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        valid = cv2.copyMakeBorder(valid, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    crop = image[t + pad:b + pad, l + pad:r + pad].astype(np.float32)
    valid = valid[t + pad:b + pad, l + pad:r + pad]
    ch, cw = crop.shape[:2]
    feather = max(1.5, 0.05 * cw)
    mask = np.zeros((ch, cw), np.float32)
    cv2.ellipse(mask, (cw // 2, ch // 2), (max(1, int(cw / 2 - 1.6 * feather)), max(1, int(ch / 2 - 1.6 * feather))),
                0, 0, 360, 1.0, -1, cv2.LINE_AA)
    valid = cv2.erode(valid, np.ones((3, 3), np.uint8))
    alpha = cv2.GaussianBlur(mask * valid, (0, 0), feather)
    rgba = np.dstack([crop * alpha[:, :, None], alpha]).astype(np.float32)
    box = np.array([x - l, y - t, w, h], np.float32)
    return Sprite(rgba=rgba, face_box=box, source=source, score=float(face.score))


def choose_watchlist(people: list[Person], cutter: FaceCutter, rng: np.random.Generator, *,
                     size: int, appear: int, references: int = 1) -> tuple[list[CastMember], list[CastMember]]:
    """Pick ``size`` watchlisted people (in a seeded random order) and, among the first of them,
    up to ``appear`` who walk through with a crowd photo different from their watchlist photo.
    With ``references`` > 1, each is enrolled from up to that many photos (the others in file
    order, gate-passing, never the crowd photo); the random draws are the same as with one.

    Returns ``(watchlist, walkers)``; either may come out shorter than asked when the source
    has too few usable people (the caller reports it)."""
    watchlist: list[CastMember] = []
    walkers: list[CastMember] = []
    for person in [people[i] for i in rng.permutation(len(people))]:
        if len(watchlist) >= size:
            break
        if not person.can_be_watchlisted:
            continue
        watch = next((p for p in _shuffled(person.watch_photos, rng) if cutter.passes_gate(p)), None)
        if watch is None:
            continue
        member = CastMember(person, watch, None)
        if len(walkers) < appear:
            member.sprite = _crowd_sprite(person, cutter, rng, exclude=watch)
            if member.sprite is not None:
                walkers.append(member)
        if references > 1:
            crowd = member.sprite.source if member.sprite is not None else None
            others = (p for p in person.watch_photos if p not in (watch, crowd))
            member.more_references = [p for p in others if cutter.passes_gate(p)][:references - 1]
        watchlist.append(member)
    return watchlist, walkers


def choose_others(people: list[Person], cutter: FaceCutter, rng: np.random.Generator, *,
                  exclude: set[str], count: int) -> list[CastMember]:
    """Up to ``count`` people not on the watchlist, each walking through with one photo."""
    out: list[CastMember] = []
    for person in [people[i] for i in rng.permutation(len(people))]:
        if len(out) >= count:
            break
        if person.person_id in exclude:
            continue
        sprite = _crowd_sprite(person, cutter, rng, exclude=None)
        if sprite is not None:
            out.append(CastMember(person, None, sprite))
    return out


def _shuffled(paths: list[Path], rng: np.random.Generator) -> list[Path]:
    return [paths[i] for i in rng.permutation(len(paths))]


def _crowd_sprite(person: Person, cutter: FaceCutter, rng: np.random.Generator, *,
                  exclude: Path | None) -> Sprite | None:
    """A crowd photo other than ``exclude``: preferably one that passes the quality gate at its
    own resolution, so whether the face is usable in the video depends on the scene (size,
    blur, occlusion), not on a profile shot; otherwise any photo with a clear detection."""
    candidates = [p for p in _shuffled(person.crowd_photos, rng) if p != exclude]
    for path in candidates[:4]:
        if cutter.passes_gate(path):
            sprite = cutter.sprite(path)
            if sprite is not None:
                return sprite
    for path in candidates[:4]:
        sprite = cutter.sprite(path)
        if sprite is not None:
            return sprite
    return None
