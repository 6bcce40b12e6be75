"""G_R, the motion refinement network (paper 3.3, Fig. 5; eq. 10).

    V_t = m * c + (1 - m) * V~_t                                             (eq. 10)

with V~_t the clip of G_M outputs, m a spatiotemporal mask (B, 1, T, H, W) and c the refined
content (B, 3, T, H, W). The authors released no G_R; the paper says it "roughly follows the
architectural guidelines of [40]" (VGAN): no pooling, strided 3D convs down and fractionally
strided (transposed) 3D convs up, skip connections, input = the clip concatenated with its
condition maps on the channel axis.

Layout: a 3x3x3 stem conv to `width` channels at full size; `Down3d` layers (4x4x4 kernels,
stride (2,2,2) while the clip length stays even and >= 2 after halving, (1,2,2) after that)
until the side is the smallest >= `min_bottleneck` reachable by halving (64 -> 4, 96 -> 6,
32 -> 4, 16 -> 4); `Up3d` transposed convs back, each fed the previous decoder output
concatenated with the encoder map at that scale (U-Net skips; `skips=False` drops them); heads
on the full-size features concatenated with the stem's: content tanh (3 ch) and mask sigmoid
(1 ch). BatchNorm as in VGAN's generator (`norm`).

Paper sizes: 32-frame clips at 96x96 (faces, 3 condition channels), 16-frame clips at 64x64
(actors, 13). Works from T >= 4 and H >= 16 (smoke sizes).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from frgan.nets.blocks import (
    Down3d, GeneratorOutput, Norm, Up3d, blend, channel_plan, init_weights, norm3d,
    spatial_halvings, temporal_strides,
)


class MotionRefiner(nn.Module):
    """G_R (eq. 10). forward(clip, cond_clip) -> GeneratorOutput(output, mask, content).

    Args:
        image_size: frame side (96 faces, 64 actors).
        frames: clip length T (32 faces, 16 actors).
        cond_channels: channels of the condition maps (3 normal maps, 13 joint heatmaps).
        width: base channels (64); max_width: channel cap (512).
        min_bottleneck: smallest bottleneck side (4).
        skips: U-Net skips from the encoder to the decoder (the paper adds them).
        norm: "batch" or "none".
    """

    def __init__(self, image_size: int, frames: int, cond_channels: int, *, width: int = 64,
                 max_width: int = 512, min_bottleneck: int = 4, skips: bool = True,
                 norm: Norm = "batch", image_channels: int = 3):
        super().__init__()
        if frames < 4:
            raise ValueError(f"G_R needs clips of >= 4 frames, got {frames}")
        halvings = spatial_halvings(image_size, min_bottleneck)
        channels = channel_plan(width, max_width, halvings)
        t_strides = temporal_strides(frames, halvings)
        self.image_size = image_size
        self.frames = frames
        self.cond_channels = cond_channels
        self.image_channels = image_channels
        self.skips = skips
        in_ch = image_channels + cond_channels
        self.stem = nn.Sequential(nn.Conv3d(in_ch, channels[0], 3, 1, padding=1),
                                  norm3d(channels[0], norm), nn.ReLU())
        self.downs = nn.ModuleList(
            Down3d(channels[i], channels[i + 1], t_strides[i], norm, "relu")
            for i in range(halvings))
        # ups[i] maps scale i+1 -> scale i; its input is the decoder map at scale i+1, plus the
        # encoder's map at scale i+1 when that is not the bottleneck itself.
        self.ups = nn.ModuleList(
            Up3d(channels[i + 1] * (2 if skips and i + 1 < halvings else 1), channels[i],
                 t_strides[i], norm)
            for i in range(halvings))
        head_in = channels[0] * (2 if skips else 1)
        self.content_head = nn.Conv3d(head_in, image_channels, 3, 1, padding=1)
        self.mask_head = nn.Conv3d(head_in, 1, 3, 1, padding=1)
        init_weights(self)

    def _check(self, clip: torch.Tensor, cond_clip: torch.Tensor) -> None:
        t, s = self.frames, self.image_size
        if clip.shape[1:] != (self.image_channels, t, s, s):
            raise ValueError(f"clip must be (B, {self.image_channels}, {t}, {s}, {s}), "
                             f"got {tuple(clip.shape)}")
        if cond_clip.shape != (clip.shape[0], self.cond_channels, t, s, s):
            raise ValueError(f"cond_clip must be ({clip.shape[0]}, {self.cond_channels}, {t}, {s}, {s}), "
                             f"got {tuple(cond_clip.shape)}")

    def forward(self, clip: torch.Tensor, cond_clip: torch.Tensor) -> GeneratorOutput:
        """clip = V~_t (B, 3, T, H, W) in [-1, 1]; cond_clip = [M_{t+1}..M_{t+K}] (B, C_m, T, H, W)."""
        self._check(clip, cond_clip)
        features = [self.stem(torch.cat([clip, cond_clip], dim=1))]
        for down in self.downs:
            features.append(down(features[-1]))
        n = len(self.downs)
        hidden: Optional[torch.Tensor] = features[n]
        for i in reversed(range(n)):
            x = hidden if (i + 1 == n or not self.skips) else torch.cat([hidden, features[i + 1]], 1)
            hidden = self.ups[i](x)
        if self.skips:
            hidden = torch.cat([hidden, features[0]], dim=1)
        content = torch.tanh(self.content_head(hidden))
        mask = torch.sigmoid(self.mask_head(hidden))
        return GeneratorOutput(blend(mask, content, clip), mask, content)  # eq. 10
