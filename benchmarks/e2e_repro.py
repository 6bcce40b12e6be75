"""End-to-end: a fresh smoke `dvc repro` in a clean clone of HEAD, then a no-op `dvc repro`.

    python -m benchmarks.e2e_repro [--work /tmp/frgan-bench-e2e] [--noop-rounds 3]   (`make bench-repro`)
    python -m benchmarks.e2e_repro --force      # every stage -> reports/benchmarks/e2e-repro-force.json

Measures, on this machine, with this repository's .venv:
* the fresh repro's wall time, the peak RSS of the whole process tree (dvc + the running stage,
  sampled every 0.2 s) and the largest single process (ru_maxrss);
* per stage: wall time of the stage command, its CPU time (user + sys, so CPU/wall says how many
  of the cores it kept busy) and its peak RSS; what is left of the total is DVC's own work
  (hashing, caching, the lock file);
* the no-op repro (nothing changed): wall time, best and median of --noop-rounds, and a check
  that no stage command ran.
A `python` wrapper first on PATH times each stage command (dvc.yaml runs `python -m
pipelines.<stage>`); the clone gets its own MLflow store (MLFLOW_TRACKING_URI, SQLite) so the
repository's mlflow.db is untouched. Writes reports/benchmarks/e2e-repro.json; the DVC log
stays in <work>/repro.log. Takes about as long as `make repro` (15 min on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "benchmarks"
# Two records: the user's path (a plain `dvc repro` in a fresh clone: DVC skips the scoring stages
# whose inputs, the videos, hash as in dvc.lock) and --force (every stage: where the time goes).
FORCED_JSON, PLAIN_JSON = "e2e-repro-force.json", "e2e-repro.json"


def every_stage_record() -> Path:
    """The record to break a repro's time down by stage: --force's (every stage ran) where one
    was measured, else the user's path."""
    forced = OUT / FORCED_JSON
    return forced if forced.exists() else OUT / PLAIN_JSON

WRAPPER = '''#!{python} -S
# benchmarks/e2e_repro.py: times one stage command, then runs it unchanged.
import json, os, resource, subprocess, sys, time
start = time.time()
rc = subprocess.call([{python!r}] + sys.argv[1:])
end = time.time()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open({log!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "start": start, "end": end, "rc": rc,
                         "maxrss_mb": ru.ru_maxrss / 1024, "cpu_s": ru.ru_utime + ru.ru_stime}}) + "\\n")
sys.exit(rc)
'''


def stage_name(argv: list[str]) -> str:
    """`-m pipelines.train --dataset d --method m --seed s` -> `train@d-m-s` (the dvc.yaml name)."""
    if len(argv) < 2 or argv[0] != "-m" or not argv[1].startswith("pipelines."):
        return " ".join(argv)
    kind = argv[1].split(".", 1)[1]
    opts = dict(zip(argv[2::2], argv[3::2]))
    parts = [opts[k] for k in ("--dataset", "--method", "--seed") if k in opts]
    return kind + ("@" + "-".join(parts) if parts else "")


def run_tracked(cmd: list[str], cwd: Path, env: dict, log: Path) -> dict:
    """Run cmd; wall time, peak RSS of its process tree (sampled), largest single process."""
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        peak_tree = 0
        loads, last_load = [], 0.0
        while proc.poll() is None:
            if time.perf_counter() - last_load > 10:
                loads.append(os.getloadavg()[0])
                last_load = time.perf_counter()
            try:
                tree = [root] + root.children(recursive=True)
                rss = 0
                for p in tree:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak_tree = max(peak_tree, rss)
            except psutil.Error:
                pass
            time.sleep(0.2)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "rc": proc.returncode, "peak_tree_rss_mb": peak_tree / 2**20,
            "load_avg_1min": [min(loads), max(loads)] if loads else None}


def summarise_stages(entries: list[dict], total_wall: float) -> dict:
    stages = []
    for e in entries:
        stages.append({"stage": stage_name(e["argv"]), "wall_s": e["end"] - e["start"], "cpu_s": e["cpu_s"],
                       "maxrss_mb": e["maxrss_mb"], "rc": e["rc"]})
    by_kind: dict[str, dict] = defaultdict(lambda: {"n": 0, "wall_s": 0.0, "cpu_s": 0.0})
    by_method: dict[str, dict] = defaultdict(lambda: {"n": 0, "wall_s": 0.0})
    for s in stages:
        kind = s["stage"].split("@")[0]
        by_kind[kind]["n"] += 1
        by_kind[kind]["wall_s"] += s["wall_s"]
        by_kind[kind]["cpu_s"] += s["cpu_s"]
        if kind in ("train", "generate", "evaluate"):
            dataset_method = s["stage"].split("@")[1].rsplit("-", 1)[0]   # the seed item is last
            method = dataset_method.split("-synth-", 1)[-1] if "-synth-" in dataset_method else dataset_method
            by_method[method]["n"] += 1
            by_method[method]["wall_s"] += s["wall_s"]
    in_stages = sum(s["wall_s"] for s in stages)
    return {"stages": stages, "by_kind": dict(by_kind), "by_method": dict(by_method),
            "stage_commands_s": in_stages, "dvc_overhead_s": total_wall - in_stages}


def skipped_stages(log: Path) -> list[str]:
    """Stages `dvc repro` did not run because their deps and outs match dvc.lock."""
    if not log.exists():
        return []
    return re.findall(r"Stage '([^']+)' didn't change, skipping", log.read_text(errors="replace"))


def unexpected_reruns(noop: dict) -> list[str]:
    """Stages a no-op repro ran other than the always-run raw-tree scans (runs recorded before
    the stage names were: every rerun counts)."""
    if "rerun_stages" not in noop:
        return ["?"] * noop["stages_rerun"]
    return [name for name in noop["rerun_stages"] if not name.startswith("rawscan@")]


def summary_rows(result: dict) -> list[dict]:
    """The lines of reports/benchmarks/summary.md for this run (see benchmarks/summary.py)."""
    fresh, noop = result["fresh"], result["noop"]
    cpu = sum(s["cpu_s"] for s in fresh["stages"])
    kinds = sorted(fresh["by_kind"].items(), key=lambda kv: -kv[1]["wall_s"])
    split = ", ".join(f"{k} {v['wall_s'] / fresh['wall_s']:.0%}" for k, v in kinds)
    force = bool(result.get("force"))
    forced = " (`dvc repro --force`)" if force else ""
    if force:
        figure = (f"Smoke `dvc repro --force` in a fresh clone: every stage ({fresh['n_stages']}), wall time "
                  "(ratio: measured / target)")
    else:
        figure = (f"Fresh smoke `dvc repro` in a fresh clone, as `make repro` runs it ({fresh['n_stages']} stages "
                  f"ran, {len(fresh.get('skipped', []))} unchanged), wall time (ratio: measured / target)")
    rows = [
        {"figure": figure,
         "target": "< 8 min on 2 cores (issue 21)",
         "measured": f"{fresh['wall_s'] / 60:.1f} min (stage CPU time {cpu / 60:.1f} min); peak RSS "
                     f"{fresh['peak_tree_rss_mb']:.0f} MB (process tree), largest process "
                     f"{fresh['largest_process_rss_mb']:.0f} MB",
         # the user's path first, then the no-op repro (2), then --force (3)
         "ratio": fresh["wall_s"] / 480, "met": fresh["wall_s"] < 480 and fresh["rc"] == 0,
         "order": 3 if force else 1,
         "note": f"{fresh['n_stages']} stages ran, {len(fresh.get('skipped', []))} were skipped as unchanged "
                 f"({', '.join(fresh.get('skipped', [])) or 'none'}){forced}; time by stage kind: {split}, DVC "
                 f"itself {fresh['dvc_overhead_s'] / fresh['wall_s']:.0%}. 1-minute load average during the run "
                 f"(2 cores): {fresh.get('load_avg_1min')}; see the breakdown below: training dominates (the "
                 "smoke profile's work, not to be cut to meet the target), then the faces evaluate stages "
                 "(dlib's face ResNet, ~53 ms a chip: the dlib-bin wheel has no BLAS), then each stage "
                 "process's fixed cost (~2 s of it MLflow: importing it and its SQLAlchemy store)"},
        {"figure": "No-op `dvc repro` (nothing changed), wall time (ratio: measured / target)",
         "target": "< 5 s", "measured": f"{noop['wall_s_best']:.2f} s best, {noop['wall_s_median']:.2f} s median "
                                        f"of {len(noop['rounds'])}; stages rerun: {noop['stages_rerun']} "
                                        f"({', '.join(noop.get('rerun_stages', [])) or 'none'})",
         "ratio": noop["wall_s_best"] / 5.0,
         # the raw-tree scans (rawscan@<dataset>, always_changed) run on every `dvc repro` by design
         "met": noop["wall_s_best"] < 5.0 and not unexpected_reruns(noop),
         "order": 2},
    ]
    # The no-op row from the user's path only: after --force it would say the same twice.
    return rows[:1] if force else rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/frgan-bench-e2e"))
    parser.add_argument("--noop-rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the clone (default: remove it)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"default: {OUT / PLAIN_JSON}, with --force {OUT / FORCED_JSON}")
    parser.add_argument("--force", action="store_true",
                        help="`dvc repro --force`: run every stage, also those whose deps match dvc.lock")
    parser.add_argument("--resummarise", action="store_true",
                        help="only rebuild --out's summary from it and the logs in --work (no repro)")
    args = parser.parse_args()
    args.out = args.out or OUT / (FORCED_JSON if args.force else PLAIN_JSON)
    if args.resummarise:
        result = json.loads(args.out.read_text())
        result["fresh"]["skipped"] = skipped_stages(args.work / "repro.log")
        result["summary"] = summary_rows(result)
        args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.out}")
        return
    work = args.work.resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    repo, bindir, stage_log = work / "repo", work / "bin", work / "stages.jsonl"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
    venv = ROOT / ".venv"
    (repo / ".venv").symlink_to(venv)
    bindir.mkdir()
    python = str(venv / "bin" / "python")
    wrapper = bindir / "python"
    wrapper.write_text(WRAPPER.format(python=python, log=str(stage_log)))
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{venv / 'bin'}:{os.environ.get('PATH', '')}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()

    print(f"fresh `dvc repro` in {repo} (commit {commit[:10]}); log: {work / 'repro.log'}", flush=True)
    fresh = run_tracked([str(venv / "bin" / "dvc"), "repro"] + (["--force"] if args.force else []), repo, env,
                        work / "repro.log")
    fresh["largest_process_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    entries = [json.loads(line) for line in stage_log.read_text().splitlines()] if stage_log.exists() else []
    fresh.update(summarise_stages(entries, fresh["wall_s"]))
    fresh["n_stages"] = len(entries)
    fresh["skipped"] = skipped_stages(work / "repro.log")
    print(f"fresh: {fresh['wall_s']:.1f} s, rc {fresh['rc']}, {len(entries)} stages, "
          f"peak tree RSS {fresh['peak_tree_rss_mb']:.0f} MB", flush=True)

    noop_walls, noop_ran = [], []
    for i in range(args.noop_rounds):
        before = len(stage_log.read_text().splitlines()) if stage_log.exists() else 0
        r = run_tracked([str(venv / "bin" / "dvc"), "repro"], repo, env, work / f"noop-{i}.log")
        ran = stage_log.read_text().splitlines()[before:] if stage_log.exists() else []
        noop_ran += [stage_name(json.loads(line)["argv"]) for line in ran]
        noop_walls.append(r["wall_s"])
        noop_peak = r["peak_tree_rss_mb"]
    noop = {"wall_s_best": min(noop_walls), "wall_s_median": statistics.median(noop_walls), "rounds": noop_walls,
            "stages_rerun": len(noop_ran), "rerun_stages": sorted(set(noop_ran)), "peak_tree_rss_mb": noop_peak}
    print(f"no-op: best {noop['wall_s_best']:.2f} s, median {noop['wall_s_median']:.2f} s, "
          f"stages rerun {len(noop_ran)} ({', '.join(sorted(set(noop_ran))) or 'none'})", flush=True)

    result = {"commit": commit, "cpu_count": os.cpu_count(), "load_avg_at_end": os.getloadavg(),
              "date": time.strftime("%Y-%m-%d %H:%M"), "fresh": fresh, "noop": noop, "force": args.force}
    result["summary"] = summary_rows(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    if not args.keep:
        shutil.rmtree(repo, ignore_errors=True)
    sys.exit(0 if fresh["rc"] == 0 else 1)


if __name__ == "__main__":
    main()
