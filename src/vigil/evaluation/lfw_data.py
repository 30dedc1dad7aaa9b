"""Reading the LFW folder layout: images, pairs files, sex and race labels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vigil.errors import VigilError


@dataclass(frozen=True)
class Pair:
    a: tuple[str, int]
    b: tuple[str, int]
    genuine: bool
    fold: int


class LFW:
    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser()
        self.images_dir = self.root / "lfw"
        if not self.images_dir.is_dir():
            raise VigilError(f"{self.root}: not an LFW folder (expected {self.images_dir}/<Name>/<Name>_NNNN.jpg)")

    def path(self, name: str, number: int) -> Path:
        return self.images_dir / name / f"{name}_{number:04d}.jpg"

    def pairs(self, filename: str = "pairs.txt") -> list[Pair]:
        path = self.root / filename
        if not path.is_file():
            raise VigilError(f"{path}: pairs file not found")
        lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
        header = lines[0]
        if len(header) == 2:  # "folds pairs_per_side"
            folds, per_side = int(header[0]), int(header[1])
        else:  # dev files: a single count
            folds, per_side = 1, int(header[0])
        body = lines[1:]
        pairs = []
        for i, parts in enumerate(body):
            fold = i // (2 * per_side) if folds > 1 else 0
            if len(parts) == 3:
                pairs.append(Pair((parts[0], int(parts[1])), (parts[0], int(parts[2])), True, fold))
            elif len(parts) == 4:
                pairs.append(Pair((parts[0], int(parts[1])), (parts[2], int(parts[3])), False, fold))
            else:
                raise VigilError(f"{path}: line {i + 2} is not a pair: {' '.join(parts)}")
        return pairs

    def identities(self, *, clean: bool = True) -> dict[str, list[Path]]:
        """Person -> image paths. With ``clean`` (the default) the reviewed label errors in
        ``lfw_errata.json`` are corrected: aliases of one person are merged, misfiled images
        dropped. The standard pairs files are never changed."""
        out = {}
        for folder in sorted(p for p in self.images_dir.iterdir() if p.is_dir()):
            files = sorted(folder.glob("*.jpg"))
            if files:
                out[folder.name] = files
        return apply_errata(out) if clean else out

    def sex_labels(self) -> dict[str, str]:
        """Image file name -> 'male'/'female'; names in both lists are left out (unknown)."""
        labels_dir = self.root / "labels"
        male = _read_list(labels_dir / "male_names.txt")
        female = _read_list(labels_dir / "female_names.txt")
        both = male & female
        out = {n: "male" for n in male - both}
        out.update({n: "female" for n in female - both})
        return out

    def race_labels(self) -> dict[str, str]:
        """Person name -> race label where labelled (866 identities)."""
        path = self.root / "labels" / "lfw_race_dict.json"
        if not path.is_file():
            return {}
        data = json.loads(path.read_text())
        return {str(k).replace(" ", "_"): str(v) for k, v in data.items()}


def load_errata() -> dict:
    from importlib import resources

    return json.loads((resources.files("vigil.evaluation") / "lfw_errata.json").read_text())


def apply_errata(identities: dict[str, list[Path]]) -> dict[str, list[Path]]:
    errata = load_errata()
    dropped = {name for name, _ in errata["misfiled_images"]}
    out = {person: [f for f in files if f.name not in dropped] for person, files in identities.items()}
    for keep, alias, _ in errata["same_person"]:
        if keep in out and alias in out:
            out[keep] = sorted(out[keep] + out.pop(alias))
    return {person: files for person, files in out.items() if files}


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip()}
