"""Resume after SIGKILL: the real training stage, killed again and again, ends bit-identical.

`python -m pipelines.train --dataset actors-synth --method frgan` (training seed 0, the first of
train.seeds: models/ and checkpoints/actors-synth/frgan/seed-0/; G_M, then G_R; a checkpoint
every 2 steps) on the tiny layout is SIGKILLed at 6 points drawn from a seeded RNG over the run's
timeline: 3 right after a training step's update (before the loop has counted it or taken the
checkpoint due after it) and 3 during a checkpoint write (the file cut short while torch.save
writes it, or written in full but killed before its rename).
Each kill is a real SIGKILL, sent by the stage process to itself at that point (a test driver
counts steps and writes, so the points are exact, not timed). Each rerun resumes from what the
previous one left; the last one finishes. Its weights must equal those of an uninterrupted run
tensor for tensor and byte for byte, and the same sample image; after every kill, every checkpoint under its
final name must load (a torn file is only ever a temporary one), and no temporary file may be
left once the run has finished.

The quick tests at the end kill plain atomic writes (frgan.io) at their most fragile points.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import tiny_project as tp
from tests.conftest import REPO

DATASET, METHOD = "actors-synth", "frgan"
RUN = Path(DATASET) / METHOD / "seed-0"   # models/ and checkpoints/ of the run (no --seed: train.seeds[0])
GM_STEPS, GR_STEPS, EVERY = 10, 6, 2
SEED = 2018

KILL_DRIVER = """
import io, os, signal
import torch
import frgan.train.frgan as fr
kind, n = os.environ["FRGAN_TEST_KILL"].split(":")
n, seen = int(n), [0]

def counted() -> bool:
    seen[0] += 1
    return seen[0] == n

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if kind == "step":          # die after the n-th training step's update, before the loop counts it
    real_run = fr.run_training
    def run_training(name, steps, step_fn, *args, **kwargs):
        def step(i):
            out = step_fn(i)
            if counted():
                die()
            return out
        return real_run(name, steps, step, *args, **kwargs)
    fr.run_training = run_training
elif kind == "torn":        # the n-th checkpoint of this run: half its bytes written, then die
    real_save = torch.save
    def save(obj, f, *args, **kwargs):
        if (isinstance(f, (str, os.PathLike)) and ".tmp-" in os.fspath(f)
                and os.path.basename(f).startswith("step-") and counted()):
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            with open(f, "wb") as handle:
                handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            die()
        return real_save(obj, f, *args, **kwargs)
    torch.save = save
elif kind == "rename":      # the n-th checkpoint of this run written in full, die before its rename
    real_replace = os.replace
    def replace(src, dst, *args, **kwargs):
        if os.path.basename(os.fspath(dst)).startswith("step-") and counted():
            die()
        return real_replace(src, dst, *args, **kwargs)
    os.replace = replace
"""


def kill_points(seed: int = SEED) -> list[tuple[str, int]]:
    """6 points on the run's timeline, in order: ("step", g) kills during global step g (0-based,
    G_M's steps then G_R's); ("torn" | "rename", p) kills while writing the checkpoint taken
    after p global steps. A save after p steps comes before step p (sort key 2p vs 2g + 1)."""
    rng = random.Random(seed)
    saves = [p for p in range(EVERY, GM_STEPS + 1, EVERY)] + [GM_STEPS + p for p in range(EVERY, GR_STEPS + 1, EVERY)]
    gm_step, gr_step = rng.randrange(GM_STEPS), GM_STEPS + rng.randrange(GR_STEPS)   # one in each stage
    steps = [gm_step, gr_step, rng.choice([g for g in range(GM_STEPS + GR_STEPS) if g not in (gm_step, gr_step)])]
    kinds = ["torn", "rename", rng.choice(["torn", "rename"])]
    rng.shuffle(kinds)
    points = [("step", g) for g in steps] + list(zip(kinds, rng.sample(saves, 3)))
    return sorted(points, key=lambda point: 2 * point[1] + (point[0] == "step"))


def resume_point(root: Path) -> int:
    """Global steps done by the newest checkpoints on disk (what the next run resumes from)."""
    from frgan.train.checkpoint import NAME
    folder = root / "checkpoints" / RUN

    def latest(part: str) -> int:
        found = [int(m.group(1)) for p in (folder / part).glob("step-*.pt") if (m := NAME.match(p.name))]
        return max(found, default=0)
    gm = latest("gm")
    return gm if gm < GM_STEPS else GM_STEPS + latest("gr")


def per_run_count(point: tuple[str, int], resumed: int) -> int:
    """The point as the driver counts it: the n-th step, or the n-th checkpoint, of this run."""
    kind, where = point
    if kind == "step":
        assert where >= resumed, (point, resumed)
        return where - resumed + 1
    assert where > resumed, (point, resumed)
    return (where - resumed) // EVERY


def train(root: Path, kill: str | None = None):
    env = {"FRGAN_TEST_KILL": kill} if kill else None
    return tp.stage(root, "train", "--dataset", DATASET, "--method", METHOD, env=env,
                    driver=KILL_DRIVER if kill else None)


def _layout(tmp_path_factory, dest: Path) -> Path:
    root = tp.new_layout(tmp_path_factory, dest, base=(DATASET,))
    tp.write_params(root, **{"profiles.smoke.gm_steps": GM_STEPS, "profiles.smoke.gr_steps": GR_STEPS,
                             "train.checkpoint_every": EVERY})
    return root


def test_kill_points_cover_steps_and_checkpoint_writes():
    points = kill_points()
    assert len(points) >= 5
    assert {kind for kind, _ in points} == {"step", "torn", "rename"}
    assert any(w < GM_STEPS for _, w in points) and any(w > GM_STEPS for _, w in points)  # G_M and G_R


@pytest.mark.slow
def test_training_killed_at_six_points_resumes_to_identical_weights(tmp_path, tmp_path_factory):
    import torch
    from frgan.train.checkpoint import load_weights

    straight = _layout(tmp_path_factory, tmp_path / "straight")
    tp.must_pass(train(straight))

    killed = _layout(tmp_path_factory, tmp_path / "killed")
    for point in kill_points():
        resumed = resume_point(killed)
        result = train(killed, kill=f"{point[0]}:{per_run_count(point, resumed)}")
        assert result.returncode == -signal.SIGKILL, (
            f"the run was to be killed at {point} (resumed from {resumed}) but exited {result.returncode}:\n"
            f"{result.stderr[-3000:]}")
        finals = list((killed / "checkpoints").glob("*/*/*/*/step-*.pt"))   # <dataset>/<method>/seed-<s>/<part>/
        assert all(p.parent.parent == killed / "checkpoints" / RUN for p in finals), finals
        for path in finals:   # a torn file under a final name: never
            assert isinstance(load_weights(path), dict), path
        if point[0] != "step":   # killed mid-write: the unfinished file is a temporary one
            assert list((killed / "checkpoints").rglob(".step-*.tmp-*")), point
        assert not (killed / "models" / RUN).exists(), "an out appeared before the stage finished"
    tp.must_pass(train(killed))

    assert tp.temp_leftovers(killed) == []
    for name in ("gm.pt", "gr.pt"):
        a = torch.load(straight / "models" / RUN / name, weights_only=True)
        b = torch.load(killed / "models" / RUN / name, weights_only=True)
        assert a["config"] == b["config"] and a["task"] == b["task"]
        a, b = a["states"][name[:2]], b["states"][name[:2]]   # gm.pt holds "gm", gr.pt "gr"
        assert a.keys() == b.keys()
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert different == [], f"{name}: tensors differ after the kills: {different[:5]}"
        assert (straight / "models" / RUN / name).read_bytes() == \
            (killed / "models" / RUN / name).read_bytes(), f"{name}: same tensors, other bytes"
    sample = Path("models") / RUN / "samples-gm.png"
    assert (straight / sample).read_bytes() == (killed / sample).read_bytes()


# ---------------------------------------------------------------------------------------------
# frgan.io under SIGKILL: a kill between the two renames of a folder swap, or before a file's
# rename, loses nothing; the next write to the same target cleans up (and puts the old back).

SWAP_DRIVER = """
import os, signal, sys
from pathlib import Path
from frgan.io import atomic_dir, atomic_file
target, kind = Path(sys.argv[1]), sys.argv[2]
real_replace = os.replace
def replace(src, dst, *args, **kwargs):
    real_replace(src, dst, *args, **kwargs)
    if kind == "dir" and ".old-" in os.fspath(dst):   # the old out is aside, the new one not in place
        os.kill(os.getpid(), signal.SIGKILL)
def replace_file(src, dst, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)              # the new file is complete, not yet renamed
os.replace = replace if kind == "dir" else replace_file
if kind == "dir":
    with atomic_dir(target) as tmp:
        (tmp / "value.txt").write_text("new")
else:
    with atomic_file(target) as tmp:
        tmp.write_text("new")
"""


def _killed_write(target: Path, kind: str) -> None:
    result = subprocess.run([sys.executable, "-c", SWAP_DRIVER, str(target), kind], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr


def test_folder_swap_killed_midway_is_undone_by_the_next_write(tmp_path):
    from frgan.io import atomic_dir
    target = tmp_path / "out"
    target.mkdir()
    (target / "value.txt").write_text("old")
    _killed_write(target, "dir")
    assert not target.exists() and len(list(tmp_path.glob(".out.old-*"))) == 1   # the fragile window

    with pytest.raises(RuntimeError):                 # the next writer fails: the old out is back
        with atomic_dir(target):
            raise RuntimeError("fails")
    assert (target / "value.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]

    with atomic_dir(target) as tmp:
        (tmp / "value.txt").write_text("newer")
    assert (target / "value.txt").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_file_write_killed_before_its_rename_keeps_the_old_file(tmp_path):
    from frgan.io import atomic_file
    target = tmp_path / "scores.json"
    target.write_text("old")
    _killed_write(target, "file")
    assert target.read_text() == "old"
    assert len(list(tmp_path.glob(".scores.json.tmp-*"))) == 1
    with atomic_file(target) as tmp:
        tmp.write_text("newer")
    assert target.read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    from frgan.io import atomic_file, sweep_stale
    target = tmp_path / "scores.json"
    live = tmp_path / f".scores.json.tmp-{os.getppid()}-abc.json"   # the parent of this process: alive
    live.write_text("being written")
    assert sweep_stale(target) == []
    with atomic_file(target) as tmp:
        tmp.write_text("x")
    assert live.exists()
