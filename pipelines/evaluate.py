"""evaluate@<dataset>-<method>: the paper's metrics on one method's test videos.

    python -m pipelines.evaluate --dataset actors-synth --method frgan --seed 0

Faces (Tables 1, 4): ACD-I = mean over frames of ||e(generated_t) - e(input)||, ACD-C = mean over
frame pairs of ||e_t - e_s||, on unit-length face embeddings (metrics/__init__.py); where the
true video exists (faces-synth), MSE/PSNR/SSIM against it as well.
Actors (Table 3, Fig. 7, Table 4): per-pixel MSE on [0, 1] values, PSNR = 10 log10(1 / MSE) and
SSIM against the real future frames; "MSE (GT)" from ground-truth-pose conditions.
Every score is a mean over test videos with a 95% bootstrap interval.

Outs, per training seed s (the videos of data/generated/<dataset>/<method>/seed-<s>/):
reports/metrics/evaluate-<dataset>-<method>-seed<s>.json (DVC metrics),
reports/plots/evaluate-<dataset>-<method>-seed<s>.csv (per-frame scores: DVC plots, Fig. 7 per
class) and reports/videos/evaluate-<dataset>-<method>-seed<s>.csv (per-video scores: the report
pools seeds and pairs methods on them).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from frgan import tracking
from frgan.config import Params
from frgan.data.errors import DatasetError
from frgan.io import atomic_file
from frgan.task import TestFrames
from pipelines import _stage
from pipelines.paths import METRICS_DIR, PLOTS_DIR, VIDEOS_DIR, generated_path, result_name, stage_name
from pipelines.task import load_task


def _load_videos(folder: Path, name: str, shape: list[int]) -> np.ndarray:
    path = folder / name
    if not path.is_file() or path.stat().st_size != int(np.prod(shape)):
        raise DatasetError(f"{path}: missing or not {tuple(shape)} uint8; rerun the generate stage")
    return np.fromfile(path, dtype=np.uint8).reshape(shape)


def _pixel_frames(generated: np.ndarray, truth: np.ndarray, suffix: str = "") -> dict[str, np.ndarray]:
    from metrics import pixel_metrics
    return {f"{k}{suffix}": v for k, v in pixel_metrics(generated, truth).items()}


def _acd_frames(generated: np.ndarray, inputs: np.ndarray, embedder_name: str):
    """Per-frame identity distance to the input (ACD-I's terms) and per-video ACD-C."""
    from metrics import acd_c, create_embedder, identity_distances
    embedder = create_embedder(embedder_name)
    e_gen = embedder.embed(generated).vectors
    e_in = embedder.embed(inputs[:, None]).vectors[:, 0]
    return identity_distances(e_gen, e_in), acd_c(e_gen), embedder.describe()


def score_videos(task, items: TestFrames, videos: np.ndarray, videos_gt, embedder: str, dataset: str, method: str,
                 seed: int, train_seed: int | None = None) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Scores of generated test videos against the test items' frames (their uint8 input frames and
    true videos) -> (summary, per-frame table, per-video table). `seed` seeds the bootstrap;
    `train_seed` is recorded (None: real videos)."""
    from metrics import frame_table, summary_table, video_table
    scores: dict[str, np.ndarray] = {}
    extra: dict[str, object] = {}
    if items.truth is not None:
        scores.update(_pixel_frames(videos, items.truth))
    if videos_gt is not None:
        scores.update(_pixel_frames(videos_gt, items.truth, "_gt"))
    if task.kind == "faces":
        distances, acd_c_per_video, described = _acd_frames(videos, items.input, embedder)
        scores["identity_distance"] = distances
        extra = {"embedder": described["embedder"], "embedder_frames_fell_back": described["frames_fell_back"]}
    frames = frame_table(scores, video_ids=items.index.item.tolist(), classes=items.index.label.tolist())
    per_video = video_table(frames)
    metric_names = list(scores)
    if task.kind == "faces":
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


def evaluate(params: Params, dataset: str, method: str, seed: int) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    task = load_task(params, dataset)
    items = task.test_frames()
    folder = generated_path(dataset, method, seed)
    meta = json.loads((folder / "meta.json").read_text())
    videos = _load_videos(folder, "videos.u8", meta["shape"])
    videos_gt = _load_videos(folder, "videos_gt.u8", meta["shape"]) if meta["has_gt_conditions"] else None
    return score_videos(task, items, videos, videos_gt, params.evaluate.embedder, dataset, method, params.seed,
                        train_seed=seed)


def write_scores(stage: str, params: Params, dataset: str, method: str, seed: int | None,
                 compute: Callable[[], tuple[dict, pd.DataFrame, pd.DataFrame]]) -> None:
    """Run `compute` inside the stage's MLflow run; write the metrics JSON, the per-frame CSV and
    the per-video CSV (seed None: the reference row, no seed in the names)."""
    tags = {"dataset": dataset, "method": method, **({} if seed is None else {"seed": str(seed)})}
    name = result_name(dataset, method, seed)
    with tracking.start_run(stage, params, tags=tags):
        result, frames, per_video = compute()
        with atomic_file(METRICS_DIR / f"{name}.json") as tmp:
            tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        with atomic_file(PLOTS_DIR / f"{name}.csv") as tmp:
            frames.round(6).to_csv(tmp, index=False, lineterminator="\n")
        with atomic_file(VIDEOS_DIR / f"{name}.csv") as tmp:
            per_video.round(6).to_csv(tmp, index=False, lineterminator="\n")
        tracking.log_metrics({k: v["mean"] for k, v in result.items() if isinstance(v, dict) and "/" not in k})
    headline = {k: v["mean"] for k, v in result.items() if isinstance(v, dict) and "/" not in k}
    print(f"{stage}: " + ", ".join(f"{k}={v:.4g}" for k, v in headline.items()))


def main(params: Params, args) -> None:
    write_scores(stage_name("evaluate", args.dataset, args.method, args.seed), params, args.dataset,
                 args.method, args.seed, lambda: evaluate(params, args.dataset, args.method, args.seed))


if __name__ == "__main__":
    p = _stage.parser(__doc__.splitlines()[0], dataset=True, method=True, seed=True)
    _stage.run(main, p, registry=False)
