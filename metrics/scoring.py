"""The per-video scoring that the evaluate and reference stages share: pixel metrics against the
true frames (MSE, PSNR, SSIM; "_gt" for videos made from ground-truth conditions), ACD-I's
per-frame identity distances and ACD-C on faces, per-video means and the bootstrap summary
(metrics/__init__.py states each formula)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def _pixel_frames(generated: np.ndarray, truth: np.ndarray, suffix: str = "") -> dict[str, np.ndarray]:
    from metrics.pixel import pixel_metrics
    return {f"{k}{suffix}": v for k, v in pixel_metrics(generated, truth).items()}


def distinct_frames(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct frames of (M, H, W, 3) `frames` in first-seen order, for each frame the index
    of its distinct frame): frames[i] == distinct[inverse[i]]. Compared by a digest of the bytes."""
    import hashlib
    first: dict[bytes, int] = {}
    inverse = np.array([first.setdefault(hashlib.blake2b(np.ascontiguousarray(f).data, digest_size=16).digest(),
                                         len(first)) for f in frames], dtype=np.int64)
    _, keep = np.unique(inverse, return_index=True)   # each distinct frame's first occurrence
    return frames[keep], inverse


def _acd_frames(generated: np.ndarray, inputs: np.ndarray, embedder_name: str):
    """Per-frame identity distance to the input (ACD-I's terms), per-video ACD-C, the embedder's
    name and how many frames (of the videos and the inputs) fell back to the whole frame.
    A face embedding depends on the frame's pixels alone, so each distinct frame is embedded
    once: copy-input's videos are their input frame repeated, and the inputs recur in them."""
    from metrics.acd import acd_c, identity_distances
    from metrics.embedders import create_embedder
    embedder = create_embedder(embedder_name)
    n, t = generated.shape[:2]
    every = np.concatenate([generated.reshape((n * t,) + generated.shape[2:]), inputs])
    distinct, inverse = distinct_frames(every)
    embedded = embedder.embed(distinct)
    vectors, fell_back = embedded.vectors[inverse], embedded.fell_back[inverse]
    e_gen, e_in = vectors[:n * t].reshape(n, t, -1), vectors[n * t:]
    return identity_distances(e_gen, e_in), acd_c(e_gen), embedder.name, int(fell_back.sum())


def score_videos(kind: str, items, videos: np.ndarray, videos_gt, embedder: str, dataset: str, method: str,
                 seed: int, train_seed: int | None = None) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Scores of generated test videos (N, T, H, W, 3) uint8 of a `kind` ("faces" | "actors")
    dataset against the test items' frames -> (summary, per-frame table, per-video table).
    `items`: frgan.task.TestFrames (`index` with item and label columns, uint8 `input` frames
    (N, H, W, 3), `truth` (N, T, H, W, 3) or None); `videos_gt`: the videos made from
    ground-truth conditions, or None. `seed` seeds the bootstrap; `train_seed` is recorded
    (None: real videos)."""
    from metrics.stats import frame_table, summary_table, video_table
    scores: dict[str, np.ndarray] = {}
    extra: dict[str, object] = {}
    if items.truth is not None:
        scores.update(_pixel_frames(videos, items.truth))
    if videos_gt is not None:
        scores.update(_pixel_frames(videos_gt, items.truth, "_gt"))
    if kind == "faces":
        distances, acd_c_per_video, embedder_name, fell_back = _acd_frames(videos, items.input, embedder)
        scores["identity_distance"] = distances
        extra = {"embedder": embedder_name, "embedder_frames_fell_back": fell_back}
    frames = frame_table(scores, video_ids=items.index.item.tolist(), classes=items.index.label.tolist())
    per_video = video_table(frames)
    metric_names = list(scores)
    if kind == "faces":
        per_video = per_video.rename(columns={"identity_distance": "acd_i"})
        per_video["acd_c"] = acd_c_per_video
        metric_names = [m for m in metric_names if m != "identity_distance"] + ["acd_i", "acd_c"]
    summary = summary_table(per_video, metric_names, by="class", seed=seed)
    result = {"dataset": dataset, "method": method, "videos": int(len(per_video)),
              "frames_per_video": int(videos.shape[1]), **extra}
    if train_seed is not None:
        result["seed"] = train_seed
    for row in summary.to_dict("records"):
        key = row["metric"] if row["class"] == "all" else f"{row['metric']}/{row['class']}"
        result[key] = {"mean": round(float(row["mean"]), 6), "low": round(float(row["low"]), 6),
                       "high": round(float(row["high"]), 6)}
    return result, frames, per_video[["video", "class", *metric_names]]
