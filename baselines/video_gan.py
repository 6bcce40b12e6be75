"""What the two video GAN baselines (VGAN, MoCoGAN) share: the DCGAN-style frame encoder, the
3D-conv video discriminator, the BCE GAN losses, label one-hots, labelled window sampling and
the weight files.

Both baselines are image-to-video variants (FRGAN paper 4.2: "each method only observes the
input frame of the target subject"), so both generate a video whose frame 0 is the observed
input frame itself (reconstructed, L1 weight 10: VGAN's conditional variant, REFERENCE-NOTES)
and whose frames 1..T are the T frames after it, the frames every method is evaluated on
(paper 4.3: "32 generated frames ... evaluated from the first"). A training clip is therefore
the first frame of a `Task.sample_windows` window followed by the window.

Conventions (REFERENCE-NOTES; Radford et al.'s DCGAN, which VGAN and MoCoGAN build on):
4x4 kernels with stride 2 for every spatial halving or doubling, BatchNorm everywhere except
the discriminators' first layer, LeakyReLU(0.2) in encoders and discriminators, ReLU in
generators, weights N(0, 0.02) (`frgan.nets.blocks.init_weights`), channels `width * 2**i`
capped at `max_width` at the i-th halving, down to a 4x4 bottleneck at 64 px (4 halvings;
32 px: 3, 16 px: 2).
"""
from __future__ import annotations

from typing import Literal, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from frgan.data.errors import DatasetError
from frgan.nets.blocks import Down3d, channel_plan, init_weights, spatial_halvings, temporal_strides
from frgan.task import Task

MAX_WIDTH = 512          # DCGAN / VGAN: 64-128-256-512
FIRST_FRAME_WEIGHT = 10.0  # VGAN, conditional variant: L1 of frame 0 to the input (REFERENCE-NOTES)


# ---------------------------------------------------------------------------------------------
# Networks.

def dcgan_plan(image_size: int, width: int, max_width: int = MAX_WIDTH) -> tuple[int, list[int], int]:
    """(halvings, channels after each halving, bottleneck side) of a DCGAN stack of `image_size`."""
    halvings = spatial_halvings(image_size)
    channels = channel_plan(width, max_width, halvings)[:halvings]
    return halvings, channels, image_size // 2 ** halvings


def _down2d(in_ch: int, out_ch: int, batch_norm: bool) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 4, 2, 1),
                         nn.BatchNorm2d(out_ch) if batch_norm else nn.Identity(), nn.LeakyReLU(0.2))


class FrameEncoder(nn.Module):
    """The 2D encoder of the input frame: (B, 3, H, W) -> (B, C, b, b) at the bottleneck.

    VGAN's conditional variant: "a 2D encoder of the first frame replaces z"; MoCoGAN's
    image-to-video variant: the content code comes from an image encoder (REFERENCE-NOTES).
    """

    def __init__(self, image_size: int, width: int, max_width: int = MAX_WIDTH):
        super().__init__()
        _, channels, self.bottleneck = dcgan_plan(image_size, width, max_width)
        widths = [3] + channels
        self.layers = nn.Sequential(*(_down2d(widths[i], widths[i + 1], batch_norm=i > 0)
                                      for i in range(len(channels))))
        self.out_channels = channels[-1]
        init_weights(self)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.layers(frame)


def _keep_time_kernel(frames: int) -> int:
    """MoCoGAN's temporal kernel 4 with stride 1 and no temporal padding (T -> T - 3), shrunk to
    the clip itself when fewer than 4 frames are left (short smoke clips)."""
    return min(4, frames)


class VideoDiscriminator(nn.Module):
    """3D-conv video discriminator: (B, C_in, T, H, W) -> logits (B, outputs, P).

    Layers: 4x4x4 strided Conv3d + (BatchNorm from the second layer on) + LeakyReLU(0.2),
    spatial stride 2 down to the bottleneck. Time:
    - "halve" (VGAN): stride 2 in time too while the clip stays even and >= 2 frames (a
      3-frame kernel with stride 1 otherwise); the head covers all that is left: one logit
      per clip (P = 1), as VGAN's last 2x4x4 convolution.
    - "keep" (MoCoGAN): stride (1, 2, 2), no temporal padding; the head is another 4-frame
      kernel, so P = the temporal positions left (MoCoGAN's patch-wise video logits).
    `outputs` > 1 adds channels beside the real/fake logit (MoCoGAN's category logits).
    """

    def __init__(self, image_size: int, frames: int, *, width: int, time: Literal["halve", "keep"],
                 in_channels: int = 3, outputs: int = 1, max_width: int = MAX_WIDTH):
        super().__init__()
        halvings, channels, bottleneck = dcgan_plan(image_size, width, max_width)
        widths = [in_channels] + channels
        layers: list[nn.Module] = []
        frames_left = frames
        if time == "halve":
            for i, stride in enumerate(temporal_strides(frames, halvings)):
                layers.append(Down3d(widths[i], widths[i + 1], stride, "batch" if i > 0 else "none", "lrelu"))
                frames_left //= stride
            head_frames = frames_left
        elif time == "keep":
            for i in range(halvings):
                kt = _keep_time_kernel(frames_left)
                layers += [nn.Conv3d(widths[i], widths[i + 1], (kt, 4, 4), (1, 2, 2), (0, 1, 1)),
                           nn.BatchNorm3d(widths[i + 1]) if i > 0 else nn.Identity(), nn.LeakyReLU(0.2)]
                frames_left -= kt - 1
            head_frames = _keep_time_kernel(frames_left)
        else:
            raise ValueError(f"time must be 'halve' or 'keep', got {time!r}")
        self.frames = frames
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv3d(widths[-1], outputs, (head_frames, bottleneck, bottleneck))
        init_weights(self)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.shape[2] != self.frames:
            raise ValueError(f"expected clips of {self.frames} frames, got {tuple(clip.shape)}")
        logits = self.head(self.features(clip))
        return logits.flatten(2)


# ---------------------------------------------------------------------------------------------
# Losses: the original (non-saturating) GAN with binary cross-entropy, as VGAN and MoCoGAN
# (REFERENCE-NOTES), on logits for numerical stability; means over every logit (patches too).

def discriminator_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(real) - log(1 - D(fake)), each averaged over its logits."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_bce(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(fake): the non-saturating generator loss of Goodfellow et al., used by both."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def first_frame_l1(video: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """mean |video[:, :, 0] - first|: frame 0 reconstructs the observed frame (VGAN conditional).
    A mean, as every term of frgan.losses, so the weight does not depend on the image size."""
    return (video[:, :, 0] - first).abs().mean()


# ---------------------------------------------------------------------------------------------
# Labels.

def store_labels(task: Task) -> tuple[str, ...]:
    """The store's class labels (expressions or actions), sorted: the one-hot vocabulary."""
    return tuple(task.store.meta["labels"])


def label_indices(labels: Sequence[str], vocabulary: Sequence[str]) -> torch.Tensor:
    """Class indices (N,) of `labels` in `vocabulary`; an unknown label is an error naming it."""
    position = {name: i for i, name in enumerate(vocabulary)}
    unknown = sorted(set(labels) - set(position))
    if unknown:
        raise DatasetError(f"labels {unknown} are not among the store's labels {list(vocabulary)}")
    return torch.as_tensor([position[name] for name in labels], dtype=torch.long)


def one_hot(indices: torch.Tensor, n_classes: int) -> torch.Tensor:
    return F.one_hot(indices, n_classes).float()


def training_labels(task: Task, split: str | Sequence[str], min_length: int) -> list[str]:
    """The labels that have at least one clip of `min_length` frames in `split` (one split name or
    several, e.g. TRAIN_SPLITS), sorted."""
    clips = task.clips(split, min_length=min_length)
    return sorted(clips.label.unique())


# ---------------------------------------------------------------------------------------------
# Data.

def with_first_frame(first: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) + (B,3,K,H,W) -> the (B,3,1+K,H,W) clip that starts at the observed frame."""
    return torch.cat([first.unsqueeze(2), window], dim=2)


def sample_clips(task: Task, split: str | Sequence[str], batch: int, frames: int, rng: np.random.Generator,
                 label: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(first frames (B,3,H,W), clips (B,3,frames,H,W) starting at them). Conditions are dropped:
    neither baseline uses them."""
    first, _, window, _ = task.sample_windows(split, batch, frames - 1, rng, label=label)
    return first, with_first_frame(first, window)


def sample_labelled_clips(task: Task, split: str | Sequence[str], batch: int, frames: int, rng: np.random.Generator,
                          labels: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Like `sample_clips`, with the class of each sample: classes drawn uniformly from `labels`,
    then each class's samples drawn from its clips (Task samples one class per call)."""
    drawn = rng.choice(np.asarray(labels, dtype=object), size=batch)
    firsts, clips, names = [], [], []
    for name in sorted(set(drawn)):
        count = int((drawn == name).sum())
        first, clip = sample_clips(task, split, count, frames, rng, label=name)
        firsts.append(first)
        clips.append(clip)
        names += [name] * count
    return torch.cat(firsts), torch.cat(clips), names


def longest_clip(task: Task, split: str | Sequence[str], labels: Sequence[str]) -> int:
    """The longest clip length every one of `labels` has in `split` (the shortest class maximum)."""
    return int(min(task.clips(split, label=name).length.max() for name in labels))

