"""Run a larger profile's whole graph in a clone and keep its results under reports/<profile>/.

    python -m pipelines.run_profile cpu      # actors-synth, Tables 3 and 4 (MSE): ~1 h on 2 CPU cores

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

The checkout must have no uncommitted change to a tracked file: the results name a commit.
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

from pipelines.refresh import clone_env

REPO = Path(__file__).resolve().parents[1]

# The graph each profile runs (dotted params.yaml keys). cpu: the rows issue 18 asks to show
# learning on 2 CPU cores, Table 3 and Table 4's MSE column on actors-synth (FRGAN, G_M only,
# G_M without dense, Villegas et al., Mathieu et al., VGAN and the copy-input floor); MCNet,
# MoCoGAN, the eq. 1 variant and the faces side do not fit the 90-minute budget with them.
PROFILE_GRAPHS: dict[str, dict[str, object]] = {
    "cpu": {
        "prepare.datasets": ["actors-synth"],
        "train.methods": ["frgan", "frgan-gm-only", "frgan-no-dense", "villegas17", "mathieu", "vgan",
                          "copy-input"],
        "report.faces_dataset": None,
        "report.actors_dataset": "actors-synth",
        "report.reference_datasets": [],
    },
}
FLOOR = "copy-input"


class RunError(RuntimeError):
    """A one-line reason the profile run cannot start or did not finish."""


def set_key(tree: dict, dotted: str, value: object) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree[key]
    tree[leaf] = value


def profile_params(params_text: str, profile: str) -> dict:
    """params.yaml's content with `profile` active and its graph set."""
    raw = yaml.safe_load(params_text)
    if profile not in raw.get("profiles", {}) or profile not in PROFILE_GRAPHS:
        raise RunError(f"params.yaml: profile {profile!r}: expected one of {sorted(PROFILE_GRAPHS)} "
                       "(a profile in `profiles` with a graph in PROFILE_GRAPHS)")
    raw["profile"] = profile
    for key, value in PROFILE_GRAPHS[profile].items():
        set_key(raw, key, value)
    return raw


def require_clean_checkout(repo: Path) -> str:
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                             capture_output=True, text=True, check=True).stdout.strip()
    if changed:
        raise RunError(f"{repo}: uncommitted changes to tracked files ({changed.splitlines()[0].strip()} ...): "
                       "commit them first, the results name a commit")
    return commit_of(repo)


# The smoke results committed in the repository: removed from the clone before its run, so that
# nothing of the smoke graph can be read by the profile's stages or copied into its results.
COMMITTED_RESULTS = ("reports/metrics", "reports/plots", "reports/figures", "reports/tables", "reports/videos")


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


# ---------------------------------------------------------------------------------------------
# What the run produced.

def per_video_mse(workdir: Path, dataset: str, method: str, seed: int):
    """The method's MSE per test video (index: video), as evaluate wrote it (reports/videos/)."""
    import pandas as pd
    from frgan.paths import VIDEOS_DIR, result_name
    scores = pd.read_csv(workdir / VIDEOS_DIR / f"{result_name(dataset, method, seed)}.csv")
    return scores.set_index("video").sort_index()["mse"]


def versus_floor(workdir: Path, dataset: str, methods: list[str], seed: int = 0) -> dict[str, dict]:
    """Each method's per-video MSE against copy-input's on the same videos: the paired
    difference (method - copy-input) with its bootstrap interval and Wilcoxon p, the ratio of
    means, and whether the two methods' own 95% intervals overlap."""
    from metrics.stats import bootstrap_mean, paired_difference
    floor = per_video_mse(workdir, dataset, FLOOR, seed)
    floor_ci = bootstrap_mean(floor.values)
    out = {}
    for method in methods:
        if method == FLOOR:
            continue
        ours = per_video_mse(workdir, dataset, method, seed).reindex(floor.index)
        ci = bootstrap_mean(ours.values)
        paired = paired_difference(ours.values, floor.values)
        out[method] = {"mse": ci.as_dict(), "copy_input_mse": floor_ci.as_dict(),
                       "ratio": float(ours.mean() / floor.mean()),
                       "paired_difference": paired.as_dict(),
                       "beats_copy_input": bool(paired.mean_difference < 0 and paired.p_value < 0.01),
                       "intervals_overlap": bool(ci.high >= floor_ci.low and floor_ci.high >= ci.low)}
    return out


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def collect_numbers(workdir: Path, profile: str, raw: dict, commit: str, seconds: float) -> dict:
    from pipelines.check import machine_fingerprint
    dataset = raw["report"]["actors_dataset"]
    methods = raw["train"]["methods"]
    metrics = workdir / "reports" / "metrics"
    return {
        "profile": profile, "commit": commit, "wall_seconds": round(seconds, 1),
        "command": f"python -m pipelines.run_profile {profile}",
        "machine": machine_fingerprint(), "graph": PROFILE_GRAPHS[profile],
        "profile_knobs": raw["profiles"][profile], "train_section": raw["train"],
        "conditions": read_json(metrics / f"conditions-{dataset}.json"),
        "evaluate": {m: read_json(metrics / f"evaluate-{dataset}-{m}-seed0.json") for m in methods},
        "budget": {m: read_json(metrics / f"train-{dataset}-{m}-seed0.json") for m in methods},
        "versus_copy_input": versus_floor(workdir, dataset, methods),
    }


# The generator's terms each method logs (frgan/train/frgan.py, baselines/*.py), as the last part
# of the MLflow key: reconstruction, mask, adversarial and total.
LOSS_TERMS = ("rec", "mask", "adv", "loss", "mse", "gdl", "gan", "g_loss", "g_adv", "mask_l1", "first_frame_l1")


def plot_losses(workdir: Path, path: Path) -> None:
    """Each trained method's generator terms over steps, from the clone's MLflow store."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from frgan import tracking
    client, experiment = tracking.client_and_experiment(tracking.EXPERIMENT, f"sqlite:///{workdir / 'mlflow.db'}")
    if experiment is None:
        return
    runs = client.search_runs([experiment.experiment_id], "tags.stage LIKE 'train@%' and attributes.status = 'FINISHED'")
    curves = {}
    for run in runs:
        method = run.data.tags.get("method")
        keys = [k for k in run.data.metrics if k.split("/")[-1] in LOSS_TERMS
                and not k.startswith("d_")]
        if method and keys:
            curves[method] = {k: client.get_metric_history(run.info.run_id, k) for k in sorted(keys)}
    if not curves:
        return
    fig, axes = plt.subplots(len(curves), 1, figsize=(8, 2.4 * len(curves)), squeeze=False)
    for ax, (method, series) in zip(axes[:, 0], sorted(curves.items())):
        for key, history in series.items():
            ax.plot([h.step for h in history], [h.value for h in history], label=key)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_title(f"{method}: generator loss terms (unweighted)")
        ax.legend(fontsize=7, ncol=4)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
        target = keep_results(workdir, args.profile, collect_numbers(workdir, args.profile, raw, commit, seconds))
    except (RunError, FileNotFoundError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.profile}: {seconds / 60:.1f} min; results in {target.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
