"""The floor: does each method beat copying the input frame? MSE only: ACD gives the still video
a perfect 0, so only a pixel score against the true frames can say it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from frgan.paths import REFERENCE
from reporting.layout import DECIMALS, FLOOR_METHOD, NOT_RUN
from reporting.results import Results


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
