"""The interface every face embedder implements, and what it returns."""
from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from ..acd import l2_normalise
from ..checks import finite_bounds


@dataclass(frozen=True)
class FrameEmbeddings:
    """Unit-length embeddings of frames and which frames used the no-face fallback.

    ``vectors`` is (..., D) float64 with ||v||_2 = 1; ``fell_back`` has the leading shape and
    is True where no face was detected and the embedder's whole-frame fallback was used.
    """

    vectors: np.ndarray
    fell_back: np.ndarray

    @property
    def n_fell_back(self) -> int:
        return int(self.fell_back.sum())


def as_uint8_frames(frames) -> np.ndarray:
    """(..., H, W, 3) uint8 frames; floats in [0, 1] are scaled by 255 and rounded."""
    frames = np.asarray(frames)
    if frames.ndim < 3 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (..., H, W, 3) RGB, got shape {frames.shape}")
    if frames.dtype == np.uint8:
        return frames
    if not np.issubdtype(frames.dtype, np.floating):
        raise TypeError(f"frames must be uint8 or float in [0, 1], got {frames.dtype}")
    low, high = finite_bounds(frames, "frames")     # NaN would become 0 below, silently
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError("frames: float frames must lie in [0, 1]; convert [-1, 1] ones with (x + 1) / 2")
    return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)


class Embedder(abc.ABC):
    """A face-recognition embedding of RGB frames.

    Subclasses implement ``_embed_batch`` on (M, H, W, 3) uint8 frames and return raw vectors
    (M, D) and a fallback mask (M,). The base class handles shapes, dtype, L2 normalisation and
    the running counts ``frames_embedded`` / ``frames_fell_back``.
    """

    name: str = ""
    dim: int = 0

    def __init__(self) -> None:
        self.frames_embedded = 0
        self.frames_fell_back = 0

    @abc.abstractmethod
    def _embed_batch(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(M, H, W, 3) uint8 -> raw embeddings (M, D) and fallback mask (M,)."""

    def embed(self, frames) -> FrameEmbeddings:
        """Embed frames of any leading shape: (..., H, W, 3) -> vectors (..., D), unit length.

        Pass (N, T, H, W, 3) videos to get (N, T, D), ready for ``acd_i`` / ``acd_c``.
        """
        frames = as_uint8_frames(frames)
        leading_shape = frames.shape[:-3]
        flat = frames.reshape((-1,) + frames.shape[-3:])
        if flat.shape[0] == 0:
            return FrameEmbeddings(np.zeros(leading_shape + (self.dim,)), np.zeros(leading_shape, bool))
        raw, fell_back = self._embed_batch(flat)
        self.frames_embedded += flat.shape[0]
        self.frames_fell_back += int(fell_back.sum())
        return FrameEmbeddings(
            vectors=l2_normalise(raw, name=f"{self.name} embeddings").reshape(leading_shape + (raw.shape[-1],)),
            fell_back=np.asarray(fell_back, dtype=bool).reshape(leading_shape),
        )

    def describe(self) -> dict:
        """What produced the embeddings, for logging next to the scores."""
        return {"embedder": self.name, "dim": self.dim,
                "frames_embedded": self.frames_embedded, "frames_fell_back": self.frames_fell_back}


class MissingWeightsError(FileNotFoundError):
    """A model file an embedder needs is not on disk (nothing is downloaded at run time)."""
