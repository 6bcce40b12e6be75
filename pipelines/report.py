"""report: the paper's Tables 1, 3 and 4 next to the published numbers, figures and findings.

    python -m pipelines.report    # the DVC stage (tables, figures, findings, MLflow)

Reads every reports/metrics/evaluate-<dataset>-<method>-seed<s>.json (one per training seed,
params.yaml `train.seeds`), the per-video scores beside them in reports/videos/, and
reports/published.yaml. Several seeds of a method are pooled: the mean of the seed means, with a
two-level bootstrap interval (resample seeds, then videos within each; metrics/stats.py); one
seed is its evaluate JSON as written. Claims that compare two methods also carry a paired
Wilcoxon test on the same test videos (each video's score averaged over the seeds).
Writes reports/tables/table{1,3,4}.{md,csv}, table2.md (the user study's answers,
reports/study/answers.csv, or "no answers yet"), reports/tables/summary.md (per table: does the
paper's ordering hold?), reports/tables/claims.md (each qualitative claim of sections 4.2-4.4:
supported, not supported or cannot check) and reports/figures/report/*.png (the per-frame PSNR
figure reads the per-frame CSVs in reports/plots); one MLflow run "report" logs them.

A cell reads "0.024 ± 0.003 (0.023, +0.001)": the reproduced mean over test videos ± half the
width of its 95% bootstrap interval, then (published, reproduced - published). "not run": no
evaluate JSON for that method and dataset; "-": the paper prints none and none was measured.
Which dataset fills which table is `report.faces_dataset` / `report.actors_dataset`; every
title names it, so synthetic numbers never read as MUG or Penn Action numbers.

Table 1's "Reference" row (ACD of real training videos) is the evaluate JSON with method
"reference", written by the `reference` stage (pipelines/reference.py).

The floor (not in the paper): Tables 1, 3 and 4 carry a row "Copy the input frame", the method
copy-input (every output frame = the input frame), and claims.md says for every method whether it
beats it in MSE (paired on the same test videos). Tables 1 and 4 also show MSE/PSNR against the
true retargeted video on faces-synth (columns marked as not in the paper).

reports/tables/budget.{md,csv}: per dataset, method and training seed, the training budget of
reports/metrics/train-<dataset>-<method>-seed<s>.json (the train stages write them) and the train
run's wall time from MLflow (not hashed into the report key: it differs on every run).

The regression gates (smoke baseline, published numbers) are `python -m pipelines.check`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from frgan import tracking
from frgan.config import Params
from frgan.data.errors import DatasetError
from frgan.io import atomic_dir
from pipelines import _stage
from frgan.paths import (METRICS_DIR, PLOTS_DIR, REFERENCE, VIDEOS_DIR, result_name, seed_of_name,
                            train_metrics_path)

PUBLISHED = Path("reports/published.yaml")
TABLES_DIR = Path("reports/tables")
FIGURES_DIR = Path("reports/figures/report")   # its own folder: reports/figures holds other stages' outs
DECIMALS = 3   # the paper's precision in Tables 1, 3 and 4
NOT_RUN = "not run"

# How each dataset is named in titles and headers: a stand-in always says what it stands for.
DATASET_TITLES = {
    "faces-synth": "faces-synth (synthetic stand-in for MUG)",
    "mug": "MUG",
    "actors-synth": "actors-synth (synthetic stand-in for Penn Action)",
    "penn": "Penn Action",
}
PAPER_DATASET = {"faces": "MUG", "actors": "Penn Action"}


def no_dataset(task: str) -> str:
    """What a table says where report.<task>_dataset is null (a graph with one kind of dataset)."""
    return f"no {task} dataset in this graph (report.{task}_dataset: null)"


# ---------------------------------------------------------------------------------------------
# The tables' layout: rows are methods, columns are metrics of the faces or the actors dataset.

@dataclass(frozen=True)
class Row:
    label: str              # our row label
    method: str             # the method name in evaluate-<dataset>-<method>-seed<s>.json
    paper_row: str          # the row in reports/published.yaml
    reference: bool = False  # real videos, not a method: left out of the ordering claims
    source: str = ""         # for a row no method produces yet: what would
    floor: bool = False      # the copy-input floor (not in the paper): no published value, left out
                             # of the paper's orderings and claims; claims.md compares every method with it


@dataclass(frozen=True)
class Column:
    label: str    # the paper's column label
    metric: str   # the key in the evaluate JSON
    task: str     # "faces" or "actors": which dataset (report.faces_dataset / actors_dataset)
    direction: str = ""   # only for a column not in the paper (published.yaml gives the paper's)

    @property
    def in_paper(self) -> bool:
        return not self.direction


@dataclass(frozen=True)
class TableSpec:
    number: int
    subject: str
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    note: str = ""
    footer: str = ""   # printed under the rows


ACD = (Column("ACD-I", "acd_i", "faces"), Column("ACD-C", "acd_c", "faces"))
# Not in the paper: on faces-synth the true retargeted video exists (MUG has none: "-"), so every
# method, and the floor, also gets a pixel score against it.
FACES_TRUTH = (Column("MSE (true video)", "mse", "faces", direction="lower"),
               Column("PSNR (true video)", "psnr", "faces", direction="higher"))
FLOOR_METHOD = "copy-input"
FLOOR = Row("Copy the input frame", FLOOR_METHOD, "", floor=True)
FACES_TRUTH_NOTE = ("MSE (true video), PSNR (true video): against the true retargeted video, which only "
                    "faces-synth has (\"-\" on MUG); not in the paper.")
FLOOR_NOTE = "Copy the input frame: every output frame is the input frame (the floor; not in the paper)."
ACD_FLOOR_NOTE = (f"{FLOOR_NOTE} Its ACD-I and ACD-C are 0 by construction: ACD alone rewards a still "
                  "video, which is why the paper has the Reference row.")
TABLES = (
    TableSpec(1, "video generation quality (ACD), facial expression retargeting", (
        Row("MCNet", "mcnet", "MCNet [38]"),
        Row("Villegas et al.", "villegas17", "Villegas et al. [39]"),
        Row("MoCoGAN", "mocogan", "MoCoGAN [37]"),
        Row("FRGAN", "frgan", "Ours"),
        FLOOR,
        Row("Reference", "reference", "Reference", reference=True,
            source="ACD of the real training videos: the `reference` stage "
                   "(python -m pipelines.reference) writes it"),
    ), ACD + FACES_TRUTH, note=f"Reference: ACD of the real training videos. {FACES_TRUTH_NOTE}",
        footer=ACD_FLOOR_NOTE),
    TableSpec(3, "MSE, human pose forecasting", (
        Row("VGAN", "vgan", "VGAN [40]"),
        Row("Mathieu et al.", "mathieu", "Mathieu et al. [17]"),
        Row("Villegas et al.", "villegas17", "Villegas et al. [39]"),
        Row("FRGAN", "frgan", "Ours"),
        FLOOR,
    ), (Column("MSE", "mse", "actors"), Column("MSE (GT)", "mse_gt", "actors")),
        note="MSE (GT): conditions from ground-truth poses instead of the pose LSTM's.", footer=FLOOR_NOTE),
    TableSpec(4, "ablation study", (
        Row("G_M without dense, no G_R", "frgan-no-dense", "G_M without dense, no G_R"),
        Row("G_M (dense) only", "frgan-gm-only", "G_M (dense) only"),
        Row("G_M (dense) + G_R", "frgan", "G_M (dense) + G_R"),
        FLOOR,
    ), ACD + (Column("MSE", "mse_gt", "actors"),) + FACES_TRUTH,
        note=f"MSE with conditions from ground-truth poses (`mse_gt`), as the paper's section 4.4. "
             f"{FACES_TRUTH_NOTE}", footer=ACD_FLOOR_NOTE),
)


# ---------------------------------------------------------------------------------------------
# Inputs: the published numbers and the evaluate JSONs.

@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def text(self) -> str:
        return f"{self.mean:.{DECIMALS}f} ± {self.half_width:.{DECIMALS}f}"


@dataclass(frozen=True)
class Published:
    value: Optional[float]   # None where the paper prints "-"
    direction: str           # "lower" or "higher" is better
    source: str


def load_published(path: Path = PUBLISHED) -> dict[tuple[int, str, str], Published]:
    """(table, row, column) -> the published number, from reports/published.yaml."""
    try:
        entries = yaml.safe_load(Path(path).read_text())["numbers"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: expected a YAML file with a `numbers` list ({type(exc).__name__})") from None
    published = {}
    for i, entry in enumerate(entries):
        try:
            key = (int(entry["table"]), str(entry["row"]), str(entry["column"]))
            value = None if entry["value"] is None else float(entry["value"])
            published[key] = Published(value, entry["direction"], entry["source"])
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{path}: numbers.{i} needs table, row, column, value, direction, source") from None
    return published


def _interval(path: Path, key: str, value) -> Interval:
    try:
        return Interval(*(float(value[k]) for k in ("mean", "low", "high")))
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"{path}: {key!r} needs numeric 'mean', 'low' and 'high'") from None


def load_evaluation(path: Path) -> tuple[str, str, Optional[int], dict[str, Interval]]:
    """(dataset, method, training seed or None, metric key -> interval) of one evaluate JSON;
    DatasetError names the file."""
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("dataset"), str) or not isinstance(raw.get("method"), str):
        raise DatasetError(f"{path}: expected an object with string 'dataset' and 'method'")
    dataset, method, seed = raw["dataset"], raw["method"], raw.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise DatasetError(f"{path}: 'seed' = {seed!r}: expected an integer >= 0")
    if seed is None and method != REFERENCE:
        raise DatasetError(f"{path}: no 'seed': expected evaluate-{dataset}-{method}-seed<s>.json from a training "
                           "seed (a file from before train.seeds? delete it and run `dvc repro`)")
    expected = result_name(dataset, method, seed) + ".json"
    if path.name != expected:
        raise DatasetError(f"{path}: holds dataset {dataset!r}, method {method!r}, seed {seed}: expected "
                           f"the name {expected}")
    scores = {key: _interval(path, key, value) for key, value in raw.items() if isinstance(value, dict)}
    return dataset, method, seed, scores


Evaluations = dict[tuple[str, str], dict[str, Interval]]   # (dataset, method) -> scores (seeds pooled)


@dataclass(frozen=True)
class Results:
    scores: Evaluations                                  # (dataset, method) -> metric key -> interval
    seeds: dict[tuple[str, str], list[Optional[int]]]    # the training seeds behind them (None: real videos)
    videos: dict                                         # (dataset, method) -> per-video scores, seeds averaged


def _video_scores(videos_dir: Path, dataset: str, method: str, seed: Optional[int]):
    import pandas as pd
    path = Path(videos_dir) / f"{result_name(dataset, method, seed)}.csv"
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise DatasetError(f"{path}: not a readable CSV ({type(exc).__name__})") from None
    if not {"video", "class"} <= set(table.columns):
        raise DatasetError(f"{path}: expected columns `video` and `class`, got {list(table.columns)}")
    return table


def pool_seeds(dataset: str, method: str, per_seed: dict[int, dict[str, Interval]], tables: dict,
               bootstrap_seed: int, videos_dir: Path = VIDEOS_DIR) -> dict[str, Interval]:
    """Every key of the seeds' JSONs (metric, metric/class) pooled over the seeds from the per-video
    tables: mean of the seed means, two-level bootstrap interval (metrics.stats)."""
    from metrics.stats import bootstrap_mean_over_seeds
    keys = sorted(set.intersection(*(set(scores) for scores in per_seed.values())))
    pooled = {}
    for key in keys:
        metric, _, label = key.partition("/")
        groups = []
        for seed, table in sorted(tables.items()):
            if metric not in table.columns:
                raise DatasetError(f"{Path(videos_dir) / result_name(dataset, method, seed)}.csv: no column "
                                   f"{metric!r} (its evaluate JSON has {key!r}); rerun evaluate")
            rows = table[table["class"].astype(str) == label] if label else table
            groups.append(rows[metric].to_numpy())
        estimate = bootstrap_mean_over_seeds(groups, seed=bootstrap_seed)
        pooled[key] = Interval(*(round(v, 6) for v in (estimate.mean, estimate.low, estimate.high)))
    return pooled


def load_results(folder: Path = METRICS_DIR, videos_dir: Optional[Path] = None, bootstrap_seed: int = 0,
                 seeds: Optional[list[int]] = None) -> Results:
    """Every evaluate JSON, seeds pooled per (dataset, method), and the per-video scores.

    videos_dir: the per-video CSVs (default: `videos/` beside `folder`, as reports/ lays them
    out). seeds: the training seeds to use (params.yaml `train.seeds`); results of other seeds
    (DVC leaves the outs of a seed dropped from the list) are skipped. None: every seed found."""
    import pandas as pd
    videos_dir = Path(folder).parent / VIDEOS_DIR.name if videos_dir is None else Path(videos_dir)
    by_run: dict[tuple[str, str], dict[Optional[int], dict[str, Interval]]] = {}
    for path in sorted(Path(folder).glob("evaluate-*.json")):
        dataset, method, seed, scores = load_evaluation(path)
        if seed is not None and seeds is not None and seed not in seeds:
            continue
        by_run.setdefault((dataset, method), {})[seed] = scores
    scores, seeds, videos = {}, {}, {}
    for key, runs in sorted(by_run.items()):
        ordered = sorted(runs, key=lambda s: -1 if s is None else s)
        seeds[key] = ordered
        tables = {seed: _video_scores(videos_dir, *key, seed) for seed in ordered}
        if len(runs) == 1:
            scores[key] = runs[ordered[0]]
        else:
            missing = [seed for seed, table in tables.items() if table is None]
            if missing:
                raise DatasetError(f"{Path(videos_dir) / result_name(*key, missing[0])}.csv: missing; seeds "
                                   f"{ordered} of {key[0]}/{key[1]} are pooled from their per-video scores")
            scores[key] = pool_seeds(*key, runs, tables, bootstrap_seed, videos_dir)
        present = [table for table in tables.values() if table is not None]
        if len(present) == len(tables):
            numeric = [c for c in present[0].columns if c not in ("video", "class")]
            videos[key] = (pd.concat(present).groupby(["video", "class"], sort=False)[numeric]
                           .mean().reset_index())
    return Results(scores, seeds, videos)


def load_evaluations(folder: Path = METRICS_DIR, videos_dir: Optional[Path] = None, bootstrap_seed: int = 0,
                     seeds: Optional[list[int]] = None) -> Evaluations:
    """(dataset, method) -> metric key -> interval, several seeds pooled (see load_results)."""
    return load_results(folder, videos_dir, bootstrap_seed, seeds).scores


# ---------------------------------------------------------------------------------------------
# Cells and tables.

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
    return (f"MLflow: experiment `{table_experiment(number)}`, one run per method nested under the run "
            f"`table {number}`; search `tags.report_key = '{run_key}'` (also on the `report` run in "
            f"`{tracking.EXPERIMENT}`).")


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


# ---------------------------------------------------------------------------------------------
# Findings: does the paper's ordering hold in the reproduced numbers?

PROFILE_CAVEATS = {
    "smoke": "Profile `smoke`: tiny images and a few hundred training steps. These numbers check "
             "the pipeline's mechanics; they are not a reproduction of the paper, and neither an "
             "ordering that holds nor one that fails says anything about the paper's claims.",
    "synth": "Profile `synth`: the paper's image sizes with shortened training.",
    "paper": "Profile `paper`: the paper's sizes and training lengths.",
}


def _order_text(ranked: list[tuple[str, float]], direction: str) -> str:
    sign = " < " if direction == "lower" else " > "
    return sign.join(f"{label} ({value:.{DECIMALS}f})" for label, value in ranked)


def column_finding(table: Table, column: Column) -> str:
    """One line: the paper's order of the methods in this column, and whether it holds."""
    if table.datasets[column.task] is None:
        return f"- {column.label}: **cannot check**: {no_dataset(column.task)}."
    direction = table.directions[column.label]
    methods = [r for r in table.spec.rows if not r.reference and not r.floor]
    cells = {r.label: table.cells[(r.label, column.label)] for r in methods}
    compared = [label for label, c in cells.items() if c.reproduced is not None and c.published is not None]
    not_run = [label for label, c in cells.items() if c.status == NOT_RUN]
    missing = f" (not run: {'; '.join(not_run)})" if not_run else ""
    if len(compared) < 2:
        only = f"only {compared[0]} has a reproduced number" if compared else "no method has a reproduced number"
        return f"- {column.label}: **cannot check**: {only}{missing}."
    reverse = direction == "higher"
    paper = sorted(((l, cells[l].published) for l in compared), key=lambda p: p[1], reverse=reverse)
    ours = sorted(((l, cells[l].reproduced.mean) for l in compared), key=lambda p: p[1], reverse=reverse)
    if [l for l, _ in paper] == [l for l, _ in ours]:
        verdict = "**holds**"
    elif paper[0][0] == ours[0][0]:
        verdict = f"**partly holds**: {paper[0][0]} is best, the order of the others differs"
    else:
        verdict = f"**does not hold**: {ours[0][0]} is best, not {paper[0][0]}"
    overlaps = [f"{a} and {b}" for (a, _), (b, _) in zip(ours, ours[1:])
                if _overlap(cells[a].reproduced, cells[b].reproduced)]
    resolved = (f"; 95% intervals overlap ({'; '.join(overlaps)}), so those steps are not resolved"
                if overlaps else "")
    return (f"- {column.label} ({direction} is better): paper {_order_text(paper, direction)}; reproduced "
            f"{_order_text(ours, direction)}: {verdict}{resolved}{missing}.")


def _overlap(a: Interval, b: Interval) -> bool:
    return a.low <= b.high and b.low <= a.high


def _stand_in_caveat(tables: list[Table]) -> str:
    used = sorted({t.datasets[c.task] for t in tables for c in t.spec.columns} - {None})
    synthetic = [d for d in used if d.endswith("-synth")]
    if not synthetic:
        return "ACD uses dlib's face embedder, not the paper's OpenFace."
    return (f"Numbers from the synthetic stand-ins ({', '.join(synthetic)}) are compared with the paper's "
            "MUG / Penn Action numbers only for their ordering; their absolute values are not "
            "comparable (other data, and ACD uses dlib's face embedder, not OpenFace).")


def findings_markdown(tables: list[Table], profile: str) -> str:
    lines = ["# Findings: reproduced vs published", "",
             "Generated by `python -m pipelines.report` (the `report` stage); do not edit.", "",
             PROFILE_CAVEATS.get(profile, f"Profile `{profile}`."), _stand_in_caveat(tables), ""]
    for table in tables:
        lines += [f"## {table.title()}", ""]
        lines += [column_finding(table, column) for column in table.spec.columns if column.in_paper]
        lines += [f"- {row.label}: {NOT_RUN} ({row.source})." for row in table.spec.rows
                  if row.source and all(table.cells[(row.label, c.label)].status == NOT_RUN
                                        for c in table.spec.columns)]
        lines.append("")
    lines += ["## Table 2: user study", "",
              "It needs human raters: `table2.md` shows the answers of a study run with "
              "`python -m pipelines.study` (README, \"Running the user study\"), or says that none "
              "exist. It never shows a number nobody gave.", "",
              "## Regression gates", "",
              "`python -m pipelines.check` (`make check`) compares the current headline numbers with "
              "`reports/expected/smoke.json` at the smoke profile, and the reproduced cells with the "
              "published ones on MUG/Penn; it fails with a table of what moved. After an intended "
              "change: `dvc repro`, then `python -m pipelines.check --update`, and commit the new "
              "baseline together with the change.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Claims: each qualitative claim of the paper's sections 4.2-4.4, checked on the tables' cells.

@dataclass(frozen=True)
class ClaimResult:
    key: str             # "a", "b", ...
    claim: str           # the paper's claim, in words
    source: str          # where the paper makes it
    verdict: str         # "supported", "not supported" or "cannot check (... missing)"
    evidence: list[str]  # one line per number or comparison behind the verdict
    overlaps: list[str]  # comparisons whose 95% intervals overlap


def _table(tables: list[Table], number: int) -> Table:
    return next(t for t in tables if t.spec.number == number)


def _label(table: Table, method: str) -> str:
    return next(r.label for r in table.spec.rows if r.method == method)


def _missing(table: Table, rows: list[str], column: str) -> list[str]:
    return [f"{row} {column} {table.cells[(row, column)].status}" for row in rows
            if table.cells[(row, column)].reproduced is None]


def _better(table: Table, column: str, a: Interval, b: Interval) -> bool:
    return a.mean > b.mean if table.directions[column] == "higher" else a.mean < b.mean


def _verdict(failed: bool, missing: list[str]) -> str:
    if failed:
        return "not supported"
    if missing:
        return f"cannot check ({'; '.join(missing)}: missing)"
    return "supported"


def _comparisons(table: Table, pairs: list[tuple[str, str, str]]) -> tuple[bool, list[str], list[str], list[str]]:
    """pairs: (column, should-be-better row, should-be-worse row) -> failed, missing, evidence, overlaps."""
    failed, missing, evidence, overlaps = False, [], [], []
    for column, first, second in pairs:
        gone = _missing(table, [first, second], column)
        if gone:
            missing += [m for m in gone if m not in missing]
            continue
        a, b = table.cells[(first, column)].reproduced, table.cells[(second, column)].reproduced
        holds = _better(table, column, a, b)
        failed |= not holds
        overlap = _overlap(a, b)
        if overlap:
            overlaps.append(f"{column}: {first} and {second}")
        evidence.append(f"{column} ({table.directions[column]} is better): {first} {a.text()} vs {second} "
                        f"{b.text()}: {'holds' if holds else 'does not hold'}"
                        f"{' (95% intervals overlap)' if overlap else ''}{paired_text(table, column, first, second)}")
    return failed, missing, evidence, overlaps


def paired_test(table: Table, column: str, first: str, second: str):
    """Paired comparison (metrics.stats.compare_methods: Wilcoxon signed-rank p, paired-bootstrap
    interval of the mean difference) of two rows on the same test videos, each video's score
    averaged over the training seeds; None without per-video scores."""
    from metrics.stats import compare_methods
    spec = next(c for c in table.spec.columns if c.label == column)
    dataset = table.datasets[spec.task]
    methods = {r.label: r.method for r in table.spec.rows}
    a, b = (table.videos.get((dataset, methods[row])) for row in (first, second))
    if a is None or b is None or spec.metric not in a.columns or spec.metric not in b.columns:
        return None
    try:
        return compare_methods(a, b, spec.metric)
    except ValueError:   # not scored on the same videos
        return None


def paired_text(table: Table, column: str, first: str, second: str) -> str:
    result = paired_test(table, column, first, second)
    if result is None:
        return ""
    return (f"; paired over {result.n} videos: {first} - {second} = {result.mean_difference:+.{DECIMALS}f} "
            f"[{result.low:+.{DECIMALS}f}, {result.high:+.{DECIMALS}f}], Wilcoxon p = {result.p_value:.2g}")


def _pairwise_claim(key: str, claim: str, source: str, table: Table,
                    pairs: list[tuple[str, str, str]]) -> ClaimResult:
    failed, missing, evidence, overlaps = _comparisons(table, pairs)
    return ClaimResult(key, claim, source, _verdict(failed, missing), evidence, overlaps)


def _below_claim(table: Table, row: str, columns: list[str], threshold: float) -> ClaimResult:
    missing = _missing(table, [row], columns[0]) + _missing(table, [row], columns[1])
    failed, evidence, overlaps = False, [], []
    for column in columns:
        r = table.cells[(row, column)].reproduced
        if r is None:
            continue
        below = r.mean < threshold
        failed |= not below
        crosses = r.low < threshold < r.high
        if crosses:
            overlaps.append(f"{column}: {row}'s interval ({r.low:.{DECIMALS}f}, {r.high:.{DECIMALS}f}) "
                            f"contains {threshold}")
        evidence.append(f"{column}: {row} {r.text()} {'<' if below else '>='} {threshold}"
                        f"{f' (95% interval contains {threshold})' if crosses else ''}")
    return ClaimResult("b", f"FRGAN's ACD-I and ACD-C are both below {threshold}", "Table 1, section 4.2",
                       _verdict(failed, missing), evidence, overlaps)


def _villegas_claim(table: Table) -> ClaimResult:
    """[39] has the worst ACD-I of the methods but the second-best ACD-C."""
    rows = [r.label for r in table.spec.rows if not r.reference and not r.floor]
    villegas = _label(table, "villegas17")
    missing = _missing(table, rows, "ACD-I") + _missing(table, rows, "ACD-C")
    evidence, overlaps, failed = [], [], False
    for column, wanted in (("ACD-I", len(rows)), ("ACD-C", 2)):
        present = [(r, table.cells[(r, column)].reproduced) for r in rows
                   if table.cells[(r, column)].reproduced is not None]
        if table.cells[(villegas, column)].reproduced is None or len(present) < 2:
            continue
        reverse = table.directions[column] == "higher"
        ranked = sorted(present, key=lambda p: p[1].mean, reverse=reverse)
        rank = [r for r, _ in ranked].index(villegas) + 1
        complete = len(present) == len(rows)
        if complete:
            wrong = rank != wanted
        else:   # wrong already when a method that is present puts it out of its place
            wrong = rank != len(present) if column == "ACD-I" else rank > 2
        failed |= wrong
        v = table.cells[(villegas, column)].reproduced
        neighbours = [r for r, s in ranked if r != villegas and _overlap(s, v)
                      and abs([x for x, _ in ranked].index(r) + 1 - rank) == 1]
        if neighbours:
            overlaps.append(f"{column}: {villegas} and {', '.join(neighbours)}")
        order = ", ".join(f"{r} {s.text()}" for r, s in ranked)
        evidence.append(f"{column} ({table.directions[column]} is better), best first: {order}: {villegas} "
                        f"ranks {rank} of {len(present)} (paper: {wanted} of {len(rows)}): "
                        f"{'does not hold' if wrong else 'holds' if complete else 'open'}")
    return ClaimResult("c", "Villegas et al. has the worst ACD-I but the second-best ACD-C",
                       "Table 1, section 4.2", _verdict(failed, missing), evidence, overlaps)


def check_claims(tables: list[Table]) -> list[ClaimResult]:
    t1, t3, t4 = _table(tables, 1), _table(tables, 3), _table(tables, 4)
    frgan1, frgan3 = _label(t1, "frgan"), _label(t3, "frgan")
    baselines1 = [r.label for r in t1.spec.rows if not r.reference and not r.floor and r.method != "frgan"]
    steps = [_label(t4, m) for m in ("frgan-no-dense", "frgan-gm-only", "frgan")]
    villegas3 = _label(t3, "villegas17")
    return [
        _pairwise_claim("a", "FRGAN beats every baseline on ACD-I and on ACD-C", "Table 1, section 4.2", t1,
                        [(c, frgan1, b) for c in ("ACD-I", "ACD-C") for b in baselines1]),
        _below_claim(t1, frgan1, ["ACD-I", "ACD-C"], 0.2),
        _villegas_claim(t1),
        _pairwise_claim("d", "Each ablation step improves every metric (G_M without dense, no G_R -> "
                             "G_M (dense) only -> G_M (dense) + G_R)", "Table 4, section 4.4", t4,
                        [(c.label, better, worse) for c in t4.spec.columns if c.in_paper
                         for worse, better in zip(steps, steps[1:])]),
        _pairwise_claim("e", "FRGAN beats Villegas et al. in MSE, with predicted and with ground-truth poses",
                        "Table 3, section 4.3", t3,
                        [(c, frgan3, villegas3) for c in ("MSE", "MSE (GT)")]),
        _pairwise_claim("f", "FRGAN beats VGAN and Mathieu et al. in MSE", "Table 3, section 4.3", t3,
                        [("MSE", frgan3, _label(t3, m)) for m in ("vgan", "mathieu")]),
    ]


def claims_markdown(tables: list[Table], profile: str, scores: Optional[Results] = None) -> str:
    results = check_claims(tables)
    lines = ["# Claims of the paper, checked against this run", "",
             "Generated by `python -m pipelines.report` (the `report` stage); do not edit.", "",
             PROFILE_CAVEATS.get(profile, f"Profile `{profile}`."), _stand_in_caveat(tables), "",
             "Verdicts compare the reproduced means (± half-width of the 95% bootstrap interval over test "
             "videos). \"supported\": every comparison of the claim holds; \"not supported\": at least one "
             "fails; \"cannot check\": a number the claim needs is missing. Where 95% intervals overlap, "
             "the claim's comparison is not resolved by this run, whatever its verdict. A comparison of two "
             "methods also gives their paired difference on the same test videos (each video's score averaged "
             "over the training seeds) with its 95% paired-bootstrap interval and the two-sided Wilcoxon "
             "signed-rank p-value.", "",
             "| Claim | Paper | Verdict | 95% intervals overlap |", "| --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| ({r.key}) {r.claim} | {r.source} | {r.verdict} | {'yes' if r.overlaps else 'no'} |")
    lines.append("")
    for r in results:
        lines += [f"## ({r.key}) {r.claim}", "", f"{r.source}. **{r.verdict}**.", ""]
        lines += [f"- {e}" for e in r.evidence]
        if r.overlaps:
            lines.append(f"- 95% intervals overlap: {'; '.join(r.overlaps)}; those comparisons are not resolved.")
        lines.append("")
    lines += floor_markdown(floor_checks(scores, _table(tables, 1).datasets))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The floor: does each method beat copying the input frame? MSE only: ACD gives the still video
# a perfect 0, so only a pixel score against the true frames can say it.

# Per task: the columns whose per-video MSE is compared (faces: where the true video exists).
FLOOR_COLUMNS = {"faces": (("MSE (true video)", "mse"),), "actors": (("MSE", "mse"), ("MSE (GT)", "mse_gt"))}
FLOOR_RULE = ("A method **beats the floor** in a column when its mean MSE is lower than copy-input's and "
              "the 95% paired-bootstrap interval of the difference (method - copy-input, on the same test "
              "videos, each video's score averaged over the training seeds) excludes 0; otherwise it does "
              "not. The Wilcoxon signed-rank p-value is shown beside it.")


@dataclass(frozen=True)
class FloorCheck:
    method: str
    column: str    # "<dataset> <column label>", e.g. "actors-synth MSE (GT)"
    verdict: str   # "beats", "does not beat" or "cannot check (...)"
    evidence: str  # the paired difference, or ""


def floor_verdict(result) -> str:
    """The rule (FLOOR_RULE) on a metrics.stats.PairedComparison of method - floor."""
    return "beats" if result.mean_difference < 0 and result.high < 0 else "does not beat"


def _floor_columns(scores: Results, datasets: dict[str, str]) -> list[tuple[str, str, str]]:
    """(dataset, column label, metric) the floor has a score for: MUG has no true video, so no MSE."""
    found = []
    for task, columns in FLOOR_COLUMNS.items():
        dataset = datasets.get(task)
        floor = scores.scores.get((dataset, FLOOR_METHOD), {}) if dataset else {}
        found += [(dataset, label, metric) for label, metric in columns if metric in floor]
    return found


def floor_checks(scores: Optional[Results], datasets: dict[str, str]) -> list[FloorCheck]:
    """Every method with results on the report's datasets (not the reference row, not the floor)
    against copy-input, per MSE column the floor has."""
    if scores is None:
        return []
    columns = _floor_columns(scores, datasets)
    methods = sorted({m for (d, m) in scores.scores if d in datasets.values()} - {REFERENCE, FLOOR_METHOD})
    checks = []
    for method in methods:
        for dataset, label, metric in columns:
            checks.append(_floor_check(scores, dataset, method, label, metric))
    return checks


def _floor_check(scores: Results, dataset: str, method: str, label: str, metric: str) -> FloorCheck:
    from metrics.stats import compare_methods
    column = f"{dataset} {label}"
    mine, floor = scores.videos.get((dataset, method)), scores.videos.get((dataset, FLOOR_METHOD))
    if (dataset, method) not in scores.scores:
        return FloorCheck(method, column, f"cannot check ({NOT_RUN})", "")
    if mine is None or floor is None or metric not in mine.columns or metric not in floor.columns:
        return FloorCheck(method, column, "cannot check (no per-video scores)", "")
    try:
        result = compare_methods(mine, floor, metric)
    except ValueError:   # not scored on the same videos
        return FloorCheck(method, column, "cannot check (not the same test videos)", "")
    # one more decimal than the tables: differences from the floor are often a few thousandths
    digits = DECIMALS + 1
    return FloorCheck(method, column, floor_verdict(result),
                      f"{result.mean_difference:+.{digits}f} [{result.low:+.{digits}f}, {result.high:+.{digits}f}], "
                      f"p = {result.p_value:.2g}, {result.n} videos")


def floor_markdown(checks: list[FloorCheck]) -> list[str]:
    lines = [f"## The floor: does each method beat copying the input frame ({FLOOR_METHOD})?", "",
             "Not a claim of the paper: every output frame = the input frame is the floor any method should "
             "beat. " + FLOOR_RULE, ""]
    if not checks:
        return lines + [f"Cannot check: no per-video MSE of `{FLOOR_METHOD}` and another method on the "
                        "report's datasets (add it to `train.methods` and run `dvc repro`).", ""]
    columns = list(dict.fromkeys(c.column for c in checks))
    cells = {(c.method, c.column): c for c in checks}
    lines += ["| Method | " + " | ".join(columns) + " |", "|" + " --- |" * (len(columns) + 1)]
    for method in dict.fromkeys(c.method for c in checks):
        shown = [cells.get((method, col)) for col in columns]
        lines.append(f"| {method} | " + " | ".join(
            "-" if c is None else (f"**{c.verdict}**: {c.evidence}" if c.evidence else c.verdict)
            for c in shown) + " |")
    lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------
# Figures (seaborn).

def class_scores(evaluations: Evaluations, dataset: str, metric: str):
    """Per class and method: the metric's mean and 95% interval from '<metric>/<class>' keys."""
    import pandas as pd
    records = [{"method": method, "class": key.split("/", 1)[1], "mean": s.mean, "low": s.low, "high": s.high}
               for (ds, method), scores in sorted(evaluations.items()) if ds == dataset
               for key, s in scores.items() if key.startswith(f"{metric}/")]
    return pd.DataFrame.from_records(records, columns=["method", "class", "mean", "low", "high"])


def plot_per_class(frame, dataset: str, metric: str, profile: str, path: Path) -> None:
    """Fig. 7 style: one bar per class and method, with its 95% interval."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    classes, methods = sorted(frame["class"].unique()), sorted(frame["method"].unique())
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(classes) + 2), 4))
    if frame.empty:
        ax.text(0.5, 0.5, f"no evaluate results on {dataset}", ha="center", va="center")
        ax.set_axis_off()
    else:
        sns.barplot(frame, x="class", y="mean", hue="method", order=classes, hue_order=methods,
                    errorbar=None, ax=ax)
        width = 0.8 / len(methods)   # seaborn's dodge: hue levels share 0.8 of each slot
        for _, r in frame.iterrows():
            x = classes.index(r["class"]) - 0.4 + (methods.index(r["method"]) + 0.5) * width
            ax.errorbar(x, r["mean"], yerr=[[r["mean"] - r["low"]], [r["high"] - r["mean"]]],
                        color="black", capsize=2, linewidth=1)
        ax.set_xlabel("action class")
        ax.set_ylabel(f"{metric.upper()} (dB)" if metric == "psnr" else metric)
        ax.tick_params(axis="x", rotation=30)
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_title(f"{metric.upper()} per class on {DATASET_TITLES.get(dataset, dataset)}, profile {profile}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_published_vs_reproduced(tables: list[Table], profile: str, path: Path) -> None:
    """One panel per table column: reproduced (with its interval) against published, and y = x."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    import seaborn as sns
    panels = [(t, c) for t in tables for c in t.spec.columns if c.in_paper and t.datasets[c.task]]
    ncols = 4
    nrows = max(1, math.ceil(len(panels) / ncols))   # >= 1: a graph may leave no panel at all
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (table, column) in zip(axes.flat, panels):
        points = [(row.label, cell.published, cell.reproduced) for row in table.spec.rows
                  for cell in [table.cells[(row.label, column.label)]]
                  if cell.reproduced is not None and cell.published is not None]
        ax.set_title(f"Table {table.spec.number}, {column.label}\n"
                     f"{table.datasets[column.task]} vs {PAPER_DATASET[column.task]}", fontsize=9)
        ax.set_xlabel(f"published ({PAPER_DATASET[column.task]})")
        ax.set_ylabel(f"reproduced ({table.datasets[column.task]})")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        if not points:
            ax.text(0.5, 0.5, NOT_RUN, ha="center", va="center", transform=ax.transAxes)
            continue
        sns.scatterplot(x=[p for _, p, _ in points], y=[r.mean for _, _, r in points],
                        hue=[label for label, _, _ in points], ax=ax, s=40, legend=False)
        for label, pub, r in points:
            ax.errorbar(pub, r.mean, yerr=[[r.mean - r.low], [r.high - r.mean]], color="gray", linewidth=1)
            ax.annotate(label, (pub, r.mean), fontsize=7, xytext=(3, 3), textcoords="offset points")
        values = [p for _, p, _ in points] + [r.low for *_, r in points] + [r.high for *_, r in points]
        ax.plot([min(values), max(values)], [min(values), max(values)], "k--", linewidth=0.8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    fig.suptitle(f"Published vs reproduced, profile {profile} (dashed: y = x)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def frame_scores(folder: Path, dataset: str, metric: str):
    """Per method and frame index: the metric's mean over test videos (and training seeds), from the
    per-frame CSVs <folder>/evaluate-<dataset>-<method>-seed<s>.csv."""
    import pandas as pd
    prefix = f"evaluate-{dataset}-"
    by_method: dict[str, list] = {}
    for path in sorted(Path(folder).glob(f"{prefix}*.csv")):
        raw = pd.read_csv(path)
        if metric not in raw.columns or "frame" not in raw.columns:
            continue
        name = path.stem[len(prefix):]
        seed = seed_of_name(name)
        method = name if seed is None else name[:-len(f"-seed{seed}")]
        by_method.setdefault(method, []).append(raw[["frame", metric]])
    frames = []
    for method, parts in by_method.items():
        per_frame = pd.concat(parts).groupby("frame", as_index=False)[metric].mean()
        per_frame.insert(0, "method", method)
        frames.append(per_frame)
    if not frames:
        return pd.DataFrame(columns=["method", "frame", metric])
    return pd.concat(frames, ignore_index=True)


def plot_per_frame(frame, dataset: str, metric: str, profile: str, path: Path) -> None:
    """Fig. 6 style: the metric against the frame index, one line per method (mean over videos)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if frame.empty:
        ax.text(0.5, 0.5, f"no per-frame results on {dataset}", ha="center", va="center")
        ax.set_axis_off()
    else:
        methods = sorted(frame["method"].unique())
        sns.lineplot(frame, x="frame", y=metric, hue="method", style="method", hue_order=methods,
                     style_order=methods, markers=True, dashes=False, alpha=0.85, ax=ax)
        ax.set_xlabel("generated frame index")
        ax.set_ylabel(f"{metric.upper()} (dB), mean over test videos" if metric == "psnr" else metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_title(f"{metric.upper()} per frame on {DATASET_TITLES.get(dataset, dataset)}, profile {profile}\n"
                     "mean over test videos; each method's own marker (coinciding lines hide each other)",
                     fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def acd_points(evaluations: Evaluations, dataset: str):
    """Per method with both ACD metrics on the dataset: ACD-I and ACD-C with their 95% intervals."""
    import pandas as pd
    records = [{"method": method, "acd_i": s["acd_i"].mean, "acd_i_low": s["acd_i"].low,
                "acd_i_high": s["acd_i"].high, "acd_c": s["acd_c"].mean, "acd_c_low": s["acd_c"].low,
                "acd_c_high": s["acd_c"].high, "reference": method == "reference"}
               for (ds, method), s in sorted(evaluations.items())
               if ds == dataset and "acd_i" in s and "acd_c" in s]
    return pd.DataFrame.from_records(records, columns=["method", "acd_i", "acd_i_low", "acd_i_high", "acd_c",
                                                       "acd_c_low", "acd_c_high", "reference"])


def plot_acd(frame, dataset: str, profile: str, path: Path) -> None:
    """ACD-I against ACD-C per method, with 95% intervals; lower-left is better."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, ax = plt.subplots(figsize=(7.5, 5))
    if frame.empty:
        ax.text(0.5, 0.5, f"no ACD results on {dataset}", ha="center", va="center")
        ax.set_axis_off()
    else:
        methods = list(frame["method"])
        sns.scatterplot(frame, x="acd_i", y="acd_c", hue="method", hue_order=methods, style="reference",
                        markers={False: "o", True: "*"}, size="reference", sizes={False: 60, True: 220},
                        legend=False, ax=ax, zorder=3)
        palette = dict(zip(methods, sns.color_palette(n_colors=len(methods))))
        for _, r in frame.iterrows():
            ax.errorbar(r["acd_i"], r["acd_c"], xerr=[[r["acd_i"] - r["acd_i_low"]], [r["acd_i_high"] - r["acd_i"]]],
                        yerr=[[r["acd_c"] - r["acd_c_low"]], [r["acd_c_high"] - r["acd_c"]]],
                        color=palette[r["method"]], capsize=3, linewidth=1, zorder=2)
            ax.annotate(r["method"] + (" (real videos)" if r["reference"] else ""), (r["acd_i"], r["acd_c"]),
                        fontsize=8, xytext=(5, 4), textcoords="offset points")
        ax.set_xlabel("ACD-I (identity: generated vs input frame; lower is better)")
        ax.set_ylabel("ACD-C (content consistency; lower is better)")
        ax.grid(alpha=0.3)
        ax.margins(0.12)
        ax.set_title(f"ACD per method on {DATASET_TITLES.get(dataset, dataset)}, profile {profile}\n"
                     "error bars: 95% bootstrap intervals", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_figures(tables: list[Table], evaluations: Evaluations, faces_dataset: str, actors_dataset: str,
                  profile: str, folder: Path, plots_dir: Path = PLOTS_DIR) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    written = []   # a null dataset (a one-kind graph) has no figures of its own
    if actors_dataset is not None:
        per_class = folder / "psnr-per-class.png"
        plot_per_class(class_scores(evaluations, actors_dataset, "psnr"), actors_dataset, "psnr", profile, per_class)
        written.append(per_class)
    versus = folder / "published-vs-reproduced.png"
    plot_published_vs_reproduced(tables, profile, versus)
    written.append(versus)
    if actors_dataset is not None:
        per_frame = folder / "psnr-per-frame.png"
        plot_per_frame(frame_scores(plots_dir, actors_dataset, "psnr"), actors_dataset, "psnr", profile, per_frame)
        written.append(per_frame)
    if faces_dataset is not None:
        acd = folder / "acd-faces.png"
        plot_acd(acd_points(evaluations, faces_dataset), faces_dataset, profile, acd)
        written.append(acd)
    return written


# ---------------------------------------------------------------------------------------------
# The training budget: what each method's train stage spent (reports/metrics/train-*.json, from
# Method.train's Budget) and how long it took (the train stage's MLflow run).

BUDGET_COUNTS = ("clips", "generator_steps", "samples_seen", "parameters")
BUDGET_COLUMNS = ("dataset", "method", "seed", "splits", *BUDGET_COUNTS, "wall_time_s")
BUDGET_HEADERS = ("Dataset", "Method", "Seed", "Splits", "Training clips", "Generator steps", "Samples seen",
                  "Parameters", "Wall time (s)")
WALL_TIME_HEADER = "Wall time (s)"   # differs run to run: tests/test_fresh_repro.py masks this column


def load_budget(path: Path) -> dict:
    """One train-<dataset>-<method>-seed<s>.json; DatasetError names the file and what it lacks."""
    try:
        raw = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    expected = "an object with string 'dataset' and 'method', integer 'seed', a list 'splits' and integer " \
               f"{', '.join(repr(k) for k in BUDGET_COUNTS)} (>= 0)"
    if not isinstance(raw, dict) or not isinstance(raw.get("dataset"), str) or not isinstance(raw.get("method"), str) \
            or not isinstance(raw.get("splits"), list) or not all(isinstance(s, str) for s in raw["splits"]) \
            or any(not isinstance(raw.get(k), int) or isinstance(raw.get(k), bool) or raw[k] < 0
                   for k in ("seed", *BUDGET_COUNTS)):
        raise DatasetError(f"{path}: expected {expected}")
    name = train_metrics_path(raw["dataset"], raw["method"], raw["seed"]).name
    if Path(path).name != name:
        raise DatasetError(f"{path}: holds dataset {raw['dataset']!r}, method {raw['method']!r}, seed {raw['seed']}: "
                           f"expected the name {name}")
    return {k: raw[k] for k in ("dataset", "method", "seed", "splits", *BUDGET_COUNTS)}


def load_budgets(folder: Path = METRICS_DIR, seeds: Optional[list[int]] = None) -> list[dict]:
    """Every train JSON of the listed seeds (None: all), sorted by dataset, method, seed."""
    budgets = [load_budget(path) for path in sorted(Path(folder).glob("train-*.json"))]
    budgets = [b for b in budgets if seeds is None or b["seed"] in seeds]
    return sorted(budgets, key=lambda b: (b["dataset"], b["method"], b["seed"]))


def train_wall_times() -> dict[tuple[str, str, int], float]:
    """(dataset, method, seed) -> seconds, start to end, of the newest finished train run in MLflow."""
    found = tracking.latest_run_seconds("train@", ("dataset", "method", "seed"))
    return {(d, m, int(s)): seconds for (d, m, s), seconds in found.items() if s.isdigit()}


def budget_frame(budgets: list[dict], wall_times: dict[tuple[str, str, int], float]):
    """One row per dataset, method and training seed (not pooled: each seed is its own training
    run, and a budget is what one run spent); wall time None where MLflow has no finished run."""
    import pandas as pd
    records = [{**b, "splits": "+".join(b["splits"]) or "-",
                "wall_time_s": (round(wall_times[key], 1) if (key := (b["dataset"], b["method"], b["seed"]))
                                in wall_times else None)} for b in budgets]
    return pd.DataFrame.from_records(records, columns=list(BUDGET_COLUMNS))


def budget_markdown(frame, profile: str, run_key: str = "") -> str:
    import pandas as pd
    lines = [f"### Training budget per method and training seed, profile `{profile}`", "",
             "From each train stage's reports/metrics/train-<dataset>-<method>-seed<s>.json: the training "
             "splits, the distinct training clips the method drew from, its generator training steps, the "
             "samples seen (steps x batch) and the parameters of the generator(s) that make the test videos. "
             "One row per training seed, not pooled: a budget is what one run spent. Wall time: start to end "
             "of the train stage's newest finished MLflow run (\"n/a\": the store has none; a stage resumed "
             "after a kill counts only its last run); it differs from run to run and machine to machine, so "
             "it is not part of the report key.", "",
             "| " + " | ".join(BUDGET_HEADERS) + " |", "|" + " --- |" * len(BUDGET_HEADERS)]
    for r in frame.to_dict("records"):
        wall = "n/a" if pd.isna(r["wall_time_s"]) else f"{r['wall_time_s']:.1f}"
        lines.append(f"| {r['dataset']} | {r['method']} | {r['seed']} | {r['splits']} | "
                     + " | ".join(f"{int(r[k]):,}" for k in BUDGET_COUNTS) + f" | {wall} |")
    if frame.empty:
        lines.append("")
        lines.append("No train-*.json in reports/metrics: rerun the train stages (`dvc repro`).")
    if run_key:
        lines += ["", f"MLflow: the table `budget.json` of the `report` run in `{tracking.EXPERIMENT}`; search "
                      f"`tags.report_key = '{run_key}'`."]
    return "\n".join(lines) + "\n"


def write_budget(frame, profile: str, folder: Path, run_key: str = "") -> list[Path]:
    md, csv = folder / "budget.md", folder / "budget.csv"
    md.write_text(budget_markdown(frame, profile, run_key))
    frame.to_csv(csv, index=False, lineterminator="\n")
    return [md, csv]


# ---------------------------------------------------------------------------------------------
# The whole report.

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


GENERATED_DIR = Path("data/generated")   # the generate stage's videos, for the qualitative grids


def qualitative_figures(params: Params, tables: list[Table], folder: Path,
                        generated_dir: Path = GENERATED_DIR) -> list[Path]:
    """Figure 6 (faces, Table 1's methods) and Figure 8 (people, Table 3's methods) as grids of
    frames; a dataset that is not prepared here gives no grid (said on stdout)."""
    from frgan.paths import conditions_path, store_path
    from pipelines.qualitative import FIGURE_OF, plot_grid
    from frgan.task import load_task
    written = []
    for table in tables:
        if table.spec.number not in (1, 3):
            continue
        task_kind = table.spec.columns[0].task
        dataset = table.datasets[task_kind]
        if dataset is None:   # report.<kind>_dataset: null
            continue
        if not (Path(store_path(dataset)).is_dir() and Path(conditions_path(dataset)).is_dir()):
            print(f"report: no qualitative grid for {dataset}: {store_path(dataset)} or "
                  f"{conditions_path(dataset)} is missing")
            continue
        # the paper's Figures 6 and 8 show methods: neither the real videos nor the floor
        labels = {row.method: row.label for row in table.spec.rows if not row.reference and not row.floor}
        path = folder / f"qualitative-{task_kind}.png"
        seed = params.train.seeds[0]
        title = (f"Figure {FIGURE_OF[task_kind]}-style samples, Table {table.spec.number}'s methods, "
                 f"on {DATASET_TITLES.get(dataset, dataset)}, profile {params.profile}, training seed {seed}")
        plot_grid(load_task(params, dataset), labels, generated_dir, title, path, seed)
        written.append(path)
    return written


def write_report(evaluations: Evaluations, published: dict, profile: str, faces_dataset: str,
                 actors_dataset: str, tables_dir: Path = TABLES_DIR, figures_dir: Path = FIGURES_DIR,
                 plots_dir: Path = PLOTS_DIR, run_key: str = "", params: Optional[Params] = None,
                 answers_csv: Path = Path("reports/study/answers.csv"),
                 results: Optional[Results] = None, budget=None) -> tuple[list[Table], list[Path]]:
    """Tables, findings and figures, each folder replaced atomically; returns the tables and files.
    With `params`, the qualitative grids too (they read the prepared data and generated videos);
    with `budget` (budget_frame), budget.md and budget.csv."""
    from pipelines import study
    tables = build_tables(published, evaluations, faces_dataset, actors_dataset, results)
    with atomic_dir(tables_dir) as tmp:
        names = [p.name for p in write_tables(tables, profile, tmp, run_key, results)]
        # Table 2 comes from people: the answers `python -m pipelines.study tally` exported
        (tmp / "table2.md").write_text(study.table2_markdown(answers_csv, published, faces_dataset))
        names.append("table2.md")
        if budget is not None:
            names += [p.name for p in write_budget(budget, profile, tmp, run_key)]
    with atomic_dir(figures_dir) as tmp:
        figure_names = [p.name for p in write_figures(tables, evaluations, faces_dataset, actors_dataset,
                                                      profile, tmp, plots_dir)]
        if params is not None:
            figure_names += [p.name for p in qualitative_figures(params, tables, tmp)]
    return tables, [tables_dir / n for n in names] + [figures_dir / n for n in figure_names]


def _table_metrics(tables: list[Table]) -> dict[str, float]:
    """'table<n>/<method>/<metric>' -> reproduced mean: the headline numbers logged to MLflow."""
    return {f"table{t.spec.number}/{row.method}/{column.metric}": cell.reproduced.mean
            for t in tables for row in t.spec.rows for column in t.spec.columns
            for cell in [t.cells[(row.label, column.label)]] if cell.reproduced is not None}


def report_key(params: Params, metrics_dir: Path = METRICS_DIR, plots_dir: Path = PLOTS_DIR,
               published_path: Path = PUBLISHED, answers_csv: Path = Path("reports/study/answers.csv"),
               videos_dir: Path = VIDEOS_DIR) -> str:
    """sha256 (16 hex) of everything the report is made from: the evaluate and train results, the
    per-frame and per-video CSVs, the published numbers, the report's params and this module's code
    (not the budget's wall times, read from MLflow: they differ on every rerun). Equal
    keys, equal report: a rerun with nothing changed logs no new MLflow runs."""
    import hashlib
    digest = hashlib.sha256()
    # train-*.json: the budget table's counts (its wall times come from MLflow and are not hashed)
    for path in [*sorted(Path(metrics_dir).glob("evaluate-*.json")), *sorted(Path(metrics_dir).glob("train-*.json")),
                 *sorted(Path(plots_dir).glob("evaluate-*.csv")),
                 *sorted(Path(videos_dir).glob("evaluate-*.csv")),
                 Path(published_path), Path(__file__), Path(answers_csv)]:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(json.dumps({"profile": params.profile, "seed": params.seed, "seeds": params.train.seeds,
                              **params.report.model_dump(mode="json")}, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _method_run(table: Table, row: Row, evaluations: Evaluations, run_key: str, plots_dir: Path) -> None:
    """One run per method and table, with the same metric keys in every run of the table."""
    import pandas as pd
    tags = {"table": str(table.spec.number), "method": row.method, "row": row.label, "report_key": run_key,
            **{f"dataset_{task}": str(name) for task, name in table.datasets.items()
               if any(c.task == task for c in table.spec.columns)}}
    with tracking.child_run(row.label, table_experiment(table.spec.number), tags):
        metrics, published = {}, {}
        for column in table.spec.columns:
            cell = table.cells[(row.label, column.label)]
            published[f"published.{column.metric}"] = "-" if cell.published is None else cell.published
            if cell.reproduced is not None:
                metrics.update({column.metric: cell.reproduced.mean, f"{column.metric}_low": cell.reproduced.low,
                                f"{column.metric}_high": cell.reproduced.high})
        tracking.log_params(published)
        tracking.log_metrics(metrics)
        for dataset in sorted({table.datasets[c.task] for c in table.spec.columns} - {None}):
            if (dataset, row.method) not in evaluations:
                continue
            sources = [Path(plots_dir) / f"{result_name(dataset, row.method, seed)}.csv"
                       for seed in table.seeds.get((dataset, row.method), [])]
            parts = [pd.read_csv(p).assign(seed=seed_of_name(p.stem)) for p in sources if p.is_file()]
            if parts:   # the per-frame scores of every seed, one table
                tracking.log_dataset_input(pd.concat(parts, ignore_index=True), name=dataset,
                                           source=", ".join(str(p) for p in sources), context="evaluation")


def log_tables(tables: list[Table], evaluations: Evaluations, files: list[Path], run_key: str,
               plots_dir: Path = PLOTS_DIR) -> None:
    """Per table: an experiment, a run `table <n>` holding the table (log_table) and its figures,
    and under it one run per method that has results."""
    for table in tables:
        number = table.spec.number
        with tracking.child_run(f"table {number}", table_experiment(number),
                                {"table": str(number), "report_key": run_key}):
            tracking.log_table(table_frame(table), f"table{number}.json")
            for path in files:
                if path.name.startswith(f"table{number}."):
                    tracking.log_artifact(path)
            for row in table.spec.rows:
                if any(table.cells[(row.label, c.label)].reproduced is not None for c in table.spec.columns):
                    _method_run(table, row, evaluations, run_key, plots_dir)


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
            tracking.log_metrics(_table_metrics(tables))
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
