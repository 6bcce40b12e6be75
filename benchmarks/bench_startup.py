"""What every DVC stage pays before and beside its work, measured where a stage waits for it.

A stage is a fresh `python -m pipelines.<stage>` process. On its own path it imports its
modules (torch, pandas, ...); MLflow's import and the opening of its SQLite run happen in the
tracking helper, a process the stage starts first thing and that runs beside those imports
(frgan.tracking.prestart). So summing import and MLflow times no longer says what a stage waits
for. What does: the wall time of a stage that has no work, and the smoke graph has four, the
copy-input method's train and generate stages (they read params and the test items and write
their outs; no network, no training). Their wall times come from the newest end-to-end record
(benchmarks/e2e_repro.py: `make bench-repro`, or its --force run), each stage timed by DVC's own
command wrapper.

Measured here, as the breakdown of that figure (each the best of a few fresh processes, cwd =
the repository): the bare interpreter, `import torch`, `import pipelines.<stage>` for every
stage kind, and `python -X importtime`'s top-level imports of `pipelines.train`.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from benchmarks.e2e_repro import FORCED_JSON, OUT, PLAIN_JSON
from benchmarks.harness import ROOT, row

STAGE_KINDS = ("prepare", "conditions", "train", "generate", "evaluate", "reference", "report")
NO_WORK = "copy-input"   # the method whose train and generate stages do no work
ROUNDS = int(os.environ.get("FRGAN_BENCH_STARTUP_ROUNDS", "2"))


def _wall(args: list[str], env: dict, rounds: int = ROUNDS) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


def _top_imports(env: dict, module: str, n: int = 8) -> list[tuple[str, float]]:
    """Root packages (no dot in the name) by the cumulative time of their import, wherever in
    the tree they were first imported (nested ones overlap: torch includes numpy)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stderr
    top: dict[str, float] = {}
    for line in out.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and "." not in m.group(4) and not m.group(4).startswith("_") and m.group(4) != module:
            top[m.group(4)] = max(top.get(m.group(4), 0.0), int(m.group(2)) / 1e6)
    return sorted(top.items(), key=lambda kv: -kv[1])[:n]


def newest_repro_record() -> dict | None:
    """The newest of the plain and the --force end-to-end records (by their date), or None."""
    records = [json.loads(p.read_text()) for p in (OUT / PLAIN_JSON, OUT / FORCED_JSON) if p.exists()]
    return max(records, key=lambda r: r["date"]) if records else None


def no_work_stages(record: dict) -> dict[str, float]:
    """stage name -> wall s of the train and generate stages of NO_WORK in a repro record."""
    return {s["stage"]: s["wall_s"] for s in record["fresh"]["stages"]
            if s["stage"].split("@")[0] in ("train", "generate") and f"-{NO_WORK}-" in s["stage"]}


def test_stage_startup(benchmark, record):
    env = dict(os.environ)
    py = sys.executable
    figures: dict = {}
    figures["python_s"] = benchmark.pedantic(lambda: _wall([py, "-c", "pass"], env), rounds=1, iterations=1)
    figures["import_torch_s"] = _wall([py, "-c", "import torch"], env)
    figures["import_stage_s"] = {s: _wall([py, "-c", f"import pipelines.{s}"], env) for s in STAGE_KINDS}
    figures["top_imports_of_pipelines_train_s"] = dict(_top_imports(env, "pipelines.train"))
    top = ", ".join(f"{k} {v:.1f}" for k, v in list(figures["top_imports_of_pipelines_train_s"].items())[:4])
    breakdown = (f"on the stage's path: import pipelines.train {figures['import_stage_s']['train']:.1f} s (top: "
                 f"{top}), pipelines.generate {figures['import_stage_s']['generate']:.1f} s; bare interpreter "
                 f"{figures['python_s']:.2f} s; MLflow's import and run: in the helper beside these")
    repro = newest_repro_record()
    walls = no_work_stages(repro) if repro else {}
    if not walls:
        record("startup", **figures, summary=[row(
            "Fixed cost of one stage process", f"not measured: no {NO_WORK} stages in an end-to-end record "
            f"(run `make bench-repro` first); {breakdown}", "(none)", None, None, order=11)])
        return
    per_stage = sum(walls.values()) / len(walls)
    n_stages, total = repro["fresh"]["n_stages"], repro["fresh"]["wall_s"]
    figures.update(no_work_stage_wall_s=walls, fixed_cost_per_stage_s=per_stage, repro_record=repro["date"],
                   repro_commit=repro["commit"], repro_stages=n_stages,
                   fixed_cost_all_stages_s=per_stage * n_stages, share_of_repro=per_stage * n_stages / total)
    each = ", ".join(f"{name.split(f'-{NO_WORK}-')[0]} {wall:.1f}" for name, wall in sorted(walls.items()))
    record("startup", **figures, summary=[
        row(f"Fixed cost of one stage process: the wall time of a stage with no work ({NO_WORK}'s train and "
            f"generate stages in the fresh repro of {repro['date']})",
            f"{per_stage:.1f} s (mean of {each}); {breakdown}", "(none)", None, None, order=11),
        row(f"Fixed cost x {n_stages} stages of that repro",
            f"{per_stage * n_stages:.0f} s, {per_stage * n_stages / total:.0%} of its {total:.0f} s",
            "(none)", None, None, order=12,
            note="every stage is a fresh process: Python, torch and the suite's modules on its path; MLflow "
                 "imported and its run opened in the tracking helper beside them (frgan.tracking.prestart); "
                 "what is left is mostly torch's import")])
