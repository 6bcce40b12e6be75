"""check: the regression gate CI runs after `dvc repro` (also `make check`).

    python -m pipelines.check            # both gates; exit 1 when a number fails, with a table of what moved
    python -m pipelines.check --update   # accept the current smoke numbers: rewrite the baseline, print the diff

The published gate compares the reproduced cells on MUG/Penn with reports/published.yaml; the
smoke gate compares every headline number at the smoke profile with this kind of machine's numbers
in reports/expected/smoke.json. A gate that does not apply (other profile, synthetic data, a kind
of machine without numbers) says so and why; it never passes silently. What each gate compares
and its tolerances: reporting/gate.py.
"""
from __future__ import annotations

import sys
from typing import Optional

from frgan.config import Params
from pipelines import _stage
from reporting.gate import (BASELINE, BASELINE_PROFILE, Comparison, NoBaselineHere, published_gate, smoke_gate,
                            update_baseline)


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


def cli() -> None:
    """The command line (`python -m pipelines.check`, the `frgan-check` console script)."""
    p = _stage.parser(__doc__.splitlines()[0])
    p.add_argument("--update", action="store_true", help=f"rewrite {BASELINE} from the current smoke numbers")
    p.add_argument("--verbose", action="store_true", help="list every number, not only failures and new ones")
    _stage.run(main, p, registry=False)


if __name__ == "__main__":
    cli()
