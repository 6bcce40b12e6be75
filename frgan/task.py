"""What a dataset gives every method: training frames with their motion conditions, and the
test set of the paper's protocol. Methods see only this, never the dataset's own layout.
torch is imported where tensors are made: the evaluate and reference stages read the test set's
uint8 frames (`test_frames`) without it (importing torch is 1.4 s of every stage process).

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
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
import pandas as pd

from frgan.config import ACTOR_DATASETS, Params
from frgan.data.clipstore import ClipStore, split_names
from frgan.data.errors import DatasetError
from frgan.data.skeleton import N_JOINTS

if TYPE_CHECKING:   # annotations only: torch is imported where tensors are made
    import torch


def to_model_frames(frames_u8: np.ndarray, device=None) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float in [-1, 1], on `device` (default: the CPU);
    the uint8 bytes travel, a quarter of the float ones."""
    import torch
    x = torch.from_numpy(np.ascontiguousarray(frames_u8)).to(device).float().div_(127.5).sub_(1.0)
    return x.movedim(-1, -3)


def to_uint8_frames(frames: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) float in [-1, 1] -> (..., H, W, 3) uint8 (rounded, clipped)."""
    import torch
    x = frames.detach().float().movedim(-3, -1).add(1.0).mul(127.5).round().clamp(0, 255)
    return x.to(torch.uint8).cpu().numpy()


@dataclass
class TestFrames:
    """The test set's frames alone, as uint8 (what scoring needs; no tensors)."""
    index: pd.DataFrame                 # item, clip_id, subject, label (+ dataset-specific columns)
    input: np.ndarray                   # (N, H, W, 3) uint8: the frame each item's method observes
    truth: Optional[np.ndarray]         # (N, T, H, W, 3) uint8 or None

    __test__ = False                    # not a pytest class


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

    def heatmaps(self, joints: np.ndarray, visibility: np.ndarray, device=None) -> torch.Tensor:
        from frgan.conditions.heatmaps import joint_heatmaps
        return joint_heatmaps(joints, visibility, self.size, self.sigma_px, device)

    def cond_of_rows(self, rows: np.ndarray, device=None) -> torch.Tensor:
        """Training conditions of clip-store frame rows -> (n, C, H, W), made on `device`
        (default: the CPU) from what the store holds (joint coordinates, uint8 maps)."""
        if self.kind == "actors":
            return self.heatmaps(np.asarray(self.store.gt("joints")[rows]),
                                 np.asarray(self.store.gt("visibility")[rows]), device)
        import torch
        maps = torch.from_numpy(np.ascontiguousarray(self._maps[rows])).to(device)
        return maps.float().div_(255.0).movedim(-1, -3)

    def frames_of_rows(self, rows: np.ndarray, device=None) -> torch.Tensor:
        return to_model_frames(self.store.frames[rows], device)

    # -- training samples -----------------------------------------------------------------------

    def clips(self, split: str | Sequence[str], min_length: int = 2, label: Optional[str] = None) -> pd.DataFrame:
        """The clips of a split, or of several (e.g. TRAIN_SPLITS: gm + gr), of at least
        `min_length` frames (only class `label` if given)."""
        names = split_names(split)
        clips = self.store.split(names)
        clips = clips[clips.length >= min_length]
        if label is not None:
            clips = clips[clips.label == label]
        if clips.empty:
            shown = " + ".join(map(repr, names))   # "split 'gm'" or "split 'gm' + 'gr'"
            raise DatasetError(f"{self.store.root}: split {shown} has no clip of {min_length}+ frames"
                               + (f" labelled {label!r}" if label is not None else ""))
        return clips

    def _starts_lengths(self, split: str | Sequence[str], min_length: int,
                        label: Optional[str]) -> tuple[np.ndarray, np.ndarray]:
        """`clips(...)`'s start and length columns as arrays, cached: the samplers draw from the
        same clips every training step (filtering the index table each time cost more than
        drawing). The key holds the tuple of split names, so "gm" and ("gm", "gr") differ."""
        key = (split_names(split), min_length, label)
        cached = self._sampling_tables.get(key)
        if cached is None:
            clips = self.clips(split, min_length=min_length, label=label)
            cached = self._sampling_tables[key] = (clips.start.to_numpy(), clips.length.to_numpy())
        return cached

    def sample_pairs(self, split: str | Sequence[str], batch: int, rng: np.random.Generator,
                     label: Optional[str] = None, device=None):
        """G_M training pairs with random jumps in time (paper 3.2): for each sample a clip (of
        split `split`, or of several splits, uniformly over their clips), a random t and a random
        k >= 1. Returns I_t, M_t, I_{t+k}, M_{t+k}, made on `device` (the samplers' default: CPU)."""
        starts, lengths = self._starts_lengths(split, 2, label)
        picked = rng.integers(0, len(starts), batch)
        length = lengths[picked]
        t = rng.integers(0, length - 1)                                # t in [0, L-2]
        k = 1 + rng.integers(0, length - 1 - t)                        # t+k in [t+1, L-1]
        src = starts[picked] + t
        dst = src + k
        return (self.frames_of_rows(src, device), self.cond_of_rows(src, device),
                self.frames_of_rows(dst, device), self.cond_of_rows(dst, device))

    def sample_windows(self, split: str, batch: int, length: int, rng: np.random.Generator,
                       label: Optional[str] = None, device=None):
        """G_R training windows: a first frame I_s with M_s, then the `length` frames after it
        with their conditions. Returns I_s (B,3,H,W), M_s (B,C,H,W), real clip (B,3,K,H,W),
        condition clip (B,C,K,H,W), made on `device` (default: the CPU)."""
        starts, lengths = self._starts_lengths(split, length + 1, label)
        picked = rng.integers(0, len(starts), batch)
        s = rng.integers(0, lengths[picked] - length)
        first = starts[picked] + s
        rows = first[:, None] + 1 + np.arange(length)[None, :]
        frames = self.frames_of_rows(rows.ravel(), device).reshape(batch, length, 3, self.size, self.size)
        conds = self.cond_of_rows(rows.ravel(), device).reshape(batch, length, self.channels, self.size, self.size)
        return (self.frames_of_rows(first, device), self.cond_of_rows(first, device),
                frames.transpose(1, 2), conds.transpose(1, 2))

    def sample_anchored_windows(self, split: str | Sequence[str], batch: int, length: int, horizon: int,
                                rng: np.random.Generator, label: Optional[str] = None, device=None):
        """G_R training windows forecast from as far back as at test time.

        At test, G_M forecasts every one of the T = `horizon` frames from the one input frame and
        G_R refines them in consecutive windows of K = `length` (`refine_long_clip`), so window w
        holds frames at forecast distances wK+1 .. wK+K. Here each sample draws one of those
        windows (`refine_window_offsets`), an anchor frame I_a in a clip, and the K frames at the
        same distances after it: G_R learns on coarse frames exactly as stale as the ones it
        refines at test. (Paper 3.3/4.1 train G_R on K-frame clips of split 2 and say nothing of
        where G_M's input frame lies; `sample_windows`, the frame right before the window,
        covers distances 1..K only.) Returns I_a (B,3,H,W), M_a (B,C,H,W), real clip
        (B,3,K,H,W), condition clip (B,C,K,H,W)."""
        starts, lengths = self._starts_lengths(split, length + 1, label)
        reach = max(horizon, length) + 1            # anchor + the farthest forecast frame
        if lengths.max() < reach:
            shown = " + ".join(map(repr, split_names(split)))
            raise DatasetError(f"{self.store.root}: split {shown} has no clip of {reach} frames: G_R cannot "
                               f"train on forecasts {horizon} frames ahead, as the test asks (test_index.csv "
                               f"n_targets = {horizon}, G_R clip length {length})")
        picked = rng.integers(0, len(starts), batch)
        anchor, rows = anchored_window_rows(starts[picked], lengths[picked], length, horizon, rng)
        frames = self.frames_of_rows(rows.ravel(), device).reshape(batch, length, 3, self.size, self.size)
        conds = self.cond_of_rows(rows.ravel(), device).reshape(batch, length, self.channels, self.size, self.size)
        return (self.frames_of_rows(anchor, device), self.cond_of_rows(anchor, device),
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

    def _test_index(self) -> pd.DataFrame:
        path = self.conditions / "test_index.csv"
        try:
            return pd.read_csv(path, dtype={"clip_id": str, "subject": str})
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: missing or unreadable ({type(exc).__name__}); "
                               "rerun the conditions stage") from None

    def horizon(self) -> int:
        """T, the frames each test video has (test_index.csv's n_targets, the same for every
        item), what `generate` produces. Train stages may read it: it is fixed by the
        conditions stage (actors: pose_predict; faces: the shortest reference - 1), which every
        train stage depends on, and it carries no test frame."""
        index = self._test_index()
        if "n_targets" not in index or index.empty or index.n_targets.nunique() != 1 or index.n_targets.iloc[0] < 1:
            raise DatasetError(f"{self.conditions / 'test_index.csv'}: expected one n_targets >= 1 shared "
                               "by every item; rerun the conditions stage")
        return int(index.n_targets.iloc[0])

    def _test_rows(self, index: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Clip-store rows of each test item's input frame, and its clip's start."""
        starts = self.store.index.set_index("clip_id").loc[index.clip_id, "start"].values
        return starts + index.input_frame.values, starts

    def test_frames(self) -> TestFrames:
        """The test items' input frames and true frames as uint8, without torch."""
        index = self._test_index()
        return self._test_frames(index, *self._test_rows(index), len(index))

    def _test_frames(self, index: pd.DataFrame, input_rows: np.ndarray, starts: np.ndarray,
                     total: int) -> TestFrames:
        """The frames of the items of `index`, the first of the `total` test items."""
        n, s, t = len(index), self.size, int(index.n_targets.iloc[0])
        if self.kind == "actors":
            target_rows = (starts + index.first_target.values)[:, None] + np.arange(t)[None, :]
            truth = np.asarray(self.store.frames[target_rows.ravel()]).reshape(n, t, s, s, 3)
        else:
            truth = (np.asarray(self._open_maps("test_truth.u8", (total, t, s, s, 3))[:n])
                     if (self.conditions / "test_truth.u8").is_file() else None)
        return TestFrames(index, np.asarray(self.store.frames[input_rows]), truth)

    def test_items(self, first: Optional[int] = None) -> TestItems:
        """The test items as the methods see them; `first`: only that many (an example input)."""
        import torch
        every = self._test_index()
        index = every.iloc[:first]
        input_rows, starts = self._test_rows(index)
        frames = self._test_frames(index, input_rows, starts, len(every))
        n, s, t = len(index), self.size, int(index.n_targets.iloc[0])
        if self.kind == "actors":
            pred = self._load_array("pred_joints.npy")[:n]
            cond = self.heatmaps(pred, np.ones(pred.shape[:-1], np.float32))
            cond_gt = self.heatmaps(self._load_array("gt_joints.npy")[:n], self._load_array("gt_visibility.npy")[:n])
        else:
            maps = self._open_maps("test_cond.u8", (len(every), t, s, s, 3))[:n]
            cond = torch.from_numpy(np.array(maps)).float().div_(255.0).movedim(-1, -3)
            cond_gt = None
        return TestItems(index, to_model_frames(frames.input), self.cond_of_rows(input_rows), cond, cond_gt,
                         frames.truth)


# -- G_R's windows: where they lie at test time, and training windows placed the same way ---------

def refine_window_offsets(horizon: int, length: int) -> np.ndarray:
    """First forecast distance - 1 of each window G_R refines at test (`refine_long_clip`):
    0, K, 2K, ... < T. The last window, when T is not a multiple of K, holds fewer than K real
    frames (the rest is padding, dropped); its training twin is shifted back to T - K, so it has
    K real frames and still ends at distance T: training never sees distances beyond T, which
    no test frame has. With T <= K there is one window, at 0 (distances 1..K cover 1..T)."""
    offsets = np.arange(0, horizon, length)
    return np.minimum(offsets, max(horizon - length, 0))


def anchored_window_rows(starts: np.ndarray, lengths: np.ndarray, length: int, horizon: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Store rows of anchor frames (B,) and of their windows (B, K) for clips (start, length):
    a test-time window offset o uniform over `refine_window_offsets` (each window is one G_R call
    at test, so each weighs the same), o capped at L - 1 - K where the clip is too short for it
    (such a clip's window is its last K frames, the farthest it can reach), then an anchor a
    uniform in [0, L-1-K-o]; the window is frames a+o+1 .. a+o+K (forecast distances o+1..o+K)."""
    offsets = refine_window_offsets(horizon, length)
    o = np.minimum(offsets[rng.integers(0, len(offsets), len(starts))], lengths - 1 - length)
    anchor = starts + rng.integers(0, lengths - length - o)
    rows = (anchor + o + 1)[:, None] + np.arange(length)[None, :]
    return anchor, rows


def load_task(params: Params, dataset: str) -> Task:
    """`dataset`'s Task as the stages see it: the prepared clip store and the conditions folder."""
    from frgan.paths import conditions_path, store_path
    return Task(dataset, params, ClipStore(store_path(dataset)), Path(conditions_path(dataset)))
