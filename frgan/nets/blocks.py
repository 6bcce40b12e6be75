"""Building blocks shared by G_M, G_R, D_I and D_V: init, size plans, 2D/3D conv blocks.

Conventions (REFERENCE-NOTES, the authors' G_M and D_I):
- weights N(0, 0.02), biases 0, BatchNorm weights N(1, 0.02) (`init_weights`);
- BatchNorm only in generators (the authors' init rule names BatchNorm while their D_I has no
  normalisation, so it lives in their G_M; VGAN's generator, which G_R follows, uses it too);
  critics never normalise (WGAN-GP: the penalty is per sample, batch norm would couple them);
- generators use ReLU, critics LeakyReLU(0.2);
- channel plan: `width * 2**i` capped at `max_width` at the i-th halving of the image side.
"""
from __future__ import annotations

from typing import Literal, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["batch", "none"]
Activation = Literal["relu", "lrelu"]

LEAKY_SLOPE = 0.2


# ---------------------------------------------------------------------------------------------
# Init and counting.

def init_weights(module: nn.Module) -> None:
    """Authors' init: conv/linear weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------
# Size plans.

def spatial_halvings(size: int, min_size: int = 4) -> int:
    """How often the image side is halved: while it stays even and the half is >= min_size.

    96 -> 6 (4 halvings), 64 -> 4 (4), 32 -> 4 (3), 16 -> 4 (2).
    """
    if size < min_size:
        raise ValueError(f"image side {size} is below the bottleneck side {min_size}")
    n = 0
    while size % 2 == 0 and size // 2 >= min_size:
        size //= 2
        n += 1
    if n == 0:
        raise ValueError(f"image side {size} cannot be halved once with bottleneck side >= {min_size}")
    return n


def channel_plan(width: int, max_width: int, halvings: int) -> list[int]:
    """Channels at scale 0 (full size) .. `halvings` (bottleneck): width * 2**i capped."""
    if width < 1 or max_width < width:
        raise ValueError(f"need 1 <= width <= max_width, got width={width} max_width={max_width}")
    return [min(width * 2 ** i, max_width) for i in range(halvings + 1)]


def temporal_strides(frames: int, halvings: int, min_frames: int = 2) -> list[int]:
    """Temporal stride (1 or 2) of each of `halvings` 3D downsampling layers.

    Time is halved from the first layer on while it stays even and the half is >= min_frames;
    later layers keep it ((1,2,2) strides). 32 frames, 4 layers -> 2,2,2,2 (32 -> 2);
    16 frames, 4 layers -> 2,2,2,1 (16 -> 2); 4 frames, 3 layers -> 2,1,1 (4 -> 2).
    """
    if frames < min_frames:
        raise ValueError(f"clip length {frames} is below {min_frames} frames")
    strides = []
    for _ in range(halvings):
        if frames % 2 == 0 and frames // 2 >= min_frames:
            strides.append(2)
            frames //= 2
        else:
            strides.append(1)
    return strides


# ---------------------------------------------------------------------------------------------
# Small factories.

def norm2d(channels: int, norm: Norm) -> nn.Module:
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.Identity()


def norm3d(channels: int, norm: Norm) -> nn.Module:
    return nn.BatchNorm3d(channels) if norm == "batch" else nn.Identity()


def activation(kind: Activation) -> nn.Module:
    return nn.ReLU(inplace=False) if kind == "relu" else nn.LeakyReLU(LEAKY_SLOPE, inplace=False)


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)


def resize_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour upsampling to `size` (no-op when already there)."""
    if tuple(x.shape[-len(size):]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="nearest")


# ---------------------------------------------------------------------------------------------
# 2D blocks.

class StemConv2d(nn.Sequential):
    """3x3 conv to `out_ch` at full resolution, then norm and activation."""

    def __init__(self, in_ch: int, out_ch: int, norm: Norm, act: Activation):
        super().__init__(conv3x3(in_ch, out_ch), norm2d(out_ch, norm), activation(act))


class ResidualDown2d(nn.Module):
    """Residual downsampling block (authors' encoders and D_I): two 3x3 convs, 2x2 avg-pool.

    main = pool(norm(conv(act(norm(conv(x)))))), shortcut = conv1x1(pool(x)); out = act(main + shortcut).
    """

    def __init__(self, in_ch: int, out_ch: int, norm: Norm, act: Activation):
        super().__init__()
        self.main = nn.Sequential(
            conv3x3(in_ch, out_ch), norm2d(out_ch, norm), activation(act),
            conv3x3(out_ch, out_ch), norm2d(out_ch, norm), nn.AvgPool2d(2),
        )
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(in_ch, out_ch, kernel_size=1))
        self.out_act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_act(self.main(x) + self.shortcut(x))


class DenseBlock2d(nn.Module):
    """A decoder dense block (paper 3.2): two 3x3 convs on the concatenation of its inputs.

    The caller passes the inputs already resized to this block's resolution; `first_conv` is the
    layer that the dense connections feed. A 1x1 shortcut makes the block residual, as the
    authors' upsampling residual blocks are.
    """

    def __init__(self, in_ch: int, out_ch: int, norm: Norm):
        super().__init__()
        self.in_channels = in_ch
        self.out_channels = out_ch
        self.first_conv = conv3x3(in_ch, out_ch)
        self.norm1 = norm2d(out_ch, norm)
        self.second_conv = conv3x3(out_ch, out_ch)
        self.norm2 = norm2d(out_ch, norm)
        self.shortcut = nn.Conv2d(in_ch, out_ch, kernel_size=1)
        self.act = nn.ReLU()

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(list(inputs), dim=1)
        h = self.act(self.norm1(self.first_conv(x)))
        h = self.norm2(self.second_conv(h))
        return self.act(h + self.shortcut(x))


# ---------------------------------------------------------------------------------------------
# 3D blocks (VGAN style: 4x4x4 strided convs down, fractionally strided convs up).

def _kernel_3d(t_stride: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(kernel, stride) of a 3D layer that halves H, W and halves T iff t_stride == 2.

    With padding 1 both Conv3d and ConvTranspose3d map sizes exactly: k4/s2 halves or doubles,
    k3/s1 keeps.
    """
    return (4 if t_stride == 2 else 3, 4, 4), (t_stride, 2, 2)


class Down3d(nn.Sequential):
    """Strided Conv3d (no pooling) + norm + activation: (T, H, W) -> (T / t_stride, H/2, W/2)."""

    def __init__(self, in_ch: int, out_ch: int, t_stride: int, norm: Norm, act: Activation):
        kernel, stride = _kernel_3d(t_stride)
        super().__init__(nn.Conv3d(in_ch, out_ch, kernel, stride, padding=1),
                         norm3d(out_ch, norm), activation(act))


class Up3d(nn.Sequential):
    """Fractionally strided ConvTranspose3d + norm + ReLU, the inverse size map of `Down3d`."""

    def __init__(self, in_ch: int, out_ch: int, t_stride: int, norm: Norm):
        kernel, stride = _kernel_3d(t_stride)
        super().__init__(nn.ConvTranspose3d(in_ch, out_ch, kernel, stride, padding=1),
                         norm3d(out_ch, norm), nn.ReLU())


# ---------------------------------------------------------------------------------------------
# Generator outputs.

class GeneratorOutput(NamedTuple):
    """What G_M and G_R return. Unpacks as `output, mask, content`.

    output:  the generated frame / clip, in [-1, 1] (images are in [-1, 1]).
    mask:    the residual motion mask m in [0, 1] (B, 1, ...); None for residual="diff"/"none".
    content: the residual content c: tanh, in [-1, 1]; for residual="diff" the difference map
             in [-2, 2]; for residual="none" equal to `output`.
    """

    output: torch.Tensor
    mask: Optional[torch.Tensor]
    content: torch.Tensor


def blend(mask: torch.Tensor, content: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """m * c + (1 - m) * base: residual motion plus static content (eq. 2; eq. 10 for clips)."""
    return mask * content + (1.0 - mask) * base
