"""evaluate@<dataset>-<method>: the paper's metrics on one method's test videos.

    python -m pipelines.evaluate --dataset actors-synth --method frgan --seed 0

Faces (Tables 1, 4): ACD-I = mean over frames of ||e(generated_t) - e(input)||, ACD-C = mean over
frame pairs of ||e_t - e_s||, on unit-length face embeddings (metrics/__init__.py); where the
true video exists (faces-synth), MSE/PSNR/SSIM against it as well.
Actors (Table 3, Fig. 7, Table 4): per-pixel MSE on [0, 1] values, PSNR = 10 log10(1 / MSE) and
SSIM against the real future frames; "MSE (GT)" from ground-truth-pose conditions.
Every score is a mean over test videos with a 95% bootstrap interval (MLflow: the mean as
`<metric>`, the interval as `<metric>_low` / `<metric>_high`).

Outs, per training seed s (the videos of data/generated/<dataset>/<method>/seed-<s>/):
reports/metrics/evaluate-<dataset>-<method>-seed<s>.json (DVC metrics),
reports/plots/evaluate-<dataset>-<method>-seed<s>.csv (per-frame scores: DVC plots, Fig. 7 per
class) and reports/videos/evaluate-<dataset>-<method>-seed<s>.csv (per-video scores: the report
pools seeds and pairs methods on them).
"""
from __future__ import annotations

if __name__ == "__main__":   # first: MLflow imports in a helper process meanwhile (frgan.tracking.prestart)
    from frgan.tracking import prestart
    prestart()

import json
from pathlib import Path

import numpy as np
import pandas as pd

from frgan import tracking
from frgan.config import Params
from frgan.data.errors import DatasetError
from metrics.scoring import score_videos
from pipelines import _stage
from frgan.paths import generated_path, stage_name
from frgan.task import load_task


def _load_videos(folder: Path, name: str, shape: list[int]) -> np.ndarray:
    path = folder / name
    if not path.is_file() or path.stat().st_size != int(np.prod(shape)):
        raise DatasetError(f"{path}: missing or not {tuple(shape)} uint8; rerun the generate stage")
    return np.fromfile(path, dtype=np.uint8).reshape(shape)


def evaluate(params: Params, dataset: str, method: str, seed: int) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    task = load_task(params, dataset)
    items = task.test_frames()
    folder = generated_path(dataset, method, seed)
    meta = json.loads((folder / "meta.json").read_text())
    videos = _load_videos(folder, "videos.u8", meta["shape"])
    videos_gt = _load_videos(folder, "videos_gt.u8", meta["shape"]) if meta["has_gt_conditions"] else None
    return score_videos(task.kind, items, videos, videos_gt, params.evaluate.embedder, dataset, method, params.seed,
                        train_seed=seed)


def interval_metrics(result: dict) -> dict[str, float]:
    """'<metric>_low' / '<metric>_high': the 95% interval of every headline score of the metrics
    JSON (the keys whose means the run logs; per-class keys, 'metric/class', left out)."""
    return {f"{k}_{end}": v[end] for k, v in result.items()
            if isinstance(v, dict) and "/" not in k for end in ("low", "high") if end in v}


def main(params: Params, args) -> None:
    def scores() -> tuple[dict, pd.DataFrame, pd.DataFrame]:   # inside the stage's MLflow run
        result, frames, per_video = evaluate(params, args.dataset, args.method, args.seed)
        tracking.log_metrics(interval_metrics(result))
        return result, frames, per_video

    _stage.write_scores(stage_name("evaluate", args.dataset, args.method, args.seed), params, args.dataset,
                        args.method, args.seed, scores)


if __name__ == "__main__":
    p = _stage.parser(__doc__.splitlines()[0], dataset=True, method=True, seed=True)
    _stage.run(main, p, registry=False)
