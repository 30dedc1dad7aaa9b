import io

import numpy as np
import pytest
from PIL import Image

from tests.conftest import demo_bytes


@pytest.fixture()
def vigil(settings):
    from vigil.services import forget_contexts, get_vigil

    forget_contexts()
    v = get_vigil(settings)
    yield v
    forget_contexts()


@pytest.fixture()
def admin(vigil):
    return vigil.cli_actor()


def variant(name: str, k: int) -> bytes:
    """A distinct file of the same photo (different crop/quality), so content hashes differ."""
    img = Image.open(io.BytesIO(demo_bytes(name))).convert("RGB")
    w, h = img.size
    img = img.crop((k % 5, k % 7, w - (k % 3), h - (k % 4)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80 + (k % 15))
    return buf.getvalue()


@pytest.fixture()
def people_dir(tmp_path):
    """Folder-per-subject layout: Barack Obama (3 photos) and Joe Biden (1)."""
    root = tmp_path / "people"
    for person, files in {"Barack_Obama": ["obama.jpg", "obama_speech.jpg", "obama_standing.jpg"],
                          "Joe_Biden": ["biden.jpg"]}.items():
        (root / person).mkdir(parents=True)
        for f in files:
            (root / person / f).write_bytes(demo_bytes(f))
    return root


def vectors_of(vigil, model_id=None):
    from sqlalchemy import select

    from vigil.store.schema import TemplateRow
    from vigil.store.store import template_context

    with vigil.store.session() as s:
        rows = s.scalars(select(TemplateRow)).all()
        return [vigil.store.open_vector(r.vector_enc, template_context(r.image_id, r.model_id)) for r in rows]


__all__ = ["variant", "vectors_of", "np"]


def labelled_site_folder(folder):
    """16 'people' x 2 photos (distinct files of the demo portraits): enough impostor pairs
    (>= 100) for a calibration table."""
    names = ["obama.jpg", "biden.jpg", "obama_speech.jpg", "obama_standing.jpg"]
    for person in range(16):
        d = folder / f"person{person:02d}"
        d.mkdir(parents=True)
        for k in range(2):
            (d / f"{k}.jpg").write_bytes(variant(names[(person + k) % 4], person * 3 + k))
    return folder
