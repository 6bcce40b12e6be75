"""The team tracking server: `make server` (an MLflow server on PostgreSQL, artifacts proxied to
a folder) on loopback, with the smoke train, generate, evaluate and report stages of a tiny
project logging to it through MLFLOW_TRACKING_URI: every stage's run and every table the report
wrote are found on the server, and nothing is written to a local store. PostgreSQL is a throwaway
cluster (initdb into a temporary folder, run as `nobody` when the tests run as root, since
postgres refuses root); the server and the database are stopped at the end."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

METHOD = "frgan-gm-only"
DATASETS = ("actors-synth",)   # one is enough for the server; faces add minutes of dlib
START_TIMEOUT_S = 180   # MLflow creates its schema on first start; slow on a busy CI machine


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or ([shutil.which(name)] if shutil.which(name) else [])
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(ready, process: subprocess.Popen, what: str, log: Path) -> None:
    """Poll `ready()` until it holds; fail early when `process` died, or after START_TIMEOUT_S."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if ready():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} not ready after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Stop a process group this test started (its own session), SIGKILL after 15 s."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<port>, database `mlflow`, trust auth."""

    def __init__(self, initdb: str, postgres: str):
        self.initdb, self.postgres = initdb, postgres
        self.folder = Path(tempfile.mkdtemp(prefix="frgan-pg-"))   # not under pytest's 0700 tmp: `nobody` reads it
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.log = self.folder / "postgres.log"
        self.run_as: dict = {}
        if os.geteuid() == 0:                                         # postgres refuses to run as root
            user = pwd.getpwnam("nobody")
            self.run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            os.chown(self.folder, user.pw_uid, user.pw_gid)

    @property
    def url(self) -> str:
        # +psycopg2: the driver requirements/ pins (SQLAlchemy 2.1's plain postgresql:// means psycopg 3)
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/mlflow"

    def start(self) -> None:
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "HOME": str(self.folder)}
        data = self.folder / "data"
        subprocess.run([self.initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True, env=env, cwd=self.folder,
                       timeout=300, **self.run_as)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [self.postgres, "-D", str(data), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                 "-c", "unix_socket_directories=", "-c", "fsync=off"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.folder, start_new_session=True,
                **self.run_as)
        import psycopg2

        def accepts() -> bool:
            try:
                psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                                 connect_timeout=2).close()
                return True
            except psycopg2.OperationalError:
                return False
        _wait(accepts, self.process, "postgres", self.log)
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE mlflow")
        conn.close()

    def stop(self) -> None:
        _stop(self.process, signal.SIGINT)   # SIGINT: postgres's fast shutdown
        shutil.rmtree(self.folder, ignore_errors=True)


def _make_server(db_url: str, artifacts: Path, port: int, log: Path) -> subprocess.Popen:
    """`make server` as the README gives it (the install prerequisite taken as done: -o), with
    this test's Python's mlflow."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            ["make", "--no-print-directory", "-o", ".venv/.installed", "server", f"SERVER_DB={db_url}",
             f"SERVER_ARTIFACTS={artifacts}", f"SERVER_PORT={port}", f"MLFLOW={sys.executable} -m mlflow",
             "SERVER_ARGS=--workers 1"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _listening_only_on_loopback(port: int) -> bool:
    """No socket of this port is bound to a non-loopback address (from /proc/net/tcp*)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if int(port_hex, 16) == port and state == "0A":   # LISTEN
                if address not in ("0100007F", "00000000000000000000000001000000"):
                    return False
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if initdb is None or postgres is None:
        pytest.skip("PostgreSQL not installed (Debian package postgresql)")
    if shutil.which("make") is None:
        pytest.skip("make not installed (Debian package make)")
    pg = Postgres(initdb, postgres)
    mlflow_server = None
    try:
        pg.start()
        artifacts = tmp_path_factory.mktemp("mlartifacts")
        port = _free_port()
        log = tmp_path_factory.mktemp("server-log") / "mlflow-server.log"
        mlflow_server = _make_server(pg.url, artifacts, port, log)
        uri = f"http://127.0.0.1:{port}"
        import requests

        def healthy() -> bool:
            try:
                return requests.get(f"{uri}/health", timeout=2).ok
            except requests.RequestException:
                return False
        _wait(healthy, mlflow_server, "mlflow server", log)
        yield {"uri": uri, "port": port, "artifacts": artifacts, "db": pg}
    finally:
        _stop(mlflow_server)
        pg.stop()


@pytest.fixture(scope="module")
def project(server, tmp_path_factory):
    """A tiny project whose train, generate, evaluate and report stages log to the server."""
    from tests.tiny_project import base_layout, copy_layout, must_pass, stage, write_params
    root = copy_layout(base_layout(tmp_path_factory), tmp_path_factory.mktemp("served"))
    write_params(root, **{"train.methods": [METHOD]})
    shutil.copy2(REPO / "reports" / "published.yaml", root / "reports" / "published.yaml")   # the report's input
    env = {"MLFLOW_TRACKING_URI": server["uri"]}
    for dataset in DATASETS:
        for name in ("train", "generate", "evaluate"):
            must_pass(stage(root, name, "--dataset", dataset, "--method", METHOD, env=env))
    must_pass(stage(root, "report", env=env))
    return root


def test_server_binds_loopback_only(server):
    assert _listening_only_on_loopback(server["port"])


def test_every_run_and_table_is_on_the_server(server, project):
    import mlflow
    client = mlflow.MlflowClient(server["uri"])
    main = client.get_experiment_by_name("FRGAN-Repro")
    assert main is not None
    stages = {r.data.tags.get("stage"): r for r in client.search_runs([main.experiment_id], max_results=1000)}
    # no --seed: the first of train.seeds (0), the last item of the matrix stage names
    expected = {f"{name}@{d}-{METHOD}-0" for d in DATASETS for name in ("train", "generate", "evaluate")} | {"report"}
    assert expected <= set(stages), f"missing runs: {sorted(expected - set(stages))}"
    assert all(stages[s].info.status == "FINISHED" for s in expected)
    assert stages[f"evaluate@actors-synth-{METHOD}-0"].data.metrics["mse"] > 0
    assert stages[f"train@actors-synth-{METHOD}-0"].data.metrics   # training curves logged
    assert stages[f"train@actors-synth-{METHOD}-0"].data.tags["seed"] == "0"

    # every table the report wrote is an artifact of some run on the server, stored in the
    # server's artifact folder (proxied: the client never wrote there itself)
    tables = sorted(p.name for p in (project / "reports" / "tables").iterdir() if p.name.startswith("table"))
    assert tables, "the report wrote no table"
    logged: set[str] = set()
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], max_results=1000):
            stack = [None]
            while stack:
                for item in client.list_artifacts(run.info.run_id, stack.pop()):
                    (stack.append(item.path) if item.is_dir else logged.add(Path(item.path).name))
    assert set(tables) <= logged, f"tables not on the server: {sorted(set(tables) - logged)}"
    stored = {p.name for p in Path(server["artifacts"]).rglob("*") if p.is_file()}
    assert set(tables) <= stored

    # nothing assumed a local store
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()
    assert not (project / "mlartifacts").exists()


def test_the_database_holds_the_runs(server, project):
    """The runs live in PostgreSQL itself (MLflow's `runs` table), not in some other store."""
    import psycopg2
    conn = psycopg2.connect(host="127.0.0.1", port=server["db"].port, user="postgres", dbname="mlflow")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM runs WHERE name = 'report'")
            assert cursor.fetchone()[0] >= 1
    finally:
        conn.close()
