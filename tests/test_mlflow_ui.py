"""The report's runs in MLflow's own UI, in a real browser: headless Chromium (Debian `chromium`,
driven through the system's `chromedriver` from `chromium-driver`; nothing downloads) opens the
`FRGAN-Repro/table1` experiment of a store the report stage logged, by URL only (no clicks):
the training view (`?workflowType=machine_learning`) and the table's saved view (`table1`, named
in the table's footer). Every method row of Table 1 with results must be listed with its ACD-I.

FRGAN_UPDATE_SCREENSHOT=1 also saves the page to reports/figures/mlflow-table1.png.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import NEEDS_CHROMIUM, REPO, headless_chromium, run_module
from tests.test_report import PUBLISHED, write_evaluation

SCREENSHOT = REPO / "reports" / "figures" / "mlflow-table1.png"

pytestmark = [
    pytest.mark.slow,
    *NEEDS_CHROMIUM,
]

# Table 1's rows with results in this store: row label -> ACD-I mean (as the UI prints it).
ACD_I = {"MCNet": 0.4567, "MoCoGAN": 0.3, "FRGAN": 0.123, "Reference": 0.0789}
NOT_RUN = ("Villegas et al.", "Copy the input frame")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def store(tmp_path):
    """A store the report stage logged (faces-synth: MCNet, MoCoGAN, FRGAN, the Reference)."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "reports").mkdir()
    shutil.copy(PUBLISHED, tmp_path / "reports" / "published.yaml")
    metrics = tmp_path / "reports" / "metrics"
    for method, label in (("mcnet", "MCNet"), ("mocogan", "MoCoGAN"), ("frgan", "FRGAN")):
        write_evaluation(metrics, "faces-synth", method, acd_i=(ACD_I[label], ACD_I[label] - 0.01, ACD_I[label] + 0.01),
                         acd_c=(0.2, 0.19, 0.21))
    write_evaluation(metrics, "faces-synth", "reference", seed=None, acd_i=(ACD_I["Reference"], 0.07, 0.09),
                     acd_c=(0.05, 0.04, 0.06))
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    report = run_module("pipelines.report", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert report.returncode == 0, report.stderr
    footer = (tmp_path / "reports" / "tables" / "table1.md").read_text().strip().splitlines()[-1]
    assert "saved view `table1`" in footer
    return uri


@pytest.fixture()
def server(tmp_path, store):
    """`mlflow server` on the store (one worker, no job runner), its base URL."""
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store, "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "wb"),
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        import requests
        deadline = time.monotonic() + 40
        while True:
            try:
                if requests.get(base + "/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start: " + (tmp_path / "server.log").read_text()[-2000:])
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)   # its own session: the server and its worker
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture()
def browser():
    with headless_chromium(1500, 1000) as driver:
        yield driver


# Every grid cell as [row index, column id, text] (the runs table renders rows in several
# containers: the pinned name column and the scrolled columns, joined by the row index).
CELLS = """return Array.from(document.querySelectorAll('[role=gridcell][col-id]')).map(
    c => [c.closest('[row-index]').getAttribute('row-index'), c.getAttribute('col-id'), c.innerText]);"""
RUN_NAME, ACD_I_COLUMN = "attributes.`Run Name`", "metrics.`acd_i`"


def rows_by_name(driver) -> dict[str, dict[str, str]]:
    """Run name -> {column id: text} of every row the runs table shows now."""
    rows: dict[str, dict[str, str]] = {}
    for index, column, text in driver.execute_script(CELLS):
        rows.setdefault(index, {})[column] = text.strip()
    return {cells[RUN_NAME].splitlines()[-1]: cells for cells in rows.values() if cells.get(RUN_NAME)}


def test_table1_lists_every_method_with_its_acd_i_by_url_alone(store, server, browser):
    import mlflow
    from selenium.webdriver.support.ui import WebDriverWait
    experiment = mlflow.MlflowClient(store).get_experiment_by_name("FRGAN-Repro/table1")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    browser.get(f"{server}/#/experiments/{experiment.experiment_id}/runs"
                "?viewStateShareKey=table1&workflowType=machine_learning")

    def loaded(driver) -> bool:
        shown = rows_by_name(driver)
        return all(shown.get(label, {}).get(ACD_I_COLUMN) for label in ACD_I)

    WebDriverWait(browser, 45, poll_frequency=0.25).until(
        loaded, message="Table 1's method rows with their ACD-I did not show")
    by_name = rows_by_name(browser)
    assert set(by_name) == set(ACD_I), "one row per method with results, nothing else (not the table run)"
    for label, value in ACD_I.items():
        assert by_name[label][ACD_I_COLUMN] == f"{value:g}", label
    text = browser.find_element("tag name", "body").text
    assert "Model training" in text and not any(label in by_name for label in NOT_RUN)
    if os.environ.get("FRGAN_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOT))
