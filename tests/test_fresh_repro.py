"""The CI regression gate on a fresh smoke `dvc repro` (issue 8 (b)), and determinism (issue 11).

A clean clone of HEAD (what CI checks out) runs `dvc repro` at the shipped smoke profile, as a
user's `make repro` does: a fresh clone has none of DVC's cached outs, so every stage before the
scores reruns (prepare, conditions, all methods' train and generate); the scoring stages
(evaluate, reference, report), whose outs are committed, rerun exactly when what they read
differs from what dvc.lock recorded. Then `python -m pipelines.check`: every headline number must
be within tolerance of the committed reports/expected/smoke.json's numbers for this kind of
machine (smoke numbers differ between CPUs; on a kind with none the gate says it cannot judge,
see reporting/gate.py).

Determinism: the committed results were written by a fresh `dvc repro --force` (`make refresh`:
every stage, the scoring ones included). On the same kind of CPU (same model, torch build, SIMD
level and thread count as recorded in reports/expected/machine.json) the fresh run must
reproduce them byte for byte: dvc.lock, which records the md5 of every out (the prepared data,
the conditions, each method's weights and its test videos), and every committed result file.
Everything random is drawn from the seed (Python, NumPy and torch generators derived from
(seed, stage, step); DataLoader workers are not used; cuDNN is set deterministic on a GPU). A
video that came out different would rerun its scoring stages, and their results would differ
from the committed ones. On another CPU the float kernels differ (e.g. AVX2 vs AVX-512
reductions): the scoring stages rerun on the new videos, the gate's tolerance applies instead
and the test says which files differ. Why not `--force` here (it was, until 2026-12-06): on the
same videos the scoring stages are deterministic functions of committed inputs and code
(tests/test_dvc_deps.py checks that every stage's code is among its deps, so a change to
scoring code reruns them), and rerunning them cost 3+ of the test's 13 minutes, which kept
`make test` over its 30-minute budget.

The one exception: the wall-time column of the budget table (reports/tables/budget.md and
budget.csv) is how long each train stage took, different on every run; it is masked before the
comparison (`mask_wall_time`), every other byte of those files must match.

About 10 minutes on 2 cores; `slow` marker (still run by `make test` and .ci/run).
"""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reporting.gate import machine_fingerprint
from tests.conftest import REPO

COMPARED = ("reports/metrics", "reports/plots", "reports/videos", "reports/tables", "reports/report-plots",
            "reports/headline.json", "dvc.lock")
# The budget table's wall time (seconds a train stage ran, read from MLflow) differs on every run:
# masked in these files, and only that column (reporting/budget.py names it).
WALL_TIME_MD = ("reports/tables/budget.md", "Wall time (s)")
WALL_TIME_CSV = ("reports/tables/budget.csv", "wall_time_s")
MASK = "*"
# dvc.lock records the report's `reports/tables` out by a hash of its files, budget.md among them:
# that out's md5 and size are masked in dvc.lock (the files themselves are compared above, masked
# only in their wall-time column), every other line of dvc.lock compared as it is.
TABLES_OUT = "    - path: reports/tables"


def mask_wall_time(path: str, text: str) -> str:
    """`text` of the file at `path` (relative to the repository) with the wall-time column's values
    replaced by MASK; any other file unchanged."""
    if path == WALL_TIME_CSV[0]:
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or WALL_TIME_CSV[1] not in rows[0]:
            return text
        column = rows[0].index(WALL_TIME_CSV[1])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(rows[0])
        writer.writerows([*r[:column], MASK, *r[column + 1:]] if len(r) > column else r for r in rows[1:])
        return out.getvalue()
    if path == "dvc.lock":
        return _mask_tables_out(text)
    if path != WALL_TIME_MD[0]:
        return text
    lines, column = text.split("\n"), None
    for i, line in enumerate(lines):
        cells = line.split("|")
        if column is None and WALL_TIME_MD[1] in [c.strip() for c in cells]:
            column = [c.strip() for c in cells].index(WALL_TIME_MD[1])   # the header row
        elif column is not None and line.startswith("|") and not set(line) <= set("|- "):
            cells[column] = f" {MASK} "
            lines[i] = "|".join(cells)
        elif column is not None and not line.startswith("|"):
            column = None   # the table ended
    return "\n".join(lines)


def _same_but_wall_time(path: str, clone: Path) -> bool:
    """A committed budget file (or dvc.lock) and the fresh one agree once wall time is masked."""
    try:
        committed = _git("show", f"HEAD:{path}", cwd=clone)
    except subprocess.CalledProcessError:   # not committed yet: a real difference
        return False
    fresh = (clone / path).read_text()
    return mask_wall_time(path, committed) == mask_wall_time(path, fresh)


def _mask_tables_out(lock: str) -> str:
    """dvc.lock with the md5 and size of the `reports/tables` out (the lines after its path, up to
    the next entry) replaced by MASK."""
    lines = lock.split("\n")
    for i, line in enumerate(lines):
        if line != TABLES_OUT:
            continue
        for j in range(i + 1, len(lines)):
            key = lines[j].strip().split(":")[0]
            if lines[j].startswith("    -") or not lines[j].startswith("      "):
                break
            if key in ("md5", "size"):
                lines[j] = f"{lines[j].split(':')[0]}: {MASK}"
    return "\n".join(lines)


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_fresh_smoke_repro_passes_the_gate_and_reproduces_the_committed_results(tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the test clones HEAD")
    clone = tmp_path / "clone"
    _git("clone", "--quiet", "--no-hardlinks", str(REPO), str(clone), cwd=tmp_path)
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "PYTHONPATH": ""}
    log = tmp_path / "repro.log"
    with log.open("w") as out:
        repro = subprocess.run(["dvc", "repro"], cwd=clone, env=env, stdout=out,
                               stderr=subprocess.STDOUT, timeout=3600)
    tail = log.read_text()[-3000:]
    assert repro.returncode == 0, f"dvc repro failed:\n{tail}"

    gate = subprocess.run([sys.executable, "-m", "pipelines.check"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=300)
    assert gate.returncode == 0, f"the smoke gate failed:\n{gate.stdout}\n{gate.stderr}"
    assert "smoke gate" in gate.stdout and "numbers pass" in gate.stdout

    changed = [line[3:] for line in _git("status", "--porcelain", "--", *COMPARED, cwd=clone).splitlines()]
    changed = [path for path in changed
               if not (path in (WALL_TIME_MD[0], WALL_TIME_CSV[0], "dvc.lock") and _same_but_wall_time(path, clone))]
    recorded = json.loads((clone / "reports" / "expected" / "machine.json").read_text())
    here = machine_fingerprint()
    if recorded != here:
        print(f"determinism: not comparing bytes, this machine {here} is not the one that wrote the "
              f"committed results {recorded}; files that differ: {changed or 'none'}")
        return
    assert not changed, ("a fresh repro on the same kind of machine changed committed results "
                         f"(not deterministic): {changed}\n" + _git("diff", "--stat", cwd=clone))


def test_mask_wall_time_masks_only_the_wall_time_column():
    md = ("### Training budget\n\nText with | Wall time (s) mentioned? no.\n\n"
          "| Dataset | Method | Seed | Splits | Training clips | Generator steps | Samples seen | Parameters | Wall time (s) |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
          "| actors-synth | frgan | 0 | gm+gr | 12 | 210 | 1,680 | 9,999 | 41.3 |\n"
          "| actors-synth | copy-input | 0 | gm+gr | 0 | 0 | 0 | 0 | n/a |\n\nMLflow: 1.5 | 2.5\n")
    masked = mask_wall_time("reports/tables/budget.md", md)
    assert masked == md.replace("| 41.3 |", "| * |").replace("| n/a |", "| * |")
    other = md.replace("41.3", "97.0").replace("| n/a |", "| 3.0 |")
    assert mask_wall_time("reports/tables/budget.md", other) == masked      # wall time alone: equal
    for changed in (md.replace("| 210 |", "| 211 |"), md.replace("gm+gr | 0", "gm | 0"),
                    md.replace("MLflow: 1.5", "MLflow: 1.6")):
        assert mask_wall_time("reports/tables/budget.md", changed) != masked   # anything else: differs

    csv_text = ("dataset,method,seed,splits,clips,generator_steps,samples_seen,parameters,wall_time_s\n"
                "actors-synth,frgan,0,gm+gr,12,210,1680,9999,41.3\nactors-synth,copy-input,0,gm+gr,0,0,0,0,\n")
    masked_csv = mask_wall_time("reports/tables/budget.csv", csv_text)
    assert masked_csv == csv_text.replace(",41.3\n", ",*\n").replace(",0,\n", ",0,*\n")
    assert mask_wall_time("reports/tables/budget.csv", csv_text.replace("41.3", "5.0")) == masked_csv
    assert mask_wall_time("reports/tables/budget.csv", csv_text.replace("1680", "1681")) != masked_csv
    # every other file is compared as it is, wall-time-looking numbers included
    assert mask_wall_time("reports/tables/table3.md", md) == md
    assert mask_wall_time("reports/tables/table3.csv", csv_text) == csv_text


def test_mask_wall_time_in_dvc_lock_masks_only_the_tables_out_hash():
    lock = ("  report:\n    outs:\n    - path: reports/figures/report\n      hash: md5\n      md5: aaa.dir\n"
            "      size: 10\n      nfiles: 6\n    - path: reports/tables\n      hash: md5\n      md5: bbb.dir\n"
            "      size: 25320\n      nfiles: 11\n  reference:\n    md5: ccc\n")
    masked = mask_wall_time("dvc.lock", lock)
    assert masked == lock.replace("md5: bbb.dir", "md5: *").replace("size: 25320", "size: *")
    assert mask_wall_time("dvc.lock", lock.replace("bbb.dir", "ddd.dir").replace("25320", "25321")) == masked
    for changed in (lock.replace("aaa.dir", "eee.dir"), lock.replace("nfiles: 11", "nfiles: 12"),
                    lock.replace("md5: ccc", "md5: fff")):
        assert mask_wall_time("dvc.lock", changed) != masked   # every other line: compared
