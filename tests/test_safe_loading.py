"""Safe loading: weights only through torch.load(weights_only=True), YAML only through safe_load.

A crafted pickle (one that would run `touch <marker>` when unpickled) put where a checkpoint or
a model file is expected is refused before anything in it runs: the checkpoint loader skips it
with a warning naming it and resumes from the checkpoint before; a stage reading it as weights
stops with one line naming the file. A params.yaml with a python/object tag builds no object.
A scan of the suite's code keeps every loader on the safe path.
"""
from __future__ import annotations

import logging
import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from frgan.config import ParamsError, load_params
from frgan.train.checkpoint import Checkpoints, UnsafeFileError, load_weights
from tests import tiny_project as tp
from tests.conftest import REPO


class _Crafted:
    """Unpickled, this runs a shell command: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_crafted(path: Path, marker: Path) -> Path:
    """A torch.save file whose payload calls os.system when unpickled without weights_only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 1, "step": 4, "state": _Crafted(marker)}, path)
    return path


def test_a_crafted_file_would_run_code_without_weights_only(tmp_path):
    """The fixture is real: the unsafe loader runs its payload (so the tests below can fail)."""
    marker = tmp_path / "ran"
    torch.load(write_crafted(tmp_path / "evil.pt", marker), weights_only=False)
    assert marker.exists()


def test_load_weights_refuses_a_crafted_file_in_one_line(tmp_path):
    marker = tmp_path / "ran"
    path = write_crafted(tmp_path / "gm.pt", marker)
    with pytest.raises(UnsafeFileError) as caught:
        load_weights(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: refused to load (") and "posix.system" in message
    assert not marker.exists()


def test_load_weights_refuses_a_bare_pickle(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "bare.pt"
    path.write_bytes(pickle.dumps(_Crafted(marker), protocol=2))
    with pytest.raises(UnsafeFileError, match=re.escape(f"{path}: refused to load")):
        load_weights(path)
    assert not marker.exists()


def _model():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    return {"model": model, "opt": torch.optim.Adam(model.parameters())}


def test_a_crafted_checkpoint_is_refused_and_the_one_before_is_resumed(tmp_path, caplog):
    folder, marker = tmp_path / "ckpt", tmp_path / "ran"
    saved = _model()
    Checkpoints(folder).save(2, saved)
    crafted = write_crafted(folder / "step-00000004.pt", marker)   # the newest, by name
    restored = _model()
    torch.nn.init.zeros_(restored["model"].weight)
    with caplog.at_level(logging.WARNING, logger="frgan.train.checkpoint"):
        step = Checkpoints(folder).load_latest(restored)
    assert step == 2
    assert torch.equal(restored["model"].weight, saved["model"].weight)
    assert not marker.exists()
    assert any(str(crafted) in r.getMessage() and "refus" in r.getMessage() for r in caplog.records)
    assert crafted.exists()   # kept for whoever wants to look at it; never loaded


def test_yaml_is_read_with_safe_load(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "params.yaml"
    path.write_text(f'profile: !!python/object/apply:os.system ["touch {marker}"]\nseed: 0\n')
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML at line 1 \(could not determine "
                                          r"a constructor for the tag .*python/object/apply:os.system"):
        load_params(path)
    assert not marker.exists()


# The loaders the suite may use, and the unsafe ones it must not.
UNSAFE = [
    (re.compile(r"\byaml\.(load|unsafe_load|full_load|load_all)\("), "yaml: use yaml.safe_load"),
    (re.compile(r"\bpickle\.loads?\(|\bjoblib\.load\(|\bread_pickle\("), "pickle: never unpickle files"),
    (re.compile(r"allow_pickle\s*=\s*True"), "numpy: np.load without allow_pickle"),
    (re.compile(r"weights_only\s*=\s*False"), "torch: torch.load(weights_only=True)"),
]


# Unpickling that reads no file: the tracking helper's two ends of the private pipes between a
# stage and the helper process it started (os.pipe: no other process can write them), and the
# helper's round trip of an exception it is about to send back. Counted: one more fails.
PRIVATE_PIPES = {"frgan/tracking.py": 3}


def test_the_code_uses_only_safe_loaders():
    found = []
    for folder in ("frgan", "pipelines", "baselines", "metrics"):
        for path in sorted((REPO / folder).rglob("*.py")):
            text = path.read_text()
            for pattern, rule in UNSAFE:
                hits = [f"{path.relative_to(REPO)}: {rule}" for _ in pattern.finditer(text)]
                if rule.startswith("pickle") and len(hits) == PRIVATE_PIPES.get(str(path.relative_to(REPO))):
                    hits = []
                found += hits
            for call in re.finditer(r"torch\.load\(", text):   # every torch.load names weights_only=True
                args = text[call.end(): call.end() + 200].split("\n)")[0]
                if "weights_only=True" not in args:
                    found.append(f"{path.relative_to(REPO)}: torch.load without weights_only=True")
    assert found == []


# ---------------------------------------------------------------------------------------------
# Stage level: the train stage skips a crafted checkpoint; the generate stage refuses crafted
# weights in one line and keeps its earlier outs.

ACTORS, METHOD = "actors-synth", "frgan-gm-only"
SEED_DIR = "seed-0"   # no --seed: the first of train.seeds ([0])


@pytest.mark.slow
def test_train_stage_resumes_past_a_crafted_checkpoint(tmp_path, tmp_path_factory):
    root = tp.new_layout(tmp_path_factory, tmp_path / "layout", base=(ACTORS,))
    marker = tmp_path / "ran"
    crafted = write_crafted(root / "checkpoints" / ACTORS / METHOD / SEED_DIR / "gm" / "step-00000002.pt", marker)
    result = tp.stage(root, "train", "--dataset", ACTORS, "--method", METHOD)
    tp.must_pass(result)
    assert not marker.exists()
    assert f"refusing checkpoint {crafted.relative_to(root)}: refused to load" in result.stderr, result.stderr
    assert (root / "models" / ACTORS / METHOD / SEED_DIR / "gm.pt").is_file()


@pytest.mark.slow
def test_generate_stage_refuses_crafted_weights_in_one_line(tmp_path, tmp_path_factory):
    root = tp.new_layout(tmp_path_factory, tmp_path / "layout", base=(ACTORS,))
    marker = tmp_path / "ran"
    write_crafted(root / "models" / ACTORS / METHOD / SEED_DIR / "gm.pt", marker)
    tp.plant_earlier_outs(root, tp.stage_outs("generate", ACTORS, METHOD))
    before = tp.snapshot(root)
    result = tp.stage(root, "generate", "--dataset", ACTORS, "--method", METHOD)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"error: models/{ACTORS}/{METHOD}/{SEED_DIR}/gm.pt: refused to load (Trying to load unsupported "
                    "GLOBAL posix.system whose module posix is blocked); expected weights saved by this "
                    "suite (torch.load weights_only=True)"), last
    assert not marker.exists()
    assert tp.snapshot(root) == before
    assert tp.temp_leftovers(root) == []


@pytest.mark.parametrize("loader", ["frgan.train.parts:load_state", "frgan.train.parts:load_weights",
                                    "frgan.train.frgan:vgg16_feature_loss"])
def test_every_weights_loader_refuses_a_crafted_file(tmp_path, loader):
    """Each place that reads trained weights goes through load_weights (one line, file named)."""
    import importlib
    module_name, function = loader.split(":")
    load = getattr(importlib.import_module(module_name), function)
    marker = tmp_path / "ran"
    path = write_crafted(tmp_path / "weights.pt", marker)
    args = {"vgg16_feature_loss": (str(path), torch.device("cpu")), "load_weights": (path,),
            "load_state": (path, "generator", torch.nn.Linear(1, 1))}[function]
    with pytest.raises(UnsafeFileError, match=re.escape(f"{path}: refused to load")):
        load(*args)
    assert not marker.exists()


def test_a_truncated_conditions_array_names_the_file(tmp_path):
    """frgan.task reads the actors' joint arrays through a check, not a bare np.load."""
    from frgan.data.errors import DatasetError
    from frgan.task import Task
    task = Task.__new__(Task)
    task.conditions = tmp_path
    (tmp_path / "pred_joints.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr'")
    with pytest.raises(DatasetError, match=re.escape(f"{tmp_path / 'pred_joints.npy'}: missing, truncated")):
        task._load_array("pred_joints.npy")
