"""The clip store: one on-disk format for every dataset (faces-synth, actors-synth, mug, penn).

A store is a folder:
    frames.u8     every frame of every clip, concatenated: raw uint8, shape (N_frames, H, W, 3),
                  read back with numpy.memmap (nothing is loaded until a clip is sliced)
    index.csv     one row per clip: clip_id, subject, label, split, start (first frame row), length
    gt/<key>.npy  per-frame ground truth, rows aligned with frames.u8 (e.g. landmarks, joints)
    <name>.json   optional extras (e.g. per-subject appearance of the synthetic faces)
    meta.json     dataset name, frame size, labels, ground-truth shapes, the generator's settings
                  and `fingerprint`: sha256 over every other file, so a run can name its data.
Every file is written with deterministic bytes: the same records give the same store.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from frgan.data.errors import DatasetError
from frgan.data.records import SPLITS, VideoRecord
from frgan.io import atomic_dir

INDEX_COLUMNS = ["clip_id", "subject", "label", "split", "start", "length"]

# The clips every method trains on: both training groups of paper 4.1, never "test". FRGAN's
# two-stage protocol draws G_M from "gm" and G_R from "gr" (together these same clips); every
# one-network method (the ablations and the baselines) draws from the union, so all methods
# stand on the same footing.
TRAIN_SPLITS = ("gm", "gr")


def split_names(split: str | Sequence[str]) -> tuple[str, ...]:
    """One split name or several -> a tuple of names (a hashable cache key); unknown names and
    an empty selection are a KeyError naming what was expected."""
    names = (split,) if isinstance(split, str) else tuple(split)
    unknown = [name for name in names if name not in SPLITS]
    if unknown or not names:
        raise KeyError(f"split {unknown[0] if unknown else split!r}, expected one or more of {SPLITS}")
    return names


def _json_dump(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _fingerprint(folder: Path) -> str:
    """sha256 over (relative path, bytes) of every file but meta.json, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "meta.json"):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def write_clip_store(records: Iterable[VideoRecord], target: str | Path, meta: dict[str, Any],
                     extras: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stream `records` into a new store at `target`, atomically; return its meta.

    Frames go to disk as they arrive (memory does not grow with the dataset); if anything
    raises, no partial store is left and an earlier store at `target` is kept.
    """
    with atomic_dir(target) as tmp:
        rows, gt_parts, frame_shape, start = [], {}, None, 0
        with (tmp / "frames.u8").open("wb") as frames_file:
            for rec in records:
                if frame_shape is None:
                    frame_shape = rec.frames.shape[1:]
                    gt_keys = sorted(rec.gt)
                    gt_parts = {k: [] for k in gt_keys}
                if rec.frames.shape[1:] != frame_shape:
                    raise DatasetError(f"clip {rec.clip_id}: frames {rec.frames.shape[1:]}, "
                                       f"expected {frame_shape} like the clips before it")
                if sorted(rec.gt) != gt_keys:
                    raise DatasetError(f"clip {rec.clip_id}: ground truth {sorted(rec.gt)}, "
                                       f"expected {gt_keys} like the clips before it")
                frames_file.write(np.ascontiguousarray(rec.frames).tobytes())
                for key in gt_keys:
                    gt_parts[key].append(np.asarray(rec.gt[key]))
                length = rec.frames.shape[0]
                rows.append([rec.clip_id, rec.subject, rec.label, rec.split, start, length])
                start += length
        if not rows:
            raise DatasetError(f"{meta.get('dataset', target)}: no videos found to store")
        index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
        if index.clip_id.duplicated().any():
            dup = index.clip_id[index.clip_id.duplicated()].iloc[0]
            raise DatasetError(f"clip id {dup!r} appears twice; clip ids must be unique")
        index.to_csv(tmp / "index.csv", index=False, lineterminator="\n")
        (tmp / "gt").mkdir()
        for key, parts in gt_parts.items():
            np.save(tmp / "gt" / f"{key}.npy", np.concatenate(parts))
        for name, obj in (extras or {}).items():
            _json_dump(obj, tmp / f"{name}.json")
        full_meta = dict(meta)
        full_meta.update(
            height=int(frame_shape[0]), width=int(frame_shape[1]), n_clips=len(index),
            n_frames=int(start), labels=sorted(index.label.unique()),
            clips_per_split={s: int((index.split == s).sum()) for s in SPLITS},
            gt={k: list(np.concatenate(v).shape[1:]) for k, v in gt_parts.items()},
            extras=sorted(extras or {}),
        )
        full_meta["fingerprint"] = _fingerprint(tmp)
        _json_dump(full_meta, tmp / "meta.json")
    return full_meta


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _load_gt(path: Path, n_frames: int, tail: tuple[int, ...] | None) -> np.ndarray:
    """A ground-truth array, memory-mapped; DatasetError naming the file when it is truncated,
    not a .npy array, or not of the shape meta.json records (one row per frame)."""
    shown = f"({n_frames}, {', '.join(map(str, tail))})" if tail else f"{n_frames} rows"
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"{path}: truncated or not a .npy array ({_one_line(exc)}); expected "
                           f"{shown}; the store is corrupt, rerun prepare") from None
    if array.shape[:1] != (n_frames,) or (tail is not None and tuple(array.shape[1:]) != tail):
        raise DatasetError(f"{path}: shape {tuple(array.shape)}, expected {shown} (meta.json); "
                           "the store is corrupt, rerun prepare")
    return array


class ClipStore:
    """Read access to a store written by `write_clip_store` (frames memory-mapped)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        for name in ("meta.json", "index.csv", "frames.u8"):
            if not (self.root / name).is_file():
                raise DatasetError(f"{self.root / name}: missing; expected a clip store written by "
                                   "`python -m pipelines.prepare` (run `dvc repro prepare`)")
        try:
            self.meta = json.loads((self.root / "meta.json").read_text())
            shape = (int(self.meta["n_frames"]), int(self.meta["height"]), int(self.meta["width"]), 3)
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{self.root / 'meta.json'}: not the meta of a clip store ({_one_line(exc)}); "
                               "the store is corrupt, rerun prepare") from None
        try:
            self.index = pd.read_csv(self.root / "index.csv", dtype={"clip_id": str, "subject": str})
        except (ValueError, pd.errors.ParserError) as exc:
            raise DatasetError(f"{self.root / 'index.csv'}: unreadable ({_one_line(exc)}); "
                               "the store is corrupt, rerun prepare") from None
        missing = [c for c in INDEX_COLUMNS if c not in self.index.columns]
        if missing:
            raise DatasetError(f"{self.root / 'index.csv'}: missing column {missing[0]!r}; expected "
                               f"{', '.join(INDEX_COLUMNS)}; the store is corrupt, rerun prepare")
        expected_bytes = int(np.prod(shape))
        actual_bytes = (self.root / "frames.u8").stat().st_size
        if actual_bytes != expected_bytes:
            raise DatasetError(f"{self.root / 'frames.u8'}: {actual_bytes} bytes, expected "
                               f"{expected_bytes} for frames {shape}; the store is corrupt, rerun prepare")
        self.frames = np.memmap(self.root / "frames.u8", dtype=np.uint8, mode="r", shape=shape)
        self._gt: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    def split(self, name: str | Sequence[str]) -> pd.DataFrame:
        """The index rows of split `name`, or of several splits (e.g. TRAIN_SPLITS) in index order."""
        return self.index[self.index.split.isin(split_names(name))]

    def _row(self, clip: int | str) -> pd.Series:
        if isinstance(clip, str):
            match = self.index[self.index.clip_id == clip]
            if match.empty:
                raise KeyError(f"{self.root}: no clip {clip!r}")
            return match.iloc[0]
        return self.index.iloc[clip]

    def video(self, clip: int | str) -> np.ndarray:
        """(T, H, W, 3) uint8 view of one clip (by row number or clip id)."""
        row = self._row(clip)
        return self.frames[row.start: row.start + row.length]

    def gt(self, key: str, clip: int | str | None = None) -> np.ndarray:
        """Per-frame ground truth `key`: all rows, or one clip's rows."""
        if key not in self._gt:
            path = self.root / "gt" / f"{key}.npy"
            if not path.is_file():
                raise KeyError(f"{path}: no ground truth {key!r}; this store has {sorted(self.meta['gt'])}")
            tail = self.meta.get("gt", {}).get(key)
            self._gt[key] = _load_gt(path, int(self.meta["n_frames"]), None if tail is None else tuple(tail))
        if clip is None:
            return self._gt[key]
        row = self._row(clip)
        return self._gt[key][row.start: row.start + row.length]

    def extra(self, name: str) -> Any:
        return json.loads((self.root / f"{name}.json").read_text())
