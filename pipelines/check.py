"""check: the regression gate CI runs after `dvc repro` (also `make check`).

    python -m pipelines.check            # both gates; exit 1 when a number fails, with a table of what moved
    python -m pipelines.check --update   # accept the current smoke numbers: rewrite the baseline, print the diff

(a) Published gate, for runs on the real datasets (report.faces_dataset = mug and/or
    report.actors_dataset = penn): every reproduced cell of Tables 1, 3 and 4 against
    reports/published.yaml. A cell passes when the published value lies inside the reproduced
    95% bootstrap interval, or when |reproduced - published| <= report.published_rel_tolerance *
    |published|. Cells of synthetic datasets are never compared with the paper: the paper's
    numbers are MUG and Penn Action numbers.
(b) Smoke gate, at the smoke profile: every headline number of every evaluate JSON
    (reports/metrics/evaluate-<dataset>-<method>-seed<s>.json, top-level means, seeds pooled) against the committed
    reports/expected/smoke.json. A number fails when |new - old| > report.abs_tolerance +
    report.rel_tolerance * |old|, or when it disappeared. A number that is new (not in the
    baseline) is listed but does not fail.
    The baseline holds one set of numbers per kind of machine (`machine_fingerprint`: CPU model,
    SIMD level, torch build, threads). The float kernels differ between CPUs, and the smoke
    profile's short adversarial training amplifies the last bits into different runs: between an
    Intel Xeon and an AMD EPYC (both AVX-512, same torch) 29 of 112 numbers moved by 5-300%, with
    the code unchanged. So each kind is compared with its own numbers only; on a kind with none,
    the gate says it cannot judge (and how to add them: `make refresh UPDATE=1` there).
A gate that does not apply (other profile, synthetic data) says so and why; it never passes
silently.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from frgan.config import Params
from frgan.data.errors import DatasetError
from frgan.io import atomic_file
from pipelines import _stage
from pipelines.report import METRICS_DIR, Evaluations, build_tables, load_evaluations, load_published

BASELINE = Path("reports/expected/smoke.json")
MACHINE = Path("reports/expected/machine.json")   # the kind of machine that wrote the baseline
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


def _num(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.6g}"


def comparison_table(rows: list[Comparison], expected_label: str) -> str:
    """A fixed-width table a reader can scan in a CI log."""
    header = ("number", expected_label, "current", "change", "allowed |diff|", "result")
    body = [(r.name, _num(r.expected), _num(r.current), r.change, f"{r.allowed:.3g}",
             ("ok" if r.passed else "FAIL") + (f" ({r.note})" if r.note else "")) for r in rows]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths)),
                      *(fmt.format(*line) for line in body)])


# ---------------------------------------------------------------------------------------------
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
            continue
        allowed = abs_ + rel * abs(old)
        passed = new is not None and abs(new - old) <= allowed
        rows.append(Comparison(name, old, new, allowed, passed))
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
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
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


def smoke_gate(params: Params, metrics_dir: Path = METRICS_DIR, baseline_path: Path = BASELINE,
               machine: Optional[dict[str, str]] = None) -> Optional[list[Comparison]]:
    """Every headline number against the baseline of `machine`'s kind (default: this machine's);
    None when the profile is not smoke. Raises NoBaselineHere when that kind has no numbers."""
    if params.profile != BASELINE_PROFILE:
        return None
    current = headline_numbers(load_evaluations(metrics_dir, bootstrap_seed=params.seed, seeds=params.train.seeds))
    if not current:
        raise DatasetError(f"{metrics_dir}: no evaluate-*.json results; run `dvc repro` first")
    machine = machine_fingerprint() if machine is None else machine
    baseline = read_baseline(baseline_path, machine)
    if baseline is None:
        kinds = [e["machine"]["cpu"] for e in read_baselines(baseline_path)]
        raise NoBaselineHere(f"{baseline_path} holds no numbers for this kind of machine {machine} (it has "
                             f"{kinds}); smoke numbers differ between CPUs, so they are not compared here. "
                             "`make refresh UPDATE=1` on this machine adds its numbers")
    return compare_to_baseline(baseline, current, params.report.rel_tolerance, params.report.abs_tolerance)


# ---------------------------------------------------------------------------------------------
# (a) The published gate.

def published_gate(params: Params, metrics_dir: Path = METRICS_DIR) -> Optional[list[Comparison]]:
    """Reproduced cells on MUG/Penn against the paper; None when both datasets are synthetic."""
    report = params.report
    datasets = {"faces": report.faces_dataset, "actors": report.actors_dataset}
    if not any(name in REAL_DATASETS for name in datasets.values()):
        return None
    rel = report.published_rel_tolerance
    tables = build_tables(load_published(), load_evaluations(metrics_dir, bootstrap_seed=params.seed, seeds=params.train.seeds), **{
        "faces_dataset": datasets["faces"], "actors_dataset": datasets["actors"]})
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
                    continue
                inside = cell.reproduced.low <= cell.published <= cell.reproduced.high
                close = abs(cell.reproduced.mean - cell.published) <= allowed
                rows.append(Comparison(name, cell.published, cell.reproduced.mean, allowed, inside or close,
                                       "published inside the 95% interval" if inside else ""))
    return rows


# ---------------------------------------------------------------------------------------------
# The command.

def _report_gate(title: str, rows: Optional[list[Comparison]], skipped: str, expected_label: str,
                 show_all: bool) -> int:
    """Print one gate's outcome; return its number of failures."""
    if rows is None:
        print(f"{title}: skipped, {skipped}")
        return 0
    failed = [r for r in rows if not r.passed]
    shown = rows if show_all else [r for r in rows if not r.passed or r.note == "not in the baseline"]
    print(f"{title}: {len(rows) - len(failed)} of {len(rows)} numbers pass")
    if shown:
        print(comparison_table(shown, expected_label))
    return len(failed)


def update_baseline(params: Params, metrics_dir: Path = METRICS_DIR, path: Path = BASELINE) -> list[Comparison]:
    """Rewrite the baseline from the current smoke numbers; return what changed."""
    if params.profile != BASELINE_PROFILE:
        raise DatasetError(f"--update: {path} holds `{BASELINE_PROFILE}` numbers but params.yaml has "
                           f"profile `{params.profile}`")
    current = headline_numbers(load_evaluations(metrics_dir, bootstrap_seed=params.seed, seeds=params.train.seeds))
    if not current:
        raise DatasetError(f"{metrics_dir}: no evaluate-*.json results; run `dvc repro` first")
    old = (read_baseline(path) if Path(path).exists() else None) or {}
    changed = [Comparison(r.name, r.expected, r.current, 0.0, True, "updated")
               for r in compare_to_baseline(old, current, 0.0, 0.0)
               if r.expected is None or r.current is None or round(r.current, 6) != r.expected]
    write_baseline(current, path)
    with atomic_file(Path(path).parent / MACHINE.name) as tmp:
        tmp.write_text(json.dumps(machine_fingerprint(), indent=2, sort_keys=True) + "\n")
    return changed


def main(params: Params, args) -> None:
    if args.update:
        changed = update_baseline(params)
        print(f"check --update: wrote this kind of machine's numbers in {BASELINE}; {len(changed)} number(s) changed")
        if changed:
            print(comparison_table(changed, "old"))
        return
    failures = _report_gate(
        "published gate (Tables 1, 3, 4 vs reports/published.yaml)", published_gate(params),
        f"report.faces_dataset = {params.report.faces_dataset} and report.actors_dataset = "
        f"{params.report.actors_dataset} are synthetic stand-ins; the paper's numbers are MUG/Penn numbers",
        "published", args.verbose)
    try:
        smoke, skipped = smoke_gate(params), f"params.yaml profile is `{params.profile}`; {BASELINE} holds `{BASELINE_PROFILE}` numbers"
    except NoBaselineHere as exc:
        smoke, skipped = None, f"cannot judge: {exc}"
    failures += _report_gate(f"smoke gate (evaluate results vs {BASELINE})", smoke, skipped, "baseline", args.verbose)
    if failures:
        print(f"error: {failures} number(s) failed the gate (table above); if the change is intended, "
              f"run `python -m pipelines.check --update` and commit {BASELINE}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    p = _stage.parser(__doc__.splitlines()[0])
    p.add_argument("--update", action="store_true", help=f"rewrite {BASELINE} from the current smoke numbers")
    p.add_argument("--verbose", action="store_true", help="list every number, not only failures and new ones")
    _stage.run(main, p, registry=False)
