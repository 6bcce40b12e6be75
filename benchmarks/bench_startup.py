"""What every DVC stage pays before it does any work: a fresh `python -m pipelines.<stage>`
process imports its modules (torch, mlflow, pandas, ...) and opens an MLflow run on the SQLite
store. `dvc repro` starts 60 such processes (smoke, one training seed: 2 prepare, 2 conditions,
18 train, 18 generate, 18 evaluate, 1 reference, 1 report), so this fixed cost is multiplied by 60
(each further seed in train.seeds adds 54).

Each figure is the best of a few fresh processes (cwd = the repository, MLFLOW_TRACKING_URI = a
SQLite file in a temporary folder): interpreter alone, `import torch`, `import mlflow`,
`import pipelines.<stage>` for every stage, and tracking.start_run + end (first run on a new
store, which creates its tables, and a run on an existing store). `python -X importtime` gives
the top-level imports of `pipelines.train` by cumulative time.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from benchmarks.e2e_repro import every_stage_record
from benchmarks.harness import ROOT, row

STAGES = {"prepare": 2, "conditions": 2, "train": 18, "generate": 18, "evaluate": 18, "reference": 1, "report": 1}
ROUNDS = int(os.environ.get("FRGAN_BENCH_STARTUP_ROUNDS", "2"))

START_RUN = r"""
import time
t0 = time.perf_counter()
from frgan import tracking
from frgan.config import load_params
params = load_params("params.yaml")
t1 = time.perf_counter()
import mlflow
t2 = time.perf_counter()
with tracking.start_run("bench-startup", params, dataset_fingerprint="none"):
    pass
t3 = time.perf_counter()
print(f"{t1 - t0} {t2 - t1} {t3 - t2}")
"""


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


def test_stage_startup(benchmark, record, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    py = sys.executable
    figures: dict = {}
    figures["python_s"] = benchmark.pedantic(lambda: _wall([py, "-c", "pass"], env), rounds=1, iterations=1)
    figures["import_torch_s"] = _wall([py, "-c", "import torch"], env)
    figures["import_mlflow_s"] = _wall([py, "-c", "import mlflow"], env)
    figures["import_stage_s"] = {s: _wall([py, "-c", f"import pipelines.{s}"], env) for s in STAGES}
    first = subprocess.run([py, "-c", START_RUN], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    again = subprocess.run([py, "-c", START_RUN], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    figures["mlflow_import_in_stage_s"] = float(again.stdout.split()[1])
    figures["mlflow_first_run_s"] = float(first.stdout.split()[2])     # creates the store's tables
    figures["mlflow_run_s"] = float(again.stdout.split()[2])
    figures["top_imports_of_pipelines_train_s"] = dict(_top_imports(env, "pipelines.train"))
    figures["top_imports_of_pipelines_evaluate_s"] = dict(_top_imports(env, "pipelines.evaluate"))
    # mlflow is imported lazily (frgan.tracking.start_run): a stage pays its import on top
    run_cost = figures["mlflow_import_in_stage_s"] + figures["mlflow_run_s"]
    per_stage = {s: figures["import_stage_s"][s] + run_cost for s in STAGES}
    total = sum(per_stage[s] * n for s, n in STAGES.items()) + figures["mlflow_first_run_s"] - figures["mlflow_run_s"]
    figures["stages_per_repro"] = STAGES
    figures["fixed_cost_per_stage_s"] = per_stage
    figures["fixed_cost_all_stages_s"] = total
    e2e_path = every_stage_record()
    e2e = json.loads(e2e_path.read_text()) if e2e_path.exists() else None
    share = ""
    if e2e is not None:
        figures["share_of_last_fresh_repro"] = total / e2e["fresh"]["wall_s"]
        share = f", {figures['share_of_last_fresh_repro']:.0%} of the last fresh repro ({e2e['fresh']['wall_s']:.0f} s)"
    top = ", ".join(f"{k} {v:.1f}" for k, v in list(figures["top_imports_of_pipelines_train_s"].items())[:5])
    record("startup", **figures, summary=[
        row("Fixed cost of one stage process: imports + MLflow run (train stage)",
            f"{per_stage['train']:.1f} s: import pipelines.train {figures['import_stage_s']['train']:.1f} "
            f"(top: {top}), import mlflow {figures['mlflow_import_in_stage_s']:.1f}, open + close the run "
            f"{figures['mlflow_run_s']:.1f} (first run on a new store {figures['mlflow_first_run_s']:.1f}); "
            f"bare interpreter {figures['python_s']:.2f}, `import torch` alone {figures['import_torch_s']:.1f}",
            "(none)", None, None, order=11),
        row(f"Fixed cost x {sum(STAGES.values())} stages of a smoke repro",
            f"{total:.0f} s{share}", "(none)", None, None, order=12,
            note="every stage is a fresh process that imports torch, mlflow, pandas, scipy... and opens an "
                 "MLflow run (SQLite: schema check, experiment lookup) before any work; proposals in the README's "
                 "Performance section")])
