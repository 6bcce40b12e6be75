"""MLflow's default SQLite store under DVC's experiment queue: two experiments with different
seeds queued with `dvc exp run --queue` and run by `dvc queue start -j 2` (in parallel, each in
DVC's temporary copy under .dvc/tmp/exps/) both land in the repository's one mlflow.db, every
stage's run finished, and the evaluate metrics MLflow holds are the ones DVC reports for each
experiment. MLFLOW_TRACKING_URI is unset: the default store is what is tested
(frgan/tracking.py maps the temporary copies to <repo>/mlflow.db and creates the schema under
a lock, so parallel first stages cannot break it)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from frgan import tracking
from frgan.config import parse_params
from tests.conftest import REPO
from tests.test_dvc_integration import _git, _project_files
from tests.tiny_project import tiny_params

METHOD = "frgan-gm-only"
RUN = f"actors-synth-{METHOD}-0"   # the matrix item (dataset, method, training seed 0: train.seeds [0])
TARGET = f"evaluate@{RUN}"   # prepare, conditions, train, generate, evaluate of one dataset
SEEDS = (1, 2)   # the master `seed` of each queued experiment (the training seed item stays 0)
STAGES = ("prepare@actors-synth", "conditions@actors-synth", f"train@{RUN}", f"generate@{RUN}",
          f"evaluate@{RUN}")
QUEUE_TIMEOUT_S = 900
GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def test_dvc_temporary_copies_share_the_repository_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    inside = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpab12cd" / "sub"
    inside.mkdir(parents=True)
    monkeypatch.chdir(inside)
    assert tracking.default_store() == (tmp_path / "repo" / "mlflow.db").resolve()
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"


CONCURRENT_RUN = """
import sys
from frgan import tracking
from frgan.config import load_params
with tracking.start_run(sys.argv[1], load_params(sys.argv[2])):
    for step in range(20):
        tracking.log_metrics({"x": float(step)}, step=step)
"""


def test_parallel_first_stages_on_a_fresh_sqlite_store(tmp_path):
    """Three stages start at once on a store that does not exist yet (what `dvc queue start -j N`
    does): MLflow would create the schema three times at once and fail (it did, 3 times out of 3
    with two processes, before frgan/tracking.py took a lock); every run must be there."""
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": uri}
    workers = [subprocess.Popen([sys.executable, "-c", CONCURRENT_RUN, f"stage-{i}", str(REPO / "params.yaml")],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for i in range(3)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), "\n".join(o[-2000:] for o in outputs)
    import mlflow
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id])
    assert sorted(r.data.tags["stage"] for r in runs) == ["stage-0", "stage-1", "stage-2"]
    assert all(len(client.get_metric_history(r.info.run_id, "x")) == 20 for r in runs)


def _dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ID, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)   # the default store is under test
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True,
                            text=True, timeout=600)
    if check:
        assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _raw_params() -> dict:
    return tiny_params(**{"train.methods": [METHOD]})


@pytest.fixture(scope="module")
def queue(tmp_path_factory):
    root = tmp_path_factory.mktemp("queue-repo")
    for rel in _project_files():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    (root / "params.yaml").write_text(yaml.safe_dump(_raw_params(), sort_keys=False))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "copy")
    for seed in SEEDS:
        _dvc(root, "exp", "run", "--queue", "--name", f"seed-{seed}", "-S", f"seed={seed}", TARGET)
    try:
        _dvc(root, "queue", "start", "-j", "2")
        deadline = time.monotonic() + QUEUE_TIMEOUT_S
        while True:
            status = _dvc(root, "queue", "status").stdout
            rows = [line for line in status.splitlines() if any(f"seed-{s}" in line for s in SEEDS)]
            if len(rows) == len(SEEDS) and not any(w in line for line in rows for w in ("Queued", "Running")):
                break
            assert time.monotonic() < deadline, f"queue not done after {QUEUE_TIMEOUT_S} s:\n{status}"
            time.sleep(5)
    finally:
        _dvc(root, "queue", "stop", check=False)
    logs = {seed: _dvc(root, "queue", "logs", f"seed-{seed}", check=False) for seed in SEEDS}
    return {"root": root, "status": status, "logs": logs}


@pytest.mark.slow
def test_both_queued_experiments_succeed(queue):
    rows = [line for line in queue["status"].splitlines() if "seed-" in line]
    assert len(rows) == 2 and all("Success" in line for line in rows), queue["status"]
    for seed, log in queue["logs"].items():
        text = log.stdout + log.stderr
        assert "database is locked" not in text, text[-3000:]
        assert f"Running stage '{TARGET}'" in text, text[-3000:]


def _dvc_metrics(root: Path) -> dict[int, float]:
    """seed -> the evaluate stage's MSE as `dvc exp show` reports it, per queued experiment."""
    shown = json.loads(_dvc(root, "exp", "show", "--json").stdout)
    found = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for revision in exp.get("revs", []):
                data = revision.get("data") or {}
                if revision.get("name") not in {f"seed-{s}" for s in SEEDS}:
                    continue
                seed = data["params"]["params.yaml"]["data"]["seed"]
                metrics = data["metrics"][f"reports/metrics/evaluate-actors-synth-{METHOD}-seed0.json"]["data"]
                found[seed] = metrics["mse"]["mean"]
    return found


@pytest.mark.slow
def test_every_experiment_has_its_runs_and_metrics_in_one_store(queue):
    root = queue["root"]
    assert (root / "mlflow.db").is_file(), "the queued experiments did not log to <repo>/mlflow.db"
    assert not list((root / ".dvc" / "tmp").rglob("mlflow.db")), "a store inside DVC's temporary copies"
    import mlflow
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    dvc_mse = _dvc_metrics(root)
    assert sorted(dvc_mse) == list(SEEDS), dvc_mse
    for seed in SEEDS:
        raw = _raw_params()
        raw["seed"] = seed
        wanted = tracking.params_hash(parse_params(raw))
        mine = {r.data.tags["stage"]: r for r in runs if r.data.tags.get("params_hash") == wanted}
        assert set(STAGES) <= set(mine), f"seed {seed}: runs missing: {sorted(set(STAGES) - set(mine))}"
        assert all(mine[s].info.status == "FINISHED" for s in STAGES)
        assert mine[f"train@{RUN}"].data.metrics, f"seed {seed}: no training metrics"
        logged = mine[f"evaluate@{RUN}"].data.metrics["mse"]
        assert logged == pytest.approx(dvc_mse[seed], abs=1e-6), (seed, logged, dvc_mse[seed])
    assert dvc_mse[SEEDS[0]] != dvc_mse[SEEDS[1]], "the two seeds gave the same result: not two experiments"
