"""The tracking helper process (frgan.tracking.prestart): a stage's MLflow calls carried out in
a second process give the store what the same calls give in-process, errors come back as they
would be raised here, and a run the stage leaves open (a failure, a kill) ends FAILED."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.conftest import REPO

# Every kind of call a stage makes, in a process with the helper started first.
STAGE = """
import sys, numpy as np, pandas as pd
from frgan import tracking
tracking.prestart()
from frgan.config import load_params
params = load_params("params.yaml")
with tracking.start_run("prepare@toy", params, dataset_fingerprint="abc123", tags={"dataset": "toy"}) as run:
    tracking.log_params({"knob": 3})
    tracking.log_config({"weights": {"adv": 0.5}})
    tracking.log_metrics({"loss": 1.5}, step=2)
    tracking.log_artifact("params.yaml", "inputs")
    tracking.log_dict({"a": 1}, "resolved.yaml")
    tracking.log_image_array(np.zeros((4, 4, 3), np.uint8), "samples/zero.png")
    with tracking.side_run("table 9", "FRGAN-Repro/table-9", {"table": "9"}) as side:
        side.log_metrics({"mse": 0.25})
        side.log_table(pd.DataFrame({"method": ["a"], "mse": [0.25]}), "rows.json")
    print(run.info.run_id, tracking.find_runs({"stage": "prepare@toy"}) == [], sep=",")
print("mlflow" in sys.modules, tracking.find_runs({"dataset": "toy"})[0] == run.info.run_id)
"""


def run_program(code: str, store, **kwargs) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, **kwargs)


def client(store):
    import mlflow
    return mlflow.MlflowClient(f"sqlite:///{store}")


def test_the_helper_logs_what_the_stage_asks_and_is_another_process(tmp_path):
    store = tmp_path / "store.db"
    result = run_program(STAGE, store)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    run_id, none_finished_yet = first.split(",")
    mlflow_imported_here, found_after = second.split()
    assert none_finished_yet == "True" and found_after == "True"
    assert mlflow_imported_here == "False"   # the helper process ran every call
    got = client(store).get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.data.tags["stage"] == "prepare@toy" and got.data.tags["dataset_fingerprint"] == "abc123"
    assert got.data.params == {"knob": "3", "config.weights.adv": "0.5"}
    assert got.data.metrics == {"loss": 1.5}
    history = client(store).get_metric_history(run_id, "loss")
    assert [m.step for m in history] == [2]
    artifacts = {a.path for a in client(store).list_artifacts(run_id)}
    assert {"inputs", "resolved.yaml", "samples"} <= artifacts
    side = client(store).search_runs([client(store).get_experiment_by_name("FRGAN-Repro/table-9").experiment_id])[0]
    assert side.info.status == "FINISHED" and side.data.metrics == {"mse": 0.25}
    assert side.data.tags["source_run_id"] == run_id


def test_an_error_in_the_helper_is_raised_in_the_stage(tmp_path):
    code = """
from frgan import tracking
tracking.prestart()
from frgan.config import load_params
try:
    with tracking.start_run("prepare@toy", load_params("params.yaml")):
        pass
except tracking.TrackingError as exc:
    print("TrackingError:", exc)
"""
    result = run_program(code, tmp_path / "no-such-folder" / "store.db")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"TrackingError: MLflow store sqlite:///{tmp_path}/no-such-folder/store.db: "
                                     f"folder {tmp_path}/no-such-folder does not exist")


def test_a_run_the_stage_fails_in_ends_failed(tmp_path):
    code = """
from frgan import tracking
tracking.prestart()
from frgan.config import load_params
with tracking.start_run("train@toy", load_params("params.yaml")) as run:
    print(run.info.run_id, flush=True)
    raise SystemExit(3)
"""
    store = tmp_path / "store.db"
    result = run_program(code, store)
    assert result.returncode == 3
    assert client(store).get_run(result.stdout.strip()).info.status == "FAILED"


def test_a_killed_stage_leaves_its_run_failed_not_running(tmp_path):
    code = """
import time
from frgan import tracking
tracking.prestart()
from frgan.config import load_params
with tracking.start_run("train@toy", load_params("params.yaml")) as run:
    print(run.info.run_id, flush=True)
    time.sleep(60)
"""
    store = tmp_path / "store.db"
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    stage = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    run_id = stage.stdout.readline().strip()
    stage.send_signal(signal.SIGKILL)
    stage.wait()
    deadline = time.monotonic() + 30
    while client(store).get_run(run_id).info.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)   # the helper sees the pipe close, ends the run, exits
    assert client(store).get_run(run_id).info.status == "FAILED"


def test_the_helper_can_be_turned_off():
    code = "from frgan import tracking\ntracking.prestart()\nprint(tracking._helper is None)\n"
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "FRGAN_TRACKING_HELPER": "0"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "True"
