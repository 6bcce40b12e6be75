"""The regression gates' logic; `python -m pipelines.check` runs them and prints the outcome.

(a) Published gate, real datasets only (mug, penn: the paper's numbers are theirs): each reproduced
    cell of Tables 1, 3 and 4 passes when the published value lies inside its 95% bootstrap
    interval or within report.published_rel_tolerance * |published| of its mean.
(b) Smoke gate, smoke profile only: each headline number of the evaluate JSONs (top-level means,
    seeds pooled) fails when |new - old| > report.abs_tolerance + report.rel_tolerance * |old| or
    when it is gone; one not in reports/expected/smoke.json is listed but passes. The baseline
    holds numbers per kind of machine (`machine_fingerprint`): the float kernels differ between
    CPUs and the short adversarial training amplifies the last bits (a Xeon and an EPYC, same
    torch: 29 of 112 numbers 5-300% apart), so a kind is compared with its own numbers only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from frgan.config import Params
from frgan.data.errors import DatasetError
from frgan.io import atomic_file
from frgan.paths import METRICS_DIR
from reporting.results import Evaluations, load_evaluations, load_published
from reporting.tables import build_tables

BASELINE = Path("reports/expected/smoke.json")
MACHINE = Path("reports/expected/machine.json")   # the kind of machine that wrote the committed results
BASELINE_PROFILE = "smoke"
REAL_DATASETS = ("mug", "penn")


@dataclass(frozen=True)
class Comparison:
    name: str                 # e.g. "actors-synth/frgan/mse" or "table 3 / FRGAN / MSE"
    expected: Optional[float]  # baseline or published value; None: not in the baseline
    current: Optional[float]   # None: gone
    allowed: float             # the largest |current - expected| that passes
    passed: bool
    note: str = ""

    @property
    def change(self) -> str:
        if self.expected is None or self.current is None:
            return "new" if self.expected is None else "gone"
        if not self.expected:
            return f"{self.current - self.expected:+.3g}"
        return f"{(self.current - self.expected) / abs(self.expected):+.1%}"


# (b) The smoke gate.

def headline_numbers(evaluations: Evaluations) -> dict[str, float]:
    """'<dataset>/<method>/<metric>' -> mean, for every top-level (not per-class) metric."""
    return {f"{dataset}/{method}/{key}": s.mean
            for (dataset, method), scores in sorted(evaluations.items())
            for key, s in sorted(scores.items()) if "/" not in key}


def compare_to_baseline(baseline: dict[str, float], current: dict[str, float], rel: float,
                        abs_: float) -> list[Comparison]:
    rows = []
    for name in sorted(set(baseline) | set(current)):
        old, new = baseline.get(name), current.get(name)
        if old is None:
            rows.append(Comparison(name, None, new, 0.0, True, "not in the baseline"))
        else:
            allowed = abs_ + rel * abs(old)
            rows.append(Comparison(name, old, new, allowed, new is not None and abs(new - old) <= allowed))
    return rows


def read_baselines(path: Path = BASELINE) -> list[dict]:
    """Every machine kind's entry of the baseline file: [{"machine": {...}, "metrics": {name: number}}]."""
    try:
        raw = json.loads(Path(path).read_text())
        return [{"machine": {str(k): str(v) for k, v in entry["machine"].items()},
                 "metrics": {str(k): float(v) for k, v in entry["metrics"].items()}} for entry in raw["machines"]]
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing; create it with `python -m pipelines.check --update` "
                           "after a smoke-profile `dvc repro`") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise DatasetError(f"{path}: expected JSON with a `machines` list of {{machine, metrics}} objects "
                           "(metrics: numbers)") from None


def read_baseline(path: Path = BASELINE, machine: Optional[dict[str, str]] = None) -> Optional[dict[str, float]]:
    """The numbers of `machine`'s kind (default: this machine's), or None when the file has none."""
    machine = machine_fingerprint() if machine is None else machine
    return next((entry["metrics"] for entry in read_baselines(path) if entry["machine"] == machine), None)


def machine_fingerprint() -> dict[str, str]:
    """What decides the float bits of a CPU run: CPU model, SIMD level torch dispatches to, torch
    build and thread count. Same fingerprint, same bytes (tests/test_fresh_repro.py checks it)."""
    import platform
    import torch
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
    except OSError:
        model = platform.processor() or "unknown"
    return {"cpu": model, "simd": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "threads": str(torch.get_num_threads())}


def write_baseline(numbers: dict[str, float], path: Path = BASELINE,
                   machine: Optional[dict[str, str]] = None) -> None:
    """Set the numbers of `machine`'s kind (default: this machine's); other kinds' are kept."""
    machine = machine_fingerprint() if machine is None else machine
    others = [e for e in read_baselines(path) if e["machine"] != machine] if Path(path).exists() else []
    entries = sorted([*others, {"machine": machine, "metrics": {k: round(v, 6) for k, v in sorted(numbers.items())}}],
                     key=lambda e: json.dumps(e["machine"], sort_keys=True))
    payload = {
        "profile": BASELINE_PROFILE,
        "note": "Headline numbers of every evaluate JSON at the smoke profile, per kind of machine (the "
                "float kernels differ between CPUs; see pipelines/check.py). Checked by `python -m "
                "pipelines.check`; rewrite on purpose with `python -m pipelines.check --update` (this "
                "machine's kind only) and commit it with the change that moved them.",
        "machines": [{"machine": dict(sorted(e["machine"].items())), "metrics": e["metrics"]} for e in entries],
    }
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")


class NoBaselineHere(Exception):
    """The baseline file holds no numbers for this kind of machine: the gate cannot judge."""


def _current_numbers(params: Params, metrics_dir: Path) -> dict[str, float]:
    current = headline_numbers(load_evaluations(metrics_dir, bootstrap_seed=params.seed, seeds=params.train.seeds))
    if not current:
        raise DatasetError(f"{metrics_dir}: no evaluate-*.json results; run `dvc repro` first")
    return current


def smoke_gate(params: Params, metrics_dir: Path = METRICS_DIR, baseline_path: Path = BASELINE,
               machine: Optional[dict[str, str]] = None) -> Optional[list[Comparison]]:
    """Every headline number against the baseline of `machine`'s kind (default: this machine's);
    None when the profile is not smoke. Raises NoBaselineHere when that kind has no numbers."""
    if params.profile != BASELINE_PROFILE:
        return None
    current = _current_numbers(params, metrics_dir)
    machine = machine_fingerprint() if machine is None else machine
    baseline = read_baseline(baseline_path, machine)
    if baseline is None:
        kinds = [e["machine"]["cpu"] for e in read_baselines(baseline_path)]
        raise NoBaselineHere(f"{baseline_path} holds no numbers for this kind of machine {machine} (it has "
                             f"{kinds}); smoke numbers differ between CPUs, so they are not compared here. "
                             "`make refresh UPDATE=1` on this machine adds its numbers")
    return compare_to_baseline(baseline, current, params.report.rel_tolerance, params.report.abs_tolerance)


def update_baseline(params: Params, metrics_dir: Path = METRICS_DIR, path: Path = BASELINE) -> list[Comparison]:
    """Rewrite this machine kind's numbers and MACHINE beside them from the current smoke numbers; what changed."""
    if params.profile != BASELINE_PROFILE:
        raise DatasetError(f"--update: {path} holds `{BASELINE_PROFILE}` numbers but params.yaml has "
                           f"profile `{params.profile}`")
    current = _current_numbers(params, metrics_dir)
    old = (read_baseline(path) if Path(path).exists() else None) or {}
    changed = [Comparison(r.name, r.expected, r.current, 0.0, True, "updated")
               for r in compare_to_baseline(old, current, 0.0, 0.0)
               if r.expected is None or r.current is None or round(r.current, 6) != r.expected]
    write_baseline(current, path)
    with atomic_file(Path(path).parent / MACHINE.name) as tmp:
        tmp.write_text(json.dumps(machine_fingerprint(), indent=2, sort_keys=True) + "\n")
    return changed


# (a) The published gate.

def published_gate(params: Params, metrics_dir: Path = METRICS_DIR) -> Optional[list[Comparison]]:
    """Reproduced cells on MUG/Penn against the paper; None when both datasets are synthetic."""
    report = params.report
    datasets = {"faces": report.faces_dataset, "actors": report.actors_dataset}
    if not any(name in REAL_DATASETS for name in datasets.values()):
        return None
    rel, published = report.published_rel_tolerance, load_published()
    evaluations = load_evaluations(metrics_dir, bootstrap_seed=params.seed, seeds=params.train.seeds)
    tables = build_tables(published, evaluations, faces_dataset=datasets["faces"], actors_dataset=datasets["actors"])
    rows = []
    for table in tables:
        for column in table.spec.columns:
            if datasets[column.task] not in REAL_DATASETS:
                continue
            for row in table.spec.rows:
                cell = table.cells[(row.label, column.label)]
                if cell.published is None:
                    continue
                name = f"table {table.spec.number} / {row.label} / {column.label}"
                allowed = rel * abs(cell.published)
                if cell.reproduced is None:
                    rows.append(Comparison(name, cell.published, None, allowed, False, cell.status))
                else:
                    inside = cell.reproduced.low <= cell.published <= cell.reproduced.high
                    close = abs(cell.reproduced.mean - cell.published) <= allowed
                    rows.append(Comparison(name, cell.published, cell.reproduced.mean, allowed, inside or close,
                                           "published inside the 95% interval" if inside else ""))
    return rows
