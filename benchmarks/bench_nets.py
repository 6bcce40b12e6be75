"""Training-step throughput of G_M and G_R (forward + backward + Adam step), in samples/s.

    pytest benchmarks/bench_nets.py --benchmark-only [--benchmark-columns=mean,rounds]

Each case records `samples_per_s` (batch / mean step time) in the benchmark's extra_info
(shown by --benchmark-json / --benchmark-save). The step is the generator's reconstruction
objective (3 * L1 + 0.05 * mask L1, eqs. 5-6); critics are not part of it.

Cases: G_M at 96x96, batch 32 (paper 4.1), faces (3 condition channels); G_R on 16-frame
64x64 actor clips (13 channels) and 32-frame 96x96 face clips (3 channels). Each at the paper's
width 64 and at a reduced width 16.

Environment knobs:
  FRGAN_BENCH_DEVICE    cpu | cuda (default: cuda if available)
  FRGAN_BENCH_ROUNDS    timed rounds per case (default 3; one warm-up round is added)
  FRGAN_BENCH_GM_BATCH  G_M batch (default 32, the paper's, on cuda; 4 on cpu)
  FRGAN_BENCH_GR_BATCH  G_R batch (default 32 on cuda, 2 on cpu)
On a CPU the paper's batch does not fit a small machine (a width-64 G_M step at 96x96, batch
32, peaks at ~28 GB; G_R 32x96x96 at ~35 GB, measured on an H100) and takes minutes per step;
throughput per sample barely depends on the batch there, so the CPU defaults are small.
"""
from __future__ import annotations

import os

import pytest
import torch

from frgan.losses import mask_sparsity_loss, reconstruction_loss
from frgan.nets import MotionForecaster, MotionRefiner

DEVICE = torch.device(os.environ.get("FRGAN_BENCH_DEVICE",
                                     "cuda" if torch.cuda.is_available() else "cpu"))
ROUNDS = int(os.environ.get("FRGAN_BENCH_ROUNDS", "3"))
GM_BATCH = int(os.environ.get("FRGAN_BENCH_GM_BATCH", "32" if DEVICE.type == "cuda" else "4"))
GR_BATCH = int(os.environ.get("FRGAN_BENCH_GR_BATCH", "32" if DEVICE.type == "cuda" else "2"))
if DEVICE.type == "cuda":
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its kernels (warm-up round)


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def _train_step(net, inputs, target):
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.0, 0.9))

    def step():
        opt.zero_grad(set_to_none=True)
        out = net(*inputs)
        loss = 3.0 * reconstruction_loss(out.output, target) + 0.05 * mask_sparsity_loss(out.mask)
        loss.backward()
        opt.step()
        _sync()

    return step


def _run(benchmark, step, batch: int, **info) -> None:
    benchmark.extra_info.update(info, batch=batch, device=str(DEVICE))
    benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    stats = getattr(benchmark.stats, "stats", None)
    if stats is not None and stats.mean > 0:
        benchmark.extra_info["samples_per_s"] = batch / stats.mean


def _rand(*shape):
    return torch.rand(*shape, device=DEVICE) * 2 - 1


@pytest.mark.parametrize("width", [64, 16])
def test_gm_step_96px(benchmark, width):
    torch.manual_seed(0)
    size, cond, b = 96, 3, GM_BATCH
    net = MotionForecaster(size, cond, width=width).to(DEVICE).train()
    inputs = (_rand(b, 3, size, size), _rand(b, cond, size, size), _rand(b, cond, size, size))
    step = _train_step(net, inputs, _rand(b, 3, size, size))
    _run(benchmark, step, b, net="G_M", size=size, width=width)


@pytest.mark.parametrize("width", [64, 16])
@pytest.mark.parametrize("frames,size,cond", [(16, 64, 13), (32, 96, 3)],
                         ids=["actors-T16-64px", "faces-T32-96px"])
def test_gr_step(benchmark, width, frames, size, cond):
    torch.manual_seed(0)
    b = GR_BATCH
    net = MotionRefiner(size, frames, cond, width=width).to(DEVICE).train()
    clip = _rand(b, 3, frames, size, size)
    inputs = (clip, _rand(b, cond, frames, size, size))
    step = _train_step(net, inputs, _rand(b, 3, frames, size, size))
    _run(benchmark, step, b, net="G_R", frames=frames, size=size, width=width)
