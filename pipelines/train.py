"""train@<dataset>-<method>: train one registered method on a task's training splits.

    python -m pipelines.train --dataset actors-synth --method frgan

One run per training seed (params.yaml `train.seeds`, dvc.yaml's matrix item `seed`, `--seed s`):
it trains from the master seed + s.

Outs: models/<dataset>/<method>/seed-<s>/ (final weights). Checkpoints go to
checkpoints/<dataset>/<method>/seed-<s>/ (a DVC `persist` out): a killed stage resumes from the newest one when rerun; checkpoints of
another configuration are discarded, never resumed from.

Several processes (data-parallel, frgan/train/distributed.py): `train.processes: N` in
params.yaml makes this stage re-execute itself as `torchrun --standalone --nproc_per_node N -m
pipelines.train ...` (so dvc.yaml's command stays the same, and DVC sees the knob as a param);
`torchrun --nproc_per_node N -m pipelines.train ...` works directly too (torchrun's N wins).
Rank 0 alone writes models/, checkpoints/ and the MLflow run; the other ranks train in lockstep
with it and put what a method writes into a temporary folder outside the repository, deleted.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from frgan import tracking
from frgan.config import Params
from frgan.data.clipstore import ClipStore
from frgan.io import atomic_dir
from frgan.methods import get_method
from frgan.task import Task
from frgan.train import distributed as dist
from pipelines import _stage
from pipelines.conditions import conditions_path
from pipelines.paths import checkpoint_path, model_path, stage_name
from pipelines.prepare import store_path


def load_task(params: Params, dataset: str) -> Task:
    return Task(dataset, params, ClipStore(store_path(dataset)), Path(conditions_path(dataset)))


def main(params: Params, args) -> None:
    # train.processes > 1: become torchrun with N copies of this stage (does not return). A
    # params knob rather than an environment variable: DVC tracks it, `dvc exp run -S
    # train.processes=N` sets it, and the stage's command in dvc.yaml stays the same.
    if params.train.processes > 1 and not dist.launched_by_torchrun():
        dist.relaunch_under_torchrun(params.train.processes, "pipelines.train")
    try:
        dist.init(params.device)
        train(params, args)
    except dist.DistributedError as exc:   # e.g. a batch that does not split over the processes
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        dist.teardown()


def train(params: Params, args) -> None:
    method = get_method(args.method)
    task = load_task(params, args.dataset)
    stage = stage_name("train", args.dataset, args.method, args.seed)
    checkpoints = checkpoint_path(args.dataset, args.method, args.seed)
    run_params = _stage.seeded(params, args.seed)
    if not dist.is_main():
        # Ranks > 0 compute their shard of every step but write none of the stage's outputs:
        # what the method saves goes to a throwaway folder outside the repository.
        with tempfile.TemporaryDirectory(prefix=f"frgan-train-rank{dist.rank()}-") as scratch:
            method.train(task, run_params, Path(scratch), checkpoints, log=None)
        return
    trained = model_path(args.dataset, args.method, args.seed)
    with tracking.start_run(stage, params, dataset_fingerprint=task.store.fingerprint,
                            tags={"dataset": args.dataset, "method": args.method, "seed": str(args.seed)}):
        tracking.log_params({"method": args.method, "summary": method.summary, "train_seed": args.seed,
                             **{f"size.{k}": v for k, v in params.size.model_dump().items()},
                             **{f"distributed.{k}": v for k, v in dist.describe().items()}})
        with atomic_dir(trained) as out:
            method.train(task, run_params, out, checkpoints,
                         log=lambda step, values: tracking.log_metrics(values, step=step))
            for sample in sorted(out.glob("*.png")):   # sample grids a method leaves for the eye
                tracking.log_artifact(sample)
    print(f"{stage}: weights in {trained}"
          + (f" ({dist.size()} processes)" if dist.size() > 1 else ""))


if __name__ == "__main__":
    p = _stage.parser(__doc__.splitlines()[0], dataset=True, method=True, seed=True)
    _stage.run(main, p)
