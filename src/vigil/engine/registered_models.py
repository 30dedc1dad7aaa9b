"""Recognisers that are not carried by a Python package: a site's licensed ArcFace-style model
(``vigil models add``) or a known third-party one fetched by pinned digest
(``vigil models install``).

Each lives in ``$VIGIL_HOME/model_registry/``: the repaired ONNX file (float32 where it can
be, batch dimension dynamic; mode 0600) and a small JSON manifest next to it saying how to
feed it (mean, std, colour order, one face per run or batched) and what it is (licence,
source, the SHA-256 of the file as given and of the file run). The database holds the
accountable record of who registered it and when (``vigil.services.models``); the engine
reads only this folder, so every pack name (``--pack NAME``) resolves without a database.

A model's id is ``NAME@<first 12 hex of the given file's SHA-256>`` (plus ``-flip`` with
flip averaging): calibration tables and stored templates are keyed by it, so a different
file under the same name can never reuse the old thresholds.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vigil.errors import ModelError
from vigil.fsutil import atomic_write

REGISTRY_DIR = "model_registry"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,19}$")  # fits a collection's pack column (20)
RESERVED = ("sface", "dlib", "fusion", "custom")
FILE_MODE = 0o600


@dataclass
class RecogniserSpec:
    name: str
    file: str  # file name inside the registry folder: the repaired model ONNX Runtime runs
    sha256: str  # of that file (checked at every load)
    source_sha256: str  # of the file as given (what a licence or publisher refers to)
    dim: int
    input_mean: float = 127.5
    input_std: float = 127.5
    rgb: bool = True
    per_face: bool = False  # dynamic quantisation: embed one face per run
    normalisation_from: str = "given"  # metadata | given | publisher
    kind: str = "registered"  # registered | installed
    licence: str = ""
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def model_id(self, flip: bool) -> str:
        return f"{self.name}@{self.source_sha256[:12]}" + ("-flip" if flip else "")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RecogniserSpec":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def registry_dir(home: Path) -> Path:
    return Path(home) / REGISTRY_DIR


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise ModelError(f"model name {name!r}: use 1-20 characters, lower-case letters, digits, '-' or '_', "
                         "starting with a letter")
    if name in RESERVED:
        raise ModelError(f"{name!r} is a built-in pack; choose another name")
    return name


def load_spec(home: Path, name: str) -> RecogniserSpec | None:
    if not NAME_PATTERN.match(name or ""):
        return None
    path = registry_dir(home) / f"{name}.json"
    if not path.is_file():
        return None
    try:
        return RecogniserSpec.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ModelError(f"the manifest of model {name!r} ({path}) is unreadable: {exc}") from exc


def list_specs(home: Path) -> list[RecogniserSpec]:
    folder = registry_dir(home)
    if not folder.is_dir():
        return []
    return [s for s in (load_spec(home, p.stem) for p in sorted(folder.glob("*.json"))) if s is not None]


def model_path(home: Path, spec: RecogniserSpec) -> Path:
    """The model file, checked against its recorded SHA-256 (a replaced file is refused)."""
    from vigil.engine.model_files import sha256_file

    path = registry_dir(home) / spec.file
    if not path.is_file():
        raise ModelError(f"model file of {spec.name!r} is missing: {path}")
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise ModelError(f"{path}: SHA-256 {digest[:16]}... is not the registered {spec.sha256[:16]}...; "
                         "refusing to load a changed model")
    return path


@dataclass
class Prepared:
    """A checked, repaired model ready to publish under its name (nothing written yet)."""

    spec: RecogniserSpec
    data: bytes

    def publish(self, home: Path, written: list[Path] | None = None) -> list[Path]:
        """Write the model and its manifest; each path is appended to ``written`` as soon as
        it exists, so a failure half-way can still be withdrawn."""
        written = [] if written is None else written
        folder = registry_dir(home)
        model = folder / self.spec.file
        manifest = folder / f"{self.spec.name}.json"
        written.append(model)
        atomic_write(model, self.data, mode=FILE_MODE)
        written.append(manifest)
        atomic_write(manifest, json.dumps(self.spec.to_dict(), indent=1) + "\n", mode=FILE_MODE)
        return written


def withdraw(paths: list[Path]) -> None:
    """Undo :meth:`Prepared.publish` (its transaction did not commit)."""
    for path in paths:
        path.unlink(missing_ok=True)
