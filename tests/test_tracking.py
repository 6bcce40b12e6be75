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


# ---------------------------------------------------------------------------------------------
# Issue 20: every resolved training knob as a param, intervals as metrics, the UI's training view.

def test_flatten_gives_dotted_keys_within_mlflows_limits():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Weights:
        adv: float = 1.0
        rec: float = 10.0

    @dataclasses.dataclass(frozen=True)
    class Config:
        lr: float = 2e-4
        betas: tuple = (0.5, 0.999)
        splits: tuple = ("gm", "gr")
        weights: Weights = Weights()
        path: str | None = None
        notes: str = "x" * 7000
        extra: dict = dataclasses.field(default_factory=lambda: {"k" * 300: 1})

    flat = tracking.flatten(Config(), "config")
    assert flat["config.lr"] == "0.0002" and flat["config.betas"] == "[0.5, 0.999]"
    assert flat["config.splits"] == '["gm", "gr"]' and flat["config.path"] == "None"
    assert flat["config.weights.adv"] == "1.0" and flat["config.weights.rec"] == "10.0"
    assert len(flat["config.notes"]) == tracking.MAX_PARAM_VALUE and flat["config.notes"].endswith("...")
    [long_key] = [k for k in flat if k.startswith("config.extra.")]
    assert len(long_key) == tracking.MAX_PARAM_KEY and flat[long_key] == "1"
    params = load_params(REPO / "params.yaml")   # a pydantic model flattens too
    assert tracking.flatten(params.train, "train")["train.lr"] == str(params.train.lr)


def test_experiments_are_tagged_for_the_training_view_and_a_users_choice_is_kept(tmp_path, monkeypatch):
    import mlflow
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = load_params(REPO / "params.yaml")
    with tracking.start_run("prepare@toy", params):
        with tracking.side_run("table 9", "FRGAN-Repro/table9", {"table": "9"}) as side:
            side.log_metrics({"acd_i": 0.5})
    client = mlflow.MlflowClient(uri)
    for name in ("FRGAN-Repro", "FRGAN-Repro/table9"):
        assert client.get_experiment_by_name(name).tags["mlflow.experimentKind"] == "custom_model_development"
    [run] = client.search_runs([client.get_experiment_by_name("FRGAN-Repro/table9").experiment_id])
    assert "mlflow.parentRunId" not in run.data.tags and run.data.metrics == {"acd_i": 0.5}
    assert run.info.status == "FINISHED" and run.data.tags["profile"] == "smoke"
    own = client.get_experiment_by_name("FRGAN-Repro").experiment_id
    client.set_experiment_tag(own, "mlflow.experimentKind", "genai_development")
    with tracking.start_run("prepare@toy", params):
        pass
    assert client.get_experiment_by_name("FRGAN-Repro").tags["mlflow.experimentKind"] == "genai_development"


def test_a_failing_side_run_is_marked_failed(tmp_path, monkeypatch):
    import mlflow
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(ValueError):
        with tracking.start_run("report", load_params(REPO / "params.yaml")):
            with tracking.side_run("table 9", "FRGAN-Repro/table9", {}):
                raise ValueError("boom")
    client = mlflow.MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("FRGAN-Repro/table9").experiment_id])
    assert run.info.status == "FAILED"


def test_evaluate_logs_each_scores_interval():
    from pipelines.evaluate import interval_metrics
    result = {"dataset": "actors-synth", "videos": 4, "mse": {"mean": 0.5, "low": 0.4, "high": 0.6},
              "psnr": {"mean": 16.0, "low": 15.0, "high": 17.0}, "psnr/golf_swing": {"mean": 1, "low": 0, "high": 2}}
    assert interval_metrics(result) == {"mse_low": 0.4, "mse_high": 0.6, "psnr_low": 15.0, "psnr_high": 17.0}


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory):
    from tests.conftest import tiny_actors_task
    return tiny_actors_task(tmp_path_factory.mktemp("actors"), 16, 3)


def test_every_method_logs_its_resolved_config_and_the_params(tmp_path, monkeypatch, tiny_task):
    import mlflow
    import yaml
    from frgan.methods import registered
    from pipelines import train as train_stage
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = load_params(REPO / "params.yaml")
    client = mlflow.MlflowClient(uri)
    for name, method in sorted(registered().items()):
        config = train_stage.method_config(method, tiny_task, params)
        with tracking.start_run(f"train@toy-{name}", params) as run:
            train_stage.log_configuration(method, tiny_task, params, params, str(REPO / "params.yaml"))
        logged = client.get_run(run.info.run_id).data.params
        if name == "copy-input":   # nothing to configure
            assert config is None and not any(k.startswith("config.") for k in logged)
        else:
            assert logged == tracking.flatten(config, "config"), name
            assert logged["config.batch"] == str(params.size.batch), name
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"params.yaml", "params-resolved.yaml"} <= artifacts, name
    frgan = client.search_runs([client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id],
                               "tags.stage = 'train@toy-frgan'")[0]
    got = frgan.data.params
    train = params.train
    assert got["config.lr"] == str(train.lr) and got["config.betas"] == str(list(train.betas))
    assert got["config.gp_weight"] == str(train.gp_weight) and got["config.width"] == str(params.size.width)
    assert got["config.accel.precision"] == train.precision
    assert {f"config.weights.{k}" for k in train.loss_weights.model_dump()} <= set(got)
    resolved = yaml.safe_load(open(mlflow.artifacts.download_artifacts(
        run_id=frgan.info.run_id, artifact_path="params-resolved.yaml", tracking_uri=uri)))
    assert resolved["size"] == params.size.model_dump(mode="json", by_alias=True)
    assert resolved["train"]["lr"] == train.lr and "profiles" not in resolved
