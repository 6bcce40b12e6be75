"""Refresh the committed smoke results after a change to stage code: `make refresh`.

    python -m pipelines.refresh [--workdir /tmp/frgan-refresh] [--update]

The CI gate (tests/test_fresh_repro.py) runs a fresh `dvc repro --force` in a clean clone of HEAD
and wants the committed dvc.lock and results back byte for byte. DVC records the hash of every
stage's code in dvc.lock, so any change to a stage's code (a refactor that moves no number
included) needs its dvc.lock and results written by a fresh repro before it can land. This does
that in one command:

1. a snapshot of this checkout as it is (HEAD plus every change, untracked files included,
   ignored files left out), cloned into --workdir;
2. `dvc repro --force` there, its MLflow runs in the clone's own SQLite store;
3. the smoke gate there (`python -m pipelines.check`); with --update, `check --update`, which
   accepts numbers that moved (the change is meant to move them: say why in the commit);
4. only if both passed: the results copied into this checkout (RESULTS, and dvc.lock without
   the entries of stages dvc.yaml no longer has: DVC keeps those forever otherwise);
5. `git status` of those paths: the files to commit with the change.

Use it after the change is final (tests pass): it takes as long as `make repro` (~15 min on
2 cores). When the gate fails, nothing here is touched and the clone is kept for a look.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What a smoke repro writes that is committed (besides dvc.lock); `expected` changes only with --update.
RESULTS = ("reports/metrics", "reports/plots", "reports/videos", "reports/tables", "reports/figures",
           "reports/expected", "reports/report-plots", "reports/headline.json")
# A stage's entry in dvc.lock: a two-space-indented key at the start of its line.
LOCK_ENTRY = re.compile(r"^  (\S[^:]*):\s*$")


class RefreshError(RuntimeError):
    """A one-line reason the refresh stopped (this checkout untouched)."""


def _git(*args: str, cwd: Path = REPO, env: dict | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def snapshot_commit(repo: Path = REPO) -> str:
    """A commit (on no branch) of the checkout as it is now: HEAD's tree with every tracked change
    and every untracked, not ignored file; written through a scratch index, so the checkout's own
    index and branches are untouched."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(scratch) / "index")}
        _git("read-tree", "HEAD", cwd=repo, env=env)
        _git("add", "--all", cwd=repo, env=env)
        tree = _git("write-tree", cwd=repo, env=env)
    return _git("commit-tree", tree, "-p", "HEAD", "-m", "pipelines.refresh snapshot", cwd=repo)


def clone_at(repo: Path, commit: str, workdir: Path) -> None:
    """A clone of `repo` checked out at `commit` (a local clone copies every object, this one too)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", "--no-checkout", str(repo), str(workdir)], check=True)
    _git("checkout", "--quiet", "--detach", commit, cwd=workdir)


def stage_names(workdir: Path) -> list[str]:
    """The stages dvc.yaml defines (matrix stages expanded), as dvc.lock names them."""
    return subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=workdir, env=clone_env(workdir), check=True,
                          capture_output=True, text=True).stdout.split()


def without_stale_entries(lock_text: str, stages: set[str]) -> tuple[str, list[str]]:
    """dvc.lock's text less the entries of stages not in `stages` -> (text, names dropped). Every
    other line is kept byte for byte."""
    kept, dropped, keep = [], [], True
    for line in lock_text.splitlines(keepends=True):
        entry = LOCK_ENTRY.match(line)
        if entry:
            keep = entry.group(1) in stages
            if not keep:
                dropped.append(entry.group(1))
        elif not line.startswith("  "):
            keep = True   # a top-level key (schema:, stages:) ends the entry before it
        if keep:
            kept.append(line)
    return "".join(kept), dropped


def clone_env(workdir: Path) -> dict[str, str]:
    """The environment for DVC in a clone: MLflow runs in the clone's own SQLite store, this
    venv's tools on PATH, no PYTHONPATH leaking this checkout's modules in."""
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}", "PYTHONPATH": "",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def repro_and_gate(workdir: Path, update: bool) -> float:
    """`dvc repro --force` then the smoke gate in the clone; seconds the repro took."""
    start = time.monotonic()
    if subprocess.run(["dvc", "repro", "--force"], cwd=workdir, env=clone_env(workdir)).returncode != 0:
        raise RefreshError(f"dvc repro --force in {workdir} failed (its output is above); nothing copied")
    seconds = time.monotonic() - start
    gate = [sys.executable, "-m", "pipelines.check", *(["--update"] if update else [])]
    if subprocess.run(gate, cwd=workdir, env=clone_env(workdir)).returncode != 0:
        raise RefreshError(f"the smoke gate failed in {workdir} (above): numbers moved; if the change is "
                           "meant to move them, rerun with --update (make refresh UPDATE=1); nothing copied")
    return seconds


def copy_results(workdir: Path, repo: Path = REPO) -> list[str]:
    """RESULTS and the pruned dvc.lock from the clone into `repo`; the stale entries dropped."""
    lock, dropped = without_stale_entries((workdir / "dvc.lock").read_text(), set(stage_names(workdir)))
    for name in RESULTS:
        target = repo / name
        if target.is_dir():
            shutil.rmtree(target)
        if (workdir / name).is_dir():
            shutil.copytree(workdir / name, target)
        else:
            shutil.copyfile(workdir / name, target)
    (repo / "dvc.lock").write_text(lock)
    return dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/frgan-refresh"),
                        help="where the clone runs (replaced; default: /tmp/frgan-refresh)")
    parser.add_argument("--update", action="store_true",
                        help="accept numbers that moved (pipelines.check --update) instead of failing")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    try:
        clone_at(REPO, snapshot_commit(), workdir)
        seconds = repro_and_gate(workdir, args.update)
        dropped = copy_results(workdir)
    except RefreshError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"refresh: fresh repro {seconds / 60:.1f} min, gate passed"
          + (f"; dvc.lock: dropped {len(dropped)} entries of stages no longer in dvc.yaml" if dropped else ""))
    print("files to commit with the change:")
    print(_git("status", "--short", "--", "dvc.lock", *RESULTS) or "  (none changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
