"""G_R trains on coarse frames forecast from as far back as the ones it refines at test
(issue 17, item 3): the forecast distances of `Task.sample_anchored_windows` are exactly those
of `refine_long_clip`'s windows over a test video, while the old scheme (`sample_windows`, the
frame right before the window) covers only 1..K."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from frgan.config import load_params
from frgan.data import actors_synth
from frgan.data.clipstore import ClipStore, write_clip_store
from frgan.data.errors import DatasetError
from frgan.task import Task, anchored_window_rows, refine_window_offsets
from frgan.train import frgan as fr
from tests.conftest import REPO

PARAMS = load_params(REPO / "params.yaml")
SMOKE = PARAMS.profiles["smoke"]
# (T, K) of the smoke profile: actors generate pose_predict frames, G_R clip gr_clip_actors;
# faces generate the shortest reference - 1 = faces_frames - 1 frames (faces-synth videos all
# have faces_frames frames), G_R clip gr_clip_faces. Plus a T that is a multiple of K.
CASES = {"actors-smoke": (SMOKE.pose_predict, SMOKE.gr_clip_actors),
         "faces-smoke": (SMOKE.faces_frames - 1, SMOKE.gr_clip_faces),
         "multiple": (8, 4)}
CLIP_FRAMES = 24          # every store clip; the longest horizon above needs T + 1 = 20


def _write_index(folder, n_targets: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"item": [0, 1], "n_targets": [n_targets, n_targets]}).to_csv(folder / "test_index.csv", index=False)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("actors")
    write_clip_store(actors_synth.iter_videos(16, 3, CLIP_FRAMES, seed=0), root / "store", {"dataset": "actors-synth"})
    return Task("actors-synth", PARAMS, ClipStore(root / "store"), root / "cond")


@pytest.fixture
def row_task(task, monkeypatch):
    """`task` whose frames are their store row number (every pixel): a sampler's output says
    which rows it drew."""
    monkeypatch.setattr(task, "frames_of_rows",
                        lambda rows, device=None: torch.as_tensor(np.asarray(rows), dtype=torch.float64)
                        .view(-1, 1, 1, 1).expand(-1, 3, task.size, task.size))
    return task


def _rows(anchor: torch.Tensor, real: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    return anchor[:, 0, 0, 0].long().numpy(), real[:, 0, :, 0, 0].long().numpy()


def training_distances(task: Task, scheme: str, horizon: int, clip_len: int, draws: int = 40) -> set[int]:
    """Forecast distances (window frame - G_M's input frame) of G_R's training windows."""
    rng = np.random.default_rng(0)
    seen: set[int] = set()
    for _ in range(draws):
        if scheme == "anchored":
            out = task.sample_anchored_windows("gr", 16, clip_len, horizon, rng)
        else:
            out = task.sample_windows("gr", 16, clip_len, rng)
        anchor, rows = _rows(out[0], out[2])
        seen.update((rows - anchor[:, None]).ravel().tolist())
    return seen


class _Recorder(torch.nn.Module):
    """A stand-in G_R that records the coarse frames of every window it is given."""

    def __init__(self):
        super().__init__()
        self.windows: list[torch.Tensor] = []

    def forward(self, coarse, cond):
        self.windows.append(coarse.clone())
        return type("Out", (), {"output": coarse})()


def refine_distances(horizon: int, clip_len: int) -> set[int]:
    """Forecast distances of the coarse frames G_R refines over one test video: at test every
    coarse frame t (0-based) comes from the input frame (`generate` -> `coarse_clip`), i.e. at
    distance t + 1, which is what each frame holds here."""
    coarse = torch.arange(1, horizon + 1, dtype=torch.float64).view(1, 1, horizon, 1, 1).expand(1, 3, horizon, 2, 2)
    recorder = _Recorder()
    fr.refine_long_clip(recorder, coarse, torch.zeros(1, 1, horizon, 2, 2), clip_len)
    assert all(w.shape[2] == clip_len for w in recorder.windows)
    return {int(v) for w in recorder.windows for v in w.unique()}




@pytest.mark.parametrize("case", sorted(CASES))
def test_training_windows_cover_exactly_the_test_distances(row_task, case):
    horizon, clip_len = CASES[case]
    at_test = refine_distances(horizon, clip_len)
    assert at_test == set(range(1, horizon + 1))
    assert training_distances(row_task, "anchored", horizon, clip_len) == at_test


@pytest.mark.parametrize("case", ["actors-smoke", "faces-smoke"])
def test_the_old_scheme_misses_most_test_distances(row_task, case):
    """The frame right before the window: distances 1..K, while the smoke test reaches T > K."""
    horizon, clip_len = CASES[case]
    old = training_distances(row_task, "sample_windows", horizon, clip_len)
    assert old == set(range(1, clip_len + 1))
    assert old != refine_distances(horizon, clip_len)
    assert horizon > clip_len


def test_windows_lie_in_one_training_clip_after_their_anchor(row_task):
    horizon, clip_len = CASES["faces-smoke"]
    anchor, rows = _rows(*row_task.sample_anchored_windows("gr", 64, clip_len, horizon,
                                                           np.random.default_rng(1))[::2])
    index = row_task.store.index
    clip_of = lambda r: np.searchsorted(index.start.to_numpy(), r, side="right") - 1   # index is in row order
    assert (clip_of(rows) == clip_of(anchor)[:, None]).all()
    assert set(index.split.iloc[np.unique(clip_of(anchor))]) == {"gr"}
    assert (np.diff(rows, axis=1) == 1).all()


def test_each_test_window_is_drawn_about_equally_often():
    horizon, clip_len = CASES["faces-smoke"]
    offsets = refine_window_offsets(horizon, clip_len)
    assert offsets.tolist() == [0, 8, 11]              # 0, K, and the last window shifted to T - K
    n = 30_000
    anchor, rows = anchored_window_rows(np.zeros(n, int), np.full(n, 40), clip_len, horizon, np.random.default_rng(0))
    counts = np.bincount(rows[:, 0] - anchor - 1, minlength=12)[offsets]
    assert np.allclose(counts / n, 1 / 3, atol=0.02), counts


def test_a_short_clip_gives_its_last_frames():
    """A clip shorter than o + K + 1 frames: o is capped, the window is the clip's last K frames."""
    anchor, rows = anchored_window_rows(np.array([100] * 50), np.array([12] * 50), 8, 19, np.random.default_rng(0))
    far = rows[:, -1] - anchor > 8                      # drew the window at o = 8 or 11: capped to 3
    assert far.any() and (anchor[far] == 100).all() and (rows[far, -1] == 111).all()


def test_no_clip_long_enough_for_the_horizon_is_refused(task):
    with pytest.raises(DatasetError, match=r"split 'gr' has no clip of 31 frames.*n_targets = 30"):
        task.sample_anchored_windows("gr", 4, 8, 30, np.random.default_rng(0))


def test_horizon_is_the_test_items_length(tmp_path, task):
    probe = Task("actors-synth", PARAMS, task.store, tmp_path / "cond")
    with pytest.raises(DatasetError, match="test_index.csv: missing"):
        probe.horizon()
    _write_index(tmp_path / "cond", 12)
    assert probe.horizon() == 12
    pd.DataFrame({"item": [0, 1], "n_targets": [12, 11]}).to_csv(tmp_path / "cond" / "test_index.csv", index=False)
    with pytest.raises(DatasetError, match="one n_targets >= 1 shared"):
        probe.horizon()


def test_train_gr_draws_anchored_windows_at_the_test_horizon(task, tmp_path, monkeypatch):
    from frgan.losses import LossWeights
    cfg = fr.FrganConfig(dense=True, residual="mask", refine=True, width=4, batch=2, gm_steps=1, gr_steps=1,
                         clip_len=4, lr=1e-3, betas=(0.0, 0.9), weights=LossWeights(), gp_weight=10.0,
                         seed=0, device="cpu")
    probe = Task("actors-synth", PARAMS, task.store, tmp_path / "cond")
    _write_index(tmp_path / "cond", 12)
    calls = []

    class Drawn(Exception):
        pass

    def record(self, split, batch, length, horizon, rng, label=None, device=None):
        calls.append((split, batch, length, horizon))
        raise Drawn                                   # one draw is all this test needs
    monkeypatch.setattr(Task, "sample_anchored_windows", record)
    with pytest.raises(Drawn):
        fr.train_gr(probe, cfg, fr.build_gm(probe, cfg), tmp_path / "run", checkpoint_every=100)
    assert calls == [("gr", 2, 4, 12)]
