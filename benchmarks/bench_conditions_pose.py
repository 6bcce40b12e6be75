"""Speed of the actor task's G_C: pose-LSTM training steps at Villegas et al.'s size, test-time
forecasts, and joint heatmaps at the dataset size. Run with `make bench` (pytest-benchmark);
nothing here asserts on time."""
from __future__ import annotations

import pytest
import torch

from frgan.conditions.heatmaps import joint_heatmaps
from frgan.conditions.pose_lstm import (BATCH, CLIP_NORM, HIDDEN, LR, N_OBS, N_PRED_TEST,
                                        N_PRED_TRAIN, PoseLSTM, make_rmsprop, predict,
                                        train_step)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SIZE = 64        # Penn Action frames in the paper (section 4.1)


def _windows(batch, frames, seed=0):
    g = torch.Generator().manual_seed(seed)
    poses = torch.rand(batch, frames, 13, 2, generator=g) * 2 - 1
    return poses.to(DEVICE), torch.ones(batch, frames, 13, device=DEVICE)


@pytest.mark.parametrize("hidden", [128, HIDDEN])
def test_train_step(benchmark, hidden):
    """One RMSProp update on a batch of 256 windows of 10 + 32 poses (the paper's recipe)."""
    torch.manual_seed(0)
    model = PoseLSTM(hidden=hidden).to(DEVICE)
    optimiser = make_rmsprop(model.parameters(), LR)
    poses, vis = _windows(BATCH, N_OBS + N_PRED_TRAIN)
    benchmark.extra_info.update(device=DEVICE, hidden=hidden, batch=BATCH, threads=torch.get_num_threads())
    benchmark.pedantic(train_step, args=(model, optimiser, poses, vis, N_OBS, CLIP_NORM),
                       rounds=3 if hidden == HIDDEN else 20, iterations=1, warmup_rounds=1)


def test_predict_test_horizon(benchmark):
    """Forecast 64 steps (the test horizon) for 256 sequences with the full-size model."""
    model = PoseLSTM().to(DEVICE).eval()
    observed, vis = _windows(BATCH, N_OBS)
    benchmark.extra_info.update(device=DEVICE)
    benchmark.pedantic(predict, args=(model, observed, N_PRED_TEST, vis), rounds=5, iterations=1,
                       warmup_rounds=1)


def test_joint_heatmaps(benchmark):
    """Heatmaps for 16 clips x 32 frames x 13 joints at 64 x 64 (one G_M/G_R batch of maps)."""
    joints = (torch.rand(16, 32, 13, 2) * (SIZE - 1)).to(DEVICE)
    vis = torch.ones(16, 32, 13, device=DEVICE)
    benchmark.extra_info.update(device=DEVICE)
    benchmark(joint_heatmaps, joints, vis, SIZE, 2.0)
