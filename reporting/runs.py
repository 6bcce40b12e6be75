"""The report in MLflow: one run `report`, and per table an experiment with a run `table <n>` and
beside it (top-level too, so the experiment's page lists one row per method with its metric
columns) one run per method; the report key says whether this exact report is already logged.
"""
from __future__ import annotations

import json
from pathlib import Path

from frgan import tracking
from frgan.config import Params
from frgan.paths import METRICS_DIR, PLOTS_DIR, VIDEOS_DIR, result_name, seed_of_name
from reporting.layout import PUBLISHED, Row
from reporting.results import Evaluations
from reporting.study.table2 import ANSWERS_CSV
from reporting.tables import Table, table_experiment, table_frame


# the report's code, hashed into the report key: an edit of any module changes the report
CODE = tuple(sorted(Path(__file__).parent.rglob("*.py")))


def table_metrics(tables: list[Table]) -> dict[str, float]:
    """'table<n>/<method>/<metric>' -> reproduced mean: the headline numbers logged to MLflow."""
    return {f"table{t.spec.number}/{row.method}/{column.metric}": cell.reproduced.mean
            for t in tables for row in t.spec.rows for column in t.spec.columns
            for cell in [t.cells[(row.label, column.label)]] if cell.reproduced is not None}


def report_key(params: Params, metrics_dir: Path = METRICS_DIR, plots_dir: Path = PLOTS_DIR,
               published_path: Path = PUBLISHED, answers_csv: Path = ANSWERS_CSV,
               videos_dir: Path = VIDEOS_DIR) -> str:
    """sha256 (16 hex) of everything the report is made from: the evaluate and train results, the
    per-frame and per-video CSVs, the published numbers, the report's params and this package's
    code (not the budget's wall times, read from MLflow: they differ on every rerun). Equal
    keys, equal report: a rerun with nothing changed logs no new MLflow runs."""
    import hashlib
    digest = hashlib.sha256()
    # train-*.json: the budget table's counts (its wall times come from MLflow and are not hashed)
    for path in [*sorted(Path(metrics_dir).glob("evaluate-*.json")), *sorted(Path(metrics_dir).glob("train-*.json")),
                 *sorted(Path(plots_dir).glob("evaluate-*.csv")),
                 *sorted(Path(videos_dir).glob("evaluate-*.csv")),
                 Path(published_path), *CODE, Path(answers_csv)]:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(json.dumps({"profile": params.profile, "seed": params.seed, "seeds": params.train.seeds,
                              **params.report.model_dump(mode="json")}, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _method_run(table: Table, row: Row, evaluations: Evaluations, run_key: str, plots_dir: Path) -> None:
    """One run per method and table, with the same metric keys in every run of the table, and the
    per-frame scores it came from as CSV artifacts `per-frame/<dataset>.csv` (every seed, a column)."""
    import pandas as pd
    tags = {"table": str(table.spec.number), "method": row.method, "row": row.label, "report_key": run_key,
            "run_kind": "method",
            **{f"dataset_{task}": str(name) for task, name in table.datasets.items()
               if any(c.task == task for c in table.spec.columns)}}
    with tracking.side_run(row.label, table_experiment(table.spec.number), tags) as run:
        metrics, published = {}, {}
        for column in table.spec.columns:
            cell = table.cells[(row.label, column.label)]
            published[f"published.{column.metric}"] = "-" if cell.published is None else cell.published
            if cell.reproduced is not None:
                metrics.update({column.metric: cell.reproduced.mean, f"{column.metric}_low": cell.reproduced.low,
                                f"{column.metric}_high": cell.reproduced.high})
        run.log_params(published)
        run.log_metrics(metrics)
        for dataset in sorted({table.datasets[c.task] for c in table.spec.columns} - {None}):
            if (dataset, row.method) not in evaluations:
                continue
            sources = [Path(plots_dir) / f"{result_name(dataset, row.method, seed)}.csv"
                       for seed in table.seeds.get((dataset, row.method), [])]
            parts = [pd.read_csv(p).assign(seed=seed_of_name(p.stem)) for p in sources if p.is_file()]
            if parts:   # the per-frame scores of every seed, one file
                run.log_csv(pd.concat(parts, ignore_index=True), f"per-frame/{dataset}.csv")


def log_tables(tables: list[Table], evaluations: Evaluations, files: list[Path], run_key: str,
               plots_dir: Path = PLOTS_DIR) -> None:
    """Per table: an experiment holding a run `table <n>` (tag run_kind=table: the table as an
    MLflow table, log_table, and its files) and one run per method that has results (run_kind=
    method), all top-level; and the experiment's saved view `table<n>` (Views menu), this report's
    method runs with the table's metric columns and published values shown."""
    for table in tables:
        number = table.spec.number
        with tracking.side_run(f"table {number}", table_experiment(number),
                               {"table": str(number), "report_key": run_key, "run_kind": "table"}) as run:
            run.log_table(table_frame(table), f"table{number}.json")
            for path in files:
                if path.name.startswith(f"table{number}."):
                    run.log_artifact(path)
        for row in table.spec.rows:
            if any(table.cells[(row.label, c.label)].reproduced is not None for c in table.spec.columns):
                _method_run(table, row, evaluations, run_key, plots_dir)
        metrics = [c.metric for c in table.spec.columns]
        # the view's key, `table<n>`, is in the table's footer (reporting.tables.mlflow_footer)
        tracking.save_view(table_experiment(number), f"table{number}", f"Table {number}: one row per method",
                           f"tags.run_kind = 'method' and tags.report_key = '{run_key}'", metrics,
                           [f"published.{m}" for m in metrics])
