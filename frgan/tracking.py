"""The one place that talks to MLflow.

Default store: a SQLite file `mlflow.db` in the repository root (gitignored; MLflow 3 refuses
the old ./mlruns file store), also for experiments DVC runs in its temporary copies
(`dvc exp run --queue`, `--temp`: <repo>/.dvc/tmp/exps/<name>/ log to <repo>/mlflow.db), so a
queue's experiments share one store. `MLFLOW_TRACKING_URI` overrides it, e.g. a team server.
Several stages may write one SQLite store at once (`dvc queue start -j N`): creating its schema
and experiments happens under a file lock (two processes doing it at once corrupt the schema
migration), and MLflow waits up to 20 s on a locked database for the rest.
Every run is tagged with the git commit, the profile, the dataset fingerprint and the params
hash, so a user can find which run made which table; every experiment with
`mlflow.experimentKind = custom_model_development`, so MLflow 3's UI shows it as model training
(runs, params, metrics), not GenAI. An unreachable server fails the stage
within seconds, before any work starts.

A stage run as a program calls `prestart()` before it imports torch: MLflow's import (1.2 s)
then runs in a helper process on the other core while the stage imports torch, and every call
below is carried out there, synchronously (same arguments, same result or error, in order).
`FRGAN_TRACKING_HELPER=0` keeps MLflow in the stage's own process.
"""
from __future__ import annotations

import contextlib
import hashlib
import functools
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

EXPERIMENT = "FRGAN-Repro"
REACH_TIMEOUT_S = 5.0   # a dead server is reported within this, well inside the 10 s promise


class TrackingError(RuntimeError):
    """The MLflow tracking store cannot be used; the message says which and why."""


# ---------------------------------------------------------------------------------------------
# The helper process: MLflow imported and called there, beside the stage.

class _Helper:
    """`python -c 'frgan.tracking.serve(...)'`, requests and replies pickled over two pipes."""

    def __init__(self) -> None:
        requests_read, requests_write = os.pipe()
        replies_read, replies_write = os.pipe()
        root = str(Path(__file__).resolve().parents[1])   # frgan's folder's parent: importable there too
        code = (f"import sys; sys.path.insert(0, {root!r}); from frgan.tracking import serve; "
                f"serve({requests_read}, {replies_write})")
        self.process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(requests_read, replies_write))
        os.close(requests_read)
        os.close(replies_write)
        self.requests, self.replies = os.fdopen(requests_write, "wb"), os.fdopen(replies_read, "rb")
        self.used = False

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.used = True
        try:
            pickle.dump((name, args, kwargs), self.requests)
            self.requests.flush()
            ok, value = pickle.load(self.replies)
        except (BrokenPipeError, EOFError):
            raise TrackingError(f"the MLflow helper process stopped (exit code {self.process.poll()}) "
                                f"during {name}; its error, if any, is above") from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """End the helper once it has carried out every call (a run left open ends FAILED); one
        never called is stopped at once, still importing MLflow."""
        if not self.used:
            self.process.kill()
        self.requests.close()
        self.process.wait()
        self.replies.close()


_helper: Optional[_Helper] = None


def prestart() -> None:
    """Start the helper process (a no-op where one runs, and with FRGAN_TRACKING_HELPER=0).
    Called by a stage run as a program, first thing."""
    global _helper
    if _helper is None and os.environ.get("FRGAN_TRACKING_HELPER", "1") != "0":
        import atexit
        _helper = _Helper()
        atexit.register(close_helper)


def close_helper() -> None:
    """Wait for the helper to finish what it was asked (every MLflow write is done after this)."""
    global _helper
    if _helper is not None:
        helper, _helper = _helper, None
        helper.close()


def _in_helper(function):
    """`function` carried out in the helper process when one runs (its result or error returned
    here), else here."""
    @functools.wraps(function)
    def call(*args, **kwargs):
        if _helper is not None:
            return _helper.call(function.__name__, *args, **kwargs)
        return function(*args, **kwargs)
    return call


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def serve(requests_fd: int, replies_fd: int) -> None:
    """The helper's loop: import MLflow, then carry out each request until the stage closes the
    pipe; runs the stage left open end FAILED (the stage was killed or failed between calls)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C reaches the stage, which ends its run here
    import importlib
    importlib.import_module("mlflow")   # the point of the helper: imported while the stage imports torch
    if tracking_uri().startswith("sqlite:///"):
        importlib.import_module("mlflow.store.tracking.sqlalchemy_store")
    requests, replies = os.fdopen(requests_fd, "rb"), os.fdopen(replies_fd, "wb")
    module = sys.modules[__name__]
    while True:
        try:
            name, args, kwargs = pickle.load(requests)
        except EOFError:
            break
        try:
            reply = (True, getattr(module, name)(*args, **kwargs))
        except BaseException as exc:
            reply = (False, _picklable(exc))
        pickle.dump(reply, replies)
        replies.flush()
    while _open:   # the stage is gone with runs open: end them as failed
        _exit("the stage ended during the run")
    from frgan.io import exit_without_teardown
    exit_without_teardown()


_open: list = []   # the helper's open run contexts, innermost last


def _enter(context: Any) -> Any:
    value = context.__enter__()
    _open.append(context)
    return value


def _exit(failed: Optional[str]) -> None:
    context = _open.pop()
    if failed is None:
        context.__exit__(None, None, None)
    else:
        context.__exit__(RuntimeError, RuntimeError(failed), None)


class _RunRef:
    """What `start_run` gives when the run lives in the helper: its id as `run.info.run_id`."""

    def __init__(self, run_id: str) -> None:
        self.info = type("RunInfo", (), {"run_id": run_id})()


class _HelperSideRun:
    """A SideRun in the helper: each of SideRun's methods carried out there."""

    def __getattr__(self, method: str):
        if method.startswith("_") or not callable(getattr(SideRun, method, None)):
            raise AttributeError(method)
        return functools.partial(_helper.call, "_side_call", method)


def _side_call(method: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(_open[-1].side, method)(*args, **kwargs)


def _enter_run(*args: Any) -> str:
    return _enter(start_run(*args)).info.run_id


def _enter_side_run(*args: Any) -> None:
    _enter(_SideContext(side_run(*args)))


class _SideContext:
    """side_run's context, keeping the SideRun it gave for `_side_call`."""

    def __init__(self, context: Any) -> None:
        self.context, self.side = context, None

    def __enter__(self) -> Any:
        self.side = self.context.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self.context.__exit__(*exc)


@contextlib.contextmanager
def _helper_context(enter: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
    """A run context opened in the helper: FAILED there when this block raises."""
    value = _helper.call(enter, *args, **kwargs)
    try:
        yield value
    except BaseException as exc:
        if _helper is not None:
            _helper.call("_exit", f"{type(exc).__name__}: {exc}")
        raise
    _helper.call("_exit", None)


def default_store() -> Path:
    """mlflow.db in the working directory (stages run from the repository root); inside a DVC
    experiment's temporary copy (<repo>/.dvc/tmp/exps/<name>/...), <repo>/mlflow.db."""
    cwd = Path.cwd().resolve()
    parts = cwd.parts
    for i in range(len(parts) - 2):
        if parts[i:i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i]) / "mlflow.db"
    return cwd / "mlflow.db"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{default_store()}"


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Exclusive, across processes, while a SQLite store's schema or an experiment may be
    created (an flock on a file in the temp folder named after the database); no-op for a
    server, which serialises that itself."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl
    database = str(Path(uri.removeprefix("sqlite:///").split("?")[0]).resolve())
    name = hashlib.sha256(database.encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"frgan-mlflow-{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# The UI shows an experiment as classic ML (runs, params, metrics) rather than GenAI (traces)
# by this tag (MLflow 3: mlflow.experimentKind; the page's ?workflowType=machine_learning too).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _set_experiment(name: str) -> Any:
    """mlflow.set_experiment, safe when other processes create the same experiment at once; the
    experiment is tagged EXPERIMENT_KIND where it lacks that tag (a user's own value is kept)."""
    import mlflow
    with store_lock(tracking_uri()):
        try:
            experiment = mlflow.set_experiment(name)
        except Exception:
            if mlflow.get_experiment_by_name(name) is None:   # not a lost creation race
                raise
            experiment = mlflow.set_experiment(name)
        for key, value in EXPERIMENT_KIND.items():
            if key not in experiment.tags:
                mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, key, value)
        return experiment


def check_reachable(uri: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """Fail fast on a tracking server that does not answer (MLflow itself retries for minutes)."""
    if uri.startswith(("http://", "https://")):
        import requests
        try:
            requests.get(uri.rstrip("/") + "/health", timeout=timeout).raise_for_status()
        except requests.RequestException as exc:
            raise TrackingError(
                f"MLflow tracking server {uri} is unreachable ({type(exc).__name__}); start it "
                "(`make server`) or unset MLFLOW_TRACKING_URI to use the local SQLite store") from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise TrackingError(f"MLflow store {uri}: folder {folder} does not exist")


def git_commit() -> str:
    """HEAD's commit, with '+dirty' when tracked files differ from it; 'unknown' outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=Path.cwd()).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def params_hash(params: Any) -> str:
    """sha256 (first 16 hex) of the params as canonical JSON."""
    data = params.model_dump(mode="json", by_alias=True) if hasattr(params, "model_dump") else params
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _quiet_mlflow() -> None:
    # Fail instead of retrying for minutes on a dead server; keep stage logs readable.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(REACH_TIMEOUT_S)))
    import logging
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def start_run(stage: str, params: Any, dataset_fingerprint: str | None = None,
              tags: dict[str, str] | None = None) -> Iterator[Any]:
    """An MLflow run named after the stage (e.g. 'prepare@faces-synth'), tagged for provenance."""
    if _helper is not None:
        with _helper_context("_enter_run", stage, params, dataset_fingerprint, tags) as run_id:
            yield _RunRef(run_id)
        return
    uri = tracking_uri()
    check_reachable(uri)
    _quiet_mlflow()
    import mlflow
    mlflow.set_tracking_uri(uri)
    try:
        _set_experiment(EXPERIMENT)   # creates a fresh SQLite store's schema, under the lock
    except Exception as exc:  # e.g. a corrupt SQLite file or a server refusing the call
        raise TrackingError(f"MLflow store {uri}: cannot open experiment {EXPERIMENT!r} ({exc})") from None
    run_tags = {
        "stage": stage,
        "git_commit": git_commit(),
        "profile": getattr(params, "profile", "unknown"),
        "params_hash": params_hash(params),
        "dataset_fingerprint": dataset_fingerprint or "none",
        **(tags or {}),
    }
    with mlflow.start_run(run_name=stage, tags=run_tags) as run:
        yield run


@_in_helper
def set_tags(tags: dict[str, str]) -> None:
    import mlflow
    mlflow.set_tags(tags)


@_in_helper
def log_params(values: dict[str, Any]) -> None:
    import mlflow
    mlflow.log_params(values)


@_in_helper
def log_metrics(values: dict[str, float], step: int | None = None) -> None:
    import mlflow
    mlflow.log_metrics(values, step=step)


@_in_helper
def log_artifact(path: str | Path, folder: Optional[str] = None) -> None:
    """A file of the suite as an artifact of the active run (under `folder` when given)."""
    import mlflow
    mlflow.log_artifact(str(path), artifact_path=folder)


MAX_PARAM_KEY = 250     # MLflow's limits on a param's key and value
MAX_PARAM_VALUE = 6000


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Dataclasses, pydantic models and dicts as flat params: nested fields joined with dots
    ('weights.adv'); lists and tuples as JSON ('[0.5, 0.999]'), other leaves as str. A value
    longer than MLflow takes is cut (ending in '...'); a key too long, cut with a hash of it."""
    import dataclasses
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    text = json.dumps(value, default=str) if isinstance(value, (list, tuple)) else str(value)
    if len(text) > MAX_PARAM_VALUE:
        text = text[:MAX_PARAM_VALUE - 3] + "..."
    key = prefix or "value"
    if len(key) > MAX_PARAM_KEY:
        key = key[:MAX_PARAM_KEY - 17] + "~" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return {key: text}


def log_config(config: Any, prefix: str = "config") -> dict[str, str]:
    """Every field of `config` (a dataclass, a pydantic model or a dict) as a param
    '<prefix>.<field>[.<subfield>...]' of the active run; returns what it logged."""
    flat = flatten(config, prefix)
    log_params(flat)
    return flat


class _PyfuncWithoutServingCheck:
    """mlflow.pyfunc as the flavor of `mlflow.models.Model.log`, taking (and dropping) the
    `validate_serving_input` switch that Model.log reads and pyfunc.save_model refuses."""
    __name__ = "mlflow.pyfunc"

    @staticmethod
    def save_model(validate_serving_input: bool = True, **kwargs: Any) -> Any:
        import mlflow
        return mlflow.pyfunc.save_model(**kwargs)


@_in_helper
def log_trained_model(folder: str | Path, input_example: Optional[dict] = None) -> None:
    """The model folder of a train stage as the run's MLflow model `model` (a pyfunc logged as
    code, frgan/mlflow_model.py, through frgan.load), with an input example when given. The
    signature is stated (the output is a uint8 (T, S, S, 3) video) rather than inferred by
    running the model once more.

    What `mlflow.pyfunc.log_model` adds to this, MLflow's serving check (load the logged model,
    run the example through it, warn if that fails), is skipped: it imported torch into the
    tracking helper and took 1.6 s of every train stage (AMD EPYC, 2 cores), and
    tests/test_api.py checks what it checks, for every method: the logged model loads and
    predicts what frgan.load generates."""
    import mlflow
    import numpy as np
    import warnings
    signature = None
    if input_example is not None:
        side, frames = np.asarray(input_example["image"]).shape[0], len(input_example["conditions"])
        signature = mlflow.models.infer_signature(input_example, np.zeros((frames, side, side, 3), np.uint8))
    with warnings.catch_warnings():   # MLflow's notes on inferred signatures and pip requirements
        warnings.simplefilter("ignore")
        mlflow.models.Model.log(artifact_path=None, name="model", flavor=_PyfuncWithoutServingCheck,
                                python_model=str(Path(__file__).with_name("mlflow_model.py")),
                                artifacts={"model": str(folder)}, input_example=input_example,
                                signature=signature, pip_requirements=["frgan-repro"],
                                validate_serving_input=False)


@_in_helper
def log_dict(data: dict, artifact_file: str) -> None:
    """A dict as a YAML or JSON artifact of the active run (by the file's extension)."""
    import mlflow
    mlflow.log_dict(data, artifact_file)


# ---------------------------------------------------------------------------------------------
# The report's runs: one experiment per table, its runs top-level there, found by tags.

def client_and_experiment(experiment: str, uri: Optional[str] = None) -> tuple[Any, Any]:
    """(an MlflowClient of the tracking store `uri`, default `tracking_uri()`; `experiment` or
    None where it does not exist)."""
    uri = uri or tracking_uri()
    check_reachable(uri)
    _quiet_mlflow()
    import mlflow
    client = mlflow.MlflowClient(uri)
    with store_lock(uri):   # the first call may create a fresh SQLite store's schema
        return client, client.get_experiment_by_name(experiment)


@_in_helper
def find_runs(tags: dict[str, str], experiment: str = EXPERIMENT) -> list[str]:
    """Ids of the FINISHED runs of `experiment` that carry every tag in `tags` (newest first)."""
    client, found = client_and_experiment(experiment)
    if found is None:
        return []
    query = " and ".join([f"tags.{k} = '{v}'" for k, v in sorted(tags.items())] + ["attributes.status = 'FINISHED'"])
    return [r.info.run_id for r in client.search_runs([found.experiment_id], query, order_by=["attributes.start_time DESC"])]


@_in_helper
def latest_run_seconds(stage_prefix: str, keys: tuple[str, ...],
                       experiment: str = EXPERIMENT) -> dict[tuple[str, ...], float]:
    """Seconds from start to end of the newest FINISHED run per value of the tags `keys`, among
    the runs whose `stage` tag starts with `stage_prefix` (e.g. "train@": per dataset, method and
    seed). Runs missing one of the tags are skipped; an empty dict when the store has none."""
    client, found = client_and_experiment(experiment)
    if found is None:
        return {}
    query = f"tags.stage LIKE '{stage_prefix}%' and attributes.status = 'FINISHED'"
    seconds: dict[tuple[str, ...], float] = {}
    token = None
    while True:   # every page: a store of many reruns holds more runs than one page
        page = client.search_runs([found.experiment_id], query, order_by=["attributes.start_time DESC"],
                                  page_token=token)
        for run in page:
            key = tuple(run.data.tags.get(k) for k in keys)
            if None not in key and key not in seconds and run.info.end_time is not None:
                seconds[key] = (run.info.end_time - run.info.start_time) / 1000
        token = page.token
        if not token:
            return seconds


class SideRun:
    """A run written through the client, by its id, not through MLflow's stack of active runs:
    it can be a top-level run of another experiment while the stage's own run is active."""

    def __init__(self, client: Any, run_id: str):
        self.client, self.run_id = client, run_id

    def log_params(self, values: dict[str, Any]) -> None:
        from mlflow.entities import Param
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in values.items()])

    def log_metrics(self, values: dict[str, float]) -> None:
        import time
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])

    def log_artifact(self, path: str | Path, folder: Optional[str] = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def log_table(self, frame: Any, artifact_file: str) -> None:
        """A pandas frame as an MLflow table (shown, and comparable across runs, in the UI)."""
        self.client.log_table(self.run_id, frame, artifact_file)

    def log_csv(self, frame: Any, artifact_file: str) -> None:
        """A pandas frame as a CSV file artifact (index left out)."""
        self.client.log_text(self.run_id, frame.to_csv(index=False, lineterminator="\n"), artifact_file)


@contextlib.contextmanager
def side_run(name: str, experiment: str, tags: dict[str, str]) -> Iterator[SideRun]:
    """A top-level run in `experiment` (created, tagged EXPERIMENT_KIND, where missing), beside
    the active run rather than nested under it: the UI lists it as a row of its own. It carries
    the active run's provenance tags and its id as the tag `source_run_id`; FAILED on an error."""
    if _helper is not None:
        with _helper_context("_enter_side_run", name, experiment, tags):
            yield _HelperSideRun()
        return
    import mlflow
    source = mlflow.active_run()
    experiment_id = _set_experiment(experiment).experiment_id
    inherited = {k: source.data.tags[k] for k in ("git_commit", "profile", "params_hash")
                 if source is not None and k in source.data.tags}
    if source is not None:
        inherited["source_run_id"] = source.info.run_id
    client = mlflow.MlflowClient()
    run = client.create_run(experiment_id, tags={**inherited, **tags}, run_name=name)
    try:
        yield SideRun(client, run.info.run_id)
    except BaseException:
        client.set_terminated(run.info.run_id, "FAILED")
        raise
    client.set_terminated(run.info.run_id, "FINISHED")


VIEW_TAG = "mlflow.sharedViewState."   # MLflow 3's saved views of an experiment's runs page


@_in_helper
def save_view(experiment: str, key: str, name: str, search_filter: str, metrics: list[str],
              params: Optional[list[str]] = None) -> None:
    """A saved view of `experiment`'s runs page (MLflow 3: the Views menu, and the URL
    #/experiments/<id>/runs?viewStateShareKey=<key>): the runs `search_filter` selects, oldest
    first, with the columns of `metrics` and `params` shown (the page shows none by default).
    Saved again under the same key, it is replaced."""
    import time
    import mlflow
    columns = [f"metrics.`{m}`" for m in metrics] + [f"params.`{p}`" for p in params or []]   # the page's ids
    state = {"searchFilter": search_filter, "orderByKey": "attributes.start_time", "orderByAsc": True,
             "selectedColumns": columns}
    now = int(time.time() * 1000)
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return
    client.set_experiment_tag(found.experiment_id, VIEW_TAG + key, json.dumps(
        {"name": name, "createdAt": now, "updatedAt": now, "state": json.dumps(state)}))


@_in_helper
def log_table(frame: Any, artifact_file: str) -> None:
    """A pandas frame as an MLflow table (shown, and comparable across runs, in the UI)."""
    import mlflow
    mlflow.log_table(frame, artifact_file=artifact_file)


@_in_helper
def log_image_array(image: Any, artifact_file: str) -> None:
    """A uint8 (H, W, 3) array as a PNG image of the active run (previewed in the UI)."""
    import mlflow
    mlflow.log_image(image, artifact_file=artifact_file)


@_in_helper
def log_image_file(path: str | Path, folder: str = "figures") -> None:
    """A PNG written by the suite, logged as an image (previewed in the UI)."""
    import mlflow
    from PIL import Image
    with Image.open(path) as image:
        mlflow.log_image(image.convert("RGB"), artifact_file=f"{folder}/{Path(path).name}")
