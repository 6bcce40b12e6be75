"""G_M, the motion forecasting network (paper 3.2, Fig. 4; eqs. 1-3).

    I~_{t+k} = m * c + (1 - m) * I_t                                         (eq. 2)
    (m, c)   = f_D(f_M(M_{t+k}) - f_M(M_t) + f_I(I_t))                      (eq. 3)

Layout (REFERENCE-NOTES, the authors' G_M):
- f_I (image encoder, 3 channels) and f_M (motion encoder, `cond_channels`: 3 for face normal
  maps, 13 for actor joint heatmaps), the same layout each: a 3x3 conv to `width` channels,
  then residual downsampling blocks (average pooling) doubling channels up to `max_width`
  until the map side is the smallest >= `min_bottleneck` reachable by halving (96 -> 6x6,
  64 -> 4x4, 32 -> 4x4), then a linear layer to a `code_dim`-d code (authors: 128).
  `code_dim=None` keeps the bottleneck map instead (eq. 3 then acts on feature maps).
- f_M is one module applied to M_t and M_{t+k} (shared weights; one pass on both, stacked on
  the batch axis).
- f_D: a linear layer from the code back to the bottleneck map, then one dense block per scale
  from the bottleneck up to full size. Each block is two 3x3 convs (`DenseBlock2d`); its first
  conv receives, upsampled (nearest) to its resolution, the outputs of *every* earlier block
  (paper: "The output of a dense block is connected to the first convolutional layers located in
  all subsequent blocks"), plus the encoder skip at its scale. `dense=False` (the ablation
  "G_M without dense connections", Table 4) feeds each block only its predecessor plus the skip.
- Skips (`skips`): "image" (default, the paper: "skip connections between f_I and f_D"),
  "all" (the authors' code: f_I, f_M(M_{t+k}) and f_M(M_t) features concatenated at each
  scale), "none".
- Heads on the full-size features: content c = tanh(conv3x3) (3 channels, [-1, 1]) and mask
  m = sigmoid(conv3x3) (1 channel, [0, 1]).
- `residual`: "mask" (default, eq. 2); "diff" (eq. 1, the difference-map formulation of
  [16, 28]: I_t + d with d = 2 * tanh(.) in [-2, 2] so every target in [-1, 1] is reachable,
  the sum clamped to [-1, 1]; the clamp passes no gradient where it saturates); "none" (direct
  output c: G_M without residual learning, i.e. Villegas et al. 2017 [39], paper 4.4).
- BatchNorm in f_I, f_M and f_D (`norm="batch"`), see blocks.py; `norm="none"` turns it off.
"""
from __future__ import annotations

from typing import Literal, NamedTuple, Optional, Sequence

import torch
from torch import nn

from frgan.nets.blocks import (
    DenseBlock2d, GeneratorOutput, Norm, ResidualDown2d, StemConv2d,
    blend, channel_plan, conv3x3, init_weights, norm2d, resize_to, spatial_halvings,
)

Skips = Literal["image", "all", "none"]
Residual = Literal["mask", "diff", "none"]

_SKIP_SOURCES = {"image": 1, "all": 3, "none": 0}  # encoders whose features skip to f_D


class EncoderOutput(NamedTuple):
    code: torch.Tensor              # (B, code_dim), or the bottleneck map when code_dim is None
    features: list[torch.Tensor]    # features[i] at scale i: full size first, bottleneck last


class ConvEncoder2d(nn.Module):
    """f_I or f_M: stem conv, residual downsampling blocks, optional linear code.

    forward -> (code, features): code is (B, code_dim) or the bottleneck map (B, C, b, b);
    features[i] is the map at scale i (i = 0: full size, last: bottleneck).
    """

    def __init__(self, in_ch: int, channels: Sequence[int], bottleneck: int,
                 code_dim: Optional[int], norm: Norm):
        super().__init__()
        self.stem = StemConv2d(in_ch, channels[0], norm, "relu")
        self.downs = nn.ModuleList(
            ResidualDown2d(channels[i], channels[i + 1], norm, "relu")
            for i in range(len(channels) - 1))
        self.to_code = (nn.Linear(channels[-1] * bottleneck * bottleneck, code_dim)
                        if code_dim is not None else None)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        features = [self.stem(x)]
        for down in self.downs:
            features.append(down(features[-1]))
        bottom = features[-1]
        code = self.to_code(bottom.flatten(1)) if self.to_code is not None else bottom
        return EncoderOutput(code, features)


class DenseDecoder2d(nn.Module):
    """f_D: code -> bottleneck map -> one dense block per scale up to full size.

    Block j (j = 0 at the bottleneck, last at full size) gets, resized to its resolution:
    dense=True:  the outputs of blocks 0..j-1 (block 0: the bottleneck map) + the skip;
    dense=False: the output of block j-1 (block 0: the bottleneck map) + the skip.
    """

    def __init__(self, image_size: int, channels: Sequence[int], bottleneck: int,
                 code_dim: Optional[int], skip_channels: Sequence[int], dense: bool, norm: Norm):
        super().__init__()
        n = len(channels) - 1
        self.dense = dense
        self.sizes = [image_size // 2 ** (n - j) for j in range(n + 1)]
        bottom = channels[n]
        self.from_code = (nn.Sequential(nn.Linear(code_dim, bottom * bottleneck * bottleneck),
                                        nn.Unflatten(1, (bottom, bottleneck, bottleneck)),
                                        norm2d(bottom, norm), nn.ReLU())
                          if code_dim is not None else nn.Identity())
        blocks = []
        for j in range(n + 1):
            scale = n - j
            if j == 0:
                fed = bottom
            elif dense:
                fed = sum(channels[n - k] for k in range(j))
            else:
                fed = channels[scale + 1]
            blocks.append(DenseBlock2d(fed + skip_channels[scale], channels[scale], norm))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, code: torch.Tensor, skips: Sequence[Optional[torch.Tensor]]) -> torch.Tensor:
        """skips[i]: the skip at scale i (full size first), or None."""
        n = len(self.blocks) - 1
        start = self.from_code(code)
        outputs: list[torch.Tensor] = []
        for j, block in enumerate(self.blocks):
            size = (self.sizes[j], self.sizes[j])
            if j == 0:
                inputs = [start]
            elif self.dense:  # every earlier block -> this block's first conv (paper 3.2)
                inputs = [resize_to(h, size) for h in outputs]
            else:
                inputs = [resize_to(outputs[-1], size)]
            skip = skips[n - j]
            if skip is not None:
                inputs.append(skip)
            outputs.append(block(inputs))
        return outputs[-1]


class MotionForecaster(nn.Module):
    """G_M (eqs. 1-3). forward(I_t, M_t, M_{t+k}) -> GeneratorOutput(output, mask, content).

    Args:
        image_size: side of the square input (96 faces, 64 actors; smoke 32).
        cond_channels: channels of the motion maps M (3 normal maps, 13 joint heatmaps).
        width: base channels (authors: 64); max_width: channel cap (authors: 512).
        code_dim: size of the encoders' linear code (authors: 128); None: no linear layer.
        min_bottleneck: smallest bottleneck side (4).
        skips: "image" (paper), "all" (authors' code), "none".
        dense: dense connections in f_D (False: Table 4's "G_M without dense connections").
        residual: "mask" (eq. 2), "diff" (eq. 1), "none" (direct output, [39]).
        norm: "batch" or "none" in the generator.
    """

    def __init__(self, image_size: int, cond_channels: int, *, width: int = 64,
                 max_width: int = 512, code_dim: Optional[int] = 128, min_bottleneck: int = 4,
                 skips: Skips = "image", dense: bool = True, residual: Residual = "mask",
                 norm: Norm = "batch", image_channels: int = 3):
        super().__init__()
        if skips not in _SKIP_SOURCES:
            raise ValueError(f"skips must be one of {sorted(_SKIP_SOURCES)}, got {skips!r}")
        if residual not in ("mask", "diff", "none"):
            raise ValueError(f"residual must be 'mask', 'diff' or 'none', got {residual!r}")
        halvings = spatial_halvings(image_size, min_bottleneck)
        channels = channel_plan(width, max_width, halvings)
        bottleneck = image_size // 2 ** halvings
        self.image_size = image_size
        self.cond_channels = cond_channels
        self.image_channels = image_channels
        self.skips = skips
        self.residual = residual
        self.image_encoder = ConvEncoder2d(image_channels, channels, bottleneck, code_dim, norm)  # f_I
        self.motion_encoder = ConvEncoder2d(cond_channels, channels, bottleneck, code_dim, norm)  # f_M
        skip_channels = [c * _SKIP_SOURCES[skips] for c in channels]
        self.decoder = DenseDecoder2d(image_size, channels, bottleneck, code_dim,  # f_D
                                      skip_channels, dense, norm)
        self.content_head = conv3x3(channels[0], image_channels)
        self.mask_head = conv3x3(channels[0], 1) if residual == "mask" else None
        init_weights(self)

    def _check(self, frame: torch.Tensor, cond_source: torch.Tensor,
               cond_target: torch.Tensor) -> None:
        s = self.image_size
        if frame.shape[1:] != (self.image_channels, s, s):
            raise ValueError(f"frame must be (B, {self.image_channels}, {s}, {s}), got {tuple(frame.shape)}")
        for name, m in (("cond_source", cond_source), ("cond_target", cond_target)):
            if m.shape != (frame.shape[0], self.cond_channels, s, s):
                raise ValueError(f"{name} must be ({frame.shape[0]}, {self.cond_channels}, {s}, {s}), "
                                 f"got {tuple(m.shape)}")

    def forward(self, frame: torch.Tensor, cond_source: torch.Tensor,
                cond_target: torch.Tensor) -> GeneratorOutput:
        """frame = I_t in [-1, 1], cond_source = M_t, cond_target = M_{t+k}."""
        self._check(frame, cond_source, cond_target)
        return self._generate(frame, cond_source, cond_target, 1)

    def forward_targets(self, frame: torch.Tensor, cond_source: torch.Tensor,
                        cond_targets: torch.Tensor) -> GeneratorOutput:
        """G_M for K targets of each source: frame = I_t (B, 3, H, W), cond_source = M_t (B, C, H, W),
        cond_targets (B, K, C, H, W) -> the B*K outputs, row b*K + k = target k of sample b.

        What `forward` gives on the sources repeated K times (each row K times), but f_I(I_t)
        and f_M(M_t) run once per sample instead of K times (the first frame of a G_R window or
        of a test video is encoded once). Equal up to float rounding: a convolution's kernel
        can block its sums differently for another batch size (on the CPU, e.g. f_I's 1x1
        shortcut convs for 8 rows instead of 64), so the last bits may differ. Meant for eval
        mode: in train mode BatchNorm's batch statistics would count each source once instead
        of K times.
        """
        if cond_targets.dim() != 5:
            raise ValueError(f"cond_targets must be (B, K, C, H, W), got {tuple(cond_targets.shape)}")
        b, k = cond_targets.shape[:2]
        flat = cond_targets.reshape(b * k, *cond_targets.shape[2:])
        self._check(frame, cond_source, flat[:b])
        # A repeated source is a fresh contiguous tensor; the source itself may not be (the
        # loader's frames have channels-last strides) and the memory format picks the
        # convolution kernels: contiguous, as a repeat is, keeps the per-frame path's kernels.
        return self._generate(frame.contiguous(), cond_source.contiguous(), flat, k)

    def _generate(self, frame: torch.Tensor, cond_source: torch.Tensor, cond_target: torch.Tensor,
                  k: int) -> GeneratorOutput:
        """Eqs. 1-3 for B sources (frame, cond_source) and B*k targets, k per source (source-major)."""
        b = frame.shape[0]

        def per_target(x: torch.Tensor) -> torch.Tensor:   # (B, ...) -> (B*k, ...), each row k times
            return x if k == 1 else x.unsqueeze(1).expand(b, k, *x.shape[1:]).reshape(b * k, *x.shape[1:])

        code_img, feats_img = self.image_encoder(frame)
        # f_M is shared: one pass on the targets and the sources stacked on the batch axis
        code_mot, feats_mot = self.motion_encoder(torch.cat([cond_target, cond_source], dim=0))
        code_target, code_source = code_mot.split([b * k, b], dim=0)
        # eq. 3: f_M(M_{t+k}) - f_M(M_t) + f_I(I_t)
        code = code_target - per_target(code_source) + per_target(code_img)
        if self.skips == "image":
            skips = [per_target(fi) for fi in feats_img]
        elif self.skips == "all":
            skips = []
            for fi, fm in zip(feats_img, feats_mot):
                fm_target, fm_source = fm.split([b * k, b], dim=0)
                skips.append(torch.cat([per_target(fi), fm_target, per_target(fm_source)], dim=1))
        else:
            skips = [None] * len(feats_img)
        hidden = self.decoder(code, skips)
        frame = per_target(frame)
        raw = self.content_head(hidden)
        if self.residual == "mask":
            content = torch.tanh(raw)
            mask = torch.sigmoid(self.mask_head(hidden))
            return GeneratorOutput(blend(mask, content, frame), mask, content)  # eq. 2
        if self.residual == "diff":
            diff = 2.0 * torch.tanh(raw)
            return GeneratorOutput(torch.clamp(frame + diff, -1.0, 1.0), None, diff)  # eq. 1
        content = torch.tanh(raw)
        return GeneratorOutput(content, None, content)  # no residual learning ([39])
