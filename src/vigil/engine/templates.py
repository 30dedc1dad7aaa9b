"""Face templates: a unit vector plus the exact model that made it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.errors import ModelMismatchError


@dataclass(frozen=True)
class Template:
    model_id: str
    vector: np.ndarray

    def similarity(self, other: "Template") -> float:
        check_same_model(self.model_id, other.model_id)
        return float(np.dot(self.vector, other.vector))


def check_same_model(a: str, b: str) -> None:
    if a != b:
        raise ModelMismatchError(
            f"templates come from different models ({a} vs {b}) and cannot be compared; "
            "re-extract one side with the other's pack (vigil reindex --pack ...)"
        )
