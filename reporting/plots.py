"""The report's DVC plots and metrics: per dataset, the per-frame mean PSNR and MSE of every method
(one row per method and frame: dvc.yaml's top-level `plots:` draw one line per method), and the
headline numbers of Tables 1, 3 and 4 as one JSON (`metrics:` of the report stage, so that
`dvc exp show` lists them). Both live outside reports/metrics and reports/plots: those folders
are the report stage's deps.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional

from frgan.paths import PLOTS_DIR
from reporting.figures import frame_scores
from reporting.tables import Table

# beside reports/tables (write_report's tables_dir.parent): reports/report-plots/, reports/headline.json
PLOTS_FOLDER = "report-plots"      # per-frame-<dataset>.csv
HEADLINE = "headline.json"
COLUMNS = ["frame", "method", "psnr", "mse"]


def per_frame_means(plots_dir: Path, dataset: str):
    """Per method and frame: mean PSNR and MSE over the test videos, seeds pooled as the report's
    per-frame figure pools them (figures.frame_scores); methods without both metrics are left out."""
    import pandas as pd
    psnr, mse = frame_scores(plots_dir, dataset, "psnr"), frame_scores(plots_dir, dataset, "mse")
    if psnr.empty or mse.empty:
        return pd.DataFrame(columns=COLUMNS)
    both = psnr.merge(mse, on=["method", "frame"], how="inner")[COLUMNS]
    both["frame"] = both["frame"].astype(int)
    return both.sort_values(["method", "frame"], kind="stable").reset_index(drop=True)


def write_per_frame(datasets: Iterable[Optional[str]], folder: Path, plots_dir: Path = PLOTS_DIR) -> list[Path]:
    """<folder>/per-frame-<dataset>.csv for each named dataset (a null one is skipped); 9
    significant digits (more than the per-frame CSVs' own 6 decimals), so the bytes do not hang
    on the last bits of a mean."""
    written = []
    for dataset in sorted({d for d in datasets if d is not None}):
        path = Path(folder) / f"per-frame-{dataset}.csv"
        per_frame_means(plots_dir, dataset).to_csv(path, index=False, lineterminator="\n", float_format="%.9g")
        written.append(path)
    return written


def headline_metrics(tables: list[Table]) -> dict:
    """{'table<n>': {method: {metric: reproduced mean}}}: runs.table_metrics' numbers, nested for DVC."""
    nested: dict = {}
    for table in tables:
        for row in table.spec.rows:
            for column in table.spec.columns:
                cell = table.cells[(row.label, column.label)]
                if cell.reproduced is not None:
                    nested.setdefault(f"table{table.spec.number}", {}).setdefault(row.method, {})[column.metric] = \
                        float(cell.reproduced.mean)
    return nested


def write_dvc_outputs(tables: list[Table], datasets: Iterable[Optional[str]], reports_dir: Path,
                      plots_dir: Path = PLOTS_DIR) -> list[Path]:
    """<reports_dir>/report-plots/per-frame-<dataset>.csv (the folder replaced atomically) and
    <reports_dir>/headline.json; returns the files."""
    from frgan.io import atomic_dir, atomic_file
    folder = Path(reports_dir) / PLOTS_FOLDER
    with atomic_dir(folder) as tmp:
        names = [p.name for p in write_per_frame(datasets, tmp, plots_dir)]
    headline = Path(reports_dir) / HEADLINE
    with atomic_file(headline) as tmp:
        Path(tmp).write_text(json.dumps(headline_metrics(tables), indent=2, sort_keys=True) + "\n")
    return [folder / n for n in names] + [headline]
