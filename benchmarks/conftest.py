"""Benchmarks: pytest-benchmark suites, run with `make bench`, never part of `make test`.
Each writes its figures as JSON under reports/benchmarks/ as well as printing them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

OUT = Path(__file__).resolve().parent.parent / "reports" / "benchmarks"


@pytest.fixture
def record():
    """record(name, **figures): save figures to reports/benchmarks/<name>.json and print them."""
    def _record(name: str, **figures):
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{name}.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        print(f"\n{name}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                        for k, v in figures.items()))
    return _record
