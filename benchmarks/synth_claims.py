"""The paper's qualitative claims on actors-synth at a larger size, in one process, with no DVC
or MLflow: for a bare GPU machine (or hours on a CPU).

    python -m benchmarks.synth_claims --out /tmp/claims [--gm-steps 1500 --gr-steps 600 ...]

It builds actors-synth at the `synth` profile's size, trains the pose LSTM, trains FRGAN and its
Table 4 variants, generates the test videos from predicted and from ground-truth poses and
scores them (MSE on [0, 1], PSNR, SSIM; mean over test videos with 95% bootstrap intervals).
Claims checked (paper 4.3-4.4): FRGAN (G_M + G_R) < G_M only < G_M without dense connections in
MSE (GT) (Table 4), and the residual mask (eq. 2) beats the difference map (eq. 1).
Writes <out>/synth-claims.json and a contact sheet per method.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from frgan.config import load_params
from frgan.data.clipstore import ClipStore, write_clip_store
from frgan.data.sources import SOURCES
from frgan.methods import get_method
from frgan.task import Task, to_uint8_frames

VARIANTS = ("frgan", "frgan-gm-only", "frgan-no-dense", "frgan-diff-map")


def _params(args):
    params = load_params(args.params)
    size = params.profiles["synth"].model_copy(update={
        "gm_steps": args.gm_steps, "gr_steps": args.gr_steps, "width": args.width, "batch": args.batch,
        "pose_lstm_steps": args.lstm_steps, "actors_per_action": args.actors_per_action})
    train = params.train.model_copy(update={"device": args.device, "checkpoint_every": 10**9})
    return params.model_copy(update={"profile": "synth", "profiles": {**params.profiles, "synth": size},
                                     "train": train})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, help="scratch folder (default: <out>/work)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--gm-steps", type=int, default=1500)
    parser.add_argument("--gr-steps", type=int, default=600)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lstm-steps", type=int, default=2000)
    parser.add_argument("--actors-per-action", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--methods", default=",".join(VARIANTS))
    args = parser.parse_args()
    params = _params(args)
    out = args.out
    work = args.work or out / "work"
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    source = SOURCES["actors-synth"](params)
    write_clip_store(source.records, work / "prepared", {"dataset": "actors-synth", "source": source.settings})
    store = ClipStore(work / "prepared")
    timings["prepare_s"] = time.perf_counter() - started

    from frgan.conditions.actors import PoseSettings, build_actor_conditions
    started = time.perf_counter()
    (work / "conditions").mkdir(parents=True, exist_ok=True)
    size = params.size
    pose = build_actor_conditions(store, PoseSettings(size.pose_observe, size.pose_predict, size.pose_lstm_hidden,
                                                      size.pose_lstm_steps, params.conditions.pose_lstm_batch,
                                                      params.seed, params.device), work / "conditions")
    timings["conditions_s"] = time.perf_counter() - started

    from metrics.scoring import score_videos
    from pipelines.generate import _sheet
    task = Task("actors-synth", params, store, work / "conditions")
    items, frames = task.test_items(), task.test_frames()
    results = {"pose_lstm": pose, "size": size.model_dump(), "device": params.device, "methods": {}}
    for name in args.methods.split(","):
        method = get_method(name)
        started = time.perf_counter()
        trained = work / "models" / name
        trained.mkdir(parents=True, exist_ok=True)
        method.train(task, params, trained, work / "checkpoints" / name, log=None)
        timings[f"train_{name}_s"] = time.perf_counter() - started
        videos = method.generate(task, params, trained, "cond")
        videos_gt = method.generate(task, params, trained, "cond_gt")
        scores, _, _ = score_videos(task.kind, frames, videos, videos_gt, "dlib", "actors-synth", name, params.seed)
        results["methods"][name] = {k: v for k, v in scores.items() if "/" not in k}
        _sheet(videos_gt, to_uint8_frames(items.input), items.truth, out / f"sheet-{name}.png")
        print(name, {k: v["mean"] for k, v in results["methods"][name].items() if isinstance(v, dict)}, flush=True)
        results["timings"] = timings     # written after every method: a cut-short run keeps its results
        (out / "synth-claims.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
