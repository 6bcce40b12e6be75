"""MCNet (Villegas et al., ICLR 2017, "Decomposing motion and content for natural video
sequence prediction"), after the authors' code (rubenvillegas/iclr2017mcnet, mcnet.py) and
REFERENCE-NOTES.

Per predicted frame x^_{t+1} from the current frame x_t and the previous x_{t-1}:
- motion encoder on the grayscale difference gray(x_t) - gray(x_{t-1}) (frames in [0, 1],
  ITU-R 601 luma as TF's rgb_to_grayscale): 5x5 conv `w`, max-pool, 5x5 conv 2w, max-pool,
  7x7 conv 4w, max-pool; a ConvLSTM (3x3 kernels, 4w units, forget bias 1) on the result,
  carried over the whole sequence;
- content encoder on x_t: VGG16 conv1-conv3 (3x3 convs w, w | 2w, 2w | 4w, 4w, 4w), max-pools;
- combination layers on [LSTM output, content]: 3x3 convs 4w, 2w, 4w;
- multi-scale residuals: at each of the three encoder scales, two 3x3 convs on [motion
  features, content features] (before pooling) give r_l with the content's channels;
- decoder: zero-filled 2x unpooling, relu(. + r_l), 3x3 convs (4w, 4w, 2w | 2w, w | w, 3),
  tanh output. ReLU everywhere else; no batch norm; Glorot-uniform init (the TF code's).
`width` scales every channel count (the code's gf_dim = 64).

Image-to-video protocol (paper 4.2: "Each method only observes the input frame"): MCNet gets no
condition maps. Its history is the one observed frame, i.e. K = 1 in the code's terms, where
the encoder would run over K - 1 = 0 differences; we feed one zero difference (x_t - x_t), so the
ConvLSTM starts from one step of "no motion yet". Then it rolls out autoregressively as the
code's decoder loop does: each prediction becomes the next content input and its difference
to the previous frame the next motion input. Training matches: a window from the training
splits gm + gr (`Task.sample_windows`, `common.profile_settings`), the first frame observed,
the next T frames predicted with BPTT through
the fed-back predictions; T is the profile's temporal training window (smoke 4 / 8, paper
profile 16 actors / 32 faces; MCNet used T = 10 on KTH). At test the same rollout runs for the
test set's number of frames.

Loss (REFERENCE-NOTES; train_kth.py): G minimises alpha * (L_p + L_gdl) + beta * L_GAN with
alpha = 1, beta = 0.02; L_p = mean squared error, L_gdl = gradient difference loss (alpha 1) on
[0, 1] frames, L_GAN sigmoid cross-entropy of D on the generated sequence. D (DCGAN) sees
the observed frame and the T future frames stacked on the channel axis, real vs generated.
One D update then one G update per step, each skipped by the code's margin rule
(`common.GanBalance`, margin 0.3) on D's losses re-evaluated after both updates (one more
rollout without gradients; the step's own rollout when the rule kept G from updating). Adam lr
1e-4, beta1 0.5 for both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from baselines import common
from frgan.data.clipstore import TRAIN_SPLITS
from frgan.methods import register
from frgan.task import Task
from frgan.train import distributed as dist
from frgan.train import parts
from frgan.train.seeding import derive_seed, step_rng

NAME = "mcnet"
LUMA = (0.299, 0.587, 0.114)   # TF rgb_to_grayscale (ITU-R 601)


@dataclass(frozen=True)
class McnetConfig:
    width: int
    batch: int
    steps: int
    seed: int
    device: str
    train_frames: int              # T rolled out in training
    lr: float = 1e-4               # train_kth.py: Adam lr 1e-4, beta1 0.5
    betas: tuple[float, float] = (0.5, 0.999)
    image_weight: float = 1.0      # alpha
    gan_weight: float = 0.02       # beta
    gdl_alpha: float = 1.0
    margin: Optional[float] = common.GAN_MARGIN   # the margin rule (common.GanBalance); None: off
    splits: tuple[str, ...] = TRAIN_SPLITS   # the clips it trains on (common.profile_settings)


# ---------------------------------------------------------------------------------------------
# Network.

def conv(in_ch: int, out_ch: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2)


def unpool_zero_filled(x: torch.Tensor) -> torch.Tensor:
    """2x unpooling that puts each value at the top-left of its 2x2 cell, zeros elsewhere
    (the code's FixedUnPooling)."""
    b, c, h, w = x.shape
    out = x.new_zeros(b, c, 2 * h, 2 * w)
    out[:, :, ::2, ::2] = x
    return out


def grayscale(frames: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, 1, H, W) luma of the [0, 1] frame."""
    weights = frames.new_tensor(LUMA).view(1, 3, 1, 1)
    return (common.to_unit_range(frames) * weights).sum(dim=1, keepdim=True)


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM (Shi et al. 2015) as the code's BasicConvLSTMCell: one conv on
    [input, h] gives the i, j, f, o gates; c' = c * sig(f + 1) + sig(i) * tanh(j); h' = tanh(c') * sig(o)."""

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3, forget_bias: float = 1.0):
        super().__init__()
        self.hidden = hidden
        self.forget_bias = forget_bias
        self.gates = conv(in_ch + hidden, 4 * hidden, kernel)

    def zero_state(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = like.new_zeros(like.shape[0], self.hidden, *like.shape[2:])
        return zeros, zeros

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        i, j, f, o = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, (h, c)


class Encoder(nn.Module):
    """Conv stages, each followed by 2x max-pooling; returns (pooled bottom, features before
    each pooling)."""

    def __init__(self, stages: list[list[tuple[int, int, int]]]):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(*(layer for (i, o, k) in stage for layer in (conv(i, o, k), nn.ReLU())))
            for stage in stages)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
            x = F.max_pool2d(x, 2)
        return x, features


def motion_encoder(w: int) -> Encoder:
    return Encoder([[(1, w, 5)], [(w, 2 * w, 5)], [(2 * w, 4 * w, 7)]])


def content_encoder(w: int, image_channels: int = 3) -> Encoder:
    return Encoder([[(image_channels, w, 3), (w, w, 3)],
                    [(w, 2 * w, 3), (2 * w, 2 * w, 3)],
                    [(2 * w, 4 * w, 3), (4 * w, 4 * w, 3), (4 * w, 4 * w, 3)]])


class McNet(nn.Module):
    """MCNet's generator. `forward(first, n_frames)` -> (B, 3, n_frames, H, W) in [-1, 1]."""

    def __init__(self, image_size: int, width: int = 64, image_channels: int = 3):
        super().__init__()
        common.check_side(image_size, 8, "mcnet (three 2x poolings)")
        w = width
        self.image_size = image_size
        self.motion = motion_encoder(w)
        self.lstm = ConvLSTMCell(4 * w, 4 * w)
        self.content = content_encoder(w, image_channels)
        self.combine = nn.Sequential(conv(8 * w, 4 * w, 3), nn.ReLU(), conv(4 * w, 2 * w, 3), nn.ReLU(),
                                     conv(2 * w, 4 * w, 3), nn.ReLU())
        scale_channels = [w, 2 * w, 4 * w]
        self.residuals = nn.ModuleList(
            nn.Sequential(conv(2 * c, c, 3), nn.ReLU(), conv(c, c, 3)) for c in scale_channels)
        # decoder stages, bottom (side/4) first; each starts from relu(unpool(h) + r_l)
        self.decoder = nn.ModuleList([
            nn.Sequential(conv(4 * w, 4 * w, 3), nn.ReLU(), conv(4 * w, 4 * w, 3), nn.ReLU(),
                          conv(4 * w, 2 * w, 3), nn.ReLU()),
            nn.Sequential(conv(2 * w, 2 * w, 3), nn.ReLU(), conv(2 * w, w, 3), nn.ReLU()),
            nn.Sequential(conv(w, w, 3), nn.ReLU(), conv(w, image_channels, 3)),
        ])
        common.xavier_init(self)

    def step(self, previous: torch.Tensor, current: torch.Tensor, state=None):
        """x^_{t+1} from x_{t-1} (= x_t for a zero difference) and x_t; state = the ConvLSTM's."""
        motion_in, motion_feats = self.motion(grayscale(current) - grayscale(previous))
        if state is None:
            state = self.lstm.zero_state(motion_in)
        dynamics, state = self.lstm(motion_in, state)
        content_in, content_feats = self.content(current)
        h = self.combine(torch.cat([dynamics, content_in], dim=1))
        skips = [res(torch.cat([m, c], dim=1))
                 for res, m, c in zip(self.residuals, motion_feats, content_feats)]
        for stage, skip in zip(self.decoder, reversed(skips)):
            h = stage(F.relu(unpool_zero_filled(h) + skip))
        return torch.tanh(h), state

    def predict(self, history: list[torch.Tensor], state):
        """`common.rollout`'s predictor: the previous frame is the current one at the start."""
        previous = history[-2] if len(history) > 1 else history[-1]
        return self.step(previous, history[-1], state)

    def forward(self, first: torch.Tensor, n_frames: int) -> torch.Tensor:
        return common.rollout(self.predict, first, n_frames)


def build_generator(task: Task, cfg: McnetConfig) -> McNet:
    return McNet(task.size, cfg.width)


def build_discriminator(task: Task, cfg: McnetConfig) -> common.DcganDiscriminator:
    return common.DcganDiscriminator(3 * (1 + cfg.train_frames), task.size, cfg.width)


def stack_frames(first: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
    """D's input: the observed frame and a (B, 3, T, H, W) clip on the channel axis."""
    return torch.cat([first, clip.flatten(1, 2)], dim=1)


def image_losses(pred: torch.Tensor, real: torch.Tensor, gdl_alpha: float = 1.0):
    """(L_p, L_gdl): MSE on [-1, 1] clips, GDL on [0, 1] frames (the code's inverse_transform)."""
    l_p = ((pred - real) ** 2).mean()
    l_gdl = common.gdl_loss(common.to_unit_range(pred), common.to_unit_range(real), gdl_alpha)
    return l_p, l_gdl


@torch.no_grad()
def discriminator_losses_after(gen: McNet, disc: common.DcganDiscriminator, first: torch.Tensor,
                               real: torch.Tensor, fake: Optional[torch.Tensor] = None) -> tuple[float, float]:
    """D's (real, fake) losses on this batch after both updates: what the margin rule reads.
    `fake`: G's rollout from `first` when the caller has it (G not updated since), else rolled out here."""
    if fake is None:
        fake = gen(first, real.shape[2])
    return (common.bce_loss(disc(stack_frames(first, real)), real=True).item(),
            common.bce_loss(disc(stack_frames(first, fake)), real=False).item())


# ---------------------------------------------------------------------------------------------
# Training and generation.

def train(task: Task, cfg: McnetConfig, folder, checkpoint_every: int, log=None, log_every: int = 10) -> McNet:
    device, gen, disc = common.seeded_gan(NAME, task, cfg, build_generator, build_discriminator)
    opt_g = parts.adam(gen, cfg.lr, cfg.betas)
    opt_d = parts.adam(disc, cfg.lr, cfg.betas)
    balance = common.GanBalance(cfg.margin)

    def step(n: int) -> dict[str, float]:
        torch.manual_seed(derive_seed(cfg.seed, NAME, n))
        rng = step_rng(cfg.seed, n, NAME)
        first, _, real, _ = task.sample_windows(cfg.splits, cfg.batch, cfg.train_frames, rng)
        first, real = dist.shard(first).to(device), dist.shard(real).to(device)
        pred = gen(first, cfg.train_frames)
        # D first, as train_kth.py
        parts.requires_grad(disc, True)
        d_real = common.bce_loss(disc(stack_frames(first, real)), real=True)
        d_fake = common.bce_loss(disc(stack_frames(first, pred.detach())), real=False)
        parts.optimizer_step(opt_d, d_real + d_fake, disc, balance.update_d)
        # then G: alpha * (L_p + L_gdl) + beta * L_GAN
        parts.requires_grad(disc, False)
        l_p, l_gdl = image_losses(pred, real, cfg.gdl_alpha)
        gan = common.bce_loss(disc(stack_frames(first, pred)), real=True)
        g_total = cfg.image_weight * (l_p + l_gdl) + cfg.gan_weight * gan
        g_updated = balance.update_g
        g_norm = parts.optimizer_step(opt_g, g_total, gen, g_updated)
        # a G the margin rule kept still rolls out `pred` again (same weights and frames, no
        # randomness in it): reuse it rather than roll out once more
        balance.observe(*discriminator_losses_after(gen, disc, first, real, None if g_updated else pred.detach()))
        return {f"{NAME}/loss": g_total.item(), f"{NAME}/mse": l_p.item(), f"{NAME}/gdl": l_gdl.item(),
                f"{NAME}/gan": gan.item(), f"{NAME}/grad_norm": g_norm,
                "d/loss_real": d_real.item(), "d/loss_fake": d_fake.item(), **common.log_flags(balance)}

    return common.train_generator(NAME, task, cfg, step, gen, disc, opt_g, opt_d, folder, checkpoint_every,
                                  log_every, log, balance)


@dataclass(frozen=True)
class Mcnet(common.OneGeneratorMethod):
    config_class = McnetConfig
    name: str = NAME
    summary: str = ("MCNet (Villegas et al. 2017): motion (frame differences + ConvLSTM) and content "
                    "encoders, multi-scale residuals; from the input frame only, autoregressive; MSE + GDL + 0.02 GAN")

    def config(self, task: Task, params) -> McnetConfig:
        cfg = McnetConfig(**common.profile_settings(params), train_frames=common.training_clip_length(task, params))
        return common.with_knobs(cfg, params, NAME)

    def fit(self, task, cfg, folder, checkpoint_every, log, log_every):
        return train(task, cfg, folder, checkpoint_every, log, log_every)

    def training_clips(self, task, cfg):
        return task.clips(cfg.splits, min_length=cfg.train_frames + 1)   # the first frame + the window

    def build(self, task, cfg):
        return build_generator(task, cfg)

    def video(self, gen, first, first_cond, cond):
        """Conditions are ignored (MCNet sees only the input frame): 'cond' and 'cond_gt' give the same videos."""
        return gen(first, cond.shape[2])


register(Mcnet())
