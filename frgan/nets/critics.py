"""D_I and D_V: the WGAN-GP critics (eqs. 7-9 and 12-14).

Both take the *joint* tensor: the frame (clip) concatenated with its condition map(s) on the
channel axis, `join(x, cond)` (paper: "We concatenate the output of G_M and motion map M_{t+k}
as the input of D_I and make the discriminator conditioned on the motion"). They take the joint
tensor rather than (x, cond) so the gradient penalty can differentiate with respect to
[x_hat, M] itself (eqs. 9, 14). Scores are unbounded reals of shape (B,): no sigmoid, no batch
norm (WGAN-GP; the authors' D_I has no normalisation).

D_I (REFERENCE-NOTES, the authors' D_I): a 3x3 conv to `width`, residual downsampling blocks
with LeakyReLU(0.2) doubling channels up to `max_width` until the side reaches the bottleneck
(96 -> 6, 64 -> 4, 32 -> 4), LeakyReLU, linear to 1.

D_V (VGAN-style): 4x4x4 strided Conv3d layers with LeakyReLU(0.2), spatial stride 2 each,
temporal stride 2 while the clip length stays even and >= 2 after halving, else (1,2,2), down
to the bottleneck side; linear to 1.
"""
from __future__ import annotations

import torch
from torch import nn

from frgan.nets.blocks import (
    Down3d, ResidualDown2d, StemConv2d, channel_plan, init_weights,
    spatial_halvings, temporal_strides,
)


def join(x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """[x, cond]: concatenation on the channel axis, the critics' input (eqs. 7, 12)."""
    return torch.cat([x, cond], dim=1)


class ImageCritic(nn.Module):
    """D_I on [frame, M] (B, 3 + C_m, H, W) -> scores (B,)."""

    def __init__(self, image_size: int, cond_channels: int, *, width: int = 64,
                 max_width: int = 512, min_bottleneck: int = 4, image_channels: int = 3):
        super().__init__()
        halvings = spatial_halvings(image_size, min_bottleneck)
        channels = channel_plan(width, max_width, halvings)
        bottleneck = image_size // 2 ** halvings
        self.in_channels = image_channels + cond_channels
        self.image_size = image_size
        self.features = nn.Sequential(
            StemConv2d(self.in_channels, channels[0], "none", "lrelu"),
            *(ResidualDown2d(channels[i], channels[i + 1], "none", "lrelu") for i in range(halvings)),
        )
        self.score = nn.Linear(channels[-1] * bottleneck * bottleneck, 1)
        init_weights(self)

    def forward(self, joint: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(joint).flatten(1)).squeeze(1)


class VideoCritic(nn.Module):
    """D_V on [clip, M-clip] (B, 3 + C_m, T, H, W) -> scores (B,)."""

    def __init__(self, image_size: int, frames: int, cond_channels: int, *, width: int = 64,
                 max_width: int = 512, min_bottleneck: int = 4, image_channels: int = 3):
        super().__init__()
        halvings = spatial_halvings(image_size, min_bottleneck)
        channels = channel_plan(width, max_width, halvings)
        t_strides = temporal_strides(frames, halvings)
        bottleneck = image_size // 2 ** halvings
        frames_left = frames
        for s in t_strides:
            frames_left //= s
        self.in_channels = image_channels + cond_channels
        self.image_size = image_size
        self.frames = frames
        # layer i: channels[i - 1] -> channels[i] (layer 0 from the input), VGAN's 64-128-256-512
        widths = [self.in_channels] + channels[:halvings]
        self.features = nn.Sequential(*(
            Down3d(widths[i], widths[i + 1], t_strides[i], "none", "lrelu") for i in range(halvings)))
        self.score = nn.Linear(widths[-1] * frames_left * bottleneck * bottleneck, 1)
        init_weights(self)

    def forward(self, joint: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(joint).flatten(1)).squeeze(1)

