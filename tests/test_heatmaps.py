"""Joint heatmaps: peak on the joint, Gaussian width sigma, invisible joints empty, any batch shape."""
from __future__ import annotations

import math

import pytest
import torch

from frgan.conditions.heatmaps import joint_heatmaps

SIZE = 32


def _random_joints(*batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 3 + (SIZE - 7) * torch.rand(*batch, 13, 2, generator=g)   # well inside the frame


def test_peak_is_on_the_rounded_joint():
    joints = _random_joints(4)
    maps = joint_heatmaps(joints, torch.ones(4, 13), SIZE, sigma=2.0)
    flat_argmax = maps.flatten(-2).argmax(-1)
    rows, cols = flat_argmax // SIZE, flat_argmax % SIZE
    assert torch.equal(rows, joints[..., 1].round().long())
    assert torch.equal(cols, joints[..., 0].round().long())


def test_peak_value_is_one_on_an_integer_joint():
    joints = _random_joints(2).round()
    maps = joint_heatmaps(joints, torch.ones(2, 13), SIZE, sigma=1.5)
    assert torch.allclose(maps.amax(dim=(-2, -1)), torch.ones(2, 13))
    x, y = int(joints[0, 5, 0]), int(joints[0, 5, 1])
    assert maps[0, 5, y, x] == 1.0   # pixel (row y, column x) has its centre at (x, y)


@pytest.mark.parametrize("sigma", [1.0, 3.0, 5.0])
def test_width_matches_sigma(sigma):
    centre = SIZE // 2
    joints = torch.full((13, 2), float(centre))
    maps = joint_heatmaps(joints, torch.ones(13), SIZE, sigma)
    s = int(sigma)
    assert maps[0, centre, centre + s].item() == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert maps[0, centre - s, centre].item() == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert maps[0, centre + s, centre + s].item() == pytest.approx(math.exp(-1.0), rel=1e-5)


def test_matches_the_two_dimensional_formula():
    joints, sigma = _random_joints(3), 2.5
    maps = joint_heatmaps(joints, torch.ones(3, 13), SIZE, sigma)
    ys, xs = torch.meshgrid(*[torch.arange(SIZE, dtype=torch.float32)] * 2, indexing="ij")
    dx = xs - joints[..., 0, None, None]
    dy = ys - joints[..., 1, None, None]
    expected = torch.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2))
    assert torch.allclose(maps, expected, atol=1e-6)


def test_invisible_joints_give_empty_channels():
    joints = _random_joints(2, 3)
    visibility = torch.ones(2, 3, 13)
    visibility[0, 1, [0, 4, 12]] = 0
    visibility[1, 2] = 0
    maps = joint_heatmaps(joints, visibility.bool(), SIZE, sigma=2.0)
    empty = maps.flatten(-2).amax(-1) == 0
    assert torch.equal(empty, visibility == 0)


def test_batch_shapes_dtype_and_consistency():
    joints = _random_joints(2, 5)
    visibility = torch.ones(2, 5, 13)
    maps = joint_heatmaps(joints, visibility, SIZE, sigma=2.0)
    assert maps.shape == (2, 5, 13, SIZE, SIZE) and maps.dtype == torch.float32
    single = joint_heatmaps(joints[1, 3], visibility[1, 3], SIZE, sigma=2.0)
    assert single.shape == (13, SIZE, SIZE)
    assert torch.equal(single, maps[1, 3])
    from_numpy = joint_heatmaps(joints.double().numpy(), visibility.numpy(), SIZE, sigma=2.0)
    assert torch.allclose(from_numpy, maps)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="sigma"):
        joint_heatmaps(torch.zeros(13, 2), torch.ones(13), SIZE, sigma=0)
    with pytest.raises(ValueError, match="visibility"):
        joint_heatmaps(torch.zeros(13, 2), torch.ones(12), SIZE, sigma=1)
