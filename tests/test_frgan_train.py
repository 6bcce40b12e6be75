"""FRGAN's training stages on a tiny actors-synth task: a run killed mid-way and resumed ends
with the uninterrupted run's weights (CPU), and both stages lower their reconstruction loss."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from frgan.config import load_params
from frgan.data import actors_synth
from frgan.data.clipstore import ClipStore, write_clip_store
from frgan.losses import LossWeights
from frgan.task import Task
from frgan.train import frgan as fr
from tests.conftest import REPO


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("actors")
    write_clip_store(actors_synth.iter_videos(16, 3, 8, seed=0), root / "store", {"dataset": "actors-synth"})
    # G_R trains on windows as far from G_M's input frame as the test videos' frames are
    # (Task.horizon, test_index.csv's n_targets): 6 frames, which the 8-frame clips hold
    (root / "cond").mkdir()
    (root / "cond" / "test_index.csv").write_text("item,n_targets\n0,6\n")
    return Task("actors-synth", load_params(REPO / "params.yaml"), ClipStore(root / "store"), root / "cond")


CFG = fr.FrganConfig(dense=True, residual="mask", refine=True, width=4, batch=2, gm_steps=6, gr_steps=4,
                     clip_len=4, lr=1e-3, betas=(0.0, 0.9), weights=LossWeights(), gp_weight=10.0,
                     seed=3, device="cpu")


class Killed(Exception):
    pass


def _killing(task, method: str, at_call: int, monkeypatch):
    original = getattr(Task, method)
    calls = {"n": 0}

    def wrapper(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at_call:
            raise Killed
        return original(self, *args, **kwargs)
    monkeypatch.setattr(Task, method, wrapper)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_gm_resumes_to_identical_weights(task, tmp_path, monkeypatch):
    straight = fr.train_gm(task, CFG, tmp_path / "a", checkpoint_every=2)
    with monkeypatch.context() as m:
        _killing(task, "sample_pairs", at_call=4, monkeypatch=m)    # dies in step 4, after checkpoint 2
        with pytest.raises(Killed):
            fr.train_gm(task, CFG, tmp_path / "b", checkpoint_every=2)
    resumed = fr.train_gm(task, CFG, tmp_path / "b", checkpoint_every=2)
    assert _same(straight, resumed)


def test_gr_resumes_to_identical_weights(task, tmp_path, monkeypatch):
    gm = fr.train_gm(task, CFG, tmp_path / "gm", checkpoint_every=100)
    straight = fr.train_gr(task, CFG, gm, tmp_path / "a", checkpoint_every=2)
    with monkeypatch.context() as m:
        _killing(task, "sample_anchored_windows", at_call=3, monkeypatch=m)
        with pytest.raises(Killed):
            fr.train_gr(task, CFG, gm, tmp_path / "b", checkpoint_every=2)
    resumed = fr.train_gr(task, CFG, gm, tmp_path / "b", checkpoint_every=2)
    assert _same(straight, resumed)


def test_gm_training_lowers_the_reconstruction_loss(task, tmp_path):
    logged = {}
    cfg = dataclasses.replace(CFG, gm_steps=40, batch=4, weights=LossWeights(adv=0.0))
    fr.train_gm(task, cfg, tmp_path, checkpoint_every=100, log=lambda step, v: logged.__setitem__(step, v["gm/rec"]),
                log_every=1)
    first, last = sum(logged[s] for s in range(1, 6)) / 5, sum(logged[s] for s in range(36, 41)) / 5
    assert last < 0.8 * first, (first, last)


def test_sample_grid_shows_input_target_output_and_mask(task, tmp_path):
    gm = fr.train_gm(task, dataclasses.replace(CFG, gm_steps=1), tmp_path, checkpoint_every=100)
    grid = fr.sample_grid(task, CFG, gm, rows=3)
    assert grid.dtype == "uint8" and grid.shape == (3 * task.size, 4 * task.size, 3)


def test_feature_loss_needs_the_users_vgg16_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"vgg16.pth: VGG16 weights not found \(train.feature_vgg16_path"):
        fr.vgg16_feature_loss(str(tmp_path / "vgg16.pth"), torch.device("cpu"))
