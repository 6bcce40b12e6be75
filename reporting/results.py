"""The report's inputs: the published numbers (reports/published.yaml) and the evaluate JSONs,
with several training seeds of a method pooled (mean of the seed means, two-level bootstrap
interval: metrics/stats.py).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from frgan.data.errors import DatasetError
from frgan.paths import METRICS_DIR, REFERENCE, VIDEOS_DIR, result_name
from reporting.layout import DECIMALS, PUBLISHED

MAX_DECIMALS = 6   # the evaluate JSONs keep 6


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def text(self) -> str:
        digits = self.decimals()
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"

    def decimals(self) -> int:
        """The paper's DECIMALS, or where the half-width would print as 0 at them (faces-synth's
        pixel errors: MSE ~0.0007 ± 0.0003), enough for its first two significant digits."""
        if 0 < self.half_width < 0.5 * 10.0 ** -DECIMALS:
            return min(MAX_DECIMALS, 1 - math.floor(math.log10(self.half_width)))
        return DECIMALS


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
