"""pipelines.run_profile: the graph a profile runs, its comparison with copy-input, and its refusals."""
from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from reporting import profile_run
from frgan.config import parse_params
from pipelines import run_profile


def test_the_cpu_graph_is_valid_params():
    raw = profile_run.profile_params((REPO / "params.yaml").read_text(), "cpu")
    params = parse_params(raw)
    assert params.profile == "cpu" and params.prepare.datasets == ["actors-synth"]
    assert "copy-input" in params.train.methods and params.report.faces_dataset is None
    # the cpu profile's own training knobs are in force
    assert params.train.loss_weights.adv == raw["profiles"]["cpu"]["train"]["loss_weights"]["adv"]


def test_the_cpu_faces_graph_runs_the_cpu_profile_on_faces_with_the_reference_row():
    raw = profile_run.profile_params((REPO / "params.yaml").read_text(), "cpu-faces")
    params = parse_params(raw)
    assert params.profile == "cpu" and params.prepare.datasets == ["faces-synth"]
    assert params.report.faces_dataset == "faces-synth" and params.report.actors_dataset is None
    assert params.report.reference_datasets == ["faces-synth"] and "copy-input" in params.train.methods
    assert {"frgan", "mcnet", "villegas17", "mocogan"} <= set(params.train.methods)   # Table 1's rows
    assert params.size == parse_params(profile_run.profile_params((REPO / "params.yaml").read_text(), "cpu")).size


def test_an_unknown_profile_is_refused():
    with pytest.raises(profile_run.RunError, match="'huge': expected one of"):
        profile_run.profile_params((REPO / "params.yaml").read_text(), "huge")


def _videos(folder, method, per_video_mse):
    """evaluate's per-video scores (reports/videos/), rows in a shuffled video order."""
    rows = [{"video": v, "class": "walk", "mse": m, "psnr": 10.0} for v, m in enumerate(per_video_mse)]
    folder.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(len(method)).permutation(len(rows))
    pd.DataFrame([rows[i] for i in order]).to_csv(folder / f"evaluate-actors-synth-{method}-seed0.csv", index=False)


def test_versus_floor_pairs_videos_and_says_who_beats_copy_input(tmp_path):
    rng = np.random.default_rng(0)
    floor = rng.uniform(0.01, 0.02, 30)
    videos = tmp_path / "reports" / "videos"
    _videos(videos, "copy-input", floor)
    _videos(videos, "better", floor * 0.8)                    # 20% lower on every video
    _videos(videos, "same", floor + rng.normal(0, 1e-4, 30))  # the floor, give or take noise
    out = profile_run.versus_floor(tmp_path, "actors-synth", ["better", "same", "copy-input"])
    assert set(out) == {"better", "same"}
    assert out["better"]["beats_copy_input"] and out["better"]["ratio"] == pytest.approx(0.8)
    assert out["better"]["paired_difference"]["mean_difference"] == pytest.approx(-0.2 * floor.mean())
    assert not out["same"]["beats_copy_input"] and out["same"]["intervals_overlap"]


def test_a_dirty_checkout_is_refused(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f.txt").write_text("a\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(git + ["add", "f.txt"], cwd=tmp_path, check=True)
    subprocess.run(git + ["commit", "-qm", "x"], cwd=tmp_path, check=True)
    assert len(run_profile.require_clean_checkout(tmp_path)) == 40
    (tmp_path / "f.txt").write_text("b\n")
    with pytest.raises(profile_run.RunError, match="uncommitted changes"):
        run_profile.require_clean_checkout(tmp_path)


def test_a_failed_collection_leaves_no_staging_and_keeps_earlier_results(tmp_path, monkeypatch):
    monkeypatch.setattr(run_profile, "REPO", tmp_path)
    earlier = tmp_path / "reports" / "cpu"
    earlier.mkdir(parents=True)
    (earlier / "numbers.json").write_text("{}\n")
    workdir = tmp_path / "clone"
    (workdir / "reports" / "tables").mkdir(parents=True)
    (workdir / "reports" / "figures").mkdir(parents=True)

    def broken_plot(workdir, path):
        raise RuntimeError("no MLflow store")
    monkeypatch.setattr(run_profile, "plot_losses", broken_plot)
    with pytest.raises(RuntimeError):
        run_profile.keep_results(workdir, "cpu", {"x": 1})
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["cpu"]
    assert (earlier / "numbers.json").read_text() == "{}\n"
