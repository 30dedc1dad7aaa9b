"""Model packs: a detector and an embedder that belong together, with a calibration table.

=========  ==================================  ===========================================
pack       detector                            embedder
=========  ==================================  ===========================================
sface      YuNet (ONNX Runtime)                SFace fp32, our alignment, flip averaging
dlib       dlib HOG (or CNN) + 5 landmarks     dlib ResNet descriptor on dlib's 150px chip
fusion     YuNet                               SFace and dlib, score-level fused
custom     YuNet                               a site's ArcFace-style ONNX model (config)
faceplugin YuNet                               Faceplugin's 512-d ArcFace-style model, fetched
                                               by ``vigil models install faceplugin``
NAME       YuNet                               a model registered by ``vigil models add``
fusion:A+B YuNet                               any two of the above, score-level fused
=========  ==================================  ===========================================

Registered and installed models live in the data directory (:mod:`vigil.engine.registered_models`);
``fusion:A+B`` takes its weight from ``fusion_weight_A+B.json`` (site calibration folder, then
the shipped one; fitted by ``scripts/build_calibration.py --fit-fusion``), else 0.5.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from vigil.config import Settings
from vigil.engine import model_files as mf
from vigil.engine import registered_models as registry
from vigil.engine.calibration import (
    Calibration,
    load_calibration,
    site_calibration_dir,
    supported_references,
)
from vigil.errors import ModelError

PACK_NAMES = ("sface", "dlib", "fusion", "custom", "faceplugin")
LIVE_PACKS = ("sface", "fusion", "custom", "faceplugin")  # YuNet-detected: batched, multi-scale detection
FUSED_PREFIX = "fusion:"


def check_live_pack(pack_name: str) -> None:
    """Refuse a pack that cannot run live (watchlists and deployments). Registered models are
    YuNet-detected ArcFace-style recognisers, so they can; ``dlib`` (HOG detection) and the
    general ``fusion:A+B`` (the live cascade is built for the ``fusion`` pack) cannot."""
    if pack_name == "dlib" or pack_name.startswith(FUSED_PREFIX):
        raise ModelError(f"the {pack_name!r} pack cannot run live (stills only); watchlists and live "
                         f"deployments use {', '.join(LIVE_PACKS)} or a model registered with 'vigil models add'")
_cache: dict[tuple, "Pack"] = {}
_cache_lock = threading.Lock()


@dataclass
class Pack:
    name: str
    detector: object
    embedder: object
    home: Path | None = None
    calibration_path: Path | None = None
    _calibration: Calibration | None = field(default=None, repr=False)
    _mean_tables: dict[int, Calibration] = field(default_factory=dict, repr=False)

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    @property
    def dim(self) -> int:
        return self.embedder.dim

    @property
    def calibration(self) -> Calibration:
        if self._calibration is None:
            site = site_calibration_dir(self.home) if self.home else None
            self._calibration = load_calibration(self.model_id, site, self.calibration_path)
        return self._calibration

    def calibration_for(self, references: int) -> Calibration:
        """The table of entries that are the mean template of ``references`` photos (1: the
        ordinary table); it lies beside the ordinary one (see ``calibration_in_effect``)."""
        if references == 1:
            return self.calibration
        if references not in self._mean_tables:
            site = site_calibration_dir(self.home) if self.home else None
            self._mean_tables[references] = load_calibration(self.model_id, site, self.calibration_path, references)
        return self._mean_tables[references]

    def supported_references(self, limit: int) -> int:
        site = site_calibration_dir(self.home) if self.home else None
        return supported_references(self.model_id, site, self.calibration_path, limit)

    def reload_calibration(self) -> None:
        self._calibration = None
        self._mean_tables.clear()


def fusion_weight() -> dict:
    path = resources.files("vigil.engine") / "calibration" / "fusion_weight.json"
    if not path.is_file():
        return {"weight": 0.5, "fitted_on": "default (no fitted weight shipped)"}
    return json.loads(path.read_text())


def fused_weight(first: str, second: str, home: Path | None) -> dict:
    """The fitted weight of ``fusion:first+second``: the site's, else the shipped, else 0.5."""
    name = f"fusion_weight_{first}+{second}.json"
    for path in ([site_calibration_dir(home) / name] if home else []):
        if path.is_file():
            return {**json.loads(path.read_text()), "source": "site"}
    shipped = resources.files("vigil.engine") / "calibration" / name
    if shipped.is_file():
        return {**json.loads(shipped.read_text()), "source": "shipped"}
    return {"weight": 0.5, "fitted_on": "none (default 0.5: run scripts/build_calibration.py --fit-fusion)",
            "source": "default"}


def _yunet(settings: Settings):
    from vigil.engine.yunet import YuNetDetector

    session = mf.ort_session(mf.converted_model(mf.YUNET, settings.models_dir, spatial=True), settings.engine.threads,
                             settings.engine.execution_provider)
    return YuNetDetector(session, score_threshold=settings.engine.detection_score,
                         nms_threshold=settings.engine.detection_nms, max_side=settings.engine.max_detector_side)


def _sface(settings: Settings):
    from vigil.engine.onnx_embedder import OnnxArcFaceEmbedder

    flip = settings.engine.flip_augment
    session = mf.ort_session(mf.converted_model(mf.SFACE, settings.models_dir), settings.engine.threads,
                             settings.engine.execution_provider)
    return OnnxArcFaceEmbedder(session, model_id="sface-2021dec-fp32" + ("-flip" if flip else ""),
                               mean=0.0, std=1.0, rgb=True, flip=flip, batch_size=settings.engine.batch_size)


def _custom(settings: Settings):
    from vigil.engine.onnx_embedder import OnnxArcFaceEmbedder

    cfg = settings.custom_pack
    if not cfg.model_path:
        raise ModelError("the custom pack needs custom_pack.model_path (VIGIL_CUSTOM_PACK__MODEL_PATH)")
    path = Path(cfg.model_path).expanduser()
    if not path.is_file():
        raise ModelError(f"custom model not found: {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    session = mf.ort_session(path, settings.engine.threads, settings.engine.execution_provider)
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or (isinstance(shape[2], int) and shape[2] != 112):
        raise ModelError(f"custom model input {shape} is not an ArcFace-style 112x112 image")
    model_id = (cfg.model_id or path.stem) + f"@{digest}"
    return OnnxArcFaceEmbedder(session, model_id=model_id, mean=cfg.input_mean, std=cfg.input_std,
                               rgb=cfg.rgb, flip=settings.engine.flip_augment, batch_size=settings.engine.batch_size)


def _registered(name: str, settings: Settings):
    from vigil.engine.onnx_embedder import OnnxArcFaceEmbedder

    spec = registry.load_spec(settings.home, name)
    if spec is None:
        if name == "faceplugin":
            raise ModelError("the faceplugin pack is not installed: run 'vigil models install faceplugin'")
        return None
    flip = settings.engine.flip_augment
    session = mf.ort_session(registry.model_path(settings.home, spec), settings.engine.threads,
                             settings.engine.execution_provider)
    return OnnxArcFaceEmbedder(session, model_id=spec.model_id(flip), mean=spec.input_mean, std=spec.input_std,
                               rgb=spec.rgb, flip=flip, batch_size=settings.engine.batch_size,
                               per_face=spec.per_face)


def _component(name: str, settings: Settings):
    """One recogniser of a ``fusion:A+B`` pack."""
    if name == "sface":
        return _sface(settings)
    if name == "dlib":
        from vigil.engine.dlib_pack import DlibEmbedder

        return _dlib_embedder(settings)
    if name == "custom":
        return _custom(settings)
    embedder = _registered(name, settings)
    if embedder is None:
        raise ModelError(f"unknown model {name!r} in a fused pack; use sface, dlib, custom or a registered model")
    return embedder


def _dlib_embedder(settings: Settings):
    """dlib's recogniser, its models loaded now: without the optional extra a pack that needs
    it fails when it is chosen (creating a gallery, listing models), not at its first face."""
    from vigil.engine.dlib_pack import DlibEmbedder

    embedder = DlibEmbedder(flip=settings.engine.flip_augment)
    embedder.load()
    return embedder


def _fused(name: str, settings: Settings) -> Pack:
    from vigil.engine.fusion import FusionEmbedder

    parts = name[len(FUSED_PREFIX):].split("+")
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise ModelError(f"a fused pack names two different models: fusion:A+B (got {name!r})")
    weight = float(fused_weight(parts[0], parts[1], settings.home)["weight"])
    embedder = FusionEmbedder(_component(parts[0], settings), _component(parts[1], settings), weight)
    return Pack(name, _yunet(settings), embedder, settings.home)


def build_pack(name: str, settings: Settings) -> Pack:
    if name == "sface":
        return Pack("sface", _yunet(settings), _sface(settings), settings.home)
    if name == "dlib":
        from vigil.engine.dlib_pack import DlibDetector

        return Pack("dlib", DlibDetector("hog"), _dlib_embedder(settings), settings.home)
    if name == "fusion":
        from vigil.engine.fusion import FusionEmbedder

        weight = float(fusion_weight()["weight"])
        embedder = FusionEmbedder(_sface(settings), _dlib_embedder(settings), weight)
        return Pack("fusion", _yunet(settings), embedder, settings.home)
    if name == "custom":
        cal = Path(settings.custom_pack.calibration_path) if settings.custom_pack.calibration_path else None
        return Pack("custom", _yunet(settings), _custom(settings), settings.home, cal)
    if name.startswith(FUSED_PREFIX):
        return _fused(name, settings)
    embedder = _registered(name, settings)
    if embedder is not None:
        return Pack(name, _yunet(settings), embedder, settings.home)
    raise ModelError(f"unknown pack {name!r}; choose one of {', '.join(PACK_NAMES)}, a model registered with "
                     "'vigil models add', or fusion:A+B")


def get_pack(name: str | None, settings: Settings) -> Pack:
    """A loaded pack, shared within the process (models are loaded once)."""
    name = name or settings.engine.pack
    key = (name, str(settings.home), settings.engine.model_dump_json(), settings.custom_pack.model_dump_json())
    with _cache_lock:
        if key not in _cache:
            _cache[key] = build_pack(name, settings)
        return _cache[key]


def pack_for_model_id(model_id: str, settings: Settings) -> Pack:
    names = ["sface", "fusion", "dlib", "custom"] + [spec.name for spec in registry.list_specs(settings.home)]
    for name in names:
        try:
            pack = get_pack(name, settings)
        except ModelError:
            continue
        if pack.model_id == model_id:
            return pack
    raise ModelError(f"no installed pack produces model {model_id!r}")
