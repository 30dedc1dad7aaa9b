"""ArcFace-style recognisers in ONNX: aligned 112x112 face in, embedding out.

SFace (the default) is one of these with no input normalisation (its graph subtracts and
scales internally); a site's own licensed model is another, with its mean/std from config.
Embeddings are L2-normalised float32; with ``flip`` the face and its mirror image are
embedded in the same batch and their embeddings averaged (flip test-time augmentation).
``per_face`` runs the network once per image instead: a dynamically quantised model computes
its activation scales over the whole batch, so batching would change each face's embedding.
"""

from __future__ import annotations

import numpy as np

from vigil.engine.align import align_face
from vigil.engine.faces import Face


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class OnnxArcFaceEmbedder:
    def __init__(self, session, *, model_id: str, mean: float = 0.0, std: float = 1.0,
                 rgb: bool = True, flip: bool = True, batch_size: int = 32, size: int = 112,
                 per_face: bool = False):
        self.session = session
        self.model_id = model_id
        self.mean, self.std, self.rgb = mean, std, rgb
        self.flip = flip
        self.batch_size = batch_size
        self.size = size
        self.per_face = per_face
        self.input_name = session.get_inputs()[0].name
        self.dim = int(session.get_outputs()[0].shape[-1])

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        return align_face(image, face.landmarks, self.size)

    def embed(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        return self.embed_aligned([self.align(image, f) for f in faces])

    def embed_aligned(self, crops: list[np.ndarray]) -> np.ndarray:
        """(n, dim) unit rows for BGR 112x112 crops."""
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(crops), self.batch_size):
            chunk = np.stack(crops[start : start + self.batch_size])
            if self.flip:
                chunk = np.concatenate([chunk, chunk[:, :, ::-1]])
            blob = chunk[..., ::-1] if self.rgb else chunk
            blob = (blob.astype(np.float32) - self.mean) / self.std
            blob = np.ascontiguousarray(blob.transpose(0, 3, 1, 2))
            if self.per_face:
                emb = np.concatenate([self.session.run(None, {self.input_name: blob[i : i + 1]})[0]
                                      for i in range(len(blob))])
            else:
                emb = self.session.run(None, {self.input_name: blob})[0]
            if self.flip:
                n = len(emb) // 2
                emb = l2_normalise(emb[:n]) + l2_normalise(emb[n:])
            out.append(l2_normalise(emb))
        return np.concatenate(out)
