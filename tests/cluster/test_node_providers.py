"""Inference picks an accelerated ONNX Runtime execution provider when one is installed and
falls back to the CPU with a message that says why (issue #14). Run on the CPU here: the
accelerated cases are checked on the choice and on the fallback path, with the provider list
ONNX Runtime reports replaced."""

from __future__ import annotations

import pytest

from vigil.engine import model_files as mf
from vigil.errors import ModelError


@pytest.fixture(autouse=True)
def _fresh_notes(monkeypatch):
    monkeypatch.setattr(mf, "_provider_notes", [])


def test_auto_on_a_cpu_only_install_says_so():
    assert mf.choose_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert any("no CUDA, TensorRT or OpenVINO" in n for n in mf.provider_notes())


def test_auto_prefers_tensorrt_then_cuda_then_openvino():
    available = ["OpenVINOExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider",
                 "CPUExecutionProvider"]
    assert mf.choose_providers("auto", available) == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "OpenVINOExecutionProvider", "CPUExecutionProvider"]
    assert mf.choose_providers("auto", ["OpenVINOExecutionProvider", "CPUExecutionProvider"])[0] == \
        "OpenVINOExecutionProvider"


def test_a_named_provider_that_is_missing_is_an_error_not_a_silent_cpu_run():
    with pytest.raises(ModelError, match="CUDAExecutionProvider is not installed"):
        mf.choose_providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(ModelError, match="use auto"):
        mf.choose_providers("gpu", ["CPUExecutionProvider"])
    assert mf.choose_providers("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_an_installed_provider_that_cannot_start_falls_back_to_the_cpu(monkeypatch, session_settings):
    """onnxruntime-gpu on a machine without a GPU: the session is made on the CPU, and the
    node's notes say which provider failed and why."""
    ort = mf.onnxruntime_offline()
    real = ort.InferenceSession
    asked = []

    def fake_session(path, sess_options=None, providers=None):
        asked.append(list(providers))
        if providers[0] == "CUDAExecutionProvider":
            raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")
        return real(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", fake_session)
    path = mf.converted_model(mf.SFACE, session_settings.models_dir)
    session = mf.ort_session(path, 1)
    assert asked == [["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]]
    assert session.get_providers() == ["CPUExecutionProvider"]
    notes = mf.provider_notes()
    assert any("CUDAExecutionProvider could not start (CUDA driver version" in n for n in notes), notes


def test_the_setting_reaches_the_packs(monkeypatch, session_settings):
    """engine.execution_provider is what every pack's sessions are made with."""
    seen = []
    real = mf.ort_session

    def spy(path, threads=0, provider="auto"):
        seen.append(provider)
        return real(path, threads, provider)

    monkeypatch.setattr(mf, "ort_session", spy)
    from vigil.engine.packs import build_pack

    settings = session_settings.model_copy(update={"engine": session_settings.engine.model_copy(
        update={"execution_provider": "cpu"})})
    build_pack("sface", settings)
    assert seen and set(seen) == {"cpu"}
