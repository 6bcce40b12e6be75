"""Penn Action (Zhang et al. 2013) -> VideoRecords, cropped and split as the paper uses it.

Layout read (the dataset as distributed):
    <root>/frames/NNNN/NNNNNN.jpg   frames of sequence NNNN, numbered from 000001
    <root>/labels/NNNN.mat          action, x, y, visibility (nframes x 13), nframes, ...
Only the paper's 8 actions are kept (section 4.1, after Villegas et al. 2017).

Crop (Villegas et al. 2017, REFERENCE-NOTES): one box per video, the union over all frames of
the joints' bounding boxes, grown by 5 px on every side, made square by padding the shorter
side equally on both ends, then clipped to the image (a clipped box is no longer square and
is stretched to square by the resize). The union is over the joints Penn marks visible (all
joints if none is): Penn stores guessed positions for invisible joints, which can lie far off
the person. The `bbox` field is not used. Each frame is cropped and resized to image_size
(Lanczos); joints are shifted and scaled with it.

Coordinates: Penn's x, y are taken as MATLAB 1-based pixel coordinates (the annotations are
MATLAB structs) and converted to this suite's convention: (x, y) = (column, row) of pixel
centres, 0-based (PENN_COORD_ORIGIN; a 1 px difference at Penn's resolution is ~0.15 px at
64). Output visibility = Penn's visibility AND the joint lies inside the output frame.

Split (paper 4.1: "evenly split the standard dataset into three sets"): within each action,
sequences sorted by id (or shuffled with `seed` when shuffle=True) go in thirds to "gm", "gr",
"test" (split_of_video). Per action, because Penn's ids run action by action: thirds of the
whole id range would give each split different actions. Penn's own train/test flag is not
used. Penn names no performers, so each sequence is its own subject.

`max_videos` takes a subset after the split is fixed (a video never changes split): action by
action, one (gm, gr, test) triple per action per round (frgan.data.subsets.stratified_cap), so
every action in the subset has training videos for G_M and G_R beside its test videos (a dozen
videos: 4 actions, one video per split each). Any test video whose action has no gm or no gr
video is dropped with one logged line (drop_untrainable_tests), capped or not.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image
from scipy.io import loadmat

from frgan.data.actors_synth import split_of_video
from frgan.data.errors import DatasetError
from frgan.data.records import VideoRecord
from frgan.data.skeleton import ACTIONS, N_JOINTS
from frgan.data.subsets import cells_of, drop_untrainable_tests, stratified_cap

REQUIRED_FIELDS = ("action", "x", "y", "visibility", "nframes")
CROP_MARGIN_PX = 5
log = logging.getLogger(__name__)

PENN_COORD_ORIGIN = 1.0  # Penn's first pixel centre is at (1, 1); ours at (0, 0)


@dataclass(frozen=True)
class PennLabel:
    """One sequence's annotations, in 0-based pixel-centre coordinates."""
    seq: str
    path: Path
    action: str
    joints: np.ndarray      # (nframes, 13, 2) float64, x then y
    visibility: np.ndarray  # (nframes, 13) bool

    @property
    def nframes(self) -> int:
        return self.joints.shape[0]


def check_layout(root: str | Path) -> Path:
    """Fail fast, naming what is missing, unless `root` holds frames/ and labels/*.mat."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Penn Action root {root}: not a folder; expected one holding frames/ and labels/")
    missing = [name + "/" for name in ("frames", "labels") if not (root / name).is_dir()]
    if missing:
        raise DatasetError(f"Penn Action root {root}: missing {' and '.join(missing)}; "
                           f"expected frames/ and labels/")
    if not any((root / "labels").glob("*.mat")):
        raise DatasetError(f"Penn Action labels {root / 'labels'}: no .mat files; expected labels/NNNN.mat")
    return root


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _scalar(value) -> object:
    flat = np.asarray(value).ravel()
    if flat.size == 0:
        raise ValueError("empty")
    return flat[0]


def read_label(path: str | Path) -> PennLabel | None:
    """Read one labels/NNNN.mat; None when its action is not one of the paper's 8."""
    path = Path(path)
    try:
        mat = loadmat(path, variable_names=REQUIRED_FIELDS)
    except Exception as exc:  # scipy raises several types for damaged files
        raise DatasetError(f"{path}: unreadable .mat file ({_one_line(exc)})") from exc
    if "action" not in mat:
        raise DatasetError(f"{path}: missing field 'action'")
    action = str(_scalar(mat["action"])).strip()
    if action not in ACTIONS:
        return None
    for name in REQUIRED_FIELDS:
        if name not in mat:
            raise DatasetError(f"{path}: missing field {name!r}")
    try:
        nframes = int(_scalar(mat["nframes"]))
    except (ValueError, TypeError) as exc:
        raise DatasetError(f"{path}: field 'nframes' is not a number") from exc
    arrays = {}
    for name in ("x", "y", "visibility"):
        arr = np.asarray(mat[name], dtype=np.float64)
        if arr.shape != (nframes, N_JOINTS):
            raise DatasetError(f"{path}: field {name!r} has shape {arr.shape}, expected ({nframes}, {N_JOINTS})")
        arrays[name] = arr
    joints = np.stack([arrays["x"], arrays["y"]], axis=-1) - PENN_COORD_ORIGIN
    return PennLabel(seq=path.stem, path=path, action=action, joints=joints,
                     visibility=arrays["visibility"] > 0)


def assign_splits(labels: list[PennLabel], seed: int, shuffle: bool = False) -> dict[str, str]:
    """Sequence id -> split: thirds within each action, by sorted id (or a seeded shuffle)."""
    rng = np.random.default_rng(seed)
    splits = {}
    for action in ACTIONS:
        seqs = sorted(lab.seq for lab in labels if lab.action == action)
        if shuffle:
            seqs = [seqs[i] for i in rng.permutation(len(seqs))]
        for rank, seq in enumerate(seqs):
            splits[seq] = split_of_video(rank, len(seqs))
    return splits


def select_subset(labels: list[PennLabel], splits: dict[str, str], max_videos: int | None) -> list[PennLabel]:
    """At most `max_videos` labels, a (gm, gr, test) triple per action per round, less the test
    videos of actions left without gm or gr videos; id order."""
    by_id = sorted(labels, key=lambda lab: lab.seq)
    cells = cells_of(by_id, lambda lab: (lab.action, splits[lab.seq]))
    chosen = stratified_cap(cells, ACTIONS, max_videos)
    chosen, dropped = drop_untrainable_tests(chosen, lambda lab: lab.action, lambda lab: splits[lab.seq],
                                             "Penn Action")
    if dropped:
        log.warning(dropped)
    return sorted(chosen, key=lambda lab: lab.seq)


def crop_box(joints: np.ndarray, visibility: np.ndarray, width: int, height: int,
             margin: int = CROP_MARGIN_PX) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), right/bottom exclusive, in pixels: the video's square
    joint box plus `margin`, clipped to the image."""
    use = visibility & np.isfinite(joints).all(axis=-1)
    if not use.any():
        use = np.isfinite(joints).all(axis=-1)
    xs, ys = joints[..., 0][use], joints[..., 1][use]
    if xs.size == 0:
        raise ValueError("no finite joint coordinates")
    left, top = int(np.floor(xs.min() - margin)), int(np.floor(ys.min() - margin))
    right, bottom = int(np.ceil(xs.max() + margin)) + 1, int(np.ceil(ys.max() + margin)) + 1
    side = max(right - left, bottom - top)
    left -= (side - (right - left)) // 2
    top -= (side - (bottom - top)) // 2
    right, bottom = left + side, top + side
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, width), min(bottom, height)
    if right <= left or bottom <= top:
        raise ValueError(f"joint box lies outside the {width}x{height} image")
    return left, top, right, bottom


def _frame_paths(root: Path, label: PennLabel) -> list[Path]:
    folder = root / "frames" / label.seq
    found = len(list(folder.glob("*.jpg"))) if folder.is_dir() else 0
    expected = [folder / f"{i:06d}.jpg" for i in range(1, label.nframes + 1)]
    if found != label.nframes or not all(p.is_file() for p in expected):
        raise DatasetError(f"Penn video {label.seq}: {found} frames in {folder}, but {label.path.name} "
                           f"says nframes = {label.nframes} (000001.jpg..{label.nframes:06d}.jpg)")
    return expected


def _open_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for bad or truncated files
        raise DatasetError(f"{path}: unreadable JPEG ({_one_line(exc)})") from exc


def load_video(root: str | Path, label: PennLabel, image_size: int, split: str) -> VideoRecord:
    """Read, crop and resize one sequence's frames; joints follow the crop."""
    root = Path(root)
    paths = _frame_paths(root, label)
    first = _open_rgb(paths[0])
    width, height = first.size
    try:
        left, top, right, bottom = crop_box(label.joints, label.visibility, width, height)
    except ValueError as exc:
        raise DatasetError(f"Penn video {label.seq}: cannot crop ({exc})") from exc
    frames = np.empty((label.nframes, image_size, image_size, 3), np.uint8)
    for t, path in enumerate(paths):
        img = first if t == 0 else _open_rgb(path)
        if img.size != (width, height):
            raise DatasetError(f"{path}: {img.size[0]}x{img.size[1]} frame, expected {width}x{height} "
                               f"like the first frame of video {label.seq}")
        frames[t] = np.asarray(img.crop((left, top, right, bottom))
                               .resize((image_size, image_size), Image.Resampling.LANCZOS))
    # Pixel-centre mapping: the crop's left edge (left - 0.5) goes to -0.5 in the output.
    scale = np.array([image_size / (right - left), image_size / (bottom - top)])
    joints = (label.joints - [left, top] + 0.5) * scale - 0.5
    inside = ((joints >= -0.5) & (joints < image_size - 0.5)).all(axis=-1)
    return VideoRecord(clip_id=f"{label.seq}_{label.action}", subject=label.seq, label=label.action,
                       split=split, frames=frames,
                       gt={"joints": joints.astype(np.float32),
                           "visibility": (label.visibility & inside).astype(np.float32)})


def read_labels(root: str | Path) -> list[PennLabel]:
    """Every label of the paper's 8 actions under root/labels, sorted by sequence id."""
    root = check_layout(root)
    labels = [read_label(p) for p in sorted((root / "labels").glob("*.mat"))]
    return [lab for lab in labels if lab is not None]


def iter_videos(root: str | Path, image_size: int, seed: int, max_videos: int | None = None, *,
                shuffle: bool = False) -> Iterator[VideoRecord]:
    """The paper's Penn Action videos in sequence-id order, cropped to image_size squares.

    Every label is read and checked here, at the call, before any frame is decoded (layout
    and label errors surface at once; frame errors when their video is reached). `seed` only
    matters with shuffle=True (seeded order within each action before splitting into thirds).
    """
    if image_size < 1:
        raise ValueError(f"image_size {image_size}, expected >= 1")
    labels = read_labels(root)
    if not labels:
        raise DatasetError(f"Penn Action root {root}: no sequence of the 8 actions {', '.join(ACTIONS)}")
    splits = assign_splits(labels, seed, shuffle)
    chosen = select_subset(labels, splits, max_videos)
    return (load_video(root, label, image_size, splits[label.seq]) for label in chosen)
