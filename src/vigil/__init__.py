"""Vigil: accountable facial recognition for live and retrospective identification."""

import os as _os

__version__ = "0.1.0"

# FAISS's OpenMP threads spin by default; on a small machine shared with ONNX Runtime and
# video decoding that made index training 20x slower (docs/index.md). Passive waiting costs
# nothing measurable on a quiet machine. Set before any OpenMP runtime starts.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# ONNX Runtime 1.32 uploads usage telemetry (mobile.events.data.microsoft.com) from its own
# threads; disable_telemetry_events() alone did not stop the upload seen under load. A
# surveillance product makes no network call its operator did not configure, so the
# runtime's own switch is set before onnxruntime is first imported (docs/security.md).
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"
