"""MLflow tracking: provenance tags on every run, and a dead server fails fast and clearly."""
from __future__ import annotations

import socket
import time

import pytest

from frgan import tracking
from frgan.config import load_params
from tests.conftest import REPO


def test_run_is_tagged_with_provenance(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = load_params(REPO / "params.yaml")
    with tracking.start_run("prepare@toy", params, dataset_fingerprint="abc123") as run:
        tracking.log_metrics({"clips": 3})
        run_id = run.info.run_id
    import mlflow
    got = mlflow.MlflowClient(uri).get_run(run_id)
    tags = got.data.tags
    assert tags["stage"] == "prepare@toy"
    assert tags["profile"] == "smoke"
    assert tags["dataset_fingerprint"] == "abc123"
    assert tags["params_hash"] == tracking.params_hash(params) and len(tags["params_hash"]) == 16
    assert tags["git_commit"] != ""
    assert got.data.metrics["clips"] == 3


def test_params_hash_changes_with_params():
    params = load_params(REPO / "params.yaml")
    other = params.model_copy(update={"seed": params.seed + 1})
    assert tracking.params_hash(params) != tracking.params_hash(other)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_within_10_seconds(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    params = load_params(REPO / "params.yaml")
    started = time.monotonic()
    with pytest.raises(tracking.TrackingError, match=r"MLflow tracking server http://127.0.0.1:\d+ is unreachable"):
        with tracking.start_run("prepare@toy", params):
            pytest.fail("the run must not start")
    assert time.monotonic() - started < 10


def test_silent_server_fails_within_10_seconds(monkeypatch):
    # A port that accepts connections but never answers: the request must time out.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{listener.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(tracking.TrackingError, match="ReadTimeout"):
            tracking.check_reachable(tracking.tracking_uri())
        assert time.monotonic() - started < 10
    finally:
        listener.close()
