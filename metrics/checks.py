"""The one input check every metric entry point shares: no NaN, no infinity.

A NaN frame (a diverged generator, a corrupt file) would otherwise pass silently: MSE, SSIM
and ACD return NaN for it, and a mean over videos either turns NaN or, where NaN is skipped,
drops that video without a word. So every float array a metric takes goes through
`finite_bounds` first and is refused with one line naming it. Integer arrays (uint8 frames)
cannot hold NaN or inf and are not scanned.
"""
from __future__ import annotations

import numpy as np


def finite_bounds(values: np.ndarray, name: str) -> tuple[float, float]:
    """(min, max) of `values`; ValueError naming `name` if it holds NaN or +-inf.

    np.min and np.max propagate NaN and return +-inf when present, so the bounds are finite
    exactly when every value is: the check costs the min/max pass the range checks need
    anyway, no extra pass and no boolean temporary. Empty and integer arrays give (0, 0) and
    (their min, max) without a NaN scan."""
    values = np.asarray(values)
    if values.size == 0:
        return 0.0, 0.0
    low, high = values.min(), values.max()
    if np.issubdtype(values.dtype, np.inexact) and not (np.isfinite(low) and np.isfinite(high)):
        n_nan = int(np.isnan(values).sum())                     # error path only: count what is wrong
        n_inf = int(np.isinf(values).sum())
        raise ValueError(f"{name}: {n_nan} NaN and {n_inf} infinite values among {values.size} "
                         f"(shape {values.shape}); metrics need finite input")
    return float(low), float(high)
