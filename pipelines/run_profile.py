"""Run a larger profile's whole graph in a clone and keep its results under reports/<profile>/.

    python -m pipelines.run_profile cpu        # actors-synth, Tables 3 and 4 (MSE): ~1 h on 2 CPU cores
    python -m pipelines.run_profile cpu-faces  # the cpu profile on faces-synth: Tables 1 and 4 -> reports/cpu-faces/

This checkout's `dvc repro` is the smoke graph, and its dvc.lock and results are the smoke ones
(the regression gate compares them). A larger profile therefore runs in a clone of HEAD under
--workdir: params.yaml there gets `profile: <name>` and the graph PROFILE_GRAPHS names, `dvc
repro` runs every stage from scratch, and what it produced is copied back into
reports/<profile>/ (replaced as a whole, only once the run has succeeded):

  tables/        the report stage's tables (table3.md, table4.md, budget.md, claims.md, ...)
  figures/       the report's figures, the qualitative grids and the training-loss curves
  numbers.json   every number: each method's evaluate metrics and budget, the conditions
                 stage's pose-LSTM errors, each method's paired comparison with copy-input on
                 per-video MSE, the profile's knobs, the graph, the commit, the machine, the
                 wall time of the whole run

The checkout must have no uncommitted change to a tracked file: the results name a commit. The
graphs and the collection of the results: reporting/profile_run.py.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from reporting.profile_run import PROFILE_GRAPHS, RunError, collect_numbers, plot_losses, profile_params
from pipelines.refresh import clone_env
from reporting.gate import machine_fingerprint

REPO = Path(__file__).resolve().parents[1]
# The smoke results committed in the repository: removed from the clone before its run, so that
# nothing of the smoke graph can be read by the profile's stages or copied into its results.
COMMITTED_RESULTS = ("reports/metrics", "reports/plots", "reports/figures", "reports/tables", "reports/videos")


def require_clean_checkout(repo: Path) -> str:
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                             capture_output=True, text=True, check=True).stdout.strip()
    if changed:
        raise RunError(f"{repo}: uncommitted changes to tracked files ({changed.splitlines()[0].strip()} ...): "
                       "commit them first, the results name a commit")
    return commit_of(repo)


def clone(repo: Path, workdir: Path) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(repo), str(workdir)], check=True)
    for folder in COMMITTED_RESULTS:
        shutil.rmtree(workdir / folder, ignore_errors=True)


def commit_of(folder: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                          check=True).stdout.strip()


def run_graph(workdir: Path) -> float:
    """`dvc repro` in the clone, its MLflow runs in the clone's own SQLite store; seconds taken."""
    start = time.monotonic()
    done = subprocess.run(["dvc", "repro"], cwd=workdir, env=clone_env(workdir))
    if done.returncode != 0:
        raise RunError(f"dvc repro in {workdir} exited with {done.returncode} (its output is above)")
    return time.monotonic() - start


def keep_results(workdir: Path, profile: str, numbers: dict) -> Path:
    """reports/<profile>/ replaced as a whole: built beside it, then renamed."""
    target = REPO / "reports" / profile
    staging = target.with_name(f".{profile}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    try:
        (staging / "figures").mkdir(parents=True)
        shutil.copytree(workdir / "reports" / "tables", staging / "tables")
        for png in sorted((workdir / "reports" / "figures").rglob("*.png")):
            shutil.copy2(png, staging / "figures" / png.name)
        plot_losses(workdir, staging / "figures" / "loss-curves.png")
        (staging / "numbers.json").write_text(json.dumps(numbers, indent=2, sort_keys=True) + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)   # nothing half-built left; reports/<profile>/ untouched
        raise
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", choices=sorted(PROFILE_GRAPHS))
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the clone runs (default: /tmp/frgan-repro-<profile>; replaced)")
    parser.add_argument("--collect-only", action="store_true",
                        help="skip clone and repro: collect what --workdir already holds")
    args = parser.parse_args(argv)
    workdir = (args.workdir or Path(f"/tmp/frgan-repro-{args.profile}")).resolve()
    try:
        if args.collect_only:   # the clone's commit and params: what the run used
            commit = commit_of(workdir)
            raw = profile_params(subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=workdir, check=True,
                                                capture_output=True, text=True).stdout, args.profile)
            seconds = float(json.loads((workdir / "wall_seconds.json").read_text())["seconds"])
        else:
            commit = require_clean_checkout(REPO)
            raw = profile_params((REPO / "params.yaml").read_text(), args.profile)
            clone(REPO, workdir)
            (workdir / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
            seconds = run_graph(workdir)
            (workdir / "wall_seconds.json").write_text(json.dumps({"seconds": seconds}) + "\n")
        numbers = collect_numbers(workdir, args.profile, raw, commit, seconds, machine_fingerprint())
        target = keep_results(workdir, args.profile, numbers)
    except (RunError, FileNotFoundError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.profile}: {seconds / 60:.1f} min; results in {target.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
