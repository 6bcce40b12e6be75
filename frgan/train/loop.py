"""The training loop every method shares: resume from the last checkpoint, run steps with a
progress bar (it/s, ETA), stop on a non-finite loss, log, checkpoint at a fixed interval and at
the end. What a step does is the method's `step_fn(step) -> {loss name: value}`."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

from tqdm import tqdm

from frgan.train.checkpoint import Checkpoints


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the loss, the step and the checkpoint kept."""


def run_training(name: str, steps: int, step_fn: Callable[[int], dict[str, float]],
                 modules: dict[str, Any], checkpoints: Checkpoints, checkpoint_every: int,
                 log_every: int = 10, on_log: Optional[Callable[[int, dict[str, float]], None]] = None,
                 progress: bool = True) -> int:
    """Train from the newest checkpoint up to `steps` completed steps; return the step resumed from.

    Step indices are 0-based; the checkpoint written after step i is named i + 1 (steps done).
    """
    start = checkpoints.load_latest(modules)
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=name, unit="step",
               disable=not progress, mininterval=1.0)
    for step in bar:
        losses = step_fn(step)
        bad = [key for key, value in losses.items() if not math.isfinite(value)]
        if bad:
            kept = checkpoints.latest_path()
            raise TrainingDiverged(
                f"{name}: loss {bad[0]} = {losses[bad[0]]} at step {step + 1}; training stopped, "
                f"last good checkpoint: {kept if kept else 'none (no checkpoint written yet)'}")
        done = step + 1
        if on_log is not None and (done % log_every == 0 or done == steps):
            on_log(done, losses)
        if done % log_every == 0:
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(losses.items())[:4]}, refresh=False)
        if done % checkpoint_every == 0 or done == steps:
            checkpoints.save(done, modules)
    return start
