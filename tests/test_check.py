"""The regression gate `python -m pipelines.check`: the smoke baseline (what moved, gone and new
numbers, the readable table, --update and its diff), the published gate on real datasets, and
the gate on the committed results."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from frgan.config import load_params
from frgan.data.errors import DatasetError
from frgan.paths import METRICS_DIR
from pipelines import check
from reporting import gate
from reporting.results import load_evaluations
from tests.conftest import REPO, run_module
from tests.test_report import (PUBLISHED, fake_metrics, write_train_json, write_evaluation,  # noqa: F401 (fixture)
                               write_seed_run)


def smoke_params():
    return load_params(REPO / "params.yaml").model_copy(update={"profile": "smoke"})


def with_report(params, **changes):
    return params.model_copy(update={"report": params.report.model_copy(update=changes)})


def test_comparison_fails_beyond_tolerance_and_when_a_number_is_gone():
    baseline = {"actors-synth/frgan/mse": 0.024, "actors-synth/frgan/psnr": 16.35}
    rows = gate.compare_to_baseline(baseline, {"actors-synth/frgan/mse": 0.0250, "actors-synth/frgan/psnr": 16.0},
                                    rel=0.05, abs_=1e-4)
    assert all(r.passed for r in rows)
    rows = gate.compare_to_baseline(baseline, {"actors-synth/frgan/mse": 0.030, "actors-synth/frgan/psnr": 16.35},
                                    rel=0.05, abs_=1e-4)
    [moved] = [r for r in rows if not r.passed]
    assert (moved.name, moved.expected, moved.current, moved.change) == ("actors-synth/frgan/mse", 0.024, 0.03, "+25.0%")
    assert moved.allowed == pytest.approx(1e-4 + 0.05 * 0.024)
    rows = gate.compare_to_baseline(baseline, {"actors-synth/frgan/psnr": 16.35, "x/y/z": 1.0}, rel=0.05, abs_=1e-4)
    by_name = {r.name: r for r in rows}
    assert not by_name["actors-synth/frgan/mse"].passed and by_name["actors-synth/frgan/mse"].change == "gone"
    assert by_name["x/y/z"].passed and by_name["x/y/z"].change == "new"


def test_table_lists_each_number_with_its_result():
    rows = gate.compare_to_baseline({"a/b/mse": 0.024}, {"a/b/mse": 0.03}, rel=0.05, abs_=1e-4)
    lines = check.comparison_table(rows, "baseline").splitlines()
    assert lines[0].split() == ["number", "baseline", "current", "change", "allowed", "|diff|", "result"]
    assert lines[2].split() == ["a/b/mse", "0.024", "0.03", "+25.0%", "0.0013", "FAIL"]


def test_smoke_gate_reads_the_baseline_and_the_metrics(tmp_path, fake_metrics):
    params = smoke_params()
    baseline = tmp_path / "smoke.json"
    gate.write_baseline(gate.headline_numbers(load_evaluations(fake_metrics)), baseline)
    assert all(r.passed for r in gate.smoke_gate(params, fake_metrics, baseline))
    write_evaluation(fake_metrics, "faces-synth", "frgan", acd_i=(0.2, 0.19, 0.21), acd_c=(0.09, 0.08, 0.10))
    [failed] = [r for r in gate.smoke_gate(params, fake_metrics, baseline) if not r.passed]
    assert (failed.name, failed.expected, failed.current) == ("faces-synth/frgan/acd_i", 0.123, 0.2)
    assert gate.smoke_gate(params.model_copy(update={"profile": "paper"}), fake_metrics, baseline) is None


def test_published_gate_applies_to_real_datasets_only(tmp_path, fake_metrics, monkeypatch):
    monkeypatch.chdir(tmp_path)   # load_published reads reports/published.yaml
    (tmp_path / "reports").mkdir()
    shutil.copy(PUBLISHED, tmp_path / "reports" / "published.yaml")
    params = smoke_params()
    assert gate.published_gate(params, fake_metrics) is None   # synthetic: never against the paper
    # MUG: FRGAN's published ACD-I is 0.184 and ACD-C 0.107 (Table 1)
    write_evaluation(fake_metrics, "mug", "frgan", acd_i=(0.19, 0.185, 0.195), acd_c=(0.2, 0.19, 0.21))
    rows = {r.name: r for r in gate.published_gate(with_report(params, faces_dataset="mug"), fake_metrics)}
    assert rows["table 1 / FRGAN / ACD-I"].passed                  # within 10% of 0.184
    assert not rows["table 1 / FRGAN / ACD-C"].passed              # 0.2 vs 0.107
    assert not rows["table 1 / MCNet / ACD-I"].passed and rows["table 1 / MCNet / ACD-I"].current is None
    assert not any(name.startswith("table 3") for name in rows)    # actors are still synthetic
    wide = {r.name: r for r in gate.published_gate(
        with_report(params, faces_dataset="mug", published_rel_tolerance=1.0), fake_metrics)}
    assert wide["table 1 / FRGAN / ACD-C"].passed


def test_gates_take_the_floor_and_skip_train_budgets(tmp_path, fake_metrics, monkeypatch):
    """copy-input's numbers are gated like any method's (its ACD of exactly 0 too); the train
    stages' budgets (train-*.json beside the evaluate results) are no evaluate results."""
    params = smoke_params()
    write_evaluation(fake_metrics, "faces-synth", "copy-input", acd_i=(0.0, 0.0, 0.0), acd_c=(0.0, 0.0, 0.0),
                     mse=(0.0007, 0.0006, 0.0008))
    write_train_json(fake_metrics, "faces-synth", "copy-input", clips=0, generator_steps=0, samples_seen=0, parameters=0)
    numbers = gate.headline_numbers(load_evaluations(fake_metrics))
    assert numbers["faces-synth/copy-input/acd_i"] == 0.0 and numbers["faces-synth/copy-input/mse"] == 0.0007
    assert not [n for n in numbers if "train" in n or "clips" in n]
    baseline = tmp_path / "smoke.json"
    gate.write_baseline(numbers, baseline)
    assert all(r.passed for r in gate.smoke_gate(params, fake_metrics, baseline))
    write_evaluation(fake_metrics, "faces-synth", "copy-input", acd_i=(0.00005, 0.0, 0.0001), acd_c=(0.001, 0.0, 0.002),
                     mse=(0.0007, 0.0006, 0.0008))
    moved = {r.name: r for r in gate.smoke_gate(params, fake_metrics, baseline) if not r.passed}
    assert set(moved) == {"faces-synth/copy-input/acd_c"} and moved["faces-synth/copy-input/acd_c"].change == "+0.001"
    # the published gate has no published number for the floor: it never compares it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    shutil.copy(PUBLISHED, tmp_path / "reports" / "published.yaml")
    write_evaluation(fake_metrics, "mug", "copy-input", acd_i=(0.0, 0.0, 0.0), acd_c=(0.0, 0.0, 0.0))
    rows = gate.published_gate(with_report(params, faces_dataset="mug"), fake_metrics)
    assert rows and not [r for r in rows if "Copy the input frame" in r.name or "true video" in r.name]


def _stage_dir(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "reports" / "expected").mkdir(parents=True)
    shutil.copy(PUBLISHED, tmp_path / "reports" / "published.yaml")
    return tmp_path / "reports" / "metrics"


def test_check_exits_1_with_a_table_of_what_moved(tmp_path):
    metrics = _stage_dir(tmp_path)
    write_evaluation(metrics, "actors-synth", "frgan", mse=(0.03, 0.02, 0.04), psnr=(16.0, 15.0, 17.0))
    gate.write_baseline({"actors-synth/frgan/mse": 0.024, "actors-synth/frgan/psnr": 16.0},
                        tmp_path / gate.BASELINE)
    result = run_module("pipelines.check", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "smoke gate (evaluate results vs reports/expected/smoke.json): 1 of 2 numbers pass" in result.stdout
    assert "actors-synth/frgan/mse" in result.stdout and "FAIL" in result.stdout
    assert "actors-synth/frgan/psnr" not in result.stdout       # passing numbers are not listed
    assert result.stderr.strip().splitlines()[-1].startswith("error: 1 number(s) failed the gate")


def test_update_rewrites_the_baseline_and_prints_the_diff(tmp_path):
    metrics = _stage_dir(tmp_path)
    write_evaluation(metrics, "actors-synth", "frgan", mse=(0.03, 0.02, 0.04), psnr=(16.0, 15.0, 17.0))
    gate.write_baseline({"actors-synth/frgan/mse": 0.024, "actors-synth/frgan/psnr": 16.0,
                         "actors-synth/vgan/mse": 0.05}, tmp_path / gate.BASELINE)
    result = run_module("pipelines.check", "--update", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 number(s) changed" in result.stdout
    assert "actors-synth/frgan/mse" in result.stdout and "actors-synth/vgan/mse" in result.stdout
    assert gate.read_baseline(tmp_path / gate.BASELINE) == {
        "actors-synth/frgan/mse": 0.03, "actors-synth/frgan/psnr": 16.0}
    assert run_module("pipelines.check", cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / gate.MACHINE).read_text()) == gate.machine_fingerprint()


def test_the_gate_checks_the_seeds_pooled(tmp_path):
    """Two training seeds of a method are one number: the mean of the seed means."""
    metrics = _stage_dir(tmp_path)
    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    raw["train"]["seeds"] = [0, 1]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    videos = tmp_path / "reports" / "videos"
    write_seed_run(metrics, videos, "actors-synth", "frgan", 0, np.array([0.01] * 4))
    write_seed_run(metrics, videos, "actors-synth", "frgan", 1, np.array([0.03] * 4))
    gate.write_baseline({"actors-synth/frgan/mse": 0.02}, tmp_path / gate.BASELINE)
    result = run_module("pipelines.check", "--verbose", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 of 1 numbers pass" in result.stdout and "actors-synth/frgan/mse" in result.stdout
    gate.write_baseline({"actors-synth/frgan/mse": 0.01}, tmp_path / gate.BASELINE)   # seed 0's alone
    result = run_module("pipelines.check", cwd=tmp_path)
    assert result.returncode == 1 and "0 of 1 numbers pass" in result.stdout, result.stdout + result.stderr


def test_update_refuses_another_profile(tmp_path):
    metrics = _stage_dir(tmp_path)
    write_evaluation(metrics, "actors-synth", "frgan", mse=(0.03, 0.02, 0.04))
    params = smoke_params().model_copy(update={"profile": "paper"})
    with pytest.raises(DatasetError, match="holds `smoke` numbers but params.yaml has profile `paper`"):
        gate.update_baseline(params, metrics, tmp_path / gate.BASELINE)
    assert not (tmp_path / gate.BASELINE).exists()


def test_committed_baseline_holds_smoke_numbers():
    raw = json.loads((REPO / gate.BASELINE).read_text())
    assert raw["profile"] == "smoke" and raw["machines"]
    recorded = json.loads((REPO / gate.MACHINE).read_text())
    assert recorded in [entry["machine"] for entry in raw["machines"]]   # the committed results' kind has numbers
    for entry in raw["machines"]:
        assert set(entry["machine"]) == set(recorded) and entry["metrics"]
        for name, value in entry["metrics"].items():
            dataset, method, metric = name.split("/")
            assert dataset in ("faces-synth", "actors-synth") and isinstance(value, float), name


def test_each_kind_of_machine_is_judged_by_its_own_numbers(tmp_path, fake_metrics):
    """Smoke numbers differ between CPUs (reporting/gate.py): a kind is compared with its own
    numbers only, an update of one kind keeps the others', and a kind with none is not judged."""
    params = smoke_params()
    baseline = tmp_path / "smoke.json"
    numbers = gate.headline_numbers(load_evaluations(fake_metrics))
    here, other = gate.machine_fingerprint(), {**gate.machine_fingerprint(), "cpu": "Another CPU"}
    gate.write_baseline({name: value * 3 for name, value in numbers.items()}, baseline, other)
    with pytest.raises(gate.NoBaselineHere, match="holds no numbers for this kind of machine"):
        gate.smoke_gate(params, fake_metrics, baseline)
    assert not any(r.passed for r in gate.smoke_gate(params, fake_metrics, baseline, machine=other))
    gate.write_baseline(numbers, baseline)
    assert all(r.passed for r in gate.smoke_gate(params, fake_metrics, baseline))
    assert gate.read_baseline(baseline, other) == {name: round(value * 3, 6) for name, value in numbers.items()}
    assert [e["machine"] for e in gate.read_baselines(baseline)] == sorted(
        [here, other], key=lambda m: json.dumps(m, sort_keys=True))


def test_check_on_a_machine_without_numbers_says_it_cannot_judge(tmp_path):
    metrics = _stage_dir(tmp_path)
    write_evaluation(metrics, "actors-synth", "frgan", mse=(0.03, 0.02, 0.04))
    gate.write_baseline({"actors-synth/frgan/mse": 0.5}, tmp_path / gate.BASELINE,
                        {**gate.machine_fingerprint(), "cpu": "Another CPU"})
    result = run_module("pipelines.check", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke gate (evaluate results vs reports/expected/smoke.json): skipped, cannot judge:" in result.stdout
    assert "make refresh UPDATE=1" in result.stdout


def test_committed_metrics_pass_the_smoke_gate():
    """The committed evaluate results against the committed baseline (the fresh-repro test reruns
    the pipeline and checks its own results the same way)."""
    params = load_params(REPO / "params.yaml")
    if params.profile != gate.BASELINE_PROFILE:
        pytest.skip(f"params.yaml profile is {params.profile!r}; the baseline holds smoke numbers")
    recorded = json.loads((REPO / gate.MACHINE).read_text())   # the kind of machine that wrote them
    rows = gate.smoke_gate(params, REPO / METRICS_DIR, REPO / gate.BASELINE, machine=recorded)
    failed = [r for r in rows if not r.passed]
    assert not failed, "moved beyond tolerance:\n" + check.comparison_table(failed, "baseline")
