"""VGAN (Vondrick, Pirsiavash and Torralba 2016, "Generating Videos with Scene Dynamics"), the
conditional (image-to-video) variant, registered as "vgan".

Generator (REFERENCE-NOTES, VGAN):
- a 2D encoder of the input frame replaces z (`FrameEncoder`: 4x4 stride-2 convs to a 4x4
  bottleneck at 64 px, 512 channels at width 64);
- foreground stream, 3D: the bottleneck map is lifted to t0 frames by a learnt (t0, 1, 1)
  transposed convolution (VGAN projects z to 512x2x4x4), then fractionally strided 4x4x4
  transposed convolutions double space (and time where the clip length allows) up to the
  full clip; two heads: the foreground f (tanh, 3 channels) and the mask m (sigmoid, 1);
- background stream, 2D: 4x4 stride-2 transposed convolutions to one static frame b (tanh);
- video = m * f + (1 - m) * b, b repeated over time.
Discriminator: the 3D-conv `VideoDiscriminator` with time halved as space ("halve": 4x4x4
stride 2, VGAN's 64-128-256-512), one logit per clip; it sees the video only (no conditions:
VGAN uses none).
Losses: binary cross-entropy GAN (non-saturating generator loss), + 0.1 * mean|m| (VGAN's L1
sparsity on the mask) + 10 * mean|frame 0 - input| (the conditional variant's L1 to the first
frame), L1 terms as means (see `video_gan.first_frame_l1`). Adam lr 2e-4, betas (0.5, 0.999)
(REFERENCE-NOTES: "Adam 2e-4, beta1 0.5"; beta2 is Adam's default). One discriminator step,
then one generator step, per iteration.

Protocol (FRGAN paper 4.3): "we train an individual VGAN for different action categories with
randomly picked video clips": one network per label present in the training splits (gm + gr,
the clips of every method, `common.profile_settings`), trained on random clips of that label
only; at generation each test item uses the network of its label.
Choices:
- Steps: the one-network budget, gm_steps + gr_steps, is the *total* over all labels, split
  evenly (the first `steps % n` labels take one more): every method gets the same budget of
  generator updates and samples seen; shared, VGAN's generator updates (and
  samples seen) equal everyone else's whatever the number of classes. Each class network thus
  gets 1/n of the updates of a single network; the paper says nothing of VGAN's steps.
- Clip length: the video is frame 0 (the input) + T future frames, T the test length
  (paper 4.3: 32), so one forward pass makes a whole test video (33 frames at the paper's
  size: odd, so time is upsampled only in the lifting layer). Where the training splits have
  no clip that long for some label, the video is as long as the shortest label's longest clip and a
  test video is rolled out block by block, each block starting at the last frame of the one
  before (documented in `rollout`).
- No condition maps, so cond_key "cond" and "cond_gt" give the same videos.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import torch
from torch import nn

from baselines import common
from baselines import video_gan as vg
from frgan.config import Params
from frgan.data.clipstore import TRAIN_SPLITS
from frgan.data.errors import DatasetError
from frgan.methods import Budget, Log, distinct_clips, make_budget, register
from frgan.nets.blocks import Up3d, blend, init_weights, temporal_strides
from frgan.task import Task
from frgan.train import distributed as dist
from frgan.train import parts
from frgan.train.checkpoint import Checkpoints
from frgan.train.loop import run_training, shifted, with_sampler
from frgan.train.samples import clip_sampler
from frgan.train.seeding import derive_seed, seed_everything, step_rng

WEIGHTS = "vgan.pt"


@dataclass(frozen=True)
class VganConfig:
    width: int                      # base channels (VGAN: 64)
    batch: int                      # VGAN: 64; the profile's batch
    steps: int                      # total generator steps over all labels (= gm_steps + gr_steps)
    frames: int                     # video length: input frame + future frames
    labels: tuple[str, ...]         # one network per label (paper 4.3)
    lr: float = 2e-4                # REFERENCE-NOTES
    betas: tuple[float, float] = (0.5, 0.999)
    mask_weight: float = 0.1        # L1 on the mask (REFERENCE-NOTES)
    first_frame_weight: float = vg.FIRST_FRAME_WEIGHT
    seed: int = 0
    device: str = "cpu"
    splits: tuple[str, ...] = TRAIN_SPLITS   # the clips it trains on (common.profile_settings)

    def steps_of(self, label: str) -> int:
        """This label's share of `steps` (at least 1)."""
        n, i = len(self.labels), self.labels.index(label)
        return max(1, self.steps // n + (1 if i < self.steps % n else 0))

    def fingerprint(self, data: str, label: str) -> str:
        return parts.fingerprint(self, data, skip=("device",), label=label, method="vgan")


# ---------------------------------------------------------------------------------------------
# Network.

class VganOutput(NamedTuple):
    video: torch.Tensor        # (B, 3, T, H, W) in [-1, 1]
    mask: torch.Tensor         # (B, 1, T, H, W) in [0, 1]
    foreground: torch.Tensor   # (B, 3, T, H, W) in [-1, 1]
    background: torch.Tensor   # (B, 3, H, W) in [-1, 1]


def _up2d(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1), nn.BatchNorm2d(out_ch), nn.ReLU())


def _last_up3d(in_ch: int, out_ch: int, t_stride: int) -> nn.ConvTranspose3d:
    """The full-resolution head layer: the size map of `Up3d` without norm and activation."""
    kernel = (4 if t_stride == 2 else 3, 4, 4)
    return nn.ConvTranspose3d(in_ch, out_ch, kernel, (t_stride, 2, 2), padding=1)


class VganGenerator(nn.Module):
    """forward(first frame (B,3,H,W)) -> VganOutput; see the module note."""

    def __init__(self, image_size: int, frames: int, *, width: int, max_width: int = vg.MAX_WIDTH):
        super().__init__()
        if frames < 2:
            raise ValueError(f"VGAN needs videos of >= 2 frames (input + future), got {frames}")
        halvings, channels, _ = vg.dcgan_plan(image_size, width, max_width)
        t_strides = temporal_strides(frames, halvings)   # of the mirrored downsampling path
        t0 = frames // int(np.prod(t_strides))
        self.image_size, self.frames = image_size, frames
        self.encoder = vg.FrameEncoder(image_size, width, max_width)
        top = channels[-1]
        self.lift = nn.Sequential(nn.ConvTranspose3d(top, top, (t0, 1, 1)), nn.BatchNorm3d(top), nn.ReLU())
        # ups[j] doubles scale halvings-1-j -> halvings-2-j; the heads make the last doubling
        self.fg_ups = nn.Sequential(*(Up3d(channels[i], channels[i - 1], t_strides[i], "batch")
                                      for i in reversed(range(1, halvings))))
        self.fg_head = _last_up3d(channels[0], 3, t_strides[0])
        self.mask_head = _last_up3d(channels[0], 1, t_strides[0])
        self.bg_ups = nn.Sequential(*(_up2d(channels[i], channels[i - 1]) for i in reversed(range(1, halvings))))
        self.bg_head = nn.ConvTranspose2d(channels[0], 3, 4, 2, 1)
        init_weights(self)

    def forward(self, first: torch.Tensor) -> VganOutput:
        code = self.encoder(first)                                   # (B, C, b, b)
        hidden = self.fg_ups(self.lift(code.unsqueeze(2)))
        foreground = torch.tanh(self.fg_head(hidden))
        mask = torch.sigmoid(self.mask_head(hidden))
        background = torch.tanh(self.bg_head(self.bg_ups(code)))
        video = blend(mask, foreground, background.unsqueeze(2))     # m*f + (1-m)*b
        return VganOutput(video, mask, foreground, background)


def build_discriminator(image_size: int, cfg: VganConfig) -> vg.VideoDiscriminator:
    return vg.VideoDiscriminator(image_size, cfg.frames, width=cfg.width, time="halve")


# ---------------------------------------------------------------------------------------------
# Configuration from the profile.

def make_config(task: Task, params: Params) -> VganConfig:
    settings = common.profile_settings(params)           # the shared clips and step budget
    future = task.horizon()                             # T: the frames every method generates
    min_clip = 2                                        # input + at least one future frame
    labels = tuple(vg.training_labels(task, settings["splits"], min_clip))
    frames = min(future + 1, vg.longest_clip(task, settings["splits"], labels))
    return common.with_knobs(VganConfig(**settings, frames=frames, labels=labels), params, "vgan")


def training_clips(task: Task, cfg: VganConfig):
    """The clips `train_label` draws from, over all labels (cfg.frames+ frames in cfg.splits)."""
    return task.clips(cfg.splits, min_length=cfg.frames)


# ---------------------------------------------------------------------------------------------
# Training: one network per label.

@dataclass
class VganLosses:
    generator: torch.Tensor
    adversarial: torch.Tensor
    mask: torch.Tensor
    first_frame: torch.Tensor


def generator_losses(out: VganOutput, first: torch.Tensor, disc: nn.Module, cfg: VganConfig) -> VganLosses:
    adversarial = vg.generator_bce(disc(out.video))
    mask = out.mask.abs().mean()
    first_frame = vg.first_frame_l1(out.video, first)
    total = adversarial + cfg.mask_weight * mask + cfg.first_frame_weight * first_frame
    return VganLosses(total, adversarial, mask, first_frame)


def train_label(task: Task, cfg: VganConfig, label: str, folder: Path, checkpoint_every: int,
                log: Optional[Log] = None, log_every: int = 10, step_offset: int = 0) -> VganGenerator:
    """Train the VGAN of one label on random clips of that label (cfg.splits); resumable."""
    device = torch.device(cfg.device)
    seed_everything(derive_seed(cfg.seed, "vgan-init", label))
    dist.check_batch(cfg.batch, "vgan")
    gen = dist.prepare(VganGenerator(task.size, cfg.frames, width=cfg.width).to(device))
    disc = dist.prepare(build_discriminator(task.size, cfg).to(device))
    opt_g, opt_d = parts.adam(gen, cfg.lr, cfg.betas), parts.adam(disc, cfg.lr, cfg.betas)

    def step(n: int) -> dict[str, float]:
        first, real = (dist.shard(x).to(device) for x in vg.sample_clips(
            task, cfg.splits, cfg.batch, cfg.frames, step_rng(cfg.seed, n, f"vgan/{label}"), label=label))
        out = gen(first)
        parts.requires_grad(disc, True)
        d_loss = vg.discriminator_bce(disc(real), disc(out.video.detach()))
        parts.optimizer_step(opt_d, d_loss, disc)
        parts.requires_grad(disc, False)
        g = generator_losses(out, first, disc, cfg)
        parts.optimizer_step(opt_g, g.generator, gen)
        return {"vgan/g_loss": g.generator.item(), "vgan/g_adv": g.adversarial.item(),
                "vgan/mask_l1": g.mask.item(), "vgan/first_frame_l1": g.first_frame.item(),
                "vgan/d_loss": d_loss.item()}

    on_log = with_sampler(shifted(log, step_offset), clip_sampler(
        task, cfg.seed, cfg.device, lambda modules, first, first_cond, cond: rollout(modules["generator"], first, cond.shape[2]),
        ("generator",), label=label, split=cfg.splits))
    modules = {"generator": gen, "discriminator": disc, "opt_g": opt_g, "opt_d": opt_d}
    run_training(f"VGAN {label}", cfg.steps_of(label), step, modules,
                 Checkpoints(folder / label, fingerprint=cfg.fingerprint(task.store.fingerprint, label)),
                 checkpoint_every, log_every, on_log)
    return gen.eval()


def train_all(task: Task, cfg: VganConfig, folder: Path, checkpoint_every: int, log: Optional[Log] = None,
              log_every: int = 10) -> dict[str, VganGenerator]:
    """One VGAN per label, in label order; the logged step counts across labels."""
    networks, offset = {}, 0
    for label in cfg.labels:
        networks[label] = train_label(task, cfg, label, folder, checkpoint_every, log, log_every, offset)
        offset += cfg.steps_of(label)
    return networks


# ---------------------------------------------------------------------------------------------
# Generation.

@torch.no_grad()
def rollout(gen: VganGenerator, first: torch.Tensor, future: int) -> torch.Tensor:
    """`future` frames after `first` (B,3,future,H,W): the generated video minus its frame 0;
    when one video is too short, the next block starts at the last frame generated."""
    blocks, start, made = [], first, 0
    while made < future:
        video = gen(start).video[:, :, 1:]
        blocks.append(video)
        made += video.shape[2]
        start = video[:, :, -1]
    return torch.cat(blocks, dim=2)[:, :, :future]


@torch.no_grad()
def generate_videos(task: Task, cfg: VganConfig, networks: dict[str, VganGenerator], batch: int = 8) -> np.ndarray:
    """(N, T, H, W, 3) uint8: each test item from its input frame by the VGAN of its label."""
    device = torch.device(cfg.device)
    items = task.test_items()
    labels = items.index.label.tolist()
    missing = sorted(set(labels) - set(networks))
    if missing:
        raise DatasetError(f"VGAN: no network for test labels {missing} (trained: {sorted(networks)}); "
                           f"training splits {' + '.join(cfg.splits)} have no clip of them")
    videos = np.zeros((len(labels), items.n_frames, task.size, task.size, 3), np.uint8)
    for label, gen in networks.items():
        rows = np.flatnonzero(np.asarray(labels) == label)
        gen = gen.to(device).eval()
        videos[rows] = parts.test_videos(
            len(rows), lambda part: rollout(gen, items.input[rows[part]].to(device), items.n_frames), batch)
    return videos


# ---------------------------------------------------------------------------------------------
# The method.

@dataclass(frozen=True)
class Vgan(common.KnobbedMethod):
    config_class = VganConfig
    takes_label = True   # one network per class
    name: str = "vgan"
    summary: str = "VGAN (Vondrick et al. 2016), conditional: one network per class, fg/bg streams"

    def config(self, task: Task, params: Params) -> VganConfig:
        return make_config(task, params)

    def train(self, task, params, out, checkpoints, log) -> Budget:
        cfg = self.config(task, params)
        networks = train_all(task, cfg, Path(checkpoints), params.train.checkpoint_every, log,
                             params.train.log_every)
        parts.save_weights(Path(out) / WEIGHTS, self.name, asdict(cfg), task, networks)
        steps = sum(cfg.steps_of(label) for label in cfg.labels)   # = cfg.steps (>= 1 per label)
        return make_budget(distinct_clips(training_clips(task, cfg)), steps, cfg.batch, *networks.values())

    def generate(self, task, params, trained, cond_key="cond") -> np.ndarray:
        # cond_key is ignored: VGAN uses no condition maps, so both keys give the same videos.
        payload = parts.load_weights(Path(trained) / WEIGHTS)
        saved = payload["config"]
        tuples = {key: tuple(saved[key]) for key in ("labels", "betas", "splits") if key in saved}
        cfg = replace(VganConfig(**{**saved, **tuples}), device=params.device)
        networks = {}
        for label, state in payload["states"].items():
            networks[label] = VganGenerator(task.size, cfg.frames, width=cfg.width)
            networks[label].load_state_dict(state)
        return generate_videos(task, cfg, networks)


register(Vgan())
