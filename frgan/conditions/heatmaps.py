"""Joint heatmaps: the motion map M of the actor task (paper section 3.1).

"The motion map is calculated by mapping the output 2D coordinates from the LSTM to heatmaps and
concatenating them on depth": one Gaussian channel per joint, stacked as channels.

Pixel-centre convention: pixel (i, j) -- row i, column j -- has its centre at (x=j, y=i), so a
joint at integer coordinates (x, y) peaks exactly on pixel (row y, column x) with value 1.
Joints are in pixels of the map itself (the dataset frame size, e.g. 64 for Penn Action).

sigma is in pixels at that size. Villegas et al. 2017 drew their limb maps with sigma 8 at their
resolution; the paper gives no value for its joint maps, so the caller picks it (a config value).
"""
from __future__ import annotations

import torch

__all__ = ["joint_heatmaps"]


def _axis_gaussians(coord: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """exp(-(k - coord)^2 / (2 sigma^2)) for k = 0..size-1: (..., size) along one image axis."""
    grid = torch.arange(size, dtype=coord.dtype, device=coord.device)
    return torch.exp(-0.5 * ((grid - coord.unsqueeze(-1)) / sigma) ** 2)


def joint_heatmaps(joints, visibility, size: int, sigma: float, device=None) -> torch.Tensor:
    """One Gaussian heatmap per joint, peak 1 at the joint, zero where the joint is invisible.

    joints: (..., J, 2) as (x, y) in pixels; visibility: (..., J), 0/1 (or bool), used as a
    per-channel weight. Returns (..., J, size, size) float32 on `device` (default: the joints'
    device; a training step draws them on its GPU: 13 maps a frame are ~100x the bytes of
    their coordinates).
    A joint outside the frame still contributes its in-frame tail (the Gaussian is not clipped).
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    joints = torch.as_tensor(joints, dtype=torch.float32, device=device)
    visibility = torch.as_tensor(visibility, device=joints.device).to(torch.float32)
    if joints.shape[-1] != 2 or joints.shape[:-1] != visibility.shape:
        raise ValueError(f"joints {tuple(joints.shape)} must be visibility {tuple(visibility.shape)} + (2,)")
    # The 2-D isotropic Gaussian is separable: an outer product of a row and a column profile,
    # O(size) exponentials per joint instead of O(size^2).
    along_x = _axis_gaussians(joints[..., 0], size, sigma)            # (..., J, size): columns
    along_y = _axis_gaussians(joints[..., 1], size, sigma)            # (..., J, size): rows
    # The visibility weight goes on the row profile, not on the maps: one pass over the
    # (..., J, size, size) output instead of two (the loader's main cost; with 0/1 weights
    # the same bits either way).
    along_y = along_y * visibility[..., None]
    return along_y.unsqueeze(-1) * along_x.unsqueeze(-2)             # (..., J, size, size)
