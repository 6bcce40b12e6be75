"""The training budget table (budget.md/csv): what each method's train stage spent
(reports/metrics/train-*.json) and how long it took (the train stage's MLflow run).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from frgan import tracking
from frgan.data.errors import DatasetError
from frgan.paths import METRICS_DIR, train_metrics_path


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
