"""Shared test fixtures: the repository root, a Python that runs stage modules, tmp copies."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path, monkeypatch):
    """Every test logs to its own SQLite store, never to the user's mlflow.db."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow-test.db'}")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: one torch thread is as fast as two, and far faster on busy cores."""
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def params_with(profile: dict, train: dict):
    """The shipped params.yaml as Params, with `profile`'s knobs set in the active profile and
    `train`'s in the train section (tiny sizes for in-process training tests)."""
    from frgan.config import load_params
    base = load_params(REPO / "params.yaml")
    return base.model_copy(update={"profiles": {**base.profiles, base.profile: base.size.model_copy(update=profile)},
                                   "train": base.train.model_copy(update=train)})


def tiny_actors_task(root: Path, size: int, n_pred: int):
    """A tiny actors-synth Task under `root`: 3 actors x 8 actions of 8 frames (one actor per
    split: 8 clips in each of gm, gr and test), conditions from a 2-step pose LSTM predicting
    `n_pred` poses. Built once per folder (a second call reuses what the first wrote)."""
    from frgan.conditions.actors import PoseSettings, build_actor_conditions
    from frgan.config import load_params
    from frgan.data import actors_synth
    from frgan.data.clipstore import ClipStore, write_clip_store
    from frgan.task import Task
    if not (root / "cond" / "test_index.csv").is_file():
        write_clip_store(actors_synth.iter_videos(size, 3, 8, seed=0), root / "store", {"dataset": "actors-synth"})
        build_actor_conditions(ClipStore(root / "store"),
                               PoseSettings(n_obs=2, n_pred=n_pred, hidden=4, steps=2, batch=4, seed=0),
                               root / "cond")
    return Task("actors-synth", load_params(REPO / "params.yaml"), ClipStore(root / "store"), root / "cond")


def run_module(module: str, *args: str, cwd: Path, env: dict | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m <module> args` from `cwd` with the repo importable."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


# Headless Chromium for the browser tests (the study page, the MLflow UI): Debian's chromium and
# chromium-driver, which .ci/run installs; the tests skip naming the package when one is absent.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
NEEDS_CHROMIUM = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian package chromium)"),
    pytest.mark.skipif(CHROMEDRIVER is None, reason="chromedriver not installed (Debian package chromium-driver)"),
]


@contextlib.contextmanager
def headless_chromium(width: int, height: int):
    """A Selenium driver of a headless Chromium window of that size, quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
