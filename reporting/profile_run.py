"""What a larger profile runs and what its results are: the graph each profile runs on top of
params.yaml, and the numbers and loss curves collected from the clone that ran it.
`python -m pipelines.run_profile` runs the clone (pipelines/run_profile.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

# The graph each run of a larger profile sets (dotted params.yaml keys; "profile": the profile in
# `profiles` whose knobs it runs, the run's name by default). cpu: the rows that show learning on
# 2 CPU cores, Table 3 and Table 4's MSE column on actors-synth (FRGAN, G_M only, G_M without
# dense, Villegas et al., Mathieu et al., VGAN and the copy-input floor); MCNet, MoCoGAN and the
# eq. 1 variant do not fit its 90-minute budget with them. cpu-faces: the same profile on
# faces-synth (its data as the smoke profile's: 9 subjects, 18 test items), in a further run:
# Table 1's rows (FRGAN, MCNet, Villegas et al., MoCoGAN, the Reference row) and Table 4's
# (G_M only, G_M without dense), each by ACD-I/ACD-C and by MSE against the true retargeted
# video, next to copy-input.
PROFILE_GRAPHS: dict[str, dict[str, object]] = {
    "cpu": {
        "prepare.datasets": ["actors-synth"],
        "train.methods": ["frgan", "frgan-gm-only", "frgan-no-dense", "villegas17", "mathieu", "vgan",
                          "copy-input"],
        "report.faces_dataset": None,
        "report.actors_dataset": "actors-synth",
        "report.reference_datasets": [],
    },
    "cpu-faces": {
        "profile": "cpu",
        "prepare.datasets": ["faces-synth"],
        "train.methods": ["frgan", "frgan-gm-only", "frgan-no-dense", "villegas17", "mcnet", "mocogan",
                          "copy-input"],
        "report.faces_dataset": "faces-synth",
        "report.actors_dataset": None,
        "report.reference_datasets": ["faces-synth"],
    },
}
FLOOR = "copy-input"
# The generator's terms each method logs (frgan/train/frgan.py, baselines/*.py), as the last part
# of the MLflow key: reconstruction, mask, adversarial and total.
LOSS_TERMS = ("rec", "mask", "adv", "loss", "mse", "gdl", "gan", "g_loss", "g_adv", "mask_l1", "first_frame_l1")


class RunError(RuntimeError):
    """A one-line reason the profile run cannot start or did not finish."""


def set_key(tree: dict, dotted: str, value: object) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree[key]
    tree[leaf] = value


def profile_of(run: str) -> str:
    """The profile in `profiles` whose knobs the run `run` of PROFILE_GRAPHS uses."""
    return str(PROFILE_GRAPHS[run].get("profile", run))


def profile_params(params_text: str, run: str) -> dict:
    """params.yaml's content with the run's profile active and its graph set."""
    raw = yaml.safe_load(params_text)
    if run not in PROFILE_GRAPHS or profile_of(run) not in raw.get("profiles", {}):
        raise RunError(f"params.yaml: profile {run!r}: expected one of {sorted(PROFILE_GRAPHS)} "
                       "(a graph in PROFILE_GRAPHS whose profile is in `profiles`)")
    raw["profile"] = profile_of(run)
    for key, value in PROFILE_GRAPHS[run].items():
        if key != "profile":
            set_key(raw, key, value)
    return raw


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


def collect_numbers(workdir: Path, run: str, raw: dict, commit: str, seconds: float,
                    machine: dict[str, str]) -> dict:
    """numbers.json: what the run in `workdir` produced, with the profile, commit and `machine`
    (faces: the Reference row's scores of the real videos too)."""
    report = raw["report"]
    dataset = report["actors_dataset"] or report["faces_dataset"]
    methods = raw["train"]["methods"]
    metrics = workdir / "reports" / "metrics"
    profile = profile_of(run)
    numbers = {
        "profile": profile, "run": run, "commit": commit, "wall_seconds": round(seconds, 1),
        "command": f"python -m pipelines.run_profile {run}",
        "machine": machine, "graph": PROFILE_GRAPHS[run],
        "profile_knobs": raw["profiles"][profile], "train_section": raw["train"],
        "conditions": read_json(metrics / f"conditions-{dataset}.json"),
        "evaluate": {m: read_json(metrics / f"evaluate-{dataset}-{m}-seed0.json") for m in methods},
        "budget": {m: read_json(metrics / f"train-{dataset}-{m}-seed0.json") for m in methods},
        "versus_copy_input": versus_floor(workdir, dataset, methods),
    }
    if dataset in (report.get("reference_datasets") or []):
        numbers["reference"] = read_json(metrics / f"evaluate-{dataset}-reference.json")
    return numbers


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
