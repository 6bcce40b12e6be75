"""The training loop every method shares: resume from the last checkpoint, run steps with a
progress bar (it/s, ETA), stop on a non-finite loss, log, checkpoint at a fixed interval and at
the end. What a step does is the method's `step_fn(step) -> {loss name: value}`.

Under several processes (`frgan.train.distributed`): every rank resumes from the same
checkpoint (rank 0 first, as it discards stale ones), losses are averaged over the ranks before
the NaN check and the log, and only rank 0 logs, shows the bar and writes checkpoints."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from tqdm import tqdm

from frgan.train import distributed as dist
from frgan.train.checkpoint import Checkpoints


Log = Callable[[int, dict[str, float]], None]   # log(step, {loss name: value}): every trainer's logger
Sampler = Callable[[dict[str, Any]], Any]        # sampler(run_training's modules) -> uint8 image (H, W, 3)


@dataclass(frozen=True)
class TrainingLog:
    """The train stage's logger: called as `log(step, values)` like any Log. `run_training` also
    hands `write_image(name, step, image)` `pictures` pictures of the model, evenly spaced over
    the steps (the last at the end), drawn by `sampler` (a method sets it with `with_sampler`)."""
    scalars: Log
    write_image: Callable[[str, int, Any], None]   # (run_training's name, steps done, uint8 image)
    pictures: int = 0              # params.yaml train.pictures; 0: none
    sampler: Optional[Sampler] = None

    def __call__(self, step: int, values: dict[str, float]) -> None:
        self.scalars(step, values)

    def picture_due(self, done: int, steps: int) -> bool:
        """After `done` of `steps` steps: every max(1, steps // pictures) steps, and at the end."""
        if self.sampler is None or self.pictures <= 0:
            return False
        return done % max(1, steps // self.pictures) == 0 or done == steps


def with_sampler(log: Optional[Log], sampler: Sampler) -> Optional[Log]:
    """`log` drawing pictures with `sampler` (frgan/train/samples.py) when it is the train
    stage's TrainingLog; any other logger (a test's, None) unchanged."""
    return replace(log, sampler=sampler) if isinstance(log, TrainingLog) else log


def shifted(log: Optional[Log], offset: int) -> Optional[Log]:
    """`log` with every logged step moved by `offset` (networks trained one after another that
    log on one step axis, e.g. VGAN's one per class); pictures keep their own step."""
    if log is None:
        return None
    if isinstance(log, TrainingLog):
        return replace(log, scalars=lambda done, values: log.scalars(offset + done, values))
    return lambda done, values: log(offset + done, values)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the loss, the step and the checkpoint kept."""


def run_training(name: str, steps: int, step_fn: Callable[[int], dict[str, float]],
                 modules: dict[str, Any], checkpoints: Checkpoints, checkpoint_every: int,
                 log_every: int = 10, on_log: Optional[Log] = None,
                 progress: bool = True) -> int:
    """Train from the newest checkpoint up to `steps` completed steps; return the step resumed from.

    Step indices are 0-based; the checkpoint written after step i is named i + 1 (steps done).
    """
    start = _resume(checkpoints, modules)
    main = dist.is_main()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=name, unit="step",
               disable=not progress or not main, mininterval=1.0)
    for step in bar:
        losses = dist.mean_values(step_fn(step))
        bad = [key for key, value in losses.items() if not math.isfinite(value)]
        if bad:
            kept = checkpoints.latest_path()
            raise TrainingDiverged(
                f"{name}: loss {bad[0]} = {losses[bad[0]]} at step {step + 1}; training stopped, "
                f"last good checkpoint: {kept if kept else 'none (no checkpoint written yet)'}")
        done = step + 1
        if on_log is not None and main and (done % log_every == 0 or done == steps):
            on_log(done, losses)
        if main and isinstance(on_log, TrainingLog) and on_log.picture_due(done, steps):
            on_log.write_image(name, done, on_log.sampler(modules))
        if done % log_every == 0:
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(losses.items())[:4]}, refresh=False)
        if main and (done % checkpoint_every == 0 or done == steps):
            checkpoints.save(done, modules)
    return start


def _resume(checkpoints: Checkpoints, modules: dict[str, Any]) -> int:
    """The newest checkpoint's step, its state loaded into `modules`. With several processes
    rank 0 loads first (it deletes checkpoints of another configuration), then the others read
    what is left; all must land on the same step."""
    if not dist.active():
        return checkpoints.load_latest(modules)
    start = checkpoints.load_latest(modules) if dist.is_main() else 0
    dist.barrier()
    if not dist.is_main():
        start = checkpoints.load_latest(modules)
    dist.same_on_every_rank(start, "the checkpoint step to resume from")
    return start
