"""What the predictor baselines (Villegas et al. 2017, MCNet, Mathieu et al.) share.

- `gdl_loss`: the gradient difference loss of Mathieu et al. 2016, also MCNet's L_gdl.
- `DcganDiscriminator`: the DCGAN discriminator both of Villegas et al.'s codes use (the ICML
  2017 analogy network's D and MCNet's D are the same network).
- `bce_loss`, `GanBalance`: their (non-saturating, sigmoid cross-entropy) GAN and the margin
  rule both of Villegas et al.'s training loops use to skip D or G updates.
- `rollout`: autoregressive generation, each predicted frame fed back as the next input
  (MCNet and Mathieu et al. observe only the input frame in the paper's protocol, 4.2-4.3).
- `train_generator`: the end of their training functions: checkpointed `run_training` of a
  generator and its discriminator, then the generator in eval mode.
- `generate_videos`, `xavier_init`,
  `profile_settings`: the plumbing every baseline method needs.
- `with_knobs`, `checked_knobs`, `KnobbedMethod`: a baseline's own knobs from `train.baselines`
  (params.yaml, or the active profile's train block) over its config's defaults.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from frgan.config import Params, ParamsError
from frgan.data.clipstore import TRAIN_SPLITS
from frgan.methods import Budget, Method, distinct_clips, make_budget, one_network_steps
from frgan.task import Task
from frgan.train import distributed as dist
from frgan.train import parts
from frgan.train.checkpoint import Checkpoints
from frgan.train.loop import run_training, with_sampler
from frgan.train.samples import clip_sampler
from frgan.train.seeding import derive_seed, seed_everything

LEAKY_SLOPE = 0.2
GAN_MARGIN = 0.3   # Villegas et al.'s training loops (ICML 2017 and MCNet): `margin = 0.3`


# ---------------------------------------------------------------------------------------------
# Losses.

def gdl_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Gradient difference loss (Mathieu et al. 2016, eq. 5) on (..., H, W) tensors.

    mean_{ij} | |Y_ij - Y_{i-1,j}| - |Y^_ij - Y^_{i-1,j}| |^alpha
      + mean_{ij} | |Y_{i,j-1} - Y_ij| - |Y^_{i,j-1} - Y^_ij| |^alpha,
    each a mean over the valid neighbour pairs of its direction (the authors' Torch criterion:
    two AbsCriterion on the cropped differences, summed). MCNet's TF code convolves with SAME
    padding instead, which adds one border row/column of differences against zero.
    """
    def term(dim: int) -> torch.Tensor:
        d_true = target.diff(dim=dim).abs()
        d_pred = pred.diff(dim=dim).abs()
        return ((d_true - d_pred).abs() ** alpha).mean()
    return term(-2) + term(-1)


def bce_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Sigmoid cross-entropy against all-real (1) or all-fake (0) labels, batch mean."""
    labels = torch.full_like(logits, 1.0 if real else 0.0)
    return F.binary_cross_entropy_with_logits(logits, labels)


def to_unit_range(frames: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (the TF codes' `inverse_transform`)."""
    return (frames + 1.0) / 2.0


# ---------------------------------------------------------------------------------------------
# Networks.

def conv_out_side(side: int, kernel: int, stride: int, padding: int) -> int:
    return (side + 2 * padding - kernel) // stride + 1


class DcganDiscriminator(nn.Module):
    """DCGAN D of Villegas et al.'s codes: four 5x5 stride-2 convs (`width` x 1, 2, 4, 8), batch
    norm on all but the first, LeakyReLU(0.2), a linear layer to one logit. forward -> (B,)."""

    def __init__(self, in_channels: int, image_size: int, width: int = 64):
        super().__init__()
        channels = [in_channels] + [width * 2 ** i for i in range(4)]
        layers: list[nn.Module] = []
        side = image_size
        for i in range(4):
            layers.append(nn.Conv2d(channels[i], channels[i + 1], 5, stride=2, padding=2))
            if i > 0:
                layers.append(nn.BatchNorm2d(channels[i + 1]))
            layers.append(nn.LeakyReLU(LEAKY_SLOPE))
            side = conv_out_side(side, 5, 2, 2)
        self.in_channels = in_channels
        self.features = nn.Sequential(*layers)
        self.logit = nn.Linear(channels[-1] * side * side, 1)
        xavier_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x).flatten(1)).squeeze(1)


def xavier_init(module: nn.Module) -> None:
    """Villegas et al.'s TF init: convs Glorot-uniform, linear N(0, 0.02), biases 0, batch-norm
    scale 1 (TF's batch_norm default)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d)) and m.bias is not None:
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------------
# Training helpers.

class GanBalance:
    """The margin rule of Villegas et al.'s loops: after a step, stop updating D while it is too
    good (either of its losses < margin) and G while D is too bad (either > 1 - margin); a
    stopped one resumes only when both would stop. Keeps its two flags in the checkpoint
    (state_dict). `margin=None`: both always update."""

    def __init__(self, margin: Optional[float] = GAN_MARGIN):
        self.margin = margin
        self.update_d = True
        self.update_g = True

    @property
    def active(self) -> bool:
        return self.margin is not None

    def observe(self, d_loss_real: float, d_loss_fake: float) -> None:
        if self.margin is None:
            return
        # several processes: the losses of the global batch, so every rank takes the same decision
        d_loss_real, d_loss_fake = dist.mean_of(d_loss_real, d_loss_fake)
        if d_loss_fake < self.margin or d_loss_real < self.margin:
            self.update_d = False
        if d_loss_fake > 1.0 - self.margin or d_loss_real > 1.0 - self.margin:
            self.update_g = False
        if not self.update_d and not self.update_g:
            self.update_d = self.update_g = True

    def state_dict(self) -> dict[str, bool]:
        return {"update_d": self.update_d, "update_g": self.update_g}

    def load_state_dict(self, state: dict[str, bool]) -> None:
        self.update_d, self.update_g = bool(state["update_d"]), bool(state["update_g"])


def seeded_gan(name: str, task: Task, cfg: Any, build_generator: Callable, build_discriminator: Callable
               ) -> tuple[torch.device, nn.Module, nn.Module]:
    """The start of a GAN baseline's training: the training device, and its generator and
    discriminator initialised from the run's seed (in that order) and prepared for data parallelism."""
    device = torch.device(cfg.device)
    seed_everything(derive_seed(cfg.seed, f"{name}-init"))
    dist.check_batch(cfg.batch, name)
    gen = dist.prepare(build_generator(task, cfg).to(device))
    disc = dist.prepare(build_discriminator(task, cfg).to(device))
    return device, gen, disc


def train_generator(name: str, task: Task, cfg: Any, step: Callable[[int], dict[str, float]],
                    gen: nn.Module, disc: nn.Module, opt_g: Any, opt_d: Any,
                    folder: Path, checkpoint_every: int, log_every: int, log,
                    balance: Optional[GanBalance] = None) -> nn.Module:
    """Run `step` for `cfg.steps` steps under `run_training`, checkpointing the generator, the
    discriminator, both optimisers and (when given) the margin rule's flags in `folder` (named
    by `cfg` and the task's data, see `fingerprint`); return the generator in eval mode."""
    modules: dict[str, Any] = {"generator": gen, "discriminator": disc, "opt_g": opt_g, "opt_d": opt_d}
    if balance is not None:
        modules["balance"] = balance
    run_training(name, cfg.steps, step, modules,
                 Checkpoints(folder, fingerprint=parts.fingerprint(cfg, task.store.fingerprint)),
                 checkpoint_every, log_every, log)
    return gen.eval()


# ---------------------------------------------------------------------------------------------
# Autoregressive generation.

# predict(history, state) -> (next frame (B, 3, H, W), new state)
Predictor = Callable[[list[torch.Tensor], Any], tuple[torch.Tensor, Any]]


def rollout(predict: Predictor, first: torch.Tensor, n_frames: int, state: Any = None) -> torch.Tensor:
    """Generate `n_frames` frames after `first`, each from the frames so far (the observed one,
    then the model's own predictions). Returns (B, 3, n_frames, H, W); gradients flow through
    the fed-back predictions (the TF/Torch graphs of MCNet and Mathieu et al. do the same)."""
    history = [first]
    for _ in range(n_frames):
        frame, state = predict(history, state)
        history.append(frame)
    return torch.stack(history[1:], dim=2)


# video_fn(first (B,3,H,W), first_cond (B,C,H,W), cond (B,C,T,H,W)) -> clip (B,3,T,H,W)
VideoFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def generate_videos(task: Task, cond_key: str, device: str, video_fn: VideoFn, batch: int = 8) -> np.ndarray:
    """The test videos (N, T, H, W, 3) uint8, T = the task's number of target frames."""
    items = task.test_items()
    conds = getattr(items, cond_key)
    if conds is None:
        raise ValueError(f"the {task.dataset} test set has no {cond_key!r} conditions")
    return parts.test_videos(len(items.index), lambda part: video_fn(
        items.input[part].to(device), items.input_cond[part].to(device),
        conds[part].to(device).transpose(1, 2)), batch)                 # cond (B, C, T, H, W)


# ---------------------------------------------------------------------------------------------
# Configuration and files.

def profile_settings(params: Params) -> dict[str, Any]:
    """The profile knobs every baseline scales with: base width, batch, the run seed and device,
    and the training footing every method shares: the clips of both training splits
    (TRAIN_SPLITS, never "test") and FRGAN's whole generator budget, gm_steps + gr_steps (the
    paper fixes neither for the baselines; 4.3 trains [39] "through the same strategy" as G_M,
    which is about random jumps in time, not about which clips or how many steps)."""
    size = params.size
    return {"width": size.width, "batch": size.batch, "steps": one_network_steps(params),
            "splits": TRAIN_SPLITS, "seed": params.seed, "device": params.device}


# The footing every method shares (profile_settings): set by the profile, never a baseline's knob.
# A baseline's knobs are the other defaulted fields of its config dataclass.
FOOTING = frozenset({"width", "batch", "steps", "seed", "device", "splits"})


def knob_names(config_class: type) -> list[str]:
    return sorted(f.name for f in dataclasses.fields(config_class)
                  if f.name not in FOOTING and (f.default is not dataclasses.MISSING
                                                or f.default_factory is not dataclasses.MISSING))


def _coerced(hint: Any, value: Any) -> Any:
    """`value` as the type `hint` (float, int, bool, str, Literal, Optional, tuple[float, ...]);
    raises TypeError when it is not one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerced(inner, value)
    if origin is typing.Literal:
        if value in args:
            return value
    elif origin is tuple and isinstance(value, (list, tuple)) and len(value) == len(args):
        return tuple(_coerced(a, v) for a, v in zip(args, value))
    elif hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif hint in (int, bool, str) and type(value) is hint:
        return value
    raise TypeError(hint)


def _spelt(hint: Any) -> str:
    return " ".join(str(hint).replace("typing.", "").split())


def checked_knobs(method: str, config_class: type, knobs: Any) -> dict[str, Any]:
    """`train.baselines.<method>` checked against the method's config class: known fields, right
    types. Raises ParamsError naming the key, the value and what was expected."""
    if not isinstance(knobs, dict):
        raise ParamsError(f"train.baselines.{method} = {knobs!r}: expected a mapping of knob: value")
    hints, names = typing.get_type_hints(config_class), knob_names(config_class)
    checked = {}
    for key, value in knobs.items():
        if key not in names:
            why = "the footing every method shares, set by the profile" if key in FOOTING else "not a knob"
            raise ParamsError(f"train.baselines.{method}.{key}: {why}; expected one of {names}")
        try:
            checked[key] = _coerced(hints[key], value)
        except TypeError:
            raise ParamsError(f"train.baselines.{method}.{key} = {value!r}: expected {_spelt(hints[key])}") from None
    return checked


def with_knobs(cfg: Any, params: Params, method: str) -> Any:
    """`cfg` (a baseline's config from the profile) with its knobs from train.baselines."""
    knobs = params.train.baselines.get(method)
    return cfg if not knobs else dataclasses.replace(cfg, **checked_knobs(method, type(cfg), knobs))


def training_clip_length(task: Task, params: Params) -> int:
    """Frames a video predictor rolls out in training: the profile's temporal training window
    (G_R's clip length: paper 4.1, 16 actors / 32 faces; smoke 4 / 8)."""
    size = params.size
    return size.gr_clip_actors if task.kind == "actors" else size.gr_clip_faces


def check_side(image_size: int, factor: int, who: str) -> None:
    if image_size % factor:
        raise ValueError(f"{who} needs an image side divisible by {factor}, got {image_size}")


def log_flags(balance: Optional[GanBalance]) -> dict[str, float]:
    return {} if balance is None or not balance.active else {"balance/update_d": float(balance.update_d),
                                       "balance/update_g": float(balance.update_g)}


class KnobbedMethod(Method):
    """A baseline whose config dataclass (`config_class`) gives its knobs in train.baselines."""
    config_class: ClassVar[type]

    def check_knobs(self, knobs: Any) -> dict[str, Any]:
        return checked_knobs(self.name, self.config_class, knobs)


class OneGeneratorMethod(KnobbedMethod):
    """The shape the predictor baselines share: the module's training function returns one
    generator, saved as generator.pt; `generate` reloads it and rolls out every test item.
    Subclasses give `config`, `fit` (the module's training function), `build`, `video` and
    `training_clips` (the clips its sampler draws from, for the budget)."""

    def config(self, task: Task, params: Params) -> Any:
        raise NotImplementedError

    def training_clips(self, task: Task, cfg: Any) -> pd.DataFrame:
        raise NotImplementedError

    def fit(self, task: Task, cfg: Any, folder: Path, checkpoint_every: int, log, log_every: int) -> nn.Module:
        raise NotImplementedError

    def build(self, task: Task, cfg: Any) -> nn.Module:
        raise NotImplementedError

    def video(self, gen: nn.Module, first: torch.Tensor, first_cond: torch.Tensor,
              cond: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def train(self, task, params, out, checkpoints, log) -> Budget:
        cfg = self.config(task, params)
        log = with_sampler(log, clip_sampler(task, cfg.seed, cfg.device, lambda modules, first, first_cond, cond:
                                             self.video(modules["generator"], first, first_cond, cond), ("generator",)))
        gen = self.fit(task, cfg, checkpoints / "generator", params.train.checkpoint_every, log,
                       params.train.log_every)
        parts.save_weights(out / "generator.pt", self.name, asdict(cfg), task, {"generator": gen})
        return make_budget(distinct_clips(self.training_clips(task, cfg)), cfg.steps, cfg.batch, gen)

    def generate(self, task, params, trained, cond_key: str = "cond") -> np.ndarray:
        cfg = self.config(task, params)
        gen = parts.load_state(trained / "generator.pt", "generator", self.build(task, cfg)).to(cfg.device)
        return generate_videos(task, cond_key, cfg.device,
                               lambda first, first_cond, cond: self.video(gen, first, first_cond, cond))
