"""Pictures of a model while it trains: `train.pictures` times per training stage, evenly spaced
(`frgan.train.loop.TrainingLog.picture_due`), `run_training` asks the method's sampler for a
uint8 image of the model as it is, and the train stage logs it to MLflow
(`samples/<stage>-step<N>.png`). Samplers draw fixed clips of the training split `gr` (never the
test split) from their own generator, and run the networks in eval mode under no_grad, restoring
the mode after: a picture changes no weight, no BatchNorm statistic and no training draw, so a
run's numbers are the same with pictures or without.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np
import torch

from frgan.task import Task, to_uint8_frames
from frgan.train.loop import Sampler
from frgan.train.seeding import step_rng

SAMPLE_ROWS = 2          # clips per picture
SAMPLE_FRAMES = 8        # at most this many frames of each clip (a picture, not a video)


@contextlib.contextmanager
def evaluating(*modules: torch.nn.Module) -> Iterator[None]:
    """`modules` in eval mode under no_grad, each put back in the mode it was in."""
    modes = [m.training for m in modules]
    try:
        with torch.no_grad():
            for m in modules:
                m.eval()
            yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


def strips(*clips: torch.Tensor) -> np.ndarray:
    """uint8 (B*len(clips)*H, K*W, 3): for each sample b, one row per clip (B, 3, K, H, W) in
    [-1, 1], its K frames side by side."""
    frames = [to_uint8_frames(clip.transpose(1, 2).float().cpu()) for clip in clips]   # (B, K, H, W, 3)
    rows = [np.concatenate(list(f[b]), axis=1) for b in range(len(frames[0])) for f in frames]
    return np.concatenate(rows, axis=0)


# video(modules, first (B,3,H,W), first_cond (B,C,H,W), cond (B,C,K,H,W)) -> clip(s) (B,3,K,H,W)
VideoOf = Callable[[dict[str, Any], torch.Tensor, torch.Tensor, torch.Tensor], "torch.Tensor | tuple"]


def clip_sampler(task: Task, seed: int, device: str, video: VideoOf, networks: tuple[str, ...],
                 label: str | None = None, split: str | tuple[str, ...] = "gr") -> Sampler:
    """A sampler showing, for SAMPLE_ROWS fixed clips of `split` (a training split; of class
    `label` if given), the real frames over the clip(s) `video` makes from each clip's first
    frame and the conditions of the frames after it; the modules named `networks` run in eval mode."""
    clips: list[torch.Tensor] = []   # drawn at the first picture

    def sample(modules: dict[str, Any]) -> np.ndarray:
        if not clips:
            longest = int(task.clips(split, label=label).length.max())
            length = min(task.horizon(), SAMPLE_FRAMES, longest - 1)
            drawn = task.sample_windows(split, SAMPLE_ROWS, length, step_rng(seed, 0, "pictures"), label=label)
            clips.extend(x.to(device) for x in drawn)
        first, first_cond, real, cond = clips
        with evaluating(*(modules[name] for name in networks)):
            made = video(modules, first, first_cond, cond)
            return strips(real, *(made if isinstance(made, tuple) else (made,)))
    return sample
