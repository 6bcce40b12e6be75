"""The one record every dataset adapter yields, before it goes into the clip store."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The three subject-disjoint groups of paper section 4.1: G_M trains on the first, G_R on the
# second, evaluation runs on the third.
SPLITS = ("gm", "gr", "test")


@dataclass
class VideoRecord:
    """One video of one subject performing one labelled motion.

    frames: (T, H, W, 3) uint8 RGB.
    gt: per-frame ground truth, every array with leading dimension T (float32 unless stated):
        faces: "landmarks" (T, 68, 2) px, "alpha" (T, n_id), "beta" (T, n_expr), "pose" (T, 6);
        actors: "joints" (T, 13, 2) px, "visibility" (T, 13).
    """

    clip_id: str
    subject: str
    label: str
    split: str
    frames: np.ndarray
    gt: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"clip {self.clip_id}: split {self.split!r}, expected one of {SPLITS}")
        f = self.frames
        if f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3:
            raise ValueError(
                f"clip {self.clip_id}: frames {f.dtype}{tuple(f.shape)}, expected uint8 (T, H, W, 3)")
        for name, arr in self.gt.items():
            if arr.shape[0] != f.shape[0]:
                raise ValueError(
                    f"clip {self.clip_id}: gt[{name!r}] has {arr.shape[0]} rows, expected {f.shape[0]}")
