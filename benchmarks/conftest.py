"""Benchmarks: pytest-benchmark suites, run with `make bench`, never part of `make test`.
Each writes its figures as JSON under reports/benchmarks/ as well as printing them; at the end
of the session reports/benchmarks/summary.md is rebuilt from every JSON there
(benchmarks/summary.py)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

OUT = Path(__file__).resolve().parent.parent / "reports" / "benchmarks"
_STARTED = time.time()

# Files whose figures others use in the same session run first (the loader is compared with the
# training step's rate).
_FIRST = ("bench_train_steps.py",)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: 0 if item.path.name in _FIRST else 1)


def pytest_sessionfinish(session, exitstatus):
    if not session.config.getoption("collectonly", False) and session.testscollected:
        OUT.mkdir(parents=True, exist_ok=True)
        selected = sorted({item.path.name for item in session.items})
        (OUT / "session.json").write_text(json.dumps(
            {"finished": time.strftime("%Y-%m-%d %H:%M"), "seconds": time.time() - _STARTED,
             "files": selected, "tests": session.testscollected, "failed": session.testsfailed},
            indent=2) + "\n")
        from benchmarks import summary
        summary.write()


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return "{...}" if isinstance(value, dict) else "[...]"
    return str(value)


@pytest.fixture
def record():
    """record(name, **figures): save figures to reports/benchmarks/<name>.json and print them.
    A `summary` figure (a list of benchmarks.harness.row) becomes lines of summary.md."""
    def _record(name: str, **figures):
        OUT.mkdir(parents=True, exist_ok=True)
        figures.setdefault("recorded", time.strftime("%Y-%m-%d %H:%M"))
        (OUT / f"{name}.json").write_text(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")
        print(f"\n{name}: " + ", ".join(f"{k}={_short(v)}" for k, v in figures.items() if k != "summary"))
        for line in figures.get("summary", []):
            ratio = f"{line['ratio']:.3g}" if line.get("ratio") is not None else "-"
            print(f"  {line['figure']}: {line['measured']} (ratio {ratio}, target {line['target'] or '-'})")
    return _record
