"""generate@<dataset>-<method>: the test videos of the paper's protocol from a trained method.

    python -m pipelines.generate --dataset actors-synth --method frgan --seed 0

Outs: data/generated/<dataset>/<method>/seed-<s>/ (from models/<dataset>/<method>/seed-<s>/) with videos.u8 (items, T, H, W, 3) from the predicted
conditions, videos_gt.u8 from ground-truth conditions where the task has them (actors: Table
3's "MSE (GT)"), index.csv (the test items) and meta.json; a PNG of a few items under
reports/figures/generate-<dataset>-<method>-seed<s>.png, and samples/item-<i>.gif: the first
test items as looping GIFs (generated | real video where one exists), also in the MLflow run.
"""
from __future__ import annotations

if __name__ == "__main__":   # first: MLflow imports in a helper process meanwhile (frgan.tracking.prestart)
    from frgan.tracking import prestart
    prestart()

import json
from pathlib import Path

import numpy as np

from frgan import tracking
from frgan.config import Params
from frgan.io import atomic_dir, atomic_file, write_gif
from frgan.methods import get_method
from frgan.task import to_uint8_frames
from pipelines import _stage
from frgan.paths import generated_path, model_path, sheet_path, stage_name
from frgan.task import load_task


def _sheet(videos: np.ndarray, inputs: np.ndarray, truth, path: Path, rows: int = 4, cols: int = 6) -> None:
    """Rows: test items. Columns: the input frame, then generated frames (and the truth below)."""
    from PIL import Image
    t = videos.shape[1]
    picks = np.linspace(0, t - 1, cols).round().astype(int)
    lines = []
    for i in range(min(rows, len(videos))):
        lines.append(np.concatenate([inputs[i]] + [videos[i, j] for j in picks], axis=1))
        if truth is not None:
            lines.append(np.concatenate([np.zeros_like(inputs[i])] + [truth[i, j] for j in picks], axis=1))
    grid = np.concatenate(lines, axis=0)
    scale = max(1, 96 // videos.shape[2])
    with atomic_file(path) as tmp:   # never a half-written PNG beside the videos
        Image.fromarray(grid.repeat(scale, 0).repeat(scale, 1)).save(tmp, format="PNG")


SAMPLE_GIFS = 4   # test items written as GIFs, for the eye: no number reads them
GIF_FPS = 8


def _gifs(videos: np.ndarray, truth, folder: Path) -> list[Path]:
    """The first SAMPLE_GIFS test videos as GIFs, each beside its real video when there is one."""
    paths = []
    for i in range(min(SAMPLE_GIFS, len(videos))):
        frames = videos[i] if truth is None else np.concatenate([videos[i], truth[i]], axis=2)
        paths.append(folder / f"item-{i}.gif")
        write_gif(frames, paths[-1], GIF_FPS, scale=max(1, 96 // videos.shape[2]))
    return paths


def main(params: Params, args) -> None:
    method = get_method(args.method)
    task = load_task(params, args.dataset)
    stage = stage_name("generate", args.dataset, args.method, args.seed)
    items = task.test_items()
    trained = model_path(args.dataset, args.method, args.seed)
    run_params = _stage.seeded(params, args.seed)   # test-time noise (MoCoGAN, VGAN) follows the run's seed
    folder = generated_path(args.dataset, args.method, args.seed)
    with tracking.start_run(stage, params, dataset_fingerprint=task.store.fingerprint,
                            tags={"dataset": args.dataset, "method": args.method, "seed": str(args.seed)}):
        with atomic_dir(folder) as out:
            videos = method.generate(task, run_params, trained, "cond")
            videos.tofile(out / "videos.u8")
            has_gt = items.cond_gt is not None
            if has_gt:
                method.generate(task, run_params, trained, "cond_gt").tofile(out / "videos_gt.u8")
            items.index.to_csv(out / "index.csv", index=False, lineterminator="\n")
            (out / "meta.json").write_text(json.dumps(
                {"dataset": args.dataset, "method": args.method, "seed": args.seed, "shape": list(videos.shape),
                 "has_gt_conditions": has_gt, "has_truth": items.truth is not None,
                 "data_fingerprint": task.store.fingerprint}, indent=2, sort_keys=True) + "\n")
            gifs = [folder / "samples" / p.name for p in _gifs(videos, items.truth, out / "samples")]
        figure = sheet_path(args.dataset, args.method, args.seed)
        figure.parent.mkdir(parents=True, exist_ok=True)
        _sheet(videos, to_uint8_frames(items.input), items.truth, figure)
        tracking.log_artifact(figure)
        for gif in gifs:
            tracking.log_artifact(gif, "videos")
    print(f"{stage}: {videos.shape[0]} videos of {videos.shape[1]} frames -> {folder}")


if __name__ == "__main__":
    p = _stage.parser(__doc__.splitlines()[0], dataset=True, method=True, seed=True)
    _stage.run(main, p)
