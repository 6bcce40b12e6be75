"""MoCoGAN (Tulyakov, Liu, Yang and Kautz 2018, "MoCoGAN: Decomposing Motion and Content for
Video Generation"), image-to-video, registered as "mocogan".

Generator (REFERENCE-NOTES, MoCoGAN):
- per frame t a latent z_t = [content | one-hot category | motion_t];
- content: MoCoGAN samples a 50-d Gaussian; here (FRGAN paper 4.2: "each method only observes
  the input frame of the target subject") an image encoder of the input frame gives it
  (`FrameEncoder` + a linear layer to 50-d), the same for every frame of the video;
- category: the one-hot of the item's label (expression / action) over the store's labels,
  constant over the video (MoCoGAN's categorical dynamics);
- motion: a GRU cell run over the video, input eps_t ~ N(0, I) (10-d), initial state
  h_0 ~ N(0, I) (10-d); its state h_t is the 10-d motion code of frame t;
- the image generator G_I, DCGAN: a 4x4 transposed conv from z to the 4x4 bottleneck, then
  4x4 stride-2 transposed convs (BatchNorm, ReLU) to the frame size, tanh, applied to every
  frame. Videos of any length come from running the GRU longer (MoCoGAN's point), so a test
  video is generated in one pass.
Discriminators: a patch image discriminator D_I on single frames (one random frame of each
video; 4x4 stride-2 convs to an 8x8 map at 64 px, then a 4x4 stride-2 conv to 4x4 patch logits)
and the 3D-conv video discriminator D_V (4x4x4 kernels, stride (1, 2, 2): `VideoDiscriminator`
with time "keep"), whose extra outputs classify the category (MoCoGAN's categorical variant,
an InfoGAN-style term: cross-entropy on real videos for D_V, on generated ones for the
generator; weight 1).
Losses: binary cross-entropy GAN on both discriminators (non-saturating generator loss, its two
terms scaled by the `gan_weight` knob, 1 as MoCoGAN), Adam lr 2e-4, betas (0.5, 0.999) for all
(REFERENCE-NOTES); one discriminator step (D_I and
D_V together) then one generator step per iteration.

Choices for the image-to-video protocol (documented, not MoCoGAN's):
- Frame 0 of each generated video is the input frame's reconstruction, with VGAN's conditional
  L1 (weight 10; `video_gan` module note): without it nothing ties the encoder's content code
  to the input's identity, as neither discriminator sees the input. 0 turns it off.
- Clip length: MoCoGAN trains on 16-frame clips; here min(16, the profile's G_R clip length of
  the dataset kind) frames (16 at the synth and paper profiles, 4 / 8 at smoke), i.e. the input
  frame + 15 future frames. Test videos are T + 1 frames long (frame 0 dropped).
- Batches draw the class uniformly, then a random clip of that class from the training splits
  gm + gr (`video_gan`; the clips and the gm_steps + gr_steps budget of every one-network
  method, `common.profile_settings`).
- Test noise: eps and h_0 of item i come from (seed, "mocogan-test"), drawn once for all items,
  so videos do not depend on the batch size. No condition maps: cond_key "cond" and
  "cond_gt" give the same videos.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines import common
from baselines import video_gan as vg
from frgan.config import Params
from frgan.data.clipstore import TRAIN_SPLITS
from frgan.methods import Budget, Log, distinct_clips, make_budget, register
from frgan.nets.blocks import init_weights
from frgan.task import Task
from frgan.train import distributed as dist
from frgan.train import parts
from frgan.train.checkpoint import Checkpoints
from frgan.train.loop import run_training, with_sampler
from frgan.train.samples import clip_sampler
from frgan.train.seeding import derive_seed, seed_everything, step_rng

WEIGHTS = "mocogan.pt"
CONTENT_DIM = 50     # MoCoGAN's content code
MOTION_DIM = 10      # MoCoGAN's per-frame motion code (and GRU input noise)
CLIP_FRAMES = 16     # MoCoGAN's training clips


@dataclass(frozen=True)
class MocoganConfig:
    width: int                      # base channels (MoCoGAN: 64)
    batch: int
    steps: int                      # = gm_steps + gr_steps (common.profile_settings)
    frames: int                     # training video length (input frame + future frames)
    labels: tuple[str, ...]         # the store's labels: the one-hot vocabulary
    content_dim: int = CONTENT_DIM
    motion_dim: int = MOTION_DIM
    lr: float = 2e-4                # REFERENCE-NOTES
    betas: tuple[float, float] = (0.5, 0.999)
    category_weight: float = 1.0    # the categorical (InfoGAN-style) term
    gan_weight: float = 1.0         # the generator's two adversarial terms (MoCoGAN: 1)
    first_frame_weight: float = vg.FIRST_FRAME_WEIGHT
    seed: int = 0
    device: str = "cpu"
    splits: tuple[str, ...] = TRAIN_SPLITS   # the clips it trains on (common.profile_settings)

    def fingerprint(self, data: str) -> str:
        return parts.fingerprint(self, data, skip=("device",), method="mocogan")


# ---------------------------------------------------------------------------------------------
# Networks.

class ImageGenerator(nn.Module):
    """DCGAN G_I: z (N, D) -> frame (N, 3, H, W) in [-1, 1]."""

    def __init__(self, latent_dim: int, image_size: int, width: int, max_width: int = vg.MAX_WIDTH):
        super().__init__()
        halvings, channels, bottleneck = vg.dcgan_plan(image_size, width, max_width)
        top = channels[-1]
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, top, bottleneck), nn.BatchNorm2d(top), nn.ReLU()]
        for i in reversed(range(1, halvings)):
            layers += [nn.ConvTranspose2d(channels[i], channels[i - 1], 4, 2, 1),
                       nn.BatchNorm2d(channels[i - 1]), nn.ReLU()]
        layers += [nn.ConvTranspose2d(channels[0], 3, 4, 2, 1), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z[:, :, None, None])


class MocoganGenerator(nn.Module):
    """forward(first, category one-hot, h0, eps) -> video (B, 3, T, H, W); T = eps.shape[1]."""

    def __init__(self, image_size: int, n_classes: int, *, width: int, content_dim: int = CONTENT_DIM,
                 motion_dim: int = MOTION_DIM, max_width: int = vg.MAX_WIDTH):
        super().__init__()
        self.encoder = vg.FrameEncoder(image_size, width, max_width)
        bottleneck = self.encoder.bottleneck
        self.to_content = nn.Linear(self.encoder.out_channels * bottleneck * bottleneck, content_dim)
        self.motion = nn.GRUCell(motion_dim, motion_dim)
        self.image = ImageGenerator(content_dim + n_classes + motion_dim, image_size, width, max_width)
        self.n_classes, self.motion_dim = n_classes, motion_dim
        init_weights(self.to_content)

    def content(self, first: torch.Tensor) -> torch.Tensor:
        return self.to_content(self.encoder(first).flatten(1))

    def motion_codes(self, h0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """GRU states (B, T, motion_dim) from h_0 (B, d) and inputs eps (B, T, d)."""
        states, h = [], h0
        for t in range(eps.shape[1]):
            h = self.motion(eps[:, t], h)
            states.append(h)
        return torch.stack(states, dim=1)

    def latents(self, first: torch.Tensor, category: torch.Tensor, h0: torch.Tensor,
                eps: torch.Tensor) -> torch.Tensor:
        """z_t = [content | category | motion_t]: (B, T, content_dim + n_classes + motion_dim)."""
        frames = eps.shape[1]
        content = self.content(first).unsqueeze(1).expand(-1, frames, -1)
        category = category.unsqueeze(1).expand(-1, frames, -1)
        return torch.cat([content, category, self.motion_codes(h0, eps)], dim=2)

    def forward(self, first: torch.Tensor, category: torch.Tensor, h0: torch.Tensor,
                eps: torch.Tensor) -> torch.Tensor:
        z = self.latents(first, category, h0, eps)
        b, t = z.shape[:2]
        frames = self.image(z.reshape(b * t, -1))
        return frames.reshape(b, t, *frames.shape[1:]).transpose(1, 2)


class PatchImageDiscriminator(nn.Module):
    """D_I: frame (N, 3, H, W) -> patch logits (N, P): stride-2 convs to 8x8 (64 px), then a 4x4
    stride-2 conv to one logit per 4x4 patch position (MoCoGAN's patch image discriminator)."""

    def __init__(self, image_size: int, width: int, max_width: int = vg.MAX_WIDTH):
        super().__init__()
        halvings, channels, _ = vg.dcgan_plan(image_size, width, max_width)
        widths = [3] + channels[:halvings - 1]
        layers: list[nn.Module] = []
        for i in range(halvings - 1):
            layers += [nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1),
                       nn.BatchNorm2d(widths[i + 1]) if i > 0 else nn.Identity(), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 2, 1))
        self.layers = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.layers(frame).flatten(1)


def build_video_discriminator(image_size: int, cfg: MocoganConfig) -> vg.VideoDiscriminator:
    return vg.VideoDiscriminator(image_size, cfg.frames, width=cfg.width, time="keep",
                                 outputs=1 + len(cfg.labels))


def build_generator(task: Task, cfg: MocoganConfig) -> MocoganGenerator:
    return MocoganGenerator(task.size, len(cfg.labels), width=cfg.width, content_dim=cfg.content_dim,
                            motion_dim=cfg.motion_dim)


def split_video_logits(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D_V's (B, 1 + n_classes, P) -> real/fake logits (B, P), class logits (B, n_classes)
    (averaged over the temporal patches)."""
    return logits[:, 0], logits[:, 1:].mean(dim=2)


# ---------------------------------------------------------------------------------------------
# Configuration and noise.

def make_config(task: Task, params: Params) -> MocoganConfig:
    size, settings = params.size, common.profile_settings(params)
    profile_clip = size.gr_clip_actors if task.kind == "actors" else size.gr_clip_faces
    labels = vg.store_labels(task)
    trainable = vg.training_labels(task, settings["splits"], 2)
    frames = min(CLIP_FRAMES, profile_clip, vg.longest_clip(task, settings["splits"], trainable))
    return common.with_knobs(MocoganConfig(**settings, frames=frames, labels=labels), params, "mocogan")


def training_clips(task: Task, cfg: MocoganConfig):
    """The clips `train_mocogan` draws from: every clip of cfg.frames+ frames in cfg.splits
    (the labels it trains on are exactly those that have one)."""
    return task.clips(cfg.splits, min_length=cfg.frames)


def draw_noise(n: int, frames: int, motion_dim: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(h_0 (n, d), eps (n, frames, d)), both N(0, I) (MoCoGAN's motion noise)."""
    h0 = torch.randn(n, motion_dim, generator=generator)
    eps = torch.randn(n, frames, motion_dim, generator=generator)
    return h0, eps


def random_frames(clip: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
    """(B,3,T,H,W), picks (B,) -> the picked frame of each clip (B,3,H,W) (D_I's images)."""
    return clip[torch.arange(len(clip), device=clip.device), :, picks]


# ---------------------------------------------------------------------------------------------
# Training.

def train_mocogan(task: Task, cfg: MocoganConfig, folder: Path, checkpoint_every: int, log: Optional[Log] = None,
          log_every: int = 10) -> MocoganGenerator:
    device = torch.device(cfg.device)
    seed_everything(derive_seed(cfg.seed, "mocogan-init"))
    dist.check_batch(cfg.batch, "mocogan")
    gen = dist.prepare(build_generator(task, cfg).to(device))
    d_image = dist.prepare(PatchImageDiscriminator(task.size, cfg.width).to(device))
    d_video = dist.prepare(build_video_discriminator(task.size, cfg).to(device))
    opt_g = parts.adam(gen, cfg.lr, cfg.betas)
    opt_d = parts.adam([d_image, d_video], cfg.lr, cfg.betas)
    trainable = vg.training_labels(task, cfg.splits, cfg.frames)

    def step(n: int) -> dict[str, float]:
        rng = step_rng(cfg.seed, n, "mocogan")
        noise = torch.Generator().manual_seed(derive_seed(cfg.seed, "mocogan-noise", n))
        first, real, names = vg.sample_labelled_clips(task, cfg.splits, cfg.batch, cfg.frames, rng, trainable)
        classes = vg.label_indices(names, cfg.labels)
        h0, eps = draw_noise(len(names), cfg.frames, cfg.motion_dim, noise)
        picks = torch.as_tensor(rng.integers(0, cfg.frames, len(names)))
        # everything per sample is drawn for the global batch; each process keeps its rows
        first, real, classes, h0, eps, picks = (dist.shard(x).to(device)
                                                for x in (first, real, classes, h0, eps, picks))
        category = vg.one_hot(classes, len(cfg.labels))
        fake = gen(first, category, h0, eps)

        # discriminators: BCE on real vs generated frames and videos, + D_V's category loss
        parts.requires_grad([d_image, d_video], True)
        real_v, real_cls = split_video_logits(d_video(real))
        fake_v, _ = split_video_logits(d_video(fake.detach()))
        d_img = vg.discriminator_bce(d_image(random_frames(real, picks)),
                                     d_image(random_frames(fake.detach(), picks)))
        d_vid = vg.discriminator_bce(real_v, fake_v)
        d_cls = F.cross_entropy(real_cls, classes)
        parts.optimizer_step(opt_d, d_img + d_vid + cfg.category_weight * d_cls, [d_image, d_video])

        # generator: fool both, make the category recognisable, reconstruct the input in frame 0
        parts.requires_grad([d_image, d_video], False)
        gen_v, gen_cls = split_video_logits(d_video(fake))
        g_img = vg.generator_bce(d_image(random_frames(fake, picks)))
        g_vid = vg.generator_bce(gen_v)
        g_cls = F.cross_entropy(gen_cls, classes)
        g_first = vg.first_frame_l1(fake, first)
        g_loss = cfg.gan_weight * (g_img + g_vid) + cfg.category_weight * g_cls + cfg.first_frame_weight * g_first
        parts.optimizer_step(opt_g, g_loss, gen)
        return {"mocogan/g_loss": g_loss.item(), "mocogan/g_image": g_img.item(),
                "mocogan/g_video": g_vid.item(), "mocogan/g_category": g_cls.item(),
                "mocogan/first_frame_l1": g_first.item(), "mocogan/d_image": d_img.item(),
                "mocogan/d_video": d_vid.item(), "mocogan/d_category": d_cls.item()}

    modules = {"generator": gen, "d_image": d_image, "d_video": d_video, "opt_g": opt_g, "opt_d": opt_d}
    shown = trainable[0]   # the pictures: clips of one class, with that class and fixed motion noise

    def video(modules, first, first_cond, cond):
        n = len(first)
        h0, eps = draw_noise(n, cond.shape[2] + 1, cfg.motion_dim,
                             torch.Generator().manual_seed(derive_seed(cfg.seed, "mocogan-pictures")))
        category = vg.one_hot(vg.label_indices([shown] * n, cfg.labels), len(cfg.labels)).to(first.device)
        return modules["generator"](first, category, h0.to(first.device), eps.to(first.device))[:, :, 1:]
    log = with_sampler(log, clip_sampler(task, cfg.seed, cfg.device, video, ("generator",), label=shown,
                                         split=cfg.splits))
    run_training("MoCoGAN", cfg.steps, step, modules,
                 Checkpoints(folder, fingerprint=cfg.fingerprint(task.store.fingerprint)),
                 checkpoint_every, log_every, log)
    return gen.eval()


# ---------------------------------------------------------------------------------------------
# Generation.

@torch.no_grad()
def generate_videos(task: Task, cfg: MocoganConfig, gen: MocoganGenerator, batch: int = 8) -> np.ndarray:
    """(N, T, H, W, 3) uint8: T + 1 frames per item from its input frame and label, frame 0 dropped."""
    device = torch.device(cfg.device)
    items = task.test_items()
    classes = vg.label_indices(items.index.label.tolist(), cfg.labels)
    noise = torch.Generator().manual_seed(derive_seed(cfg.seed, "mocogan-test"))
    h0, eps = draw_noise(len(classes), items.n_frames + 1, cfg.motion_dim, noise)
    gen = gen.to(device).eval()

    def clips(part: slice) -> torch.Tensor:
        category = vg.one_hot(classes[part], len(cfg.labels)).to(device)
        return gen(items.input[part].to(device), category, h0[part].to(device), eps[part].to(device))[:, :, 1:]
    return parts.test_videos(len(classes), clips, batch)


# ---------------------------------------------------------------------------------------------
# The method.

def _config_from(saved: dict, device: str) -> MocoganConfig:
    tuples = {key: tuple(saved[key]) for key in ("labels", "betas", "splits") if key in saved}
    return replace(MocoganConfig(**{**saved, **tuples}), device=device)


@dataclass(frozen=True)
class Mocogan(common.KnobbedMethod):
    config_class = MocoganConfig
    loadable = False   # its test videos share motion noise drawn for the whole test set
    name: str = "mocogan"
    summary: str = "MoCoGAN (Tulyakov et al. 2018): encoder content + one-hot class + GRU motion"

    def config(self, task: Task, params: Params) -> MocoganConfig:
        return make_config(task, params)

    def train(self, task, params, out, checkpoints, log) -> Budget:
        cfg = self.config(task, params)
        gen = train_mocogan(task, cfg, Path(checkpoints), params.train.checkpoint_every, log, params.train.log_every)
        parts.save_weights(Path(out) / WEIGHTS, self.name, asdict(cfg), task, {"generator": gen})
        return make_budget(distinct_clips(training_clips(task, cfg)), cfg.steps, cfg.batch, gen)

    def generate(self, task, params, trained, cond_key="cond") -> np.ndarray:
        # cond_key is ignored: MoCoGAN uses no condition maps, so both keys give the same videos.
        payload = parts.load_weights(Path(trained) / WEIGHTS)
        cfg = _config_from(payload["config"], params.device)
        gen = build_generator(task, cfg)
        gen.load_state_dict(payload["states"]["generator"])
        return generate_videos(task, cfg, gen)


register(Mocogan())
