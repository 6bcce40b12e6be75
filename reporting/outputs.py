"""The whole report on disk: tables, findings, claims, Table 2, budget and figures, each folder
replaced atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from frgan.config import Params
from frgan.io import atomic_dir
from frgan.paths import PLOTS_DIR
from reporting.budget import write_budget
from reporting.claims import claims_markdown
from reporting.figures import write_figures
from reporting.findings import findings_markdown
from reporting.layout import FIGURES_DIR, TABLES_DIR
from reporting.plots import write_dvc_outputs
from reporting.qualitative import qualitative_figures
from reporting.results import Evaluations, Results
from reporting.study.table2 import ANSWERS_CSV, table2_markdown
from reporting.tables import Table, build_tables, table_frame, table_markdown


def write_tables(tables: list[Table], profile: str, folder: Path, run_key: str = "",
                 results: Optional[Results] = None) -> list[Path]:
    written = []
    for table in tables:
        md = folder / f"table{table.spec.number}.md"
        md.write_text(table_markdown(table, profile, run_key))
        csv = folder / f"table{table.spec.number}.csv"
        table_frame(table).to_csv(csv, index=False, lineterminator="\n")
        written += [md, csv]
    summary = folder / "summary.md"
    summary.write_text(findings_markdown(tables, profile))
    claims = folder / "claims.md"
    claims.write_text(claims_markdown(tables, profile, results))
    return written + [summary, claims]


def write_report(evaluations: Evaluations, published: dict, profile: str, faces_dataset: str,
                 actors_dataset: str, tables_dir: Path = TABLES_DIR, figures_dir: Path = FIGURES_DIR,
                 plots_dir: Path = PLOTS_DIR, run_key: str = "", params: Optional[Params] = None,
                 answers_csv: Path = ANSWERS_CSV,
                 results: Optional[Results] = None, budget=None) -> tuple[list[Table], list[Path]]:
    """Tables, findings and figures, each folder replaced atomically; returns the tables and files.
    With `params`, the qualitative grids too (they read the prepared data and generated videos);
    with `budget` (budget_frame), budget.md and budget.csv."""
    tables = build_tables(published, evaluations, faces_dataset, actors_dataset, results)
    with atomic_dir(tables_dir) as tmp:
        names = [p.name for p in write_tables(tables, profile, tmp, run_key, results)]
        # Table 2 comes from people: the answers `python -m pipelines.study tally` exported
        (tmp / "table2.md").write_text(table2_markdown(answers_csv, published, faces_dataset))
        names.append("table2.md")
        if budget is not None:
            names += [p.name for p in write_budget(budget, profile, tmp, run_key)]
    with atomic_dir(figures_dir) as tmp:
        figure_names = [p.name for p in write_figures(tables, evaluations, faces_dataset, actors_dataset,
                                                      profile, tmp, plots_dir)]
        if params is not None:
            figure_names += [p.name for p in qualitative_figures(params, tables, tmp)]
    # DVC's view: per-frame means per method (top-level plots) and the headline numbers (metrics)
    write_dvc_outputs(tables, (faces_dataset, actors_dataset), Path(tables_dir).parent, plots_dir)
    return tables, [tables_dir / n for n in names] + [figures_dir / n for n in figure_names]
