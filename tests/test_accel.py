"""The speed switches of FRGAN's training (frgan/train/accel.py, issue 21) on the CPU: prefetching
moves no bit (straight and resumed), bf16 autocast really runs the networks in bfloat16 and
keeps fp32 weights, channels_last and torch.compile change nothing but float rounding, and only
the switches that can move a number change the checkpoint fingerprint."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from frgan.train import frgan as fr
from frgan.train.accel import Acceleration, Prefetcher
from tests.test_frgan_train import CFG, Killed, _killing, _same, task  # noqa: F401  (the task fixture)


def _with(**switches) -> fr.FrganConfig:
    return dataclasses.replace(CFG, accel=Acceleration(**switches))


# Adam moves a weight by about lr a step whatever its gradient's size, so float rounding that
# flips a near-zero gradient can move it by up to ~2 lr a step: the bound for "rounding only".
ROUNDING = 2 * CFG.lr * max(CFG.gm_steps, CFG.gr_steps)


def _close(a: torch.nn.Module, b: torch.nn.Module, tol: float = ROUNDING, stats_rtol: float = 0.01) -> None:
    """Two trainings agree up to rounding: weights within `tol`, BatchNorm's running statistics
    (saved with the model) within `stats_rtol` of their size."""
    worst = max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters()))
    assert worst <= tol, f"weights differ by {worst} (> {tol})"
    for (name, p), q in zip(a.named_buffers(), b.buffers()):
        if p.is_floating_point():
            assert torch.allclose(p, q, rtol=stats_rtol, atol=stats_rtol), f"{name} differs"


def test_prefetcher_returns_each_steps_own_batch_in_any_order_of_work():
    made = []
    with Prefetcher(lambda n: made.append(n) or n * n, depth=3, stop=6) as fetch:
        assert [fetch(n) for n in range(2, 6)] == [4, 9, 16, 25]
    assert sorted(made) == [2, 3, 4, 5]          # each step's batch made once, none past `stop`
    assert Prefetcher(lambda n: -n, depth=0, stop=3)(2) == -2   # depth 0: made on the call


def test_prefetching_moves_no_bit_in_either_stage(task, tmp_path):
    gm = fr.train_gm(task, CFG, tmp_path / "gm0", checkpoint_every=100)
    gm_ahead = fr.train_gm(task, _with(prefetch=2), tmp_path / "gm2", checkpoint_every=100)
    assert _same(gm, gm_ahead)
    gr = fr.train_gr(task, CFG, gm, tmp_path / "gr0", checkpoint_every=100)
    gr_ahead = fr.train_gr(task, _with(prefetch=2), gm, tmp_path / "gr2", checkpoint_every=100)
    assert _same(gr, gr_ahead)


def test_a_prefetching_run_killed_and_resumed_ends_with_the_straight_runs_weights(task, tmp_path, monkeypatch):
    cfg = _with(prefetch=3)
    straight = fr.train_gm(task, cfg, tmp_path / "a", checkpoint_every=2)
    with monkeypatch.context() as m:
        _killing(task, "sample_pairs", at_call=4, monkeypatch=m)   # the thread dies drawing a batch
        with pytest.raises(Killed):
            fr.train_gm(task, cfg, tmp_path / "b", checkpoint_every=2)
    resumed = fr.train_gm(task, cfg, tmp_path / "b", checkpoint_every=2)
    assert _same(straight, resumed)


def test_bf16_runs_the_networks_in_bfloat16_and_keeps_fp32_weights(task, tmp_path):
    seen = set()
    conv = torch.nn.Conv2d.forward

    def spy(self, x):
        out = conv(self, x)
        seen.add(out.dtype)
        return out
    with pytest.MonkeyPatch.context() as m:
        m.setattr(torch.nn.Conv2d, "forward", spy)
        gm = fr.train_gm(task, _with(precision="bf16"), tmp_path / "bf16", checkpoint_every=100)
    assert torch.bfloat16 in seen
    assert all(p.dtype == torch.float32 for p in gm.parameters())
    fp32 = fr.train_gm(task, CFG, tmp_path / "fp32", checkpoint_every=100)
    assert not _same(gm, fp32)                      # bf16 rounding moved the weights ...
    _close(gm, fp32, stats_rtol=0.1)                # ... by rounding, not by a different training


def test_channels_last_changes_the_layout_not_the_training(task, tmp_path):
    gm = fr.train_gm(task, _with(channels_last=True), tmp_path / "cl", checkpoint_every=100)
    weights = [p for p in gm.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    eager_gm = fr.train_gm(task, CFG, tmp_path / "nchw", checkpoint_every=100)
    _close(gm, eager_gm)
    gr = fr.train_gr(task, _with(channels_last=True), eager_gm, tmp_path / "gr-cl", checkpoint_every=100)
    volumes = [p for p in gr.parameters() if p.dim() == 5]     # G_R's 3-D convolutions: NDHWC
    assert volumes and all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in volumes)
    _close(gr, fr.train_gr(task, CFG, eager_gm, tmp_path / "gr-nchw", checkpoint_every=100))


def test_compiled_generators_train_as_the_eager_ones(task, tmp_path, monkeypatch):
    """Dynamo traces G_M and G_R with the BatchNorm hooks of `_shared_forward` (their running
    statistics, saved with the model, come out as eager's). The aot_eager backend: the same
    tracing and autograd as inductor's, without its C++ build (benchmarks time inductor)."""
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda module: compile_(module, backend="aot_eager"))
    torch._dynamo.reset()
    gm = fr.train_gm(task, _with(compile=True), tmp_path / "gm-c", checkpoint_every=100)
    eager_gm = fr.train_gm(task, CFG, tmp_path / "gm-e", checkpoint_every=100)
    _close(gm, eager_gm)
    assert gm.state_dict().keys() == eager_gm.state_dict().keys()   # checkpoints keep eager's keys
    gr = fr.train_gr(task, _with(compile=True), eager_gm, tmp_path / "gr-c", checkpoint_every=100)
    _close(gr, fr.train_gr(task, CFG, eager_gm, tmp_path / "gr-e", checkpoint_every=100))


def test_only_switches_that_move_numbers_change_the_fingerprint():
    base = CFG.fingerprint("data")
    assert _with(prefetch=4).fingerprint("data") == base
    for switch in ({"precision": "bf16"}, {"compile": True}, {"channels_last": True}):
        assert _with(**switch).fingerprint("data") != base, switch


def test_the_samplers_make_batches_where_they_are_asked_to(task):
    """Training asks for its batches on its device (uint8 frames and joint coordinates travel,
    the floats and heatmaps are made there); on the CPU that is the same bits as the default."""
    import numpy as np
    draws = {"sample_pairs": lambda rng, **kw: task.sample_pairs("gm", 3, rng, **kw),
             "sample_windows": lambda rng, **kw: task.sample_windows("gr", 3, 4, rng, **kw),
             "sample_anchored_windows": lambda rng, **kw: task.sample_anchored_windows("gr", 3, 4, 6, rng, **kw)}
    for name, draw in draws.items():
        default, asked = draw(np.random.default_rng(5)), draw(np.random.default_rng(5), device="cpu")
        assert all(torch.equal(a, b) and b.device.type == "cpu" and b.dtype == torch.float32
                   for a, b in zip(default, asked)), name
