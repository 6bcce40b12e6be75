"""What DVC shows of the report (issue 20): `dvc plots show` draws the per-frame mean PSNR and MSE
with one line per method (not one zigzag over every (video, frame) row of evaluate's per-frame
CSVs) and the report's figures as images; `dvc exp show` lists the headline numbers of Tables 1,
3 and 4. On the committed reports/ files, in a tmp git + DVC repository with the repository's
dvc.yaml, params.yaml and plot template (no stage runs)."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from reporting.layout import PUBLISHED
from reporting.plots import HEADLINE, PLOTS_FOLDER, per_frame_means, write_dvc_outputs
from reporting.results import load_published, load_results
from reporting.runs import table_metrics
from reporting.tables import build_tables
from tests.conftest import REPO
from tests.test_dvc_integration import _dvc, _git

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
FACES, ACTORS = PARAMS["report"]["faces_dataset"], PARAMS["report"]["actors_dataset"]
PLOTS = REPO / "reports" / "plots"


def _methods_with(dataset: str, metric: str) -> set[str]:
    """The methods whose committed per-frame CSV on `dataset` has `metric` (the seed suffix cut)."""
    found = set()
    for path in PLOTS.glob(f"evaluate-{dataset}-*.csv"):
        if metric in pd.read_csv(path, nrows=1).columns:
            found.add(path.stem[len(f"evaluate-{dataset}-"):].rsplit("-seed", 1)[0])
    return found


@pytest.fixture(scope="module")
def shown(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("plots")
    for rel in ("dvc.yaml", "params.yaml", ".dvc/config", ".dvc/plots/per-method.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    for rel in ("reports/metrics", "reports/figures/report"):
        shutil.copytree(REPO / rel, root / rel)
    results = load_results(REPO / "reports" / "metrics", seeds=PARAMS["train"]["seeds"])
    tables = build_tables(load_published(REPO / PUBLISHED), results.scores, FACES, ACTORS, results)
    write_dvc_outputs(tables, (FACES, ACTORS), root / "reports", PLOTS)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "reports")
    plots = json.loads(_dvc(root, "plots", "show", "--json").stdout)
    exp = json.loads(_dvc(root, "exp", "show", "--no-pager", "--json").stdout)
    return {"root": root, "tables": tables, "plots": plots, "exp": exp}


def test_per_frame_csv_is_the_mean_over_videos_and_seeds_per_method(tmp_path):
    per_frame = per_frame_means(PLOTS, ACTORS)
    assert list(per_frame.columns) == ["frame", "method", "psnr", "mse"]
    assert not per_frame.duplicated(["method", "frame"]).any()
    method = sorted(per_frame["method"])[0]
    raw = pd.concat(pd.read_csv(p) for p in sorted(PLOTS.glob(f"evaluate-{ACTORS}-{method}-seed*.csv")))
    expected = raw.groupby("frame")["psnr"].mean()
    ours = per_frame[per_frame["method"] == method].set_index("frame")["psnr"]
    assert list(ours.index) == list(expected.index)
    assert (ours - expected).abs().max() < 1e-9
    # equal inputs, equal bytes
    write_dvc_outputs([], (ACTORS,), tmp_path / "a", PLOTS)
    write_dvc_outputs([], (ACTORS, None), tmp_path / "b", PLOTS)
    name = f"{PLOTS_FOLDER}/per-frame-{ACTORS}.csv"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("task,dataset", [("actors", ACTORS), ("faces", FACES)])
@pytest.mark.parametrize("metric", ["PSNR", "MSE"])
def test_per_frame_plot_has_one_line_per_method(shown, task, dataset, metric):
    assert not shown["plots"].get("errors"), shown["plots"]["errors"]
    [plot] = shown["plots"]["data"][f"per-frame {metric}, {task} dataset"]
    spec = plot["content"]
    assert spec["encoding"]["color"]["field"] == "method"
    assert spec["encoding"]["y"]["field"] == metric.lower()
    values = pd.DataFrame(spec["data"]["values"])
    assert set(values["method"]) == _methods_with(dataset, metric.lower()) and len(set(values["method"])) > 1
    frames = values.groupby("method")["frame"].apply(lambda f: sorted(map(int, f)))
    # one series per method: every frame index once, the same frames for every method
    assert all(f == list(range(len(f))) for f in frames) and len({len(f) for f in frames}) == 1


def test_plots_show_no_per_video_zigzag_and_the_report_figures_as_images(shown):
    ids = set(shown["plots"]["data"])
    assert not any("reports/plots/" in i for i in ids), ids          # evaluate's CSVs are plain outs
    images = {i for i in ids if shown["plots"]["data"][i][0]["type"] == "image"}
    pngs = {f"reports/figures/report/{p.name}" for p in (REPO / "reports/figures/report").iterdir()
            if p.suffix in (".png", ".gif")}   # the figures and the side-by-side GIFs
    assert images == pngs and pngs


def test_exp_show_lists_the_headline_numbers(shown):
    [workspace] = [row for row in shown["exp"] if row["rev"] == "workspace"]
    metrics = workspace["data"]["metrics"]
    headline = metrics[f"reports/{HEADLINE}"]["data"]
    flat = {f"{table}/{method}/{metric}": value for table, methods in headline.items()
            for method, scores in methods.items() for metric, value in scores.items()}
    assert flat == table_metrics(shown["tables"]) and flat


def test_the_report_outs_are_outside_its_deps():
    """An out under a dep of its own stage is a cycle to DVC (and reports/metrics, reports/plots are
    the report's deps): the report's plots and metrics live elsewhere."""
    report = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["report"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics") for o in report.get(key, [])]
    assert f"reports/{PLOTS_FOLDER}" in outs and f"reports/{HEADLINE}" in outs
    for out in outs:
        for dep in report["deps"]:
            assert not (out == dep or out.startswith(dep.rstrip("/") + "/")), (out, dep)
