"""reports/benchmarks/summary.md from the JSON files the benchmarks wrote.

    python -m benchmarks.summary        (also run at the end of every `make bench` session)

Each JSON may carry `summary`: rows of (figure, target, measured, ratio, met, note). The table
lists them in a fixed order; a row whose target is missed says so, and its note (what limits it)
is repeated below the table. Rows come from the latest run of each benchmark: the `recorded`
column says when, so a figure left over from an older run is visible as such.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.e2e_repro import every_stage_record

OUT = Path(__file__).resolve().parent.parent / "reports" / "benchmarks"

HEADER = """# Benchmarks (issue 10)

Written by `make bench` (pytest-benchmark, `benchmarks/bench_*.py`) and `make bench-repro`
(`python -m benchmarks.e2e_repro`, the end-to-end `dvc repro`: about as long as `make repro`, so
it is a separate target). Every figure is also in a JSON file next to this one.

**Measured on a busy machine**: {cpus} CPU cores shared with other jobs while these ran (load
average at the end of the session: {load}). Absolute times move by tens of percent from run to
run; the ratios (batched vs per-frame, loader vs step, FLOP/s vs the matmul FLOP/s measured in the
same process a moment before and after) are what to read. No GPU here: the GPU cases (bf16
autocast + channels_last + torch.compile vs fp32 eager, MFU) run only where
`torch.cuda.is_available()`.

{session}
"""


def _rows() -> list[dict]:
    rows = []
    for path in sorted(OUT.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for line in data.get("summary", []) if isinstance(data, dict) else []:
            rows.append({**line, "source": path.name, "recorded": data.get("recorded", data.get("date", ""))})
    return sorted(rows, key=lambda r: (r.get("order", 50), r["source"], r["figure"]))


def _met(value) -> str:
    return "-" if value is None else ("yes" if value else "**no**")


def _ratio(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def render() -> str:
    session_path = OUT / "session.json"
    session = json.loads(session_path.read_text()) if session_path.exists() else {}
    if session:
        text = (f"Last `make bench` session: {session.get('finished')}, {session['seconds'] / 60:.1f} minutes, "
                f"{session.get('tests')} benchmarks ({session.get('failed', 0)} failed).")
    else:
        text = "No `make bench` session recorded yet."
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [HEADER.format(cpus=os.cpu_count(), load=load, session=text)]
    lines.append("| figure | target | measured | ratio | met | recorded |")
    lines.append("| --- | --- | --- | --- | --- | --- |")
    notes = []
    for r in _rows():
        cells = [r["figure"], r.get("target") or "-", r["measured"], _ratio(r.get("ratio")), _met(r.get("met")),
                 r.get("recorded", "")]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        if r.get("note"):
            notes.append(f"- **{r['figure']}**: {r['note']}")
    if notes:
        lines += ["", "## Notes: what limits the figures (and missed targets)", ""] + notes
    lines += _e2e_breakdown()
    return "\n".join(lines) + "\n"


def _load(name: str):
    path = OUT / name
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _smoke_step_seconds() -> dict:
    """train@faces-synth-<method>-0 -> seconds of its training steps, from train-step-smoke-*.json."""
    def seconds(name: str):
        data = _load(f"train-step-smoke-{name}.json")
        if not data:
            return None, ""
        return data["default_threads"]["seconds_per_step"] * data["steps_in_stage"], data.get("recorded", "")
    gm, recorded = seconds("frgan-gm")
    gr, _ = seconds("frgan-gr")
    out = {"_recorded": recorded} if recorded else {}
    if gm is not None:
        for variant in ("frgan-gm-only", "frgan-no-dense", "frgan-diff-map"):   # G_M only (variants of it)
            out[f"train@faces-synth-{variant}-0"] = gm
        if gr is not None:
            out["train@faces-synth-frgan-0"] = gm + gr
    for name in ("villegas17", "mcnet", "mocogan", "vgan", "mathieu"):
        value, _ = seconds(name)
        if value is not None:
            out[f"train@faces-synth-{name}-0"] = value
    return out


def _e2e_breakdown() -> list[str]:
    """Where the fresh repro's time goes: by stage kind, by method, the slowest stages, and the
    fixed per-process cost (bench_startup) times the number of stages."""
    e2e = _load(every_stage_record().name)
    if not e2e:
        return []
    fresh = e2e["fresh"]
    total = fresh["wall_s"]
    command = "dvc repro --force" if e2e.get("force") else "dvc repro"
    out = ["", f"## Where a fresh smoke `{command}` spends its time ({e2e['date']}, commit {e2e['commit'][:10]})", "",
           f"Total {total:.0f} s wall ({total / 60:.1f} min); {fresh['n_stages']} stage commands "
           f"{fresh['stage_commands_s']:.0f} s; DVC's own work (hashing, caching, dvc.lock) "
           f"{fresh['dvc_overhead_s']:.0f} s. CPU time is user + sys of the stage process: CPU / wall "
           "near 2 means both cores busy, near 1 one core, below 1 waiting (or the machine busy with "
           "other jobs).", "",
           "| stage kind | stages | wall s | share | CPU s | CPU / wall |", "| --- | --- | --- | --- | --- | --- |"]
    for kind, v in sorted(fresh["by_kind"].items(), key=lambda kv: -kv[1]["wall_s"]):
        out.append(f"| {kind} | {v['n']} | {v['wall_s']:.0f} | {v['wall_s'] / total:.0%} | {v['cpu_s']:.0f} | "
                   f"{v['cpu_s'] / max(v['wall_s'], 1e-9):.2f} |")
    out.append(f"| (dvc itself) | - | {fresh['dvc_overhead_s']:.0f} | {fresh['dvc_overhead_s'] / total:.0%} | - | - |")
    out += ["", "| method (train + generate + evaluate, both datasets) | wall s | share |", "| --- | --- | --- |"]
    for method, v in sorted(fresh["by_method"].items(), key=lambda kv: -kv[1]["wall_s"]):
        out.append(f"| {method} | {v['wall_s']:.0f} | {v['wall_s'] / total:.0%} |")
    predicted = _smoke_step_seconds()
    out += ["", "The last column: the stage's training steps as bench_train_steps times them at the smoke "
                "profile on this machine (steps x seconds per step, default threads, "
                f"{predicted.get('_recorded', 'not run yet')}), for the faces train stages it models.", "",
            "| stage | wall s | CPU s | peak RSS MB | smoke steps in bench s |", "| --- | --- | --- | --- | --- |"]
    for st in fresh["stages"]:
        guess = predicted.get(st["stage"])
        out.append(f"| {st['stage']} | {st['wall_s']:.1f} | {st['cpu_s']:.1f} | {st['maxrss_mb']:.0f} | "
                   f"{'-' if guess is None else f'{guess:.0f}'} |")
    startup = _load("startup.json")
    if startup and "fixed_cost_per_stage_s" in startup:   # absent when bench_startup found no repro record
        per_stage = startup["fixed_cost_per_stage_s"]
        fixed = per_stage * fresh["n_stages"]
        out += ["", f"Fixed cost per stage process (bench_startup, {startup.get('recorded', '')}): the wall time "
                    f"of a stage with no work (copy-input's train and generate stages, repro of "
                    f"{startup['repro_record']}) = {per_stage:.1f} s; x {fresh['n_stages']} stages = "
                    f"{fixed:.0f} s, {fixed / total:.0%} of this repro."]
    return out


def write() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "summary.md"
    path.write_text(render())
    return path


if __name__ == "__main__":
    print(write())
