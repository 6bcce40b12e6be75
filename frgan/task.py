"""What a dataset gives every method: training frames with their motion conditions, and the
test set of the paper's protocol. Methods see only this, never the dataset's own layout.

Conditions M (paper 3.1), as float tensors (B, C, H, W):
- faces: normal maps of the fitted 3D faces, RGB-encoded in [0, 1], background 0 (C = 3);
- actors: one Gaussian heatmap per joint in [0, 1], invisible joints zero (C = 13).
Frames are float tensors in [-1, 1] (B, 3, H, W) as the networks use them (tanh outputs).

The test set (written by the conditions stage) has one item per generated video:
- input: the frame the method observes (faces: the target subject's first frame; actors: the
  last observed frame) and its condition;
- cond: the conditions of the frames to generate (faces: the reference expression retargeted to
  the target identity; actors: heatmaps of the LSTM's predicted poses), cond_gt for actors (the
  ground-truth poses, Table 3's "MSE (GT)");
- truth: the real frames to compare with, where they exist (actors: the real future frames;
  faces-synth: the true retargeted video the generator can render; real MUG: none).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch

from frgan.config import ACTOR_DATASETS, Params
from frgan.data.clipstore import ClipStore
from frgan.data.errors import DatasetError
from frgan.data.skeleton import N_JOINTS


def to_model_frames(frames_u8: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames_u8)).float().div_(127.5).sub_(1.0)
    return x.movedim(-1, -3)


def to_uint8_frames(frames: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) float in [-1, 1] -> (..., H, W, 3) uint8 (rounded, clipped)."""
    x = frames.detach().float().movedim(-3, -1).add(1.0).mul(127.5).round().clamp(0, 255)
    return x.to(torch.uint8).cpu().numpy()


@dataclass
class TestItems:
    index: pd.DataFrame                 # item, clip_id, subject, label (+ dataset-specific columns)
    input: torch.Tensor                 # (N, 3, H, W) in [-1, 1]
    input_cond: torch.Tensor            # (N, C, H, W)
    cond: torch.Tensor                  # (N, T, C, H, W)
    cond_gt: Optional[torch.Tensor]     # (N, T, C, H, W) or None
    truth: Optional[np.ndarray]         # (N, T, H, W, 3) uint8 or None

    @property
    def n_frames(self) -> int:
        return self.cond.shape[1]


class Task:
    """One dataset's clip store + conditions, seen the same way by every method."""

    def __init__(self, dataset: str, params: Params, store: ClipStore, conditions: Path):
        self.dataset = dataset
        self.store = store
        self.conditions = Path(conditions)
        self.kind = "actors" if dataset in ACTOR_DATASETS else "faces"
        self.size = int(store.meta["height"])
        self.channels = N_JOINTS if self.kind == "actors" else 3
        self.sigma_px = params.conditions.heatmap_sigma * self.size
        self._sampling_tables: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        if self.kind == "faces":
            self._maps = self._open_maps("maps.u8", (store.meta["n_frames"], self.size, self.size, 3))

    # -- conditions -----------------------------------------------------------------------------

    def _open_maps(self, name: str, shape: tuple[int, ...]) -> np.memmap:
        path = self.conditions / name
        if not path.is_file() or path.stat().st_size != int(np.prod(shape)):
            raise DatasetError(f"{path}: missing or not {shape} uint8; rerun `dvc repro conditions@{self.dataset}`")
        return np.memmap(path, dtype=np.uint8, mode="r", shape=shape)

    def heatmaps(self, joints: np.ndarray, visibility: np.ndarray) -> torch.Tensor:
        from frgan.conditions.heatmaps import joint_heatmaps
        return joint_heatmaps(joints, visibility, self.size, self.sigma_px)

    def cond_of_rows(self, rows: np.ndarray) -> torch.Tensor:
        """Training conditions of clip-store frame rows -> (n, C, H, W)."""
        if self.kind == "actors":
            return self.heatmaps(np.asarray(self.store.gt("joints")[rows]),
                                 np.asarray(self.store.gt("visibility")[rows]))
        return torch.from_numpy(np.ascontiguousarray(self._maps[rows])).float().div_(255.0).movedim(-1, -3)

    def frames_of_rows(self, rows: np.ndarray) -> torch.Tensor:
        return to_model_frames(self.store.frames[rows])

    # -- training samples -----------------------------------------------------------------------

    def clips(self, split: str, min_length: int = 2, label: Optional[str] = None) -> pd.DataFrame:
        """The split's clips of at least `min_length` frames (only class `label` if given)."""
        clips = self.store.split(split)
        clips = clips[clips.length >= min_length]
        if label is not None:
            clips = clips[clips.label == label]
        if clips.empty:
            raise DatasetError(f"{self.store.root}: split {split!r} has no clip of {min_length}+ frames"
                               + (f" labelled {label!r}" if label is not None else ""))
        return clips

    def _starts_lengths(self, split: str, min_length: int, label: Optional[str]) -> tuple[np.ndarray, np.ndarray]:
        """`clips(...)`'s start and length columns as arrays, cached: the samplers draw from the
        same clips every training step (filtering the index table each time cost more than
        drawing)."""
        key = (split, min_length, label)
        cached = self._sampling_tables.get(key)
        if cached is None:
            clips = self.clips(split, min_length=min_length, label=label)
            cached = self._sampling_tables[key] = (clips.start.to_numpy(), clips.length.to_numpy())
        return cached

    def sample_pairs(self, split: str, batch: int, rng: np.random.Generator, label: Optional[str] = None):
        """G_M training pairs with random jumps in time (paper 3.2): for each sample a clip, a
        random t and a random k >= 1. Returns I_t, M_t, I_{t+k}, M_{t+k}."""
        starts, lengths = self._starts_lengths(split, 2, label)
        picked = rng.integers(0, len(starts), batch)
        length = lengths[picked]
        t = rng.integers(0, length - 1)                                # t in [0, L-2]
        k = 1 + rng.integers(0, length - 1 - t)                        # t+k in [t+1, L-1]
        src = starts[picked] + t
        dst = src + k
        return (self.frames_of_rows(src), self.cond_of_rows(src),
                self.frames_of_rows(dst), self.cond_of_rows(dst))

    def sample_windows(self, split: str, batch: int, length: int, rng: np.random.Generator,
                       label: Optional[str] = None):
        """G_R training windows: a first frame I_s with M_s, then the `length` frames after it
        with their conditions. Returns I_s (B,3,H,W), M_s (B,C,H,W), real clip (B,3,K,H,W),
        condition clip (B,C,K,H,W)."""
        starts, lengths = self._starts_lengths(split, length + 1, label)
        picked = rng.integers(0, len(starts), batch)
        s = rng.integers(0, lengths[picked] - length)
        first = starts[picked] + s
        rows = first[:, None] + 1 + np.arange(length)[None, :]
        frames = self.frames_of_rows(rows.ravel()).reshape(batch, length, 3, self.size, self.size)
        conds = self.cond_of_rows(rows.ravel()).reshape(batch, length, self.channels, self.size, self.size)
        return (self.frames_of_rows(first), self.cond_of_rows(first),
                frames.transpose(1, 2), conds.transpose(1, 2))

    # -- the test set ---------------------------------------------------------------------------

    def _load_array(self, name: str) -> np.ndarray:
        """A conditions array; a missing or truncated file is a one-line DatasetError naming it."""
        path = self.conditions / name
        try:
            return np.load(path)
        except (OSError, ValueError, EOFError) as exc:
            raise DatasetError(f"{path}: missing, truncated or not a .npy array ({type(exc).__name__}); "
                               "rerun the conditions stage") from None

    def test_items(self) -> TestItems:
        index = pd.read_csv(self.conditions / "test_index.csv", dtype={"clip_id": str, "subject": str})
        starts = self.store.index.set_index("clip_id").loc[index.clip_id, "start"].values
        input_rows = starts + index.input_frame.values
        inputs = self.frames_of_rows(input_rows)
        input_cond = self.cond_of_rows(input_rows)
        n, s = len(index), self.size
        if self.kind == "actors":
            t = int(index.n_targets.iloc[0])
            pred = self._load_array("pred_joints.npy")
            ones = np.ones(pred.shape[:-1], np.float32)
            cond = self.heatmaps(pred, ones)
            cond_gt = self.heatmaps(self._load_array("gt_joints.npy"), self._load_array("gt_visibility.npy"))
            target_rows = (starts + index.first_target.values)[:, None] + np.arange(t)[None, :]
            truth = np.asarray(self.store.frames[target_rows.ravel()]).reshape(n, t, s, s, 3)
        else:
            t = int(index.n_targets.iloc[0])
            maps = self._open_maps("test_cond.u8", (n, t, s, s, 3))
            cond = torch.from_numpy(np.array(maps)).float().div_(255.0).movedim(-1, -3)
            cond_gt = None
            truth_path = self.conditions / "test_truth.u8"
            truth = (np.asarray(self._open_maps("test_truth.u8", (n, t, s, s, 3)))
                     if truth_path.is_file() else None)
        return TestItems(index, inputs, input_cond, cond, cond_gt, truth)
