"""The predictor baselines (Villegas et al. 2017, MCNet, Mathieu et al.): output shapes and value
ranges, the GDL formula, one optimiser step lowering each image loss on a fixed batch, test-video
generation on a tiny actors task, and exact resume after a kill."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines import common, mathieu, mcnet, villegas17
from frgan.conditions.actors import PoseSettings, build_actor_conditions
from frgan.config import load_params
from frgan.data import actors_synth
from frgan.data.clipstore import ClipStore, write_clip_store
from frgan.methods import get_method
from frgan.nets.critics import join
from frgan.task import Task
from tests.conftest import REPO, params_with

SIZE, WIDTH, BATCH = 16, 4, 2
N_OBS, N_PRED = 2, 3


@pytest.fixture(scope="module")
def task(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("actors")
    write_clip_store(actors_synth.iter_videos(SIZE, 3, 8, seed=0), root / "store", {"dataset": "actors-synth"})
    store = ClipStore(root / "store")
    (root / "cond").mkdir()
    build_actor_conditions(store, PoseSettings(n_obs=N_OBS, n_pred=N_PRED, hidden=4, steps=2, batch=4, seed=0),
                           root / "cond")
    return Task("actors-synth", load_params(REPO / "params.yaml"), store, root / "cond")


@pytest.fixture(scope="module")
def params():
    """The repo's params with tiny sizes (every baseline reads width, batch, gm_steps from them)."""
    return params_with({"width": WIDTH, "batch": BATCH, "gm_steps": 3, "gr_clip_actors": 4}, {"device": "cpu"})


def frames(batch: int = BATCH, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def in_range(x: torch.Tensor) -> bool:
    return bool(x.min() >= -1.0 and x.max() <= 1.0)


VILLEGAS = villegas17.Villegas17Config(width=WIDTH, batch=BATCH, steps=6, seed=1, device="cpu")
MCNET = mcnet.McnetConfig(width=WIDTH, batch=BATCH, steps=6, seed=1, device="cpu", train_frames=2)
MATHIEU = mathieu.MathieuConfig(width=WIDTH, batch=BATCH, steps=6, seed=1, device="cpu")


# ---------------------------------------------------------------------------------------------
# Shapes and ranges.

def test_villegas17_shapes(task):
    gen, disc = villegas17.build_generator(task, VILLEGAS), villegas17.build_discriminator(task, VILLEGAS)
    cond = torch.rand(BATCH, task.channels, SIZE, SIZE)
    out = gen(frames(), cond, cond.flip(0))
    assert out.output.shape == (BATCH, 3, SIZE, SIZE) and out.mask is None
    assert in_range(out.output)
    assert disc(join(out.output, cond)).shape == (BATCH,)


def test_mcnet_shapes():
    gen = mcnet.McNet(SIZE, width=WIDTH)
    clip = gen(frames(), 5)
    assert clip.shape == (BATCH, 3, 5, SIZE, SIZE) and in_range(clip)
    disc = common.DcganDiscriminator(3 * 6, SIZE, WIDTH)
    assert disc(mcnet.stack_frames(frames(), clip)).shape == (BATCH,)


def test_mcnet_first_step_sees_zero_motion():
    gen = mcnet.McNet(SIZE, width=WIDTH).eval()
    x = frames()
    first, _ = gen.step(x, x)
    assert torch.allclose(gen(x, 1)[:, :, 0], first)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_mathieu_shapes(size):
    gen = mathieu.MultiScaleGenerator(size, width=WIDTH)
    disc = mathieu.MultiScaleDiscriminator(min(size, 32), width=WIDTH)
    inputs = mathieu.pyramid(frames(size=size))
    predictions = gen(inputs)
    assert [p.shape[-1] for p in predictions] == [size // 8, size // 4, size // 2, size]
    assert all(p.shape[:2] == (BATCH, 3) and in_range(p) for p in predictions)
    crops = mathieu.random_patches([frames(size=size)], min(size, 32), np.random.default_rng(0))
    crop_inputs = mathieu.pyramid(crops[0])
    assert [z.shape for z in disc(crop_inputs, crop_inputs)] == [(BATCH,)] * 4
    clip = gen.video(frames(size=size), 3)
    assert clip.shape == (BATCH, 3, 3, size, size) and in_range(clip)


def test_unsupported_sides_fail_clearly():
    with pytest.raises(ValueError, match="divisible by 8"):
        mcnet.McNet(20, width=WIDTH)
    with pytest.raises(ValueError, match="divisible by 8"):
        mathieu.MultiScaleGenerator(20, width=WIDTH)


# ---------------------------------------------------------------------------------------------
# GDL.

def _gdl_loop(pred: np.ndarray, true: np.ndarray, alpha: float) -> float:
    """Mathieu et al.'s eq. 5, one pixel pair at a time; each direction averaged over its pairs."""
    rows, cols = pred.shape
    vertical = [abs(abs(true[i, j] - true[i - 1, j]) - abs(pred[i, j] - pred[i - 1, j])) ** alpha
                for i in range(1, rows) for j in range(cols)]
    horizontal = [abs(abs(true[i, j - 1] - true[i, j]) - abs(pred[i, j - 1] - pred[i, j])) ** alpha
                  for i in range(rows) for j in range(1, cols)]
    return float(np.mean(vertical) + np.mean(horizontal))


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_gdl_matches_the_loop_formula(alpha):
    rng = np.random.default_rng(3)
    pred, true = rng.uniform(-1, 1, (5, 7)), rng.uniform(-1, 1, (5, 7))
    got = common.gdl_loss(torch.as_tensor(pred), torch.as_tensor(true), alpha)
    assert got.item() == pytest.approx(_gdl_loop(pred, true, alpha), rel=1e-12)


def test_gdl_is_zero_for_a_shifted_copy_and_averages_over_leading_dims():
    x = torch.rand(2, 3, 4, 6, 6, dtype=torch.float64)
    assert common.gdl_loss(x + 0.3, x).item() == pytest.approx(0.0, abs=1e-12)
    y = torch.rand_like(x)
    per_image = torch.stack([common.gdl_loss(x[i, c, t], y[i, c, t]) for i in range(2)
                             for c in range(3) for t in range(4)])
    assert common.gdl_loss(x, y).item() == pytest.approx(per_image.mean().item(), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# One step lowers each image loss on a fixed batch.

def _one_step_lowers(module: torch.nn.Module, loss_fn) -> None:
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    before = loss_fn()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_fn()
    assert after.item() < before.item(), (before.item(), after.item())


def test_one_step_lowers_the_villegas17_loss(task):
    torch.manual_seed(0)
    gen = villegas17.build_generator(task, VILLEGAS)
    I_t, M_t, I_tk, M_tk = task.sample_pairs("gm", 4, np.random.default_rng(0))
    _one_step_lowers(gen, lambda: VILLEGAS.image_weight * villegas17.image_loss(gen(I_t, M_t, M_tk).output, I_tk))


def test_one_step_lowers_the_mcnet_loss(task):
    torch.manual_seed(0)
    gen = mcnet.McNet(SIZE, width=WIDTH)
    first, _, real, _ = task.sample_windows("gm", 4, 2, np.random.default_rng(0))
    _one_step_lowers(gen, lambda: sum(mcnet.image_losses(gen(first, 2), real)))


def test_one_step_lowers_the_mathieu_loss(task):
    torch.manual_seed(0)
    gen = mathieu.MultiScaleGenerator(SIZE, width=WIDTH)
    first, _, real, _ = task.sample_windows("gm", 4, 1, np.random.default_rng(0))
    inputs, targets = mathieu.pyramid(first), mathieu.pyramid(real[:, :, 0])
    _one_step_lowers(gen, lambda: sum(mathieu.image_loss(gen(inputs), targets, MATHIEU)))


# ---------------------------------------------------------------------------------------------
# Methods end to end: train (a few steps) and generate the test videos.

@pytest.mark.parametrize("name", ["villegas17", "mcnet", "mathieu"])
def test_method_trains_and_generates_uint8_videos(name, task, params, tmp_path):
    method = get_method(name)
    logged = {}
    out = tmp_path / "out"
    out.mkdir()
    method.train(task, params, out, tmp_path / "ckpt", log=lambda step, values: logged.update({step: values}))
    assert (out / "generator.pt").is_file() and logged
    assert all(np.isfinite(v) for values in logged.values() for v in values.values())
    videos = method.generate(task, params, out, "cond")
    items = task.test_items()
    assert videos.dtype == np.uint8
    assert videos.shape == (len(items.index), items.cond.shape[1], SIZE, SIZE, 3)
    again = method.generate(task, params, out, "cond_gt")
    assert again.shape == videos.shape
    if name != "villegas17":      # no conditions: the ground-truth ones change nothing
        assert np.array_equal(again, videos)


# ---------------------------------------------------------------------------------------------
# Resume.

class Killed(Exception):
    pass


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("module, config, sampler", [(mcnet, MCNET, "sample_windows"),
                                                     (villegas17, VILLEGAS, "sample_pairs")])
def test_resume_after_a_kill_gives_identical_weights(module, config, sampler, task, tmp_path, monkeypatch):
    straight = module.train(task, config, tmp_path / "a", checkpoint_every=2)
    original = getattr(Task, sampler)
    calls = {"n": 0}

    def dies_in_step_4(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Killed
        return original(self, *args, **kwargs)
    with monkeypatch.context() as m:
        m.setattr(Task, sampler, dies_in_step_4)
        with pytest.raises(Killed):
            module.train(task, config, tmp_path / "b", checkpoint_every=2)
    resumed = module.train(task, config, tmp_path / "b", checkpoint_every=2)
    assert _same(straight, resumed)



def test_gan_balance_follows_the_margin_rule_and_round_trips():
    balance = common.GanBalance(0.3)
    balance.observe(d_loss_real=0.8, d_loss_fake=0.5)        # D too bad: G waits
    assert (balance.update_d, balance.update_g) == (True, False)
    balance.observe(d_loss_real=0.5, d_loss_fake=0.5)        # in between: nothing changes
    assert (balance.update_d, balance.update_g) == (True, False)
    restored = common.GanBalance(0.3)
    restored.load_state_dict(balance.state_dict())
    assert (restored.update_d, restored.update_g) == (True, False)
    balance.observe(d_loss_real=0.2, d_loss_fake=0.5)        # D too good too: both resume
    assert (balance.update_d, balance.update_g) == (True, True)
    off = common.GanBalance(None)
    off.observe(5.0, 0.0)
    assert (off.update_d, off.update_g) == (True, True)
