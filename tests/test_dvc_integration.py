"""A tiny `dvc repro` in a temporary copy of the repository, with two training seeds: the
declared outs appear per seed, the report pools the seeds, a second `dvc repro` with nothing
changed reruns nothing but the raw-tree scans, and adding a seed runs only the new seed's stages
(and the report)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.conftest import REPO

pytestmark = pytest.mark.slow

# Far smaller than the smoke profile: this test checks the graph, not the numbers.
TINY = {"faces_size": 24, "actors_size": 24, "faces_subjects": 3, "faces_frames": 6,
        "actors_per_action": 3, "actors_frames": 6, "real_max_videos": 3,
        "pose_observe": 2, "pose_predict": 3, "pose_lstm_hidden": 8, "pose_lstm_steps": 5,
        "width": 4, "batch": 2, "gm_steps": 3, "gr_steps": 2, "gr_clip_faces": 4, "gr_clip_actors": 4}
METHOD = "frgan"   # the full model exercises both training stages
SEEDS = [0, 1]


# Not copied into a test project: the committed dvc.lock records the smoke graph, which the test's
# tiny graph replaces, and DVC keeps every entry of it and rewrites all of them after each stage
# (a second or more per stage); the project starts with no lock, as a fresh `dvc repro` would.
NOT_COPIED = frozenset({"dvc.lock"})


def _project_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [f for f in out.split("\0") if f and f not in NOT_COPIED and (REPO / f).is_file()]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def copy_project(root: Path) -> Path:
    """The repository's tracked files (and the untracked ones git does not ignore) copied into `root`."""
    for rel in _project_files():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = copy_project(tmp_path_factory.mktemp("repo"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["profiles"]["smoke"].update(TINY)
    params["train"]["methods"] = [METHOD]
    params["train"]["seeds"] = SEEDS
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "copy")
    return root


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _ran(result: subprocess.CompletedProcess) -> set[str]:
    """The stages a `dvc repro` ran."""
    return {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}


def test_repro_builds_the_declared_outs_then_reruns_nothing(project):
    first = _dvc(project, "repro")
    for dataset in ("faces-synth", "actors-synth"):
        assert f"Running stage 'prepare@{dataset}'" in first.stdout
        store = project / "data" / "prepared" / dataset
        assert (store / "frames.u8").stat().st_size > 0
        meta = json.loads((store / "meta.json").read_text())
        counts = json.loads((project / "reports" / "metrics" / f"prepare-{dataset}.json").read_text())
        assert counts["fingerprint"] == meta["fingerprint"] and counts["clips"] == meta["n_clips"]
        assert all(counts[f"clips_{s}"] > 0 for s in ("gm", "gr", "test"))
        assert (project / "reports" / "figures" / f"prepare-{dataset}.png").stat().st_size > 0
        assert f"Running stage 'conditions@{dataset}'" in first.stdout
        for seed in SEEDS:
            for stage in ("train", "generate", "evaluate"):
                assert f"Running stage '{stage}@{dataset}-{METHOD}-{seed}'" in first.stdout
            assert (project / "models" / dataset / METHOD / f"seed-{seed}" / "gm.pt").is_file()
            assert (project / "models" / dataset / METHOD / f"seed-{seed}" / "gr.pt").is_file()
            name = f"evaluate-{dataset}-{METHOD}-seed{seed}"
            scores = json.loads((project / "reports" / "metrics" / f"{name}.json").read_text())
            assert scores["videos"] > 0 and scores["seed"] == seed
            for metric in (("acd_i", "acd_c") if dataset == "faces-synth" else ("mse", "psnr", "mse_gt")):
                assert scores[metric]["low"] <= scores[metric]["mean"] <= scores[metric]["high"], metric
            videos = (project / "reports" / "videos" / f"{name}.csv").read_text().splitlines()
            assert len(videos) == scores["videos"] + 1
            # generate's GIFs for the eye: the first test items, one GIF frame per video frame
            generated = project / "data/generated" / dataset / METHOD / f"seed-{seed}"
            meta = json.loads((generated / "meta.json").read_text())
            n, t, h, w, _ = meta["shape"]
            gifs = sorted((generated / "samples").glob("item-*.gif"))
            assert len(gifs) == min(4, n)
            scale = max(1, 96 // h)
            with Image.open(gifs[0]) as gif:   # the video beside its real one (Pillow merges repeated frames)
                assert gif.size == (w * scale * (2 if meta["has_truth"] else 1), h * scale)
                assert 1 <= gif.n_frames <= t and gif.info["loop"] == 0
        # the two seeds trained differently: their videos differ
        a, b = ((project / "data/generated" / dataset / METHOD / f"seed-{s}" / "videos.u8").read_bytes() for s in SEEDS)
        assert a != b
    assert (project / "dvc.lock").is_file()

    # Nothing changed: only the raw-tree scans run (rawscan@<dataset>, `always_changed`, DVC's
    # idiom for inputs outside the project); their manifests keep their bytes, so nothing below
    # them reruns, and `dvc status` names no stage but those scans ("always changed").
    scans = {f"rawscan@{dataset}" for dataset in ("faces-synth", "actors-synth")}
    second = _dvc(project, "repro")
    assert _ran(second) == scans, second.stdout
    status = _dvc(project, "status")
    reported = {line.rstrip(":") for line in status.stdout.splitlines() if line.endswith(":") and line[0] != "\t"}
    assert reported == scans and status.stdout.count("always changed") == len(scans), status.stdout


def test_report_pools_the_seeds(project):
    """Table 3's FRGAN MSE is the mean of the two seeds' means, and its interval comes from the
    two-level bootstrap; claims carry paired tests."""
    import pandas as pd
    from metrics.stats import bootstrap_mean_over_seeds
    per_seed = [pd.read_csv(project / "reports/videos" / f"evaluate-actors-synth-{METHOD}-seed{s}.csv")["mse"]
                for s in SEEDS]
    means = [json.loads((project / "reports/metrics" / f"evaluate-actors-synth-{METHOD}-seed{s}.json")
                        .read_text())["mse"]["mean"] for s in SEEDS]
    expected = bootstrap_mean_over_seeds(per_seed, seed=0)
    assert abs(expected.mean - sum(means) / 2) < 1e-5
    table3 = pd.read_csv(project / "reports/tables/table3.csv")
    frgan = table3[table3.method == "FRGAN"].iloc[0]
    # (other rows read "not run", so the columns are text)
    assert float(frgan["MSE [actors-synth]"]) == pytest.approx(round(expected.mean, 6), abs=1e-6)
    assert float(frgan["MSE [actors-synth] low"]) == pytest.approx(round(expected.low, 6), abs=1e-6)
    assert float(frgan["MSE [actors-synth] high"]) == pytest.approx(round(expected.high, 6), abs=1e-6)
    assert "Training seeds 0, 1 (`train.seeds`) pooled" in (project / "reports/tables/table3.md").read_text()


def test_adding_a_seed_runs_only_that_seed(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["seeds"] = SEEDS + [2]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        third = _dvc(project, "repro", "evaluate@actors-synth-frgan-2")
        ran = _ran(third) - {"rawscan@actors-synth"}   # the scan runs every time (see above)
        assert ran == {f"{kind}@actors-synth-{METHOD}-2" for kind in ("train", "generate", "evaluate")}, ran
    finally:
        params["train"]["seeds"] = SEEDS
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_mlflow_run_names_the_dataset_fingerprint(project):
    import mlflow
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    exp = client.get_experiment_by_name("FRGAN-Repro")
    runs = client.search_runs([exp.experiment_id])
    by_stage = {r.data.tags["stage"]: r for r in runs}
    meta = json.loads((project / "data/prepared/faces-synth/meta.json").read_text())
    assert by_stage["prepare@faces-synth"].data.tags["dataset_fingerprint"] == meta["fingerprint"]
    assert by_stage["prepare@faces-synth"].data.tags["profile"] == "smoke"
