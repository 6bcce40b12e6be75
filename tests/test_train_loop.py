"""The shared training loop: resume after a kill reproduces the uninterrupted run's weights,
torn checkpoints are never loaded, and a NaN loss stops training naming the loss and step."""
from __future__ import annotations

import pytest
import torch

from frgan.train.checkpoint import CheckpointError, Checkpoints
from frgan.train.loop import TrainingDiverged, run_training
from frgan.train.seeding import seed_everything, step_generator

SEED = 7


def _toy(seed=SEED):
    seed_everything(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.0, 0.9))
    target = torch.nn.Linear(4, 1)
    torch.nn.init.constant_(target.weight, 0.5)

    def step_fn(step):
        g = step_generator(seed, step)            # all randomness from (seed, step)
        x = torch.randn(16, 4, generator=g)
        loss = (model(x) - target(x).detach()).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"mse": loss.item()}
    return model, opt, step_fn


class Killed(Exception):
    pass


def _train(folder, steps, kill_at=None, every=5):
    model, opt, step_fn = _toy()
    modules = {"model": model, "opt": opt}

    def maybe_killed(step):
        if step == kill_at:
            raise Killed
        return step_fn(step)
    try:
        run_training("toy", steps, maybe_killed, modules, Checkpoints(folder), every, progress=False)
    except Killed:
        pass
    return model


def test_resume_after_kill_gives_identical_weights(tmp_path):
    straight = _train(tmp_path / "a", 30)
    for i, kill_at in enumerate([3, 12, 17, 25]):   # before the first checkpoint, and between
        folder = tmp_path / f"b{i}"
        _train(folder, 30, kill_at=kill_at)
        resumed = _train(folder, 30)
        for p, q in zip(straight.parameters(), resumed.parameters()):
            assert torch.equal(p, q), f"weights differ after a kill at step {kill_at}"


def test_torn_checkpoint_is_skipped(tmp_path):
    folder = tmp_path / "c"
    _train(folder, 10)                        # checkpoints at 5 and 10 (keep=2)
    newest = Checkpoints(folder).latest_path()
    newest.write_bytes(newest.read_bytes()[:100])   # cut short
    model, opt, _ = _toy()
    assert Checkpoints(folder).load_latest({"model": model, "opt": opt}) == 5


def test_checkpoint_of_another_configuration_is_discarded(tmp_path):
    _train(tmp_path / "f", 10)
    model, opt, _ = _toy()
    other = Checkpoints(tmp_path / "f", fingerprint="lr=0.5")
    assert other.load_latest({"model": model, "opt": opt}) == 0
    assert other.latest_path() is None


def test_checkpoint_of_other_code_is_discarded(tmp_path, monkeypatch):
    _train(tmp_path / "g", 10)
    monkeypatch.setattr("frgan.train.checkpoint.code_fingerprint", lambda: "edited-code")
    model, opt, _ = _toy()
    assert Checkpoints(tmp_path / "g").load_latest({"model": model, "opt": opt}) == 0


def test_checkpoint_of_other_models_is_refused(tmp_path):
    _train(tmp_path / "d", 5)
    model, _, _ = _toy()
    with pytest.raises(CheckpointError, match=r"step-00000005.pt: expected a checkpoint of \['gen'\]"):
        Checkpoints(tmp_path / "d").load_latest({"gen": model})


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model, opt, step_fn = _toy()

    def poisoned(step):
        out = step_fn(step)
        return {"mse": float("nan")} if step == 7 else out
    folder = tmp_path / "e"
    with pytest.raises(TrainingDiverged, match=r"toy: loss mse = nan at step 8; .*step-00000005.pt"):
        run_training("toy", 20, poisoned, {"model": model, "opt": opt}, Checkpoints(folder), 5,
                     progress=False)
    assert Checkpoints(folder).latest_path().name == "step-00000005.pt"
