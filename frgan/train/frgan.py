"""FRGAN's two training stages (paper 3.2-3.3, 4.1) and its test-time generation.

Stage 1, G_M on split 1 ('gm'; both training splits, for the whole step budget, when no G_R
follows: FrganConfig.gm_splits): random jumps in time (a random t and k per sample); one critic
step of D_I (eq. 8-9, WGAN-GP on [frame, M]) then one generator step of eq. 4-7.
Stage 2, G_R on split 2 ('gr'): the trained G_M (frozen) turns an anchor frame into the coarse
clip of a window that lies as far after it as the test's windows lie after the input frame
(`Task.sample_anchored_windows`); D_I (one random frame pair per sample) and D_V (the clip) are
updated in one step (eq. 8, 13-14), G_R in the alternating step (eq. 11-12).
Generation: every target frame from the input frame (G_M), then G_R over windows of its clip
length (the last window padded with its final frame, the padding dropped).

All randomness of step n comes from (seed, stage, n), so a killed run resumes bit-for-bit.
Under several processes (frgan.train.distributed) every rank draws the same global batch and
per-sample randomness and keeps its rows; gradients are averaged over the ranks.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Optional

import numpy as np
import torch

from frgan import losses
from frgan.nets import ImageCritic, MotionForecaster, MotionRefiner, VideoCritic
from frgan.task import Task, to_uint8_frames
from frgan.train import distributed as dist
from frgan.train import parts
from frgan.train.accel import Acceleration, Prefetcher
from frgan.train.checkpoint import Checkpoints
from frgan.train.loop import Log, run_training, with_sampler
from frgan.train.samples import clip_sampler, evaluating
from frgan.train.seeding import derive_seed, seed_everything, step_rng



@dataclass(frozen=True)
class FrganConfig:
    dense: bool                 # dense connections in f_D (Table 4 ablation when False)
    residual: Literal["mask", "diff", "none"]   # eq. 2 / eq. 1 / direct output
    refine: bool                # run stage 2 (G_R); False = "G_M only"
    width: int                  # base channels (authors: 64)
    batch: int                  # paper 4.1: 32
    gm_steps: int
    gr_steps: int
    clip_len: int               # G_R clip length K (paper 4.1: 32 faces, 16 actors)
    lr: float                   # paper 4.1: 1e-4
    betas: tuple[float, float]  # paper 4.1: (0.0, 0.9)
    weights: losses.LossWeights
    gp_weight: float            # lambda, paper 3.2: 10
    seed: int
    device: str
    vgg16_path: Optional[str] = None   # eq. 15's C_1: a user's VGG16 state dict (no downloads)
    # The splits G_M's pairs come from: paper 4.1 trains G_M on the first group ("gm") when G_R
    # follows on the second; a G_M-only variant (refine=False) trains on both (TRAIN_SPLITS),
    # for gm_steps + gr_steps, the same footing as every other one-network method.
    gm_splits: tuple[str, ...] = ("gm",)
    # bf16 / compile / channels_last / prefetch (frgan.train.accel; train.* in params.yaml)
    accel: Acceleration = Acceleration()

    def fingerprint(self, data: str) -> str:
        numeric = self.accel.numeric_key()   # empty at fp32 eager: the fingerprint it always had
        return parts.fingerprint(self, data, skip=("accel",), **({"accel": numeric} if numeric else {}))


# ---------------------------------------------------------------------------------------------
# Networks.

def build_gm(task: Task, cfg: FrganConfig) -> MotionForecaster:
    return MotionForecaster(task.size, task.channels, width=cfg.width, dense=cfg.dense,
                            residual=cfg.residual)


def build_gr(task: Task, cfg: FrganConfig) -> MotionRefiner:
    return MotionRefiner(task.size, cfg.clip_len, task.channels, width=cfg.width)


def vgg16_feature_loss(path: str, device: torch.device) -> losses.FeatureLoss:
    """Eq. 15's C_1: VGG16's convolutional layers up to the last one (paper 4.3), with weights
    from a torchvision VGG16 state dict the user supplies. Frames are resized to 224x224 (the
    paper resizes the person's box; our crops already are the person's box) and normalised as
    VGG16 expects. The hourglass term C_2 needs a stacked-hourglass network that no PyPI package
    ships: it is left out."""
    import torchvision
    from pathlib import Path as _Path
    if not _Path(path).is_file():
        raise FileNotFoundError(f"{path}: VGG16 weights not found (train.feature_vgg16_path; a "
                                "torchvision vgg16 state_dict, e.g. vgg16-397923af.pth)")
    vgg = torchvision.models.vgg16(weights=None)
    from frgan.train.checkpoint import load_weights
    vgg.load_state_dict(load_weights(path))
    convs = vgg.features[:30].eval().to(device)         # through conv5_3 + ReLU (last conv layer)
    for p in convs.parameters():
        p.requires_grad_(False)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

    def c1(frames: torch.Tensor) -> torch.Tensor:   # frames in [-1, 1]
        x = torch.nn.functional.interpolate((frames + 1) / 2, size=(224, 224), mode="bilinear",
                                            align_corners=False)
        return convs((x - mean) / std)
    return losses.FeatureLoss([c1])


@contextlib.contextmanager
def _shared_forward(generator: torch.nn.Module) -> Iterator[None]:
    """For the one generator forward a training step shares between the critic update (its
    output detached) and the generator update. Each train-mode BatchNorm of `generator` updates
    its running statistics twice per step, as a separate forward for each update would (the
    suite's recorded numbers are trained that way, and eval mode uses those statistics): inside
    this context every BatchNorm runs its forward a second time on the same input (output
    dropped, no gradients). A stage holds it for its whole run, so the hooks are in place before
    torch.compile traces the generator."""
    def again(bn: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if bn.training:
            with torch.no_grad():
                bn.forward(*inputs)    # .forward: not through __call__, so this hook does not recurse
    hooks = [m.register_forward_hook(again) for m in generator.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def _penalty_eps(batch: int, dims: int, device: torch.device) -> torch.Tensor:
    """The WGAN-GP interpolation weights of the global batch (one per sample, what
    `losses.gradient_penalty` would draw), this process's rows of them."""
    return dist.shard(torch.rand((batch,) + (1,) * (dims - 1), device=device))


# ---------------------------------------------------------------------------------------------
# Stage 1: G_M.

def train_gm(task: Task, cfg: FrganConfig, folder: Path, checkpoint_every: int, log: Optional[Log] = None,
             log_every: int = 10) -> MotionForecaster:
    device, accel = torch.device(cfg.device), cfg.accel
    seed_everything(derive_seed(cfg.seed, "gm-init"))
    dist.check_batch(cfg.batch, "G_M")
    gm = dist.prepare(accel.module(build_gm(task, cfg).to(device)))
    d_image = dist.prepare(accel.module(ImageCritic(task.size, task.channels, width=cfg.width).to(device)))
    opt_g, opt_d = parts.adam(gm, cfg.lr, cfg.betas), parts.adam(d_image, cfg.lr, cfg.betas)
    feature_loss = vgg16_feature_loss(cfg.vgg16_path, device) if cfg.weights.feat > 0 else None
    # the critic stays eager: its gradient penalty (eq. 9) differentiates through its gradient,
    # a double backward that torch.compile does not support
    run_gm = accel.forward(gm)
    # batches made on the training device (uint8 frames and joint coordinates travel, not floats)
    pairs = Prefetcher(lambda n: task.sample_pairs(cfg.gm_splits, cfg.batch, step_rng(cfg.seed, n, "gm"),
                                                   device=device), accel.prefetch, cfg.gm_steps)

    def step(n: int) -> dict[str, float]:
        torch.manual_seed(derive_seed(cfg.seed, "gm", n))       # the GP's eps
        eps = _penalty_eps(cfg.batch, 4, device)
        I_t, M_t, I_tk, M_tk = (accel.layout(dist.shard(x)) for x in pairs(n))
        # critic: eq. 8 with the conditioned gradient penalty of eq. 9; G_M's one forward serves
        # both updates (G_M does not change in between), see _shared_forward
        parts.requires_grad(d_image, True)
        with accel.autocast(device):
            result = run_gm(I_t, M_t, M_tk)
            d_loss = losses.critic_loss(d_image, I_tk, result.output.detach(), M_tk, cfg.gp_weight, eps)
        parts.optimizer_step(opt_d, d_loss.total, d_image)
        # generator: eq. 4 = L_rec (5) + L_r (6) + L_gen (7)
        parts.requires_grad(d_image, False)
        with accel.autocast(device):
            g_loss = losses.forecaster_loss(result, I_tk, M_tk, d_image, cfg.weights, feature_loss)
        g_norm = parts.optimizer_step(opt_g, g_loss.total, gm)
        return {"gm/loss": g_loss.total.item(), "gm/rec": g_loss.rec.item(), "gm/mask": g_loss.mask.item(),
                "gm/adv": g_loss.adv.item(), "gm/feat": g_loss.feat.item(), "gm/grad_norm": g_norm,
                "d_image/loss": d_loss.total.item(), "d_image/wasserstein": d_loss.wasserstein.item(),
                "d_image/gp": d_loss.penalty.item()}

    modules = {"gm": gm, "d_image": d_image, "opt_g": opt_g, "opt_d": opt_d}
    log = with_sampler(log, lambda modules: sample_grid(task, cfg, modules["gm"]))
    with _shared_forward(gm), pairs:
        run_training("G_M", cfg.gm_steps, step, modules,
                     Checkpoints(folder / "gm", fingerprint=cfg.fingerprint(task.store.fingerprint)),
                     checkpoint_every, log_every, log)
    return gm.eval()


# ---------------------------------------------------------------------------------------------
# Stage 2: G_R.

@torch.no_grad()
def coarse_clip(gm: MotionForecaster, first: torch.Tensor, first_cond: torch.Tensor,
                cond_clip: torch.Tensor) -> torch.Tensor:
    """G_M's frames for every condition of a clip, each from the same first frame (the test
    item's input frame; in G_R training the window's anchor frame): (B,3,K,H,W).

    In eval mode (a trained, frozen G_M) the first frame and its condition are encoded once per
    clip, not once per frame (`MotionForecaster.forward_targets`); in train mode, where
    BatchNorm's batch statistics depend on it, every frame's pair is a row of the batch."""
    b, c, k = cond_clip.shape[:3]
    conds = cond_clip.transpose(1, 2)                                   # (B, K, C, H, W)
    if not gm.training and isinstance(gm, MotionForecaster):
        out = gm.forward_targets(first, first_cond, conds).output
    else:
        def repeat(x: torch.Tensor) -> torch.Tensor:   # (B, ...) -> (B*K, ...), each row K times
            return x.unsqueeze(1).expand(b, k, *x.shape[1:]).reshape(b * k, *x.shape[1:])
        out = gm(repeat(first), repeat(first_cond), conds.reshape(b * k, c, *cond_clip.shape[3:])).output
    return out.reshape(b, k, *out.shape[1:]).transpose(1, 2)


def train_gr(task: Task, cfg: FrganConfig, gm: MotionForecaster, folder: Path, checkpoint_every: int,
             log: Optional[Log] = None, log_every: int = 10) -> MotionRefiner:
    device, accel = torch.device(cfg.device), cfg.accel
    seed_everything(derive_seed(cfg.seed, "gr-init"))
    dist.check_batch(cfg.batch, "G_R")
    gr = dist.prepare(accel.module(build_gr(task, cfg).to(device)))
    # A fresh D_I for this stage (the paper trains D_I "following the same strategy as eq. 8"
    # but does not say it is carried over from stage 1).
    d_image = dist.prepare(accel.module(ImageCritic(task.size, task.channels, width=cfg.width).to(device)))
    d_video = dist.prepare(accel.module(VideoCritic(task.size, cfg.clip_len, task.channels,
                                                    width=cfg.width).to(device)))
    opt_g, opt_d = parts.adam(gr, cfg.lr, cfg.betas), parts.adam([d_image, d_video], cfg.lr, cfg.betas)
    gm = gm.to(device).eval()
    # G_R refines, at test, G_M's forecasts 1..T frames from the input frame (T = the test
    # videos' length): it trains on windows forecast from as far back.
    horizon = task.horizon()
    run_gr = accel.forward(gr)   # the critics stay eager (double backward), see train_gm

    def windows(n: int):
        """Step n's windows and the frame each sample's D_I pair is picked at (eq. 8), all
        from the step's own RNG in this order (so a prefetching thread draws the same)."""
        rng = step_rng(cfg.seed, n, "gr")
        batch = task.sample_anchored_windows("gr", cfg.batch, cfg.clip_len, horizon, rng, device=device)
        return batch, rng.integers(0, cfg.clip_len, cfg.batch)
    batches = Prefetcher(windows, accel.prefetch, cfg.gr_steps)

    def step(n: int) -> dict[str, float]:
        torch.manual_seed(derive_seed(cfg.seed, "gr", n))
        eps_video, eps_image = _penalty_eps(cfg.batch, 5, device), _penalty_eps(cfg.batch, 4, device)
        batch, picks = batches(n)
        # every rank draws the same global batch and keeps its rows (dist.shard)
        anchor, anchor_cond, real, cond = (accel.layout(dist.shard(x)) for x in batch)
        coarse = coarse_clip(gm, anchor, anchor_cond, cond)
        parts.requires_grad([d_image, d_video], True)
        with accel.autocast(device):
            # one forward of G_R for both updates (G_R does not change in between), see _shared_forward
            result = run_gr(coarse, cond)
            refined = result.output.detach()
            # critics, one step for both (eq. 8 on one random frame pair per sample, eq. 13-14)
            t = torch.as_tensor(dist.shard(picks), device=device)
            pick = lambda clip: clip[torch.arange(len(clip), device=device), :, t]
            dv = losses.critic_loss(d_video, real, refined, cond, cfg.gp_weight, eps_video)
            di = losses.critic_loss(d_image, pick(real), pick(refined), pick(cond), cfg.gp_weight, eps_image)
        parts.optimizer_step(opt_d, dv.total + di.total, [d_image, d_video])
        # generator: eq. 11 = L_rec + L_r + eq. 12
        parts.requires_grad([d_image, d_video], False)
        with accel.autocast(device):
            g_loss = losses.refiner_loss(result, real, cond, d_video, d_image, cfg.weights)
        g_norm = parts.optimizer_step(opt_g, g_loss.total, gr)
        return {"gr/loss": g_loss.total.item(), "gr/rec": g_loss.rec.item(), "gr/mask": g_loss.mask.item(),
                "gr/adv": g_loss.adv.item(), "gr/grad_norm": g_norm,
                "gr/coarse_rec": losses.reconstruction_loss(coarse, real).item(),
                "d_video/wasserstein": dv.wasserstein.item(), "d_video/gp": dv.penalty.item(),
                "d_image/wasserstein": di.wasserstein.item(), "d_image/gp": di.penalty.item()}

    modules = {"gr": gr, "d_image": d_image, "d_video": d_video, "opt_g": opt_g, "opt_d": opt_d}

    def coarse_and_refined(modules, first, first_cond, cond):   # the picture's rows under the real frames
        coarse = coarse_clip(gm, first, first_cond, cond)
        return coarse, refine_long_clip(modules["gr"], coarse, cond, cfg.clip_len)
    log = with_sampler(log, clip_sampler(task, cfg.seed, cfg.device, coarse_and_refined, ("gr",)))
    with _shared_forward(gr), batches:
        run_training("G_R", cfg.gr_steps, step, modules,
                     Checkpoints(folder / "gr", fingerprint=cfg.fingerprint(task.store.fingerprint)),
                     checkpoint_every, log_every, log)
    return gr.eval()


# ---------------------------------------------------------------------------------------------
# Samples for the eye.

@torch.no_grad()
def sample_grid(task: Task, cfg: FrganConfig, gm: MotionForecaster, rows: int = 6) -> np.ndarray:
    """A PNG-ready grid of fixed validation pairs (split 'gr'): input I_t, target I_{t+k},
    G_M's output and its mask m (eq. 2), one pair per row; uint8 (rows*S, 4*S, 3). G_M runs in
    eval mode and is left in the mode it was in (a picture during training changes nothing)."""
    device = torch.device(cfg.device)
    I_t, M_t, I_tk, M_tk = (x.to(device) for x in task.sample_pairs("gr", rows, step_rng(cfg.seed, 0, "samples")))
    with evaluating(gm):
        result = gm(I_t, M_t, M_tk)
    mask = (result.mask * 2 - 1).expand(-1, 3, -1, -1) if result.mask is not None else torch.zeros_like(I_t)
    columns = [to_uint8_frames(x) for x in (I_t, I_tk, result.output, mask)]
    return np.concatenate([np.concatenate([c[i] for c in columns], axis=1) for i in range(rows)], axis=0)


# ---------------------------------------------------------------------------------------------
# Generation.

@torch.no_grad()
def refine_long_clip(gr: MotionRefiner, coarse: torch.Tensor, cond: torch.Tensor, clip_len: int) -> torch.Tensor:
    """G_R over consecutive windows of `clip_len` frames; the last window is padded with its
    final frame and the padding dropped. G_R's training windows mirror this layout
    (`frgan.task.refine_window_offsets`): change one, change the other."""
    total = coarse.shape[2]
    pad = (-total) % clip_len
    if pad:
        coarse = torch.cat([coarse, coarse[:, :, -1:].expand(-1, -1, pad, -1, -1)], dim=2)
        cond = torch.cat([cond, cond[:, :, -1:].expand(-1, -1, pad, -1, -1)], dim=2)
    windows = [gr(coarse[:, :, s:s + clip_len], cond[:, :, s:s + clip_len]).output
               for s in range(0, coarse.shape[2], clip_len)]
    return torch.cat(windows, dim=2)[:, :, :total]


@torch.no_grad()
def generate(task: Task, cfg: FrganConfig, gm: MotionForecaster, gr: Optional[MotionRefiner],
             cond_key: str = "cond", batch: int = 8) -> np.ndarray:
    """Test videos (N, T, H, W, 3) uint8 from each item's input frame and conditions."""
    device = torch.device(cfg.device)
    items = task.test_items()
    conds = getattr(items, cond_key)
    gm, gr = gm.to(device).eval(), gr.to(device).eval() if gr is not None else None

    def clips(part: slice) -> torch.Tensor:
        cond = conds[part].to(device).transpose(1, 2)                 # (B, C, T, H, W)
        clip = coarse_clip(gm, items.input[part].to(device), items.input_cond[part].to(device), cond)
        return clip if gr is None else refine_long_clip(gr, clip, cond, cfg.clip_len)
    return parts.test_videos(len(items.index), clips, batch)
