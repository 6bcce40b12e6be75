"""One footing for every method (issue 17): all train on the clips of both training splits
(gm + gr, never test) with gm_steps + gr_steps generator steps at the profile's batch, FRGAN as
the paper's two stages (G_M on gm, then G_R on gr); each train stage records that budget.

The trainings here record which store rows the samplers read (not the test set's, nor the
sample grid's), map them to clips, and compare with the Budget the method returns."""
from __future__ import annotations

import contextlib
import json
import sqlite3

import numpy as np
import pytest

from baselines import common, mocogan, vgan
from frgan.data.clipstore import TRAIN_SPLITS, ClipStore
from frgan.data.errors import DatasetError
from frgan.methods import METHODS, Budget, FrganVariant, Method, parameter_count
from frgan.task import Task
from frgan.train import frgan as fr
from pipelines import train as train_stage
from frgan.paths import train_metrics_path
from tests import tiny_project as tp
from tests.conftest import REPO, params_with, tiny_actors_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE, T = 16, 3
GM_STEPS, GR_STEPS, BATCH = 5, 3, 2   # 8 steps: one or more per VGAN class (8 actions)
SAMPLERS = ("sample_pairs", "sample_windows", "sample_anchored_windows")
NOTHING_TO_TRAIN = {"copy-input"}   # the floor (issue 17): copies the input frame
TRAINED = sorted(set(METHODS) - NOTHING_TO_TRAIN)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    # 3 actors x 8 actions of 8 frames: one actor per split, so 8 clips in each of gm, gr, test
    return tiny_actors_task(tmp_path_factory.mktemp("actors"), SIZE, T)


@pytest.fixture(scope="module")
def params():
    return params_with({"width": 4, "batch": BATCH, "gm_steps": GM_STEPS, "gr_steps": GR_STEPS,
                        "gr_clip_actors": 4}, {"device": "cpu", "checkpoint_every": 100})


@contextlib.contextmanager
def recording(task: Task):
    """Record the store rows the training samplers read while inside; yields the row list."""
    rows: list[int] = []
    frames_of_rows = task.frames_of_rows

    def recorded(r, device=None):
        rows.extend(np.asarray(r).ravel().tolist())
        return frames_of_rows(r, device)

    def wrap(sampler):
        def sample(*args, **kwargs):
            task.frames_of_rows = recorded
            try:
                return sampler(*args, **kwargs)
            finally:
                del task.frames_of_rows   # back to the class's method
        return sample

    names = [n for n in SAMPLERS if hasattr(task, n)]
    for name in names:
        setattr(task, name, wrap(getattr(task, name)))
    try:
        yield rows
    finally:
        for name in names:
            delattr(task, name)


def clips_of_rows(task: Task, rows: list[int]):
    """The index rows (clips) that hold the given store rows."""
    index = task.store.index.sort_values("start")
    at = np.searchsorted(index.start.to_numpy(), np.asarray(rows), side="right") - 1
    hit = index.iloc[np.unique(at)]
    assert (np.asarray(rows) < (index.start.to_numpy() + index.length.to_numpy())[at]).all()
    return hit


# ---------------------------------------------------------------------------------------------
# The split selection.

def test_train_splits_select_gm_and_gr_never_test(task):
    index = task.store.index
    both = task.store.split(TRAIN_SPLITS)
    assert TRAIN_SPLITS == ("gm", "gr")
    assert list(both.clip_id) == list(index[index.split != "test"].clip_id)   # index order
    assert set(both.split) == {"gm", "gr"} and len(both) == 16
    assert list(task.store.split("gm").clip_id) == list(index[index.split == "gm"].clip_id)
    assert len(task.clips(TRAIN_SPLITS, min_length=2)) == 16
    # the sampling cache is keyed by the split tuple: "gm" and ("gm", "gr") are different tables
    assert len(task._starts_lengths("gm", 2, None)[0]) == 8
    assert len(task._starts_lengths(TRAIN_SPLITS, 2, None)[0]) == 16


def test_bad_split_selections_are_named(task):
    with pytest.raises(KeyError, match="'train'.*expected one or more of"):
        task.store.split(("gm", "train"))
    with pytest.raises(KeyError, match="expected one or more of"):
        task.store.split(())
    with pytest.raises(DatasetError, match=r"split 'gm' \+ 'gr' has no clip of 99\+ frames"):
        task.clips(TRAIN_SPLITS, min_length=99)


# ---------------------------------------------------------------------------------------------
# Configured footing (cheap: no training).

@pytest.mark.parametrize("name", TRAINED)
def test_every_method_is_configured_on_the_shared_footing(name, task, params):
    method, total = METHODS[name], GM_STEPS + GR_STEPS
    if isinstance(method, FrganVariant):
        cfg = method.config(task, params)
        if method.refine:   # paper 4.1: G_M on gm for gm_steps, then G_R on gr for gr_steps
            assert (cfg.gm_splits, cfg.gm_steps, cfg.gr_steps) == (("gm",), GM_STEPS, GR_STEPS)
        else:
            assert (cfg.gm_splits, cfg.gm_steps, cfg.gr_steps) == (TRAIN_SPLITS, total, 0)
        return
    if isinstance(method, common.OneGeneratorMethod):
        cfg = method.config(task, params)
    else:
        cfg = {"vgan": vgan.make_config, "mocogan": mocogan.make_config}[name](task, params)
    assert (cfg.splits, cfg.steps, cfg.batch) == (TRAIN_SPLITS, total, BATCH)


# ---------------------------------------------------------------------------------------------
# What a short training touches and the budget it reports.

def expected_parameters(name: str, task: Task, params) -> int:
    method = METHODS[name]
    if isinstance(method, FrganVariant):
        cfg = method.config(task, params)
        return parameter_count(fr.build_gm(task, cfg), *([fr.build_gr(task, cfg)] if method.refine else []))
    if isinstance(method, common.OneGeneratorMethod):
        cfg = method.config(task, params)
        return parameter_count(method.build(task, cfg))
    if name == "vgan":
        cfg = vgan.make_config(task, params)
        return len(cfg.labels) * parameter_count(vgan.VganGenerator(task.size, cfg.frames, width=cfg.width))
    cfg = mocogan.make_config(task, params)
    return parameter_count(mocogan.build_generator(task, cfg))


@pytest.mark.parametrize("name", TRAINED)
def test_training_draws_from_gm_and_gr_and_reports_its_budget(name, task, params, tmp_path, monkeypatch):
    # the sample grid (for the eye, split gr) is not training: keep it out of the record
    monkeypatch.setattr(fr, "sample_grid", lambda task, cfg, gm, rows=6: np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "out").mkdir()
    with recording(task) as rows:
        spent = METHODS[name].train(task, params, tmp_path / "out", tmp_path / "ckpt", log=None)
    touched = clips_of_rows(task, rows)
    assert set(touched.split) == {"gm", "gr"}, f"{name} drew from {sorted(set(touched.split))}"
    steps = GM_STEPS + GR_STEPS
    # every clip of this store is 8 frames long, so every sampler may draw every gm and gr clip
    assert spent == Budget(clips=16, generator_steps=steps, samples_seen=steps * BATCH,
                           parameters=expected_parameters(name, task, params))
    assert len(touched) <= spent.clips


def test_frgan_g_m_draws_from_gm_only(task, params, tmp_path):
    """The full model keeps the paper's protocol: its G_M stage sees split gm alone."""
    cfg = METHODS["frgan"].config(task, params)
    with recording(task) as rows:
        fr.train_gm(task, cfg, tmp_path, checkpoint_every=100)
    assert set(clips_of_rows(task, rows).split) == {"gm"}


# ---------------------------------------------------------------------------------------------
# The interface and the stage's record.

def test_a_method_with_nothing_to_train_spends_nothing(tmp_path):
    assert Method().train(None, None, tmp_path, tmp_path, None) == Budget(0, 0, 0, 0)
    assert train_stage.as_budget(Budget(), "copy-input") == Budget()
    with pytest.raises(TypeError, match="method 'x': train returned NoneType, expected a frgan.methods.Budget"):
        train_stage.as_budget(None, "x")
    with pytest.raises(TypeError, match="method 'x': train returned dict"):
        train_stage.as_budget({"clips": 1}, "x")


def test_train_stage_writes_the_budget_json(tmp_path_factory):
    root = tp.new_layout(tmp_path_factory, tmp_path_factory.mktemp("footing") / "p", base=("actors-synth",))
    tp.must_pass(tp.stage(root, "train", "--dataset", "actors-synth", "--method", "frgan", "--seed", "0"))
    path = root / train_metrics_path("actors-synth", "frgan", 0)
    record = json.loads(path.read_text())
    size = tp.TINY
    store = ClipStore(root / "data" / "prepared" / "actors-synth")
    index = store.index
    gm = index[(index.split == "gm") & (index.length >= 2)]
    gr = index[(index.split == "gr") & (index.length >= size["gr_clip_actors"] + 1)]
    steps = size["gm_steps"] + size["gr_steps"]
    assert set(record) == {"dataset", "method", "seed", "splits", "clips", "generator_steps",
                           "samples_seen", "parameters"}
    assert record["dataset"] == "actors-synth" and record["method"] == "frgan" and record["seed"] == 0
    assert record["splits"] == ["gm", "gr"]
    assert record["clips"] == len(set(gm.clip_id) | set(gr.clip_id)) > 0
    assert record["generator_steps"] == steps and record["samples_seen"] == steps * size["batch"]
    assert record["parameters"] > 0
    assert path.read_text() == json.dumps(record, indent=2, sort_keys=True) + "\n"   # no wall time
    # MLflow gets the same numbers plus the wall time
    with contextlib.closing(sqlite3.connect(root / "mlflow.db")) as db:
        logged = dict(db.execute("SELECT key, value FROM metrics WHERE key LIKE 'budget/%'").fetchall())
    assert {k: logged[f"budget/{k}"] for k in ("clips", "generator_steps", "samples_seen", "parameters")} == \
        {k: float(record[k]) for k in ("clips", "generator_steps", "samples_seen", "parameters")}
    assert logged["budget/wall_time_s"] > 0


def test_get_method_finds_every_baseline_without_importing_them_first():
    """The registry imports the baselines itself: a fresh interpreter needs only frgan.methods."""
    import subprocess
    import sys
    code = ("from frgan.methods import get_method, registered; get_method('mcnet'); "
            "print(sorted(registered()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    for name in ("mcnet", "mocogan", "vgan", "villegas17", "mathieu", "frgan", "copy-input"):
        assert repr(name) in done.stdout, done.stdout
