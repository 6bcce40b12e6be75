"""A catalogue of bad inputs, each run through the real stage as a subprocess on a tiny layout.

Every case asserts: a non-zero exit (2 for the command line and params.yaml, 1 for the rest);
stderr free of tracebacks, its last line `error: <one line>` naming the file or key and what was
expected (matched in full below); the stage's outs as they were before the run, byte for byte
(earlier outs are planted first, real ones or stand-ins) and nothing else written (no partial
out, no temporary file left beside one). The catalogue with each message is in tests/README.md;
`test_the_catalogue_is_documented` keeps the two in step.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest
import yaml

from tests import tiny_project as tp
from tests.conftest import REPO

ACTORS, FACES, METHOD = "actors-synth", "faces-synth", "frgan-gm-only"
# Actors at these sizes make a 5.5 MB frames.u8: past the file-size limit and the tmpfs below,
# while MLflow's SQLite store (about 1 MB) stays under the limit.
BIG_ACTORS = {"profiles.smoke.actors_size": 40, "profiles.smoke.actors_per_action": 6,
              "profiles.smoke.actors_frames": 24}
FILE_SIZE_LIMIT = 2_500_000
OOM_DRIVER = """
import torch
from frgan.task import Task
def out_of_memory(self, *args, **kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                                 "capacity of 79.10 GiB of which 1.06 GiB is free.")
Task.sample_pairs = out_of_memory   # the first training step runs out of memory
"""


@dataclass
class Case:
    """One bad input: how to make it, which stage meets it, the one line it must print."""
    id: str
    stage: str                     # prepare, conditions, train, generate, evaluate
    dataset: str
    message: str                   # the line after "error: "; {root} = the layout, "…" = any text
    setup: Callable[[Path], Optional[dict]] = lambda root: None   # returns extra environment
    base: tuple[str, ...] = ()     # starts from a layout with these datasets prepared (+ conditions)
    code: int = 1
    method: Optional[str] = None
    seed: Optional[int] = None     # --seed (train.seeds item); None: omitted, the stage takes the first
    args: tuple[str, ...] = ()     # instead of --dataset/--method/--seed
    driver: Optional[str] = None
    limit_file_size: bool = False
    tmpfs: Optional[str] = None    # a folder mounted as a 1 MiB tmpfs (root only)

    def command(self) -> tuple[str, ...]:
        if self.args:
            return self.args
        return (("--dataset", self.dataset) + (("--method", self.method) if self.method else ())
                + (("--seed", str(self.seed)) if self.seed is not None else ()))


def _params(**changes):
    return lambda root: (tp.write_params(root, **changes), None)[1]


def _raw_params(text: str):
    return lambda root: ((root / "params.yaml").write_text(text), None)[1]


# ---------------------------------------------------------------------------------------------
# Inputs: Penn Action trees, a MUG-shaped store, generated videos.

def _penn_tree(root: Path) -> Path:
    """Three sequences of one of the paper's actions (one per split), fake frames and labels."""
    from frgan.data.skeleton import ACTIONS
    from tests.test_penn import write_frames, write_label
    penn = root / "penn"
    for i in range(1, 4):
        write_label(penn, f"{i:04d}", ACTIONS[0])
        write_frames(penn, f"{i:04d}")
    tp.write_params(root, **{"datasets.penn.root": str(penn)})
    return penn


def _penn_without_labels(root: Path) -> None:
    penn = _penn_tree(root)
    for path in (penn / "labels").iterdir():
        path.unlink()
    (penn / "labels").rmdir()


def _penn_truncated_jpeg(root: Path) -> None:
    frame = _penn_tree(root) / "frames" / "0001" / "000002.jpg"
    frame.write_bytes(frame.read_bytes()[: frame.stat().st_size // 2])


def _penn_label_without(field_name: str):
    def setup(root: Path) -> None:
        from frgan.data.skeleton import ACTIONS
        from tests.test_penn import write_label
        penn = _penn_tree(root)
        write_label(penn, "0002", ACTIONS[0], drop=field_name)
    return setup


def _truncate(rel: str, keep: float = 0.5):
    def setup(root: Path) -> None:
        path = root / rel
        path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    return setup


def _mug_store_and_model(root: Path) -> None:
    """A store named mug (faces-synth videos: frames and landmarks) and a Surrey model path
    with nothing in it."""
    from frgan.data import faces_synth
    from frgan.data.clipstore import write_clip_store
    write_clip_store(faces_synth.iter_videos(24, 3, 6, seed=0), root / "data" / "prepared" / "mug",
                     {"dataset": "mug"})
    (root / "no-sfm").mkdir()
    tp.write_params(root, **{"conditions.face_model": "sfm", "conditions.face_model_path": str(root / "no-sfm")})


def _generated_faces_and_facenet(root: Path) -> dict:
    """Generated test videos for evaluate (the true videos stand in) and no facenet weights."""
    truth = root / "data" / "conditions" / FACES / "test_truth.u8"
    index = (root / "data" / "conditions" / FACES / "test_index.csv").read_text().splitlines()
    size = tp.TINY["faces_size"]
    n = len(index) - 1
    shape = [n, truth.stat().st_size // (n * size * size * 3), size, size, 3]
    out = root / "data" / "generated" / FACES / METHOD / "seed-0"   # train.seeds [0]: --seed omitted
    out.mkdir(parents=True)
    (out / "videos.u8").write_bytes(truth.read_bytes())
    (out / "meta.json").write_text(json.dumps({"shape": shape, "has_gt_conditions": False}))
    tp.write_params(root, **{"evaluate.embedder": "facenet"})
    return {"TORCH_HOME": str(root / "torch"), "XDG_CACHE_HOME": str(root / "cache")}


def _unreachable_mlflow(root: Path) -> dict:
    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}


def _big_actors(root: Path) -> None:
    tp.write_params(root, **BIG_ACTORS)


# ---------------------------------------------------------------------------------------------
# The catalogue.

CASES = [
    Case("missing-dataset-root", "prepare", "penn",
         "Penn Action root {root}/no-such-penn: not a folder; expected one holding frames/ and labels/",
         _params(**{"datasets.penn.root": "{root}/no-such-penn"})),
    Case("wrong-folder-layout", "prepare", "penn",
         "Penn Action root {root}/penn: missing labels/; expected frames/ and labels/",
         _penn_without_labels),
    Case("truncated-image", "prepare", "penn",
         "{root}/penn/frames/0001/000002.jpg: unreadable JPEG (…)", _penn_truncated_jpeg),
    Case("mat-label-missing-field", "prepare", "penn",
         "{root}/penn/labels/0002.mat: missing field 'visibility'", _penn_label_without("visibility")),
    Case("truncated-clip-store-array", "conditions", ACTORS,
         "data/prepared/actors-synth/gt/joints.npy: truncated or not a .npy array (…); expected (…, 13, 2); "
         "the store is corrupt, rerun prepare",
         _truncate("data/prepared/actors-synth/gt/joints.npy"), base=(ACTORS,)),
    Case("truncated-clip-store-frames", "train", ACTORS,
         "data/prepared/actors-synth/frames.u8: … bytes, expected … for frames (…, 24, 24, 3); the store "
         "is corrupt, rerun prepare",
         _truncate("data/prepared/actors-synth/frames.u8", keep=0.9), base=(ACTORS,), method=METHOD),
    Case("missing-clip-store", "train", ACTORS,
         "data/prepared/actors-synth/meta.json: missing; expected a clip store written by "
         "`python -m pipelines.prepare` (run `dvc repro prepare`)", method=METHOD),
    Case("params-unknown-key", "train", ACTORS,
         "params.yaml: train.colour: unknown key (not in the schema of frgan/config.py)",
         _params(**{"train.colour": "red"}), code=2, method=METHOD),
    Case("params-wrong-type", "train", ACTORS,
         "params.yaml: profiles.smoke.batch = 'eight': expected a valid integer…",
         _params(**{"profiles.smoke.batch": "eight"}), code=2, method=METHOD),
    Case("params-out-of-range", "train", ACTORS,
         "params.yaml: profiles.smoke.batch = 0: expected a value greater than or equal to 1",
         _params(**{"profiles.smoke.batch": 0}), code=2, method=METHOD),
    Case("params-dataset-not-prepared", "train", ACTORS,
         "params.yaml: report.faces_dataset = faces-synth is not in prepare.datasets [actors-synth]: add it "
         "there or set report.faces_dataset: null",
         _params(**{"prepare.datasets": ["actors-synth"]}), code=2, method=METHOD),
    Case("params-not-yaml", "train", ACTORS,
         "params.yaml: not valid YAML at line 2 (mapping values are not allowed here)", _raw_params("profile: smoke\nseed: 0: 1\n"), code=2, method=METHOD),
    Case("unknown-method", "train", ACTORS,
         "--method 'sora': expected one of ['copy-input', 'frgan', …]", code=2, method="sora"),
    Case("unknown-seed", "train", ACTORS,
         "--seed 7: expected one of train.seeds [0] (params.yaml)", base=(ACTORS,), code=2, method="frgan",
         seed=7),
    Case("unknown-dataset", "train", "imagenet",
         "python -m pipelines.train: argument --dataset: invalid choice: 'imagenet' (choose from "
         "'faces-synth', 'actors-synth', 'mug', 'penn') (see --help)", code=2, method=METHOD),
    Case("missing-3dmm-file", "conditions", "mug",
         "{root}/no-sfm/sfm_shape_3448.bin: missing; the Surrey Face Model needs sfm_shape_3448.bin, "
         "expression_blendshapes_3448.bin, ibug_to_sfm.txt (from the eos repository's share/ folder)",
         _mug_store_and_model),
    Case("missing-embedder-weights", "evaluate", FACES,
         "facenet weights not found: {root}/torch/checkpoints/20180402-114759-vggface2.pt; download "
         "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt "
         "to that path (or pass weights_path=)",
         _generated_faces_and_facenet, base=(FACES,), method=METHOD),
    Case("missing-vgg16-weights", "train", ACTORS,
         "{root}/vgg16.pth: VGG16 weights not found (train.feature_vgg16_path; a torchvision vgg16 "
         "state_dict, e.g. vgg16-397923af.pth)",
         _params(**{"train.loss_weights.feat": 0.5, "train.feature_vgg16_path": "{root}/vgg16.pth"}),
         base=(ACTORS,), method=METHOD),
    Case("unreachable-mlflow-server", "prepare", FACES,
         "MLflow tracking server http://127.0.0.1:… is unreachable (…)…", _unreachable_mlflow),
    Case("disk-full-file-size-limit", "prepare", ACTORS,
         "data/prepared/actors-synth: cannot write it: File too large (the file-size limit); nothing was "
         "replaced (earlier outputs are kept); free some space and rerun",
         _big_actors, limit_file_size=True),
    Case("disk-full-tmpfs", "prepare", ACTORS,
         "data/prepared/actors-synth: cannot write it: No space left on device; nothing was replaced "
         "(earlier outputs are kept); free some space and rerun",
         _big_actors, tmpfs="data"),
    Case("nan-loss", "train", ACTORS,
         "G_M: loss … = nan at step …; training stopped, last good checkpoint: none (no checkpoint "
         "written yet); lower train.lr (now 1e+30) in params.yaml or check the inputs",
         _params(**{"train.lr": 1e30, "train.checkpoint_every": 100}), base=(ACTORS,), method=METHOD),
    Case("cuda-out-of-memory", "train", ACTORS,
         "out of memory (CUDA out of memory. Tried to allocate 2.00 GiB); lower profiles.smoke.batch "
         "(now 2) in params.yaml, or choose a smaller profile",
         base=(ACTORS,), method=METHOD, driver=OOM_DRIVER),
]


def _pattern(message: str, root: Path) -> str:
    return re.escape(message.replace("{root}", str(root))).replace("…", ".*")


def _formatted(setup: Callable, root: Path):
    """Params values may name paths inside the layout as {root}."""
    result = setup(root)
    params = root / "params.yaml"
    if params.is_file():
        params.write_text(params.read_text().replace("{root}", str(root)))
    return result


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # past the limit: EFBIG, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


@contextlib.contextmanager
def _tmpfs(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'}); "
                    "disk-full-file-size-limit covers the same path")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _differences(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_with_one_line_and_leaves_the_outs(case, tmp_path, tmp_path_factory):
    root = tp.new_layout(tmp_path_factory, tmp_path / "layout", base=case.base)
    with _tmpfs(root / case.tmpfs) if case.tmpfs else contextlib.nullcontext():
        env = _formatted(case.setup, root) or {}
        if case.dataset in ("faces-synth", "actors-synth", "mug", "penn"):
            tp.plant_earlier_outs(root, tp.stage_outs(case.stage, case.dataset, case.method, case.seed or 0))
        before = tp.snapshot(root)
        result = tp.stage(root, case.stage, *case.command(), env=env, driver=case.driver,
                          preexec_fn=_limit_file_size if case.limit_file_size else None)
        after, leftovers = tp.snapshot(root), tp.temp_leftovers(root)

    report = f"exit {result.returncode}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-4000:]}"
    assert result.returncode == case.code, report
    assert "Traceback" not in result.stderr, report
    last = result.stderr.strip().splitlines()[-1]
    print(f"{case.id}: exit {result.returncode}: {last}")   # shown by `pytest -rP`
    assert last.startswith("error: "), report
    assert re.fullmatch(_pattern(case.message, root), last.removeprefix("error: ")), last
    assert _differences(before, after) == [], "the failed run changed files (earlier outs must stay)"
    assert leftovers == [], "temporary files left beside an out"


def _explained(exc: BaseException, module: str = "pipelines.train", dataset: str = ACTORS) -> str | None:
    import argparse
    from frgan.config import load_params
    from pipelines import _stage

    def main(params, args):
        pass
    main.__module__ = module
    return _stage._explain(exc, main, load_params(REPO / "params.yaml"),
                           argparse.Namespace(params="params.yaml", dataset=dataset))


def test_out_of_memory_names_the_batch_key_of_the_stage():
    import torch
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB. GPU 0 has 2 GiB.")
    shipped = tp.SHIPPED
    assert _explained(oom, "pipelines.conditions", ACTORS) == (
        "out of memory (CUDA out of memory. Tried to allocate 1.00 GiB); lower conditions.pose_lstm_batch "
        f"(now {shipped['conditions']['pose_lstm_batch']}) in params.yaml, or choose a smaller profile")
    assert f"lower profiles.smoke.batch (now {shipped['profiles']['smoke']['batch']})" in _explained(oom)


def test_a_full_disk_outside_an_atomic_write_names_the_file():
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "mlruns/1/x/artifacts/a.png")
    assert _explained(full).startswith("mlruns/1/x/artifacts/a.png: cannot write it: No space left on device;")


def test_a_bug_keeps_its_traceback():
    assert _explained(KeyError("oops")) is None
    assert _explained(OSError(errno.EACCES, "Permission denied")) is None


def test_the_catalogue_is_documented():
    readme = (REPO / "tests" / "README.md").read_text()
    missing = [c.id for c in CASES if f"`{c.id}`" not in readme]
    assert missing == [], f"cases missing from tests/README.md: {missing}"
    assert "`second-concurrent-dvc-repro`" in readme


# ---------------------------------------------------------------------------------------------
# A second `dvc repro` while one runs: DVC's lock refuses it; the first one's outs are intact.

SHIM = """#!/bin/sh
# The first repro's stage waits here (holding DVC's lock) until the test says go.
if [ -n "$HOLD_DIR" ] && [ ! -e "$HOLD_DIR/go" ]; then
    touch "$HOLD_DIR/started"
    while [ ! -e "$HOLD_DIR/go" ]; do sleep 0.2; done
fi
exec {python} "$@"
"""


def _dvc(root: Path, *args: str, env: dict | None = None, **kwargs):
    full_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "DVC_NO_ANALYTICS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "dvc", *args], cwd=root, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the first dvc repro ended before its stage started:\n{process.stdout.read()}")
        if time.monotonic() > deadline:   # a hang guard, not a timing assertion
            process.kill()
            pytest.fail("the first dvc repro's stage never started")
        time.sleep(0.2)


@pytest.fixture
def dvc_project(tmp_path) -> Path:
    """A git copy of the repository (test_dvc_integration's helpers), tiny, one dataset."""
    import shutil
    from tests.test_dvc_integration import _git, _project_files
    root = tmp_path / "repo"
    for rel in _project_files():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    raw = tp.tiny_params(**{"prepare.datasets": [ACTORS], "train.methods": [METHOD],
                            "report.faces_dataset": None, "report.reference_datasets": []})   # one-dataset graph
    tp.write_params(root, raw)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "copy")
    return root


@pytest.mark.slow
def test_second_concurrent_dvc_repro_is_refused_by_the_lock(dvc_project, tmp_path):
    root, hold = dvc_project, tmp_path / "hold"
    shim_dir = tmp_path / "shim"
    hold.mkdir()
    shim_dir.mkdir()
    (shim_dir / "python").write_text(SHIM.format(python=sys.executable))
    (shim_dir / "python").chmod(0o755)
    target = f"prepare@{ACTORS}"
    first = _dvc(root, "repro", target, env={"HOLD_DIR": str(hold), "PATH": f"{shim_dir}{os.pathsep}"
                                             f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    try:
        _wait_for(hold / "started", first)
        before = tp.snapshot(root / "data") if (root / "data").exists() else {}
        second = _dvc(root, "repro", target)
        second_out, _ = second.communicate(timeout=300)
        assert second.returncode != 0, second_out
        # DVC's repo lock ("Unable to acquire lock") or, while a stage runs, its lock on the
        # stage's outs (".dvc/tmp/rwlock": "... is busy, it is being blocked by: (PID n) ...").
        assert re.search(r"Unable to acquire lock|is busy, it is being blocked by", second_out), second_out
        assert "lock" in second_out, second_out
        print(f"second-concurrent-dvc-repro: exit {second.returncode}: {second_out.strip().splitlines()[0]}")
        after = tp.snapshot(root / "data") if (root / "data").exists() else {}
        assert after == before, "the refused repro touched the outs"
    finally:
        (hold / "go").touch()
        first_out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, first_out
    from frgan.data.clipstore import ClipStore
    store = ClipStore(root / "data" / "prepared" / ACTORS)
    assert len(store) > 0 and store.frames.shape[0] == store.meta["n_frames"]
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert target in lock["stages"]
    status = _dvc(root, "status", target)
    status_out, _ = status.communicate(timeout=300)
    assert status.returncode == 0 and "up to date" in status_out.lower(), status_out
