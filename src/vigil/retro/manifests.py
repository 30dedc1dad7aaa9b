"""What to enrol: one image, a folder per subject, or a CSV manifest, read into items.

File handling only (no database): the enrolment use case (``vigil.services.enrolment``)
turns each item into a subject, an image and a template."""

from __future__ import annotations

import csv
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


def items_from_dir(folder: Path) -> list[tuple[Path, EnrolItem]]:
    folder = Path(folder)
    if not folder.is_dir():
        raise VigilError(f"{folder}: not a folder")
    items = []
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(person.iterdir()):
            if f.suffix.lower() in IMAGE_EXTS and f.is_file():
                items.append((f, EnrolItem(str(f), person.name.replace("_", " "))))
    if not items:
        raise VigilError(f"{folder}: no images found (expected one sub-folder of images per subject)")
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
