"""train@<dataset>-<method>: train one registered method on a task's training splits.

    python -m pipelines.train --dataset actors-synth --method frgan

Outs: models/<dataset>/<method>/ (final weights). Checkpoints go to checkpoints/<dataset>/<method>/
(a DVC `persist` out): a killed stage resumes from the newest one when rerun; checkpoints of
another configuration are discarded, never resumed from.
"""
from __future__ import annotations

from pathlib import Path

from frgan import tracking
from frgan.config import Params
from frgan.data.clipstore import ClipStore
from frgan.io import atomic_dir
from frgan.methods import get_method
from frgan.task import Task
from pipelines import _stage
from pipelines.conditions import conditions_path
from pipelines.prepare import store_path


def model_path(dataset: str, method: str) -> Path:
    return Path("models") / dataset / method


def load_task(params: Params, dataset: str) -> Task:
    return Task(dataset, params, ClipStore(store_path(dataset)), Path(conditions_path(dataset)))


def main(params: Params, args) -> None:
    method = get_method(args.method)
    task = load_task(params, args.dataset)
    stage = f"train@{args.dataset}-{args.method}"
    with tracking.start_run(stage, params, dataset_fingerprint=task.store.fingerprint,
                            tags={"dataset": args.dataset, "method": args.method}):
        tracking.log_params({"method": args.method, "summary": method.summary,
                             **{f"size.{k}": v for k, v in params.size.model_dump().items()}})
        with atomic_dir(model_path(args.dataset, args.method)) as out:
            method.train(task, params, out, Path("checkpoints") / args.dataset / args.method,
                         log=lambda step, values: tracking.log_metrics(values, step=step))
            for sample in sorted(out.glob("*.png")):   # sample grids a method leaves for the eye
                tracking.log_artifact(sample)
    print(f"{stage}: weights in {model_path(args.dataset, args.method)}")


if __name__ == "__main__":
    p = _stage.parser(__doc__.splitlines()[0], dataset=True, method=True)
    _stage.run(main, p)
