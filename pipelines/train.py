"""train@<dataset>-<method>: train one registered method on a task's training splits.

    python -m pipelines.train --dataset actors-synth --method frgan

One run per training seed (params.yaml `train.seeds`, dvc.yaml's matrix item `seed`, `--seed s`):
it trains from the master seed + s.

Outs: models/<dataset>/<method>/seed-<s>/ (final weights). Checkpoints go to
checkpoints/<dataset>/<method>/seed-<s>/ (a DVC `persist` out): a killed stage resumes from the newest one when rerun; checkpoints of
another configuration are discarded, never resumed from.
Metrics: reports/metrics/train-<dataset>-<method>-seed<s>.json, the run's training budget (every
method trains on the clips of both training splits, gm + gr, for gm_steps + gr_steps generator
steps; frgan.methods.Budget): clips, generator_steps, samples_seen, parameters. Deterministic
keys only, so a fresh rerun writes the same bytes; the wall time goes to MLflow with them.
MLflow params: every resolved training knob of the method's config as `config.<field>` (nested
fields dotted: `config.weights.rec`), beside params.yaml and params-resolved.yaml as artifacts;
the losses every train.log_every steps, and train.pictures pictures of the model per training
stage as samples/<stage>-step<N>.png (frgan/train/samples.py).

Several processes (data-parallel, frgan/train/distributed.py): `train.processes: N` in
params.yaml makes this stage re-execute itself as `torchrun --standalone --nproc_per_node N -m
pipelines.train ...` (so dvc.yaml's command stays the same, and DVC sees the knob as a param);
`torchrun --nproc_per_node N -m pipelines.train ...` works directly too (torchrun's N wins).
Rank 0 alone writes models/, checkpoints/ and the MLflow run; the other ranks train in lockstep
with it and put what a method writes into a temporary folder outside the repository, deleted.
"""
from __future__ import annotations

import os

if __name__ == "__main__" and os.environ.get("RANK", "0") == "0":
    # first: MLflow imports in a helper process meanwhile (frgan.tracking.prestart); rank 0 only
    # (under torchrun the other ranks write no run). The helper never imports torch: the logged
    # model is not loaded to be checked (frgan.tracking.log_trained_model).
    from frgan.tracking import prestart
    prestart()

import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from frgan import tracking
from frgan.config import Params
from frgan.data.clipstore import TRAIN_SPLITS
from frgan.io import atomic_dir, atomic_file
from frgan.api import example_input
from frgan.methods import Budget, get_method
from frgan.train import distributed as dist
from frgan.train.loop import TrainingLog
from pipelines import _stage
from frgan.paths import checkpoint_path, model_path, stage_name, train_metrics_path
from frgan.task import load_task


def as_budget(spent: object, method: str) -> Budget:
    """What `Method.train` returned, checked: anything but a Budget is a bug of the method, named."""
    if not isinstance(spent, Budget):
        raise TypeError(f"method {method!r}: train returned {type(spent).__name__}, expected a "
                        "frgan.methods.Budget (Budget() when there is nothing to train)")
    return spent


def budget_record(dataset: str, method: str, seed: int, spent: Budget) -> dict:
    """The train stage's metrics file: the run's names and its budget (the report's budget table)."""
    splits = list(TRAIN_SPLITS) if spent.clips else []   # a method that trained on no clip names none
    return {"dataset": dataset, "method": method, "seed": seed, "splits": splits, **asdict(spent)}


def method_config(method: object, task, params: Params) -> object:
    """The method's resolved training config (a dataclass): its `config(task, params)`; None for a
    method with none (copy-input)."""
    resolve = getattr(method, "config", None)
    return None if resolve is None else resolve(task, params)


def log_configuration(method: object, task, params: Params, run_params: Params, params_file: str) -> None:
    """Every resolved training knob as a param `config.<field>` (nested: dotted), and the params
    file and the resolved params (its active profile's sizes included) as artifacts."""
    config = method_config(method, task, run_params)
    if config is not None:
        tracking.log_config(config)
    tracking.log_artifact(params_file)
    resolved = params.model_dump(mode="json", by_alias=True)
    del resolved["profiles"]   # every profile: the active one's knobs instead, as `size`
    tracking.log_dict({**resolved, "size": params.size.model_dump(mode="json", by_alias=True)},
                      "params-resolved.yaml")


def training_log(params: Params) -> TrainingLog:
    """The run's logger: losses as MLflow metrics, and `train.pictures` pictures per training
    stage as samples/<stage>-step<N>.png (e.g. samples/g_m-step000150.png)."""
    def picture(name: str, step: int, image) -> None:
        tracking.log_image_array(image, f"samples/{name.lower().replace(' ', '_')}-step{step:06d}.png")
    return TrainingLog(scalars=lambda step, values: tracking.log_metrics(values, step=step), write_image=picture,
                       pictures=params.train.pictures)


def write_budget(record: dict) -> Path:
    path = train_metrics_path(record["dataset"], record["method"], record["seed"])
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


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
        log_configuration(method, task, params, run_params, args.params)
        started = time.monotonic()
        with atomic_dir(trained) as out:
            spent = as_budget(method.train(task, run_params, out, checkpoints, log=training_log(params)),
                              args.method)
            for sample in sorted(out.glob("*.png")):   # sample grids a method leaves for the eye
                tracking.log_artifact(sample)
        # wall time of this process only (a resumed run counts the part it ran); MLflow only,
        # never the metrics file, whose bytes must not change between fresh reruns
        wall = time.monotonic() - started
        record = budget_record(args.dataset, args.method, args.seed, spent)
        tracking.log_metrics({**{f"budget/{k}": float(v) for k, v in asdict(spent).items()},
                              "budget/wall_time_s": wall})
        tracking.log_params({"budget.splits": "+".join(TRAIN_SPLITS)})
        budget_file = write_budget(record)
        example = example_input(task, args.method)
        if example is not None:   # mocogan: frgan.load cannot make one video alone
            tracking.log_trained_model(trained, example)
    print(f"{stage}: weights in {trained}, budget in {budget_file} ({spent.generator_steps} generator steps, "
          f"{spent.samples_seen} samples of {spent.clips} clips, {spent.parameters} parameters, {wall:.1f} s)"
          + (f" ({dist.size()} processes)" if dist.size() > 1 else ""))


if __name__ == "__main__":
    p = _stage.parser(__doc__.splitlines()[0], dataset=True, method=True, seed=True)
    _stage.run(main, p)
