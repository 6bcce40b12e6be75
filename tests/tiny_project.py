"""A tiny project layout for stage-level tests (bad inputs, resume after a kill, safe loading).

A layout is a folder holding params.yaml (the shipped file with test_dvc_integration's TINY
profile, far smaller than smoke) from which the real stages run as subprocesses
(`run_module(..., cwd=layout)`, the repository on PYTHONPATH). `base_layout` runs prepare and
conditions for both synthetic datasets once per test session; tests copy it (`copy_layout`).
"""
from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO
from tests.test_dvc_integration import TINY

SHIPPED = yaml.safe_load((REPO / "params.yaml").read_text())
DATASETS = ("actors-synth", "faces-synth")
# Written by MLflow, not by a stage's outs: left out of tree snapshots.
NOT_OUTS = re.compile(r"^(mlflow[^/]*\.db(-journal)?|mlruns(/.*)?|mlartifacts(/.*)?)$")
TEMP_NAME = re.compile(r"(^|/)\.[^/]+\.(tmp|old)-")


def tiny_params(**changes: Any) -> dict:
    """The shipped params with the TINY profile, cpu, a checkpoint every 2 steps; `changes` maps
    dotted keys ("train.lr", "profiles.smoke.batch") to values."""
    raw = copy.deepcopy(SHIPPED)
    raw["profiles"]["smoke"].update(TINY)
    raw["train"].update(device="cpu", checkpoint_every=2)
    for key, value in changes.items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return raw


def write_params(root: Path, raw: dict | None = None, **changes: Any) -> Path:
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(raw if raw is not None else tiny_params(**changes), sort_keys=False))
    return path


def stage(root: Path, module: str, *args: str, env: dict | None = None, timeout: float = 300,
          driver: str | None = None, preexec_fn=None) -> subprocess.CompletedProcess:
    """Run `python -m pipelines.<module> args` in `root`, its MLflow store inside it.

    driver: Python code run first in the same process (e.g. to inject a fault); the stage then
    runs as `python -m` would run it. preexec_fn: as subprocess's (e.g. to set an rlimit).
    """
    # One torch thread: these tensors are tiny, and on busy shared cores a second thread makes a
    # stage two to three times slower.
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", **(env or {})}
    if driver is None:
        command = [sys.executable, "-m", f"pipelines.{module}", *args]
    else:
        code = f"{driver}\nimport runpy\nrunpy.run_module('pipelines.{module}', run_name='__main__', alter_sys=True)\n"
        command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, cwd=root, env=full_env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec_fn)


def must_pass(result) -> None:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


_BASE: dict[str, Path] = {}


def mlflow_template(tmp_path_factory) -> Path:
    """An MLflow SQLite store with the schema and the suite's experiment made (once per session):
    a fresh store costs every stage run seconds of migrations."""
    if "mlflow" not in _BASE:
        db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
        code = ("import mlflow; mlflow.set_tracking_uri(%r); mlflow.set_experiment(%r)"
                % (f"sqlite:///{db}", "FRGAN-Repro"))
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
        _BASE["mlflow"] = db
    return _BASE["mlflow"]


def new_layout(tmp_path_factory, dest: Path, base: bool | tuple[str, ...] = False) -> Path:
    """An empty layout (TINY params) or a copy of the base one (base=True: both datasets
    prepared, or a tuple of the datasets needed), its MLflow store ready."""
    if base:
        copy_layout(base_layout(tmp_path_factory, DATASETS if base is True else base), dest)
    else:
        dest.mkdir(parents=True)
        write_params(dest)
    shutil.copy(mlflow_template(tmp_path_factory), dest / "mlflow.db")
    return dest


def base_layout(tmp_path_factory, datasets: tuple[str, ...] = DATASETS) -> Path:
    """prepare + conditions of `datasets` at the TINY profile, each built once per session."""
    if "base" not in _BASE:
        root = tmp_path_factory.mktemp("tiny-base")
        write_params(root)
        shutil.copy(mlflow_template(tmp_path_factory), root / "mlflow.db")
        _BASE["base"] = root
    root = _BASE["base"]
    for dataset in datasets:
        if not (root / "data" / "conditions" / dataset).is_dir():
            must_pass(stage(root, "prepare", "--dataset", dataset))
            must_pass(stage(root, "conditions", "--dataset", dataset))
    return root


def copy_layout(base: Path, dest: Path) -> Path:
    """The base layout's data/ and reports/ (not its MLflow store) in `dest`, with TINY params."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("data", "reports"):
        if (base / name).exists():
            shutil.copytree(base / name, dest / name, symlinks=True)
    write_params(dest)
    return dest


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under root (MLflow's store left out)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not NOT_OUTS.match(rel):
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def temp_leftovers(root: Path) -> list[str]:
    """Temporary siblings of atomic writes (`.<name>.tmp-*`, `.<name>.old-*`) under root."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if TEMP_NAME.search(p.relative_to(root).as_posix()))


def plant_earlier_outs(root: Path, outs: list[str]) -> None:
    """A stand-in earlier version of each out not there yet (a folder gets one file): like a real
    one, it must survive a failed run byte for byte."""
    for out in outs:
        path = root / out
        if path.exists():   # a real earlier out (from the base layout)
            continue
        if path.suffix:   # a file out
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"earlier {out}\n".encode())
        else:
            path.mkdir(parents=True, exist_ok=True)
            (path / "earlier.bin").write_bytes(os.urandom(64))


def stage_outs(stage_name: str, dataset: str, method: str | None = None, seed: int = 0) -> list[str]:
    """The outs dvc.yaml declares for one stage instance (checkpoints, a persist out, excluded);
    train, generate and evaluate per training seed (train.seeds; 0, the shipped one, by default)."""
    d, m, s = dataset, method, seed
    return {
        "prepare": [f"data/prepared/{d}", f"reports/figures/prepare-{d}.png", f"reports/metrics/prepare-{d}.json"],
        "conditions": [f"data/conditions/{d}", f"reports/figures/conditions-{d}.png",
                       f"reports/metrics/conditions-{d}.json"],
        "train": [f"models/{d}/{m}/seed-{s}"],
        "generate": [f"data/generated/{d}/{m}/seed-{s}", f"reports/figures/generate-{d}-{m}-seed{s}.png"],
        "evaluate": [f"reports/metrics/evaluate-{d}-{m}-seed{s}.json", f"reports/plots/evaluate-{d}-{m}-seed{s}.csv",
                     f"reports/videos/evaluate-{d}-{m}-seed{s}.csv"],
    }[stage_name]
