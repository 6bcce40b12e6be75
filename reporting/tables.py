"""Cells and tables: a cell reads "0.024 ± 0.003 (0.023, +0.001)", the reproduced mean ± half the
width of its 95% interval, then (published, reproduced - published); markdown and CSV.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from frgan import tracking
from frgan.data.errors import DatasetError
from reporting.layout import DATASET_TITLES, DECIMALS, NOT_RUN, PAPER_DATASET, PUBLISHED, TABLES, TableSpec, no_dataset
from reporting.results import Evaluations, Interval, Results


@dataclass(frozen=True)
class Cell:
    reproduced: Optional[Interval]
    published: Optional[float]
    status: str   # "ok", NOT_RUN, "-" (neither printed nor measured) or "not measured"

    def text(self) -> str:
        if self.reproduced is None:
            return self.status
        shown = self.reproduced.text()
        if self.published is None:
            return f"{shown} (-)"
        return f"{shown} ({self.published:.{DECIMALS}f}, {_signed(self.delta)})"

    @property
    def delta(self) -> Optional[float]:
        if self.reproduced is None or self.published is None:
            return None
        return self.reproduced.mean - self.published


def _signed(value: float) -> str:
    rounded = round(value, DECIMALS) + 0.0   # + 0.0 turns -0.0 into 0.0
    return f"{rounded:+.{DECIMALS}f}"


def make_cell(scores: Optional[dict[str, Interval]], metric: str, published: Optional[float]) -> Cell:
    if scores is None:
        return Cell(None, published, NOT_RUN)
    if metric not in scores:
        return Cell(None, published, "-" if published is None else "not measured")
    return Cell(scores[metric], published, "ok")


@dataclass(frozen=True)
class Table:
    spec: TableSpec
    datasets: dict[str, str]           # task -> dataset name
    cells: dict[tuple[str, str], Cell]  # (row label, column label) -> cell
    directions: dict[str, str]         # column label -> "lower" / "higher"
    seeds: dict = field(default_factory=dict)    # (dataset, method) -> training seeds behind its cells
    videos: dict = field(default_factory=dict)   # (dataset, method) -> per-video scores (paired tests)

    def title(self) -> str:
        used = {c.task for c in self.spec.columns}
        if len(used) == 1:
            task = used.pop()
            where = (f"reproduced on {DATASET_TITLES[self.datasets[task]]}" if self.datasets[task]
                     else no_dataset(task))
        else:
            parts = [f"{'/'.join(c.label for c in self.spec.columns if c.task == task)}"
                     + (f" on {DATASET_TITLES[self.datasets[task]]}" if self.datasets[task] else f": {no_dataset(task)}")
                     for task in ("faces", "actors")]
            where = "reproduced with " + "; ".join(parts)
        return f"Table {self.spec.number}: {self.spec.subject}, {where}"

    def published_on(self) -> str:
        tasks = [t for t in ("faces", "actors") if any(c.task == t for c in self.spec.columns)]
        return " and ".join(PAPER_DATASET[t] for t in tasks)


def build_table(spec: TableSpec, published: dict, evaluations: Evaluations, datasets: dict[str, str],
                results: Optional[Results] = None) -> Table:
    cells, directions = {}, {}
    for column in spec.columns:
        if not column.in_paper:
            directions[column.label] = column.direction
        for row in spec.rows:
            scores = evaluations.get((datasets[column.task], row.method))
            if row.floor or not column.in_paper:   # the paper prints no such number
                cells[(row.label, column.label)] = make_cell(scores, column.metric, None)
            else:
                try:
                    entry = published[(spec.number, row.paper_row, column.label)]
                except KeyError:
                    raise DatasetError(f"{PUBLISHED}: no entry for table {spec.number}, row {row.paper_row!r}, "
                                       f"column {column.label!r}") from None
                cells[(row.label, column.label)] = make_cell(scores, column.metric, entry.value)
                directions[column.label] = entry.direction
            if datasets[column.task] is None:      # a one-dataset graph: nothing measured here
                cells[(row.label, column.label)] = Cell(None, None, "-")
    used = {(datasets[c.task], r.method) for c in spec.columns for r in spec.rows}
    seeds = {k: v for k, v in results.seeds.items() if k in used} if results else {}
    videos = {k: v for k, v in results.videos.items() if k in used} if results else {}
    return Table(spec, datasets, cells, directions, seeds, videos)


def build_tables(published: dict, evaluations: Evaluations, faces_dataset: str, actors_dataset: str,
                 results: Optional[Results] = None) -> list[Table]:
    datasets = {"faces": faces_dataset, "actors": actors_dataset}
    return [build_table(spec, published, evaluations, datasets, results) for spec in TABLES]


def seeds_text(table: Table) -> str:
    """Which training seeds the table's cells come from, and how several are pooled."""
    trained = sorted({s for seeds in table.seeds.values() for s in seeds if s is not None})
    if not trained:
        return ""
    counts = {len([s for s in seeds if s is not None]) for seeds in table.seeds.values()} - {0}
    listed = ", ".join(str(s) for s in trained)
    if max(counts) == 1:
        return f"Training seed {listed} (`train.seeds`); intervals over test videos."
    uneven = "" if len(counts) == 1 else " (not every method has every seed)"
    return (f"Training seeds {listed} (`train.seeds`) pooled{uneven}: mean of the seed means, 95% interval "
            "from a two-level bootstrap (seeds, then videos within each).")


def table_markdown(table: Table, profile: str, run_key: str = "") -> str:
    spec = table.spec
    if all(table.datasets[c.task] is None for c in spec.columns):   # Table 1 or 3 in a one-dataset graph
        return f"### {table.title()}\n\nNothing to show: {no_dataset(spec.columns[0].task)}.\n"
    header = "| Method | " + " | ".join(c.label for c in spec.columns) + " |"
    lines = [f"### {table.title()}", "",
             f"Profile `{profile}`. Cell: reproduced mean ± half-width of its 95% bootstrap interval "
             f"(published on {table.published_on()}, reproduced - published); "
             f"{_directions_text(table.directions)}. "
             f"{spec.note}" + (f" {seeds_text(table)}" if seeds_text(table) else ""), "",
             header, "|" + " --- |" * (len(spec.columns) + 1)]
    for row in spec.rows:
        lines.append(f"| {row.label} | " + " | ".join(table.cells[(row.label, c.label)].text()
                                                      for c in spec.columns) + " |")
    if spec.footer:
        lines += ["", spec.footer]
    if run_key:
        lines += ["", mlflow_footer(spec.number, run_key)]
    return "\n".join(lines) + "\n"


def table_experiment(number: int) -> str:
    return f"{tracking.EXPERIMENT}/table{number}"


def mlflow_footer(number: int, run_key: str) -> str:
    """Where the table's runs are. Run ids differ per MLflow store, so the footer names the
    content key every run of this report carries: the table file stays byte-identical across
    machines and any store that logged it finds the runs."""
    return (f"MLflow: experiment `{table_experiment(number)}`, one run per method (`tags.run_kind = 'method'`) "
            f"beside the run `table {number}` holding the table, its saved view `table{number}` "
            f"(Views menu) showing their metric columns; search `tags.report_key = '{run_key}'` "
            f"(also on the `report` run in `{tracking.EXPERIMENT}`).")


def _directions_text(directions: dict[str, str]) -> str:
    if len(set(directions.values())) == 1:
        return f"{next(iter(directions.values()))} is better in every column"
    return "; ".join(f"{column}: {d} is better" for column, d in directions.items())


def table_frame(table: Table):
    """The paper's layout with numbers: per column its value (or status), interval, published, delta."""
    import pandas as pd
    records = []
    for row in table.spec.rows:
        record = {"method": row.label}
        for column in table.spec.columns:
            cell = table.cells[(row.label, column.label)]
            name = f"{column.label} [{table.datasets[column.task]}]"
            r = cell.reproduced
            record[name] = round(r.mean, 6) if r else cell.status
            record[f"{name} low"] = round(r.low, 6) if r else None
            record[f"{name} high"] = round(r.high, 6) if r else None
            if column.in_paper:   # a column the paper lacks has no published or delta columns
                record[f"{column.label} published [{PAPER_DATASET[column.task]}]"] = cell.published
                record[f"{column.label} delta"] = None if cell.delta is None else round(cell.delta, 6)
        records.append(record)
    return pd.DataFrame.from_records(records)
