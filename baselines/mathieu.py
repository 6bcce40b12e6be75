"""Mathieu et al. 2016 (ICLR, "Deep multi-scale video prediction beyond mean square error"):
the multi-scale generator and multi-scale discriminator, after the paper's Table (the sizes
below, with `width` = 64) and the authors' Torch code (coupriec/VideoPredictionICLR2016).

Generator: four scales s = side/8, side/4, side/2, side. The inputs X and targets Y are
average-pooled to each scale (the code's preprocessor). Scale k's network G'_k (3x3..7x7 convs
with 'same' padding and ReLU) sees [X_k, u(Y^_{k-1})], u = 2x nearest upsampling, and predicts
Y^_k = tanh(u(Y^_{k-1}) + G'_k(X_k, u(Y^_{k-1}))) (scale 1 has no coarser guess; the paper writes
the sum, the code puts tanh on it, which keeps every scale in [-1, 1]).
    G1: 2w, 4w, 2w (kernels 3, 3, 3, 3)          G2: 2w, 4w, 2w (5, 3, 3, 5)
    G3: 2w, 4w, 8w, 4w, 2w (5, 3, 3, 3, 3, 5)    G4: 2w, 4w, 8w, 4w, 2w (7, 5, 5, 5, 5, 7)
Discriminator: one D_k per scale on [X_k, Y_k or Y^_k] (the code's getPyrAdv): 'valid' convs with
ReLU, 2x2 max-pooling, fully connected layers with ReLU, one logit.
    D1: w (3); fc 8w, 4w     D2: w, 2w, 2w (3, 3, 3); fc 16w, 8w
    D3: 2w, 4w, 4w (5, 5, 5); fc 16w, 8w     D4: 2w, 4w, 8w, 2w (7, 7, 5, 5); fc 16w, 8w
A 'valid' conv that would leave less than 2 pixels pads instead (only at small sides).

Loss (REFERENCE-NOTES; paper 3-4): G minimises, summed over the four scales (the code's
ParallelCriterion), lambda_l2 * MSE(Y^_k, Y_k) + lambda_gdl * GDL(Y^_k, Y_k) (alpha 1) +
lambda_adv * BCE(D_k([X_k, Y^_k]), real) with lambdas 1, 1, 0.05. D minimises the mean of its
real and fake cross-entropies, summed over scales. One D update, then one G update per step, on
the same batch (the code draws a fresh batch for each). Optimiser: the authors' code, plain SGD
with learning rate 0.02 for G and D (the paper quotes rho_G = 0.04 decayed to 0.005, rho_D =
0.02; `optimizer="adam"` is offered for experiments). Torch's default init, which PyTorch's is.

Image-to-video protocol (paper 4.3: each method observes the input frame; 32 frames generated):
the model is a next-frame predictor from a history of one frame (the paper used 4 frames of
history; our test items give one), trained on (x_s, x_{s+1}) pairs from the training splits
gm + gr (`Task.sample_windows` with length 1, `common.profile_settings`), cropped to random
32x32 patches as the authors trained
(the same crop for input and target; whole frames when the side is 32 or less; G is fully
convolutional, D only ever sees patches and is sized for them), and rolled out autoregressively for the test set's T
frames, each scale's prediction becoming that scale's next input (the code's getRecModel).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines import common
from frgan.data.clipstore import TRAIN_SPLITS
from frgan.methods import register
from frgan.task import Task
from frgan.train import distributed as dist
from frgan.train import optim, parts
from frgan.train.seeding import derive_seed, step_rng

NAME = "mathieu"
SCALE_FACTORS = (8, 4, 2, 1)   # side / factor, coarsest first

# (channel multiples of `width`, kernel sizes): Table 1 of the paper with width = 64.
G_SPECS = (((2, 4, 2), (3, 3, 3, 3)),
           ((2, 4, 2), (5, 3, 3, 5)),
           ((2, 4, 8, 4, 2), (5, 3, 3, 3, 3, 5)),
           ((2, 4, 8, 4, 2), (7, 5, 5, 5, 5, 7)))
# (conv channel multiples, conv kernels, fully connected multiples)
D_SPECS = (((1,), (3,), (8, 4)),
           ((1, 2, 2), (3, 3, 3), (16, 8)),
           ((2, 4, 4), (5, 5, 5), (16, 8)),
           ((2, 4, 8, 2), (7, 7, 5, 5), (16, 8)))


@dataclass(frozen=True)
class MathieuConfig:
    width: int
    batch: int
    steps: int
    seed: int
    device: str
    train_patch: int = 32                    # training crops (the code's 32x32; full frames if smaller)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr_g: float = 0.02                       # authors' code: SGD 0.02 for G and D
    lr_d: float = 0.02
    l2_weight: float = 1.0
    gdl_weight: float = 1.0
    adv_weight: float = 0.05
    gdl_alpha: float = 1.0
    splits: tuple[str, ...] = TRAIN_SPLITS   # the clips it trains on (common.profile_settings)


# ---------------------------------------------------------------------------------------------
# Networks.

def pyramid(x: torch.Tensor) -> list[torch.Tensor]:
    """x at every scale, coarsest first (average pooling)."""
    return [F.avg_pool2d(x, f) if f > 1 else x for f in SCALE_FACTORS]


class ScaleGenerator(nn.Module):
    """G'_k: 'same' convs with ReLU between them, `out_ch` raw outputs."""

    def __init__(self, in_ch: int, channels: Sequence[int], kernels: Sequence[int], out_ch: int):
        super().__init__()
        widths = [in_ch, *channels, out_ch]
        layers: list[nn.Module] = []
        for i, k in enumerate(kernels):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], k, padding=k // 2))
            if i < len(kernels) - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiScaleGenerator(nn.Module):
    """forward(inputs per scale, coarsest first; each (B, 3*history, s, s)) -> predictions per
    scale, each (B, 3, s, s) in [-1, 1]."""

    def __init__(self, image_size: int, width: int = 64, history: int = 1, image_channels: int = 3):
        super().__init__()
        common.check_side(image_size, SCALE_FACTORS[0], "mathieu (four scales)")
        self.image_size = image_size
        self.history = history
        in_frames = image_channels * history
        self.scales = nn.ModuleList(
            ScaleGenerator(in_frames + (image_channels if k > 0 else 0), [width * m for m in mults],
                           kernels, image_channels)
            for k, (mults, kernels) in enumerate(G_SPECS))

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        predictions: list[torch.Tensor] = []
        for net, x in zip(self.scales, inputs):
            if not predictions:
                predictions.append(torch.tanh(net(x)))
                continue
            guess = F.interpolate(predictions[-1], scale_factor=2, mode="nearest")
            predictions.append(torch.tanh(guess + net(torch.cat([x, guess], dim=1))))
        return predictions

    def predict(self, history: list[torch.Tensor], state: Optional[list[torch.Tensor]]):
        """`common.rollout`'s predictor (history of one frame): the input pyramid is the last
        prediction of every scale, or the observed frame's pyramid at the start."""
        inputs = state if state is not None else pyramid(history[-1])
        predictions = self(inputs)
        return predictions[-1], predictions

    def video(self, first: torch.Tensor, n_frames: int) -> torch.Tensor:
        """(B, 3, n_frames, H, W) rolled out from `first`."""
        if self.history != 1:
            raise ValueError("the rollout of the image-to-video protocol has a one-frame history")
        return common.rollout(self.predict, first, n_frames)


def _conv_padding(side: int, kernel: int) -> int:
    """'valid' (0) while it leaves >= 2 pixels, else the 'same' padding."""
    return 0 if side - kernel + 1 >= 2 else kernel // 2


class ScaleDiscriminator(nn.Module):
    """D_k on [X_k, Y_k] (B, in_ch, s, s) -> logits (B,)."""

    def __init__(self, in_ch: int, side: int, channels: Sequence[int], kernels: Sequence[int],
                 fc: Sequence[int]):
        super().__init__()
        layers: list[nn.Module] = []
        widths = [in_ch, *channels]
        for i, k in enumerate(kernels):
            pad = _conv_padding(side, k)
            layers += [nn.Conv2d(widths[i], widths[i + 1], k, padding=pad), nn.ReLU()]
            side = side + 2 * pad - k + 1
        if side >= 2:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        sizes = [widths[-1] * side * side, *fc]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(*(layer for i in range(len(fc)) for layer in
                                          (nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU())),
                                        nn.Linear(sizes[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1)).squeeze(1)


class MultiScaleDiscriminator(nn.Module):
    """forward(inputs per scale, frames per scale) -> logits per scale, each (B,)."""

    def __init__(self, image_size: int, width: int = 64, history: int = 1, image_channels: int = 3):
        super().__init__()
        in_ch = image_channels * (history + 1)
        self.scales = nn.ModuleList(
            ScaleDiscriminator(in_ch, image_size // f, [width * m for m in conv_mults], kernels,
                               [width * m for m in fc_mults])
            for f, (conv_mults, kernels, fc_mults) in zip(SCALE_FACTORS, D_SPECS))

    def forward(self, inputs: Sequence[torch.Tensor], frames: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [d(torch.cat([x, y], dim=1)) for d, x, y in zip(self.scales, inputs, frames)]


# ---------------------------------------------------------------------------------------------
# Losses.

def image_loss(predictions: Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
               cfg: MathieuConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over scales of MSE, sum over scales of GDL)."""
    l2 = sum(((p - t) ** 2).mean() for p, t in zip(predictions, targets))
    gdl = sum(common.gdl_loss(p, t, cfg.gdl_alpha) for p, t in zip(predictions, targets))
    return l2, gdl


def adversarial_loss(logits: Sequence[torch.Tensor], real: bool) -> torch.Tensor:
    return sum(common.bce_loss(z, real) for z in logits)


def build_generator(task: Task, cfg: MathieuConfig) -> MultiScaleGenerator:
    return MultiScaleGenerator(task.size, cfg.width, history=1)


def patch_side(task: Task, cfg: MathieuConfig) -> int:
    return min(cfg.train_patch, task.size)


def build_discriminator(task: Task, cfg: MathieuConfig) -> MultiScaleDiscriminator:
    """D sees training patches only, so it is sized for them (its first FC layer depends on it)."""
    return MultiScaleDiscriminator(patch_side(task, cfg), cfg.width, history=1)


def random_patches(frames: Sequence[torch.Tensor], side: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """The same random side x side crop of each sample in every tensor of `frames` (B, C, H, W)."""
    full = frames[0].shape[-1]
    if side == full:
        return list(frames)
    tops = rng.integers(0, full - side + 1, size=(frames[0].shape[0], 2))
    return [torch.stack([x[i, :, r:r + side, c:c + side] for i, (r, c) in enumerate(tops)]) for x in frames]


def _optimizer(module: nn.Module, cfg: MathieuConfig, lr: float):
    if cfg.optimizer == "sgd":
        return optim.sgd(module.parameters(), lr)
    return optim.adam(module.parameters(), lr)   # torch.optim's default betas (0.9, 0.999)


# ---------------------------------------------------------------------------------------------
# Training and generation.

def train(task: Task, cfg: MathieuConfig, folder, checkpoint_every: int, log=None,
          log_every: int = 10) -> MultiScaleGenerator:
    device, gen, disc = common.seeded_gan(NAME, task, cfg, build_generator, build_discriminator)
    opt_g, opt_d = _optimizer(gen, cfg, cfg.lr_g), _optimizer(disc, cfg, cfg.lr_d)

    def step(n: int) -> dict[str, float]:
        torch.manual_seed(derive_seed(cfg.seed, NAME, n))
        rng = step_rng(cfg.seed, n, NAME)
        first, _, real, _ = task.sample_windows(cfg.splits, cfg.batch, 1, rng)
        first, target = random_patches([first, real[:, :, 0]], patch_side(task, cfg), rng)
        # the crops are drawn for the global batch, then each process keeps its rows
        inputs, targets = pyramid(dist.shard(first).to(device)), pyramid(dist.shard(target).to(device))
        predictions = gen(inputs)
        # D first (the code's trainAdv, then trainPred)
        parts.requires_grad(disc, True)
        d_real = adversarial_loss(disc(inputs, targets), real=True)
        d_fake = adversarial_loss(disc(inputs, [p.detach() for p in predictions]), real=False)
        parts.optimizer_step(opt_d, 0.5 * (d_real + d_fake), disc)
        # then G
        parts.requires_grad(disc, False)
        l2, gdl = image_loss(predictions, targets, cfg)
        adv = adversarial_loss(disc(inputs, predictions), real=True)
        g_total = cfg.l2_weight * l2 + cfg.gdl_weight * gdl + cfg.adv_weight * adv
        g_norm = parts.optimizer_step(opt_g, g_total, gen)
        return {f"{NAME}/loss": g_total.item(), f"{NAME}/mse": l2.item(), f"{NAME}/gdl": gdl.item(),
                f"{NAME}/adv": adv.item(), f"{NAME}/grad_norm": g_norm,
                "d/loss_real": d_real.item(), "d/loss_fake": d_fake.item()}

    return common.train_generator(NAME, task, cfg, step, gen, disc, opt_g, opt_d, folder, checkpoint_every,
                                  log_every, log)


@dataclass(frozen=True)
class Mathieu(common.OneGeneratorMethod):
    config_class = MathieuConfig
    name: str = NAME
    summary: str = ("Mathieu et al. 2016: four-scale next-frame generator, from the input frame only, "
                    "autoregressive; L2 + GDL + 0.05 adversarial (multi-scale D)")

    def config(self, task: Task, params) -> MathieuConfig:
        return common.with_knobs(MathieuConfig(**common.profile_settings(params)), params, NAME)

    def fit(self, task, cfg, folder, checkpoint_every, log, log_every):
        return train(task, cfg, folder, checkpoint_every, log, log_every)

    def training_clips(self, task, cfg):
        return task.clips(cfg.splits, min_length=2)   # a frame and the one after it

    def build(self, task, cfg):
        return build_generator(task, cfg)

    def video(self, gen, first, first_cond, cond):
        """Conditions are ignored: 'cond' and 'cond_gt' give the same videos."""
        return gen.video(first, cond.shape[2])


register(Mathieu())
