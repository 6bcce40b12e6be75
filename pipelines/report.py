"""report: the paper's Tables 1, 3 and 4 next to the published numbers, figures and findings.

    python -m pipelines.report    # the DVC stage (tables, figures, findings, MLflow)

Reads every reports/metrics/evaluate-<dataset>-<method>-seed<s>.json, the per-frame and
per-video scores beside them (reports/plots, reports/videos) and reports/published.yaml; writes
reports/tables/ (table{1,3,4}.{md,csv}, table2.md, summary.md, claims.md, budget.{md,csv}) and
reports/figures/report/*.png, and logs one MLflow run "report" with an experiment per table.
The work is the package `reporting/` (its __init__ says which module does what); the
regression gates are `python -m pipelines.check`.
"""
from __future__ import annotations

if __name__ == "__main__":   # first: MLflow imports in a helper process meanwhile (frgan.tracking.prestart)
    from frgan.tracking import prestart
    prestart()

from frgan import tracking
from frgan.config import Params
from pipelines import _stage
from reporting.budget import budget_frame, load_budgets, train_wall_times
from reporting.layout import FIGURES_DIR, TABLES_DIR
from reporting.outputs import write_report
from reporting.results import load_published, load_results
from reporting.runs import log_tables, report_key, table_metrics
from reporting.tables import table_experiment


def main(params: Params, args) -> None:
    results = load_results(bootstrap_seed=params.seed, seeds=params.train.seeds)
    evaluations = results.scores
    published = load_published()
    report = params.report
    run_key = report_key(params)
    logged = tracking.find_runs({"stage": "report", "report_key": run_key})   # also: is the store reachable?
    budget = budget_frame(load_budgets(seeds=params.train.seeds), train_wall_times())
    tables, files = write_report(evaluations, published, params.profile, report.faces_dataset,
                                 report.actors_dataset, run_key=run_key, params=params, results=results,
                                 budget=budget)
    if logged:
        print(f"report: MLflow already holds this report (run {logged[0]}, report_key {run_key}); nothing logged")
    else:
        tags = {"faces_dataset": str(report.faces_dataset), "actors_dataset": str(report.actors_dataset),
                "report_key": run_key}
        with tracking.start_run("report", params, tags=tags) as run:
            tracking.log_metrics(table_metrics(tables))
            tracking.log_table(budget, "budget.json")
            for path in files:
                if path.suffix == ".png":
                    tracking.log_image_file(path)
                else:
                    tracking.log_artifact(path)
            log_tables(tables, evaluations, files, run_key)
        print(f"report: MLflow run {run.info.run_id} (report_key {run_key}) and experiments "
              f"{', '.join(table_experiment(t.spec.number) for t in tables)}")
    ran = sorted(f"{d}/{m}" for d, m in evaluations)
    print(f"report: tables {TABLES_DIR}, figures {FIGURES_DIR}; from {len(ran)} evaluate results: {', '.join(ran)}")


if __name__ == "__main__":
    _stage.run(main, _stage.parser(__doc__.splitlines()[0]), registry=False)
