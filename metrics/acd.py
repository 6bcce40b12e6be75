"""Average Content Distance (ACD, MoCoGAN; Table 1 and Table 4 of the paper).

Every frame is mapped to a face-recognition embedding e (``metrics.embedders``); the
embedders return unit-length vectors (see ``metrics/__init__.py`` for why). Then, per video
with frames t = 1..T and input (conditioning) frame embedding e_in:

    ACD-I = 1/T * sum_t ||e_t - e_in||_2                               (identity kept?)
    ACD-C = 2/(T(T-1)) * sum_{t<s} ||e_t - e_s||_2                      (content consistent?)

The functions here are pure formulas on arrays, vectorised over a batch of videos; they do
not normalise. ``emb_generated`` holds exactly the frames to score: whether a copy of the
input frame at t = 0 belongs to them is the evaluation's choice (it adds a 0 to ACD-I's mean).
Embeddings holding NaN or inf are refused with the array named (``metrics.checks``).
"""
from __future__ import annotations

import numpy as np

from .checks import finite_bounds

# ACD-C forms the (videos, pairs, D) differences in chunks of at most this many elements.
_PAIR_ELEMENTS_PER_CHUNK = 4_000_000


def _finite(values, name: str) -> np.ndarray:
    """`values` as float64, refused (naming `name`) if any is NaN or infinite."""
    values = np.asarray(values, dtype=np.float64)
    finite_bounds(values, name)
    return values


def l2_normalise(embeddings, eps: float = 1e-12, name: str = "embeddings") -> np.ndarray:
    """e / max(||e||_2, eps) along the last axis, in float64."""
    embeddings = _finite(embeddings, name)
    norms = np.linalg.norm(embeddings, axis=-1, keepdims=True)
    return embeddings / np.maximum(norms, eps)


def identity_distances(emb_generated, emb_input) -> np.ndarray:
    """Per-frame ||e_t - e_in||_2: (N, T, D) and (N, D) -> (N, T). ACD-I is its mean over t."""
    emb_generated = _finite(emb_generated, "emb_generated")
    emb_input = _finite(emb_input, "emb_input")
    if emb_generated.ndim != 3 or emb_input.shape != (emb_generated.shape[0], emb_generated.shape[2]):
        raise ValueError(
            f"expected (N, T, D) and (N, D) embeddings, got {emb_generated.shape} and {emb_input.shape}")
    return np.linalg.norm(emb_generated - emb_input[:, None, :], axis=-1)


def acd_i(emb_generated, emb_input) -> np.ndarray:
    """ACD-I per video: (N, T, D), (N, D) -> (N,).

    ACD-I = 1/T * sum_{t=1..T} ||e_t - e_in||_2, with e_t the embedding of generated frame t
    and e_in that of the input frame the video was generated from.
    """
    return identity_distances(emb_generated, emb_input).mean(axis=1)


def acd_c(emb) -> np.ndarray:
    """ACD-C per video: (N, T, D) -> (N,), T >= 2.

    ACD-C = 2/(T(T-1)) * sum_{1<=t<s<=T} ||e_t - e_s||_2, the mean distance over the
    T(T-1)/2 unordered pairs of distinct frames of one video. Differences are formed
    directly (not via the Gram matrix), so identical frames give exactly 0.
    """
    emb = _finite(emb, "emb")
    if emb.ndim != 3:
        raise ValueError(f"expected (N, T, D) embeddings, got {emb.shape}")
    n_videos, n_frames, dim = emb.shape
    if n_frames < 2:
        raise ValueError("ACD-C needs at least 2 frames per video")
    first, second = np.triu_indices(n_frames, k=1)
    videos_per_chunk = max(1, _PAIR_ELEMENTS_PER_CHUNK // (first.size * dim))
    result = np.empty(n_videos)
    for start in range(0, n_videos, videos_per_chunk):
        chunk = emb[start:start + videos_per_chunk]
        pair_distances = np.linalg.norm(chunk[:, first] - chunk[:, second], axis=-1)
        result[start:start + videos_per_chunk] = pair_distances.mean(axis=1)
    return result
