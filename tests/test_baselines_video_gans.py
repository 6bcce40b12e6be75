"""The VGAN and MoCoGAN baselines (issue 7): shapes and ranges of every network, VGAN's two-stream
composition and per-class networks, MoCoGAN's latent layout, that one optimiser step lowers a
loss, generation through the Method interface on a tiny actors task, and exact resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines import mocogan, vgan
from baselines import video_gan as vg
from frgan.train import parts
from frgan.methods import get_method
from tests.conftest import params_with, tiny_actors_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE, T = 16, 4      # tiny actors task: 16 px frames, 4 generated frames per test video


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return tiny_actors_task(tmp_path_factory.mktemp("actors"), SIZE, T)


@pytest.fixture(scope="module")
def params():
    return params_with({"width": 4, "batch": 2, "gm_steps": 8, "gr_clip_actors": 4},
                       {"device": "cpu", "checkpoint_every": 4, "log_every": 1})


def _frame(batch: int, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


# ---------------------------------------------------------------------------------------------
# Shapes and ranges.

@pytest.mark.parametrize("size,frames", [(16, 5), (32, 8), (32, 13)])
def test_vgan_shapes_and_range(size, frames):
    gen = vgan.VganGenerator(size, frames, width=4)
    out = gen(_frame(2, size))
    assert out.video.shape == (2, 3, frames, size, size)
    assert out.mask.shape == (2, 1, frames, size, size)
    assert out.foreground.shape == (2, 3, frames, size, size) and out.background.shape == (2, 3, size, size)
    assert out.video.abs().max() <= 1.0 and 0.0 <= out.mask.min() and out.mask.max() <= 1.0
    disc = vg.VideoDiscriminator(size, frames, width=4, time="halve")
    assert disc(out.video).shape == (2, 1, 1)     # one logit per clip, as VGAN


@pytest.mark.parametrize("size,frames", [(16, 4), (32, 8), (32, 16)])
def test_mocogan_shapes_and_range(size, frames):
    gen = mocogan.MocoganGenerator(size, 3, width=4)
    h0, eps = mocogan.draw_noise(2, frames, mocogan.MOTION_DIM, torch.Generator().manual_seed(0))
    video = gen(_frame(2, size), vg.one_hot(torch.tensor([0, 2]), 3), h0, eps)
    assert video.shape == (2, 3, frames, size, size) and video.abs().max() <= 1.0
    cfg = mocogan.MocoganConfig(width=4, batch=2, steps=1, frames=frames, labels=("a", "b", "c"))
    logits = mocogan.build_video_discriminator(size, cfg)(video)
    assert logits.shape[:2] == (2, 4)               # real/fake + 3 class logits per patch
    assert mocogan.PatchImageDiscriminator(size, 4)(video[:, :, 0]).shape == (2, 16)   # 4x4 patches


# ---------------------------------------------------------------------------------------------
# VGAN.

@pytest.mark.parametrize("mask_bias,stream", [(-1e4, "background"), (1e4, "foreground")])
def test_vgan_video_is_mask_blend_of_the_streams(mask_bias, stream):
    gen = vgan.VganGenerator(SIZE, 5, width=4).eval()
    with torch.no_grad():
        gen.mask_head.weight.zero_()
        gen.mask_head.bias.fill_(mask_bias)      # m = 0 (or 1) everywhere
        out = gen(_frame(2))
    expected = out.background.unsqueeze(2).expand_as(out.video) if stream == "background" else out.foreground
    assert torch.equal(out.video, expected)


def test_vgan_trains_one_network_per_label(task, params, tmp_path):
    method = get_method("vgan")
    method.train(task, params, tmp_path / "out", tmp_path / "ckpt", log=None)
    payload = parts.load_weights(tmp_path / "out" / vgan.WEIGHTS)
    labels = sorted(task.store.meta["labels"])
    assert sorted(payload["states"]) == labels
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == labels
    cfg = vgan.make_config(task, params)
    assert sum(cfg.steps_of(label) for label in labels) == params.size.gm_steps + params.size.gr_steps
    assert cfg.frames == T + 1                      # the input frame + the T test frames


class _ConstantVideo(torch.nn.Module):
    """A stand-in VGAN whose every frame has one value, to see which network made a video."""

    def __init__(self, value: float, frames: int):
        super().__init__()
        self.value, self.frames = value, frames

    def forward(self, first):
        video = torch.full((len(first), 3, self.frames, *first.shape[2:]), self.value)
        return vgan.VganOutput(video, video[:, :1], video, video[:, :, 0])


def test_vgan_generation_picks_the_network_by_label(task):
    labels = sorted(task.store.meta["labels"])
    values = {label: -1.0 + 2.0 * i / (len(labels) - 1) for i, label in enumerate(labels)}
    cfg = vgan.VganConfig(width=4, batch=2, steps=8, frames=3, labels=tuple(labels))
    videos = vgan.generate_videos(task, cfg, {k: _ConstantVideo(v, 3) for k, v in values.items()})
    items = task.test_items()
    assert videos.shape == (len(items.index), T, SIZE, SIZE, 3)   # rolled out: 2 frames per block
    for video, label in zip(videos, items.index.label):
        expected = round((values[label] + 1.0) * 127.5)
        assert np.all(video == expected), label


# ---------------------------------------------------------------------------------------------
# MoCoGAN.

def test_mocogan_latent_layout():
    gen = mocogan.MocoganGenerator(SIZE, 3, width=4)
    frames = 5
    h0, eps = mocogan.draw_noise(2, frames, mocogan.MOTION_DIM, torch.Generator().manual_seed(1))
    category = vg.one_hot(torch.tensor([2, 0]), 3)
    z = gen.latents(_frame(2), category, h0, eps)
    c, m = mocogan.CONTENT_DIM, mocogan.MOTION_DIM
    assert z.shape == (2, frames, c + 3 + m)
    content, cat, motion = z[..., :c], z[..., c:c + 3], z[..., c + 3:]
    assert torch.equal(content, content[:, :1].expand_as(content))          # repeated over time
    assert torch.equal(content[:, 0], gen.content(_frame(2)))                 # from the input frame
    assert torch.equal(cat, category.unsqueeze(1).expand_as(cat))            # one-hot, constant
    assert (motion[:, 1:] - motion[:, :-1]).abs().amax(dim=2).min() > 0       # varies frame to frame


# ---------------------------------------------------------------------------------------------
# One optimiser step lowers a loss on a fixed batch.

def test_vgan_step_lowers_the_first_frame_l1():
    torch.manual_seed(0)
    gen = vgan.VganGenerator(SIZE, 5, width=4)
    first = _frame(4)
    opt = parts.adam(gen, 2e-4, (0.5, 0.999))
    before = vg.first_frame_l1(gen(first).video, first)
    opt.zero_grad()
    before.backward()
    opt.step()
    after = vg.first_frame_l1(gen(first).video, first)
    assert after.item() < before.item()


def test_mocogan_step_lowers_the_discriminator_loss():
    torch.manual_seed(0)
    cfg = mocogan.MocoganConfig(width=4, batch=4, steps=1, frames=4, labels=("a", "b"))
    d_video = mocogan.build_video_discriminator(SIZE, cfg)
    real = _frame(4 * 4, seed=1).reshape(4, 4, 3, SIZE, SIZE).transpose(1, 2)
    fake = _frame(4 * 4, seed=2).reshape(4, 4, 3, SIZE, SIZE).transpose(1, 2) * 0.2

    def loss():
        return vg.discriminator_bce(mocogan.split_video_logits(d_video(real))[0],
                                    mocogan.split_video_logits(d_video(fake))[0])
    opt = parts.adam(d_video, cfg.lr, cfg.betas)
    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    assert loss().item() < before.item()


# ---------------------------------------------------------------------------------------------
# Through the Method interface.

@pytest.mark.parametrize("name", ["vgan", "mocogan"])
def test_generate_gives_uint8_test_videos(task, params, tmp_path, name):
    method = get_method(name)
    logged = {}
    method.train(task, params, tmp_path / "out", tmp_path / "ckpt", log=lambda step, v: logged.update({step: v}))
    assert logged and all(np.isfinite(x) for v in logged.values() for x in v.values())
    videos = method.generate(task, params, tmp_path / "out", "cond")
    n = len(task.test_items().index)
    assert videos.dtype == np.uint8 and videos.shape == (n, T, SIZE, SIZE, 3)
    assert np.array_equal(videos, method.generate(task, params, tmp_path / "out", "cond_gt"))


class Killed(Exception):
    pass


def test_mocogan_resumes_to_identical_weights(task, params, tmp_path, monkeypatch):
    cfg = mocogan.make_config(task, params)
    straight = mocogan.train_mocogan(task, cfg, tmp_path / "a", checkpoint_every=2)
    original, calls = vg.sample_labelled_clips, {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:          # dies in step 4, after checkpoint 2
            raise Killed
        return original(*args, **kwargs)
    with monkeypatch.context() as m:
        m.setattr(vg, "sample_labelled_clips", dying)
        with pytest.raises(Killed):
            mocogan.train_mocogan(task, cfg, tmp_path / "b", checkpoint_every=2)
    resumed = mocogan.train_mocogan(task, cfg, tmp_path / "b", checkpoint_every=2)
    assert _same(straight, resumed)
