"""What to enrol: one image, a folder per subject, or a CSV manifest, read into items.

File handling only (no database): the enrolment use case (``vigil.services.enrolment``)
turns each item into a subject, an image and a template."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from vigil.errors import VigilError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


@dataclass
class EnrolItem:
    source: str  # a path or label, for reports only (never stored)
    name: str
    category: str | None = None
    reference: str = ""
    subject_id: str | None = None
    problem: str | None = None  # why this file is skipped without being read (reported as rejected)
    face: int | None = None  # which face of the image (1-based, reading order); None: its only or clear one


NOT_UTF8 = "the folder name is not valid UTF-8, so it names no one: skipped (rename the folder to the person's name)"


def printable(path: Path | str) -> str:
    """A path as text that can always be printed and stored: bytes that are not UTF-8 (kept by
    Python as surrogates) are shown as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of a file name (surrogateescape)
        return False
    return True


def items_from_dir(folder: Path) -> list[tuple[Path, EnrolItem]]:
    """One item per image in each sub-folder, the folder naming the person. A folder whose name
    is not UTF-8 names no one: its images become items with a ``problem`` (reported, not read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VigilError(f"{printable(folder)}: not a folder")
    items = []
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        named = is_utf8(person.name)
        for f in sorted(person.iterdir()):
            if f.suffix.lower() in IMAGE_EXTS and f.is_file():
                item = EnrolItem(printable(f), person.name.replace("_", " ") if named else "",
                                 problem=None if named else NOT_UTF8)
                items.append((f, item))
    if not items:
        raise VigilError(f"{printable(folder)}: no images found (expected one sub-folder of images per subject)")
    return items


def items_from_csv(manifest: Path) -> list[tuple[Path, EnrolItem]]:
    manifest = Path(manifest)
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise VigilError(f"{manifest}: cannot read the manifest ({exc.__class__.__name__})") from None
    reader = csv.DictReader(text.splitlines())
    required = {"path", "name"}
    if not reader.fieldnames or not required <= {f.strip() for f in reader.fieldnames}:
        raise VigilError(f"{manifest}: the manifest needs the columns path,name[,category,reference]")
    items = []
    for line, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        if not row.get("path") or not row.get("name"):
            raise VigilError(f"{manifest}: line {line} lacks a path or a name")
        path = Path(row["path"])
        if not path.is_absolute():
            path = manifest.parent / path
        items.append((path, EnrolItem(str(path), row["name"], row.get("category") or None, row.get("reference", ""))))
    return items
