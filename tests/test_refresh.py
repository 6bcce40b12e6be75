"""`make refresh` (pipelines/refresh.py): the snapshot it clones, and dvc.lock's pruning."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from pipelines.refresh import LOCK_ENTRY, clone_at, snapshot_commit, without_stale_entries
from tests.conftest import REPO

LOCK = """schema: '2.0'
stages:
  prepare@faces-synth:
    cmd: python -m pipelines.prepare --dataset faces-synth
    deps:
    - path: frgan
      md5: aaa.dir
  train@faces-synth-frgan:
    cmd: python -m pipelines.train --dataset faces-synth --method frgan
    params:
      params.yaml:
        profile: smoke
  train@faces-synth-frgan-0:
    cmd: python -m pipelines.train --dataset faces-synth --method frgan --seed 0
    outs:
    - path: models/faces-synth/frgan/seed-0
      md5: bbb.dir
"""


def test_without_stale_entries_drops_only_the_stale_stages_and_keeps_every_other_byte():
    pruned, dropped = without_stale_entries(LOCK, {"prepare@faces-synth", "train@faces-synth-frgan-0"})
    assert dropped == ["train@faces-synth-frgan"]
    stale = LOCK[LOCK.index("  train@faces-synth-frgan:\n"):LOCK.index("  train@faces-synth-frgan-0:\n")]
    assert pruned == LOCK.replace(stale, "")
    assert set(yaml.safe_load(pruned)["stages"]) == {"prepare@faces-synth", "train@faces-synth-frgan-0"}
    assert without_stale_entries(LOCK, set(yaml.safe_load(LOCK)["stages"])) == (LOCK, [])


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_the_snapshot_holds_the_working_tree_and_leaves_the_checkout_alone(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    (repo / ".gitignore").write_text("ignored.txt\n")
    (repo / "tracked.txt").write_text("committed\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "--quiet", "-m", "base")
    head = _git(repo, "rev-parse", "HEAD").strip()
    (repo / "tracked.txt").write_text("changed\n")
    (repo / "new.txt").write_text("untracked\n")
    (repo / "ignored.txt").write_text("ignored\n")
    status = _git(repo, "status", "--porcelain")

    commit = snapshot_commit(repo)
    clone = tmp_path / "clone"
    clone_at(repo, commit, clone)
    assert (clone / "tracked.txt").read_text() == "changed\n"
    assert (clone / "new.txt").read_text() == "untracked\n"
    assert not (clone / "ignored.txt").exists()
    assert _git(repo, "rev-parse", "HEAD").strip() == head           # no commit on the branch
    assert _git(repo, "status", "--porcelain") == status             # the index untouched


def test_the_committed_dvc_lock_holds_exactly_the_stages_of_dvc_yaml():
    """DVC never drops the entry of a stage that left dvc.yaml: every later `dvc repro` rewrites it
    again (after each stage) and a fresh repro keeps it. `make refresh` prunes them."""
    listed = subprocess.run([str(Path(sys.executable).parent / "dvc"), "stage", "list", "--name-only"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout.split()
    locked = [m.group(1) for line in (REPO / "dvc.lock").read_text().splitlines() if (m := LOCK_ENTRY.match(line))]
    assert sorted(set(locked) - set(listed)) == [], "stale dvc.lock entries: run `make refresh`"
    assert sorted(set(listed) - set(locked)) == [], "stages never run: run `make refresh`"
