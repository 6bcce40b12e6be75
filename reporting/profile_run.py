"""What a larger profile runs and what its results are: the graph each profile runs on top of
params.yaml, and the numbers and loss curves collected from the clone that ran it.
`python -m pipelines.run_profile` runs the clone (pipelines/run_profile.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

# The graph each profile runs (dotted params.yaml keys). cpu: the rows that show learning on 2 CPU
# cores, Table 3 and Table 4's MSE column on actors-synth (FRGAN, G_M only, G_M without dense,
# Villegas et al., Mathieu et al., VGAN and the copy-input floor); MCNet, MoCoGAN, the eq. 1
# variant and the faces side do not fit the 90-minute budget with them.
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


def collect_numbers(workdir: Path, profile: str, raw: dict, commit: str, seconds: float,
                    machine: dict[str, str]) -> dict:
    """numbers.json: what the run in `workdir` produced, with the profile, commit and `machine`."""
    dataset = raw["report"]["actors_dataset"]
    methods = raw["train"]["methods"]
    metrics = workdir / "reports" / "metrics"
    return {
        "profile": profile, "commit": commit, "wall_seconds": round(seconds, 1),
        "command": f"python -m pipelines.run_profile {profile}",
        "machine": machine, "graph": PROFILE_GRAPHS[profile],
        "profile_knobs": raw["profiles"][profile], "train_section": raw["train"],
        "conditions": read_json(metrics / f"conditions-{dataset}.json"),
        "evaluate": {m: read_json(metrics / f"evaluate-{dataset}-{m}-seed0.json") for m in methods},
        "budget": {m: read_json(metrics / f"train-{dataset}-{m}-seed0.json") for m in methods},
        "versus_copy_input": versus_floor(workdir, dataset, methods),
    }


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
