"""Villegas et al. 2017 (ICML, "Learning to generate long-term future via hierarchical
prediction"): the image analogy network, conditioned on the same motion maps as FRGAN.

    x^_{t+k} = f_dec(f_img(x_t) + f_pose(p_{t+k}) - f_pose(p_t))

The paper under reproduction: "Our method and [39] share the same 3DMM-based condition
generator" (4.2), "we train [39] through the same strategy of our motion forecasting network
G_M" (4.3) and "Without residual learning, our network decays to [39]" (4.4). So the conditions
p are the task's motion maps (normal maps or joint heatmaps), pairs are FRGAN's random jumps
in time (`Task.sample_pairs`, on both training splits like every one-network method:
`common.profile_settings`), and the network is FRGAN's `MotionForecaster`
configured as the analogy network of [39]'s code (rubenvillegas/icml2017hierchvid,
model_analogy.py), rather than a copy of it:

| [39]'s analogy network                          | configuration                            |
| ----------------------------------------------- | ---------------------------------------- |
| f_img, f_pose: VGG16 conv1-conv3 + pool3, side/8 | 3 halvings to side/8 (`min_bottleneck`)   |
| channels 64, 128, 256 (pool3 keeps 256)          | `width`, 2x, 4x, capped at 4x (`max_width`) |
| latent: the pool3 feature map, no linear code    | `code_dim=None`                           |
| f_pose shared by p_t and p_{t+k}                  | f_M is shared (one module, both maps)     |
| no skip connections, no dense decoder            | `skips="none"`, `dense=False`             |
| output tanh(f_dec(.)) directly, no residual      | `residual="none"`                         |
| no batch norm in G; Glorot-uniform init           | `norm="none"`; `xavier_init`              |

What differs: the blocks are G_M's (two 3x3 convs with a 1x1 shortcut, average pooling down,
nearest upsampling up) where [39] has plain VGG convs, max pooling and zero-filled unpooling;
and G_M's decoder has one block at the bottleneck before the first upsampling. These keep the
comparison of 4.4 to the one thing it is about: residual learning.

Loss ([39]'s code, REFERENCE-NOTES): G minimises 0.5 * MSE(x^, x) + L_feat + gamma * L_GAN with
gamma = 1 (its default); L_feat (AlexNet features + hourglass layer 3) needs pretrained
weights, which nothing here downloads: it is off (`feat_weight` is recorded as 0). D is the
DCGAN discriminator on [image, p_{t+k}], sigmoid cross-entropy: real [x_{t+k}, p_{t+k}]; fakes
[x^_{t+k}, p_{t+k}] and the mismatched pair [x_t, p_{t+k}], each fake term weighted 0.5. One G
update then one D update per step, every step: the paper trains [39] "through the same strategy"
as G_M (4.3), which updates both every step. [39]'s code skips updates by a margin rule
(`common.GanBalance`, margin 0.3), available as `margin=0.3`: once a D loss exceeds 0.7 it stops
G until one falls below 0.3, which at the smoke profile's 150 steps froze G for 95% of them.
Adam lr 1e-4, beta1 0.5.
Generation: every target frame from the input frame and its map (as G_M), see `coarse_clip`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
import torch

from baselines import common
from frgan.data.clipstore import TRAIN_SPLITS
from frgan.methods import register
from frgan.nets import MotionForecaster
from frgan.nets.critics import join
from frgan.task import Task
from frgan.train import distributed as dist
from frgan.train import parts
from frgan.train.frgan import coarse_clip
from frgan.train.seeding import derive_seed, step_rng

NAME = "villegas17"


@dataclass(frozen=True)
class Villegas17Config:
    width: int                  # VGG's first-block channels (64)
    batch: int
    steps: int
    seed: int
    device: str
    lr: float = 1e-4            # [39]'s code: Adam lr 1e-4, beta1 0.5
    betas: tuple[float, float] = (0.5, 0.999)
    image_weight: float = 0.5   # L_img = 0.5 * mean (x^ - x)^2
    gan_weight: float = 1.0     # gamma (train_penn.py default)
    feat_weight: float = 0.0    # alpha = beta = 1 in [39]; needs AlexNet/hourglass weights: off
    margin: Optional[float] = None  # [39]'s code: 0.3; off: trained "through the same strategy" as G_M
    splits: tuple[str, ...] = TRAIN_SPLITS   # the clips it trains on (common.profile_settings)


def build_generator(task: Task, cfg: Villegas17Config) -> MotionForecaster:
    """FRGAN's G_M configured as [39]'s analogy network (see the module note)."""
    common.check_side(task.size, 8, "villegas17 (three 2x poolings)")
    net = MotionForecaster(task.size, task.channels, width=cfg.width, max_width=4 * cfg.width,
                           code_dim=None, min_bottleneck=task.size // 8, skips="none",
                           dense=False, residual="none", norm="none")
    common.xavier_init(net)
    return net


def build_discriminator(task: Task, cfg: Villegas17Config) -> common.DcganDiscriminator:
    return common.DcganDiscriminator(3 + task.channels, task.size, cfg.width)


def image_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[39]'s L_img without its weight: mean squared error."""
    return ((pred - target) ** 2).mean()


def discriminator_losses(d: common.DcganDiscriminator, frame: torch.Tensor, fake: torch.Tensor,
                         target: torch.Tensor, cond_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(real term, fake term): real [x_{t+k}, p_{t+k}]; fakes [x^, p_{t+k}] and [x_t, p_{t+k}]."""
    real = common.bce_loss(d(join(target, cond_target)), real=True)
    fake_generated = common.bce_loss(d(join(fake.detach(), cond_target)), real=False)
    fake_mismatched = common.bce_loss(d(join(frame, cond_target)), real=False)
    return real, 0.5 * fake_generated + 0.5 * fake_mismatched


def train(task: Task, cfg: Villegas17Config, folder, checkpoint_every: int, log=None,
          log_every: int = 10) -> MotionForecaster:
    device, gen, disc = common.seeded_gan(NAME, task, cfg, build_generator, build_discriminator)
    opt_g = parts.adam(gen, cfg.lr, cfg.betas)
    opt_d = parts.adam(disc, cfg.lr, cfg.betas)
    balance = common.GanBalance(cfg.margin)

    def step(n: int) -> dict[str, float]:
        torch.manual_seed(derive_seed(cfg.seed, NAME, n))
        rng = step_rng(cfg.seed, n, NAME)
        I_t, M_t, I_tk, M_tk = (dist.shard(x).to(device) for x in task.sample_pairs(cfg.splits, cfg.batch, rng))
        # G first, as [39]'s loop: L_img + gamma * L_GAN
        parts.requires_grad(disc, False)
        pred = gen(I_t, M_t, M_tk).output
        img = image_loss(pred, I_tk)
        gan = common.bce_loss(disc(join(pred, M_tk)), real=True)
        g_total = cfg.image_weight * img + cfg.gan_weight * gan
        g_norm = parts.optimizer_step(opt_g, g_total, gen, balance.update_g)
        # then D, on G's output after its update
        parts.requires_grad(disc, True)
        with torch.no_grad():
            fake = gen(I_t, M_t, M_tk).output
        d_real, d_fake = discriminator_losses(disc, I_t, fake, I_tk, M_tk)
        parts.optimizer_step(opt_d, d_real + d_fake, disc, balance.update_d)
        if balance.active:   # the margin rule reads D's losses after both updates, as [39]'s loop
            with torch.no_grad():
                balance.observe(*(x.item() for x in discriminator_losses(disc, I_t, fake, I_tk, M_tk)))
        return {f"{NAME}/loss": g_total.item(), f"{NAME}/mse": img.item(), f"{NAME}/gan": gan.item(),
                f"{NAME}/grad_norm": g_norm, "d/loss_real": d_real.item(), "d/loss_fake": d_fake.item(),
                **common.log_flags(balance)}

    return common.train_generator(NAME, task, cfg, step, gen, disc, opt_g, opt_d, folder, checkpoint_every,
                                  log_every, log, balance)


@dataclass(frozen=True)
class Villegas17(common.OneGeneratorMethod):
    config_class = Villegas17Config
    reads_input_condition = True   # f_pose(p') - f_pose(p): p is the input frame's pose
    name: str = NAME
    summary: str = ("Villegas et al. 2017: analogy network f_dec(f_img(x) + f_pose(p') - f_pose(p)) on "
                    "FRGAN's conditions, no residual learning; 0.5*MSE + GAN")

    def config(self, task: Task, params) -> Villegas17Config:
        return common.with_knobs(Villegas17Config(**common.profile_settings(params)), params, NAME)

    def fit(self, task, cfg, folder, checkpoint_every, log, log_every):
        return train(task, cfg, folder, checkpoint_every, log, log_every)

    def training_clips(self, task, cfg):
        return task.clips(cfg.splits, min_length=2)   # a pair needs t and t + k >= t + 1

    def build(self, task, cfg):
        return build_generator(task, cfg)

    def video(self, gen, first, first_cond, cond):
        return coarse_clip(gen, first, first_cond, cond)


register(Villegas17())
