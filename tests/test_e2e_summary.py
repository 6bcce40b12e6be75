"""benchmarks/e2e_repro's summary rows: the user's path (a plain `dvc repro` in a fresh clone)
and `--force` (every stage) are told apart, each against issue 21's 8 minutes, and only the
user's path reports the no-op repro."""
from __future__ import annotations

from benchmarks.e2e_repro import summary_rows


def result(force: bool, wall_s: float, skipped: list[str]) -> dict:
    fresh = {"wall_s": wall_s, "rc": 0, "n_stages": 68 - len(skipped), "skipped": skipped,
             "stages": [{"cpu_s": 1.0}], "by_kind": {"train": {"wall_s": wall_s / 2}},
             "dvc_overhead_s": 30.0, "peak_tree_rss_mb": 1200.0, "largest_process_rss_mb": 1100.0,
             "load_avg_1min": [0.1, 2.0]}
    noop = {"wall_s_best": 4.0, "wall_s_median": 4.2, "rounds": [4.0, 4.2, 4.3], "stages_rerun": 2,
            "rerun_stages": ["rawscan@actors-synth", "rawscan@faces-synth"]}
    return {"fresh": fresh, "noop": noop, "force": force}


def test_the_plain_fresh_clone_row_says_what_was_skipped_and_keeps_the_noop_row():
    rows = summary_rows(result(False, 470.0, ["evaluate@faces-synth-frgan-0", "report"]))
    assert len(rows) == 2
    assert "as `make repro` runs it (66 stages ran, 2 unchanged)" in rows[0]["figure"]
    assert rows[0]["met"] is True and "evaluate@faces-synth-frgan-0, report" in rows[0]["note"]
    assert rows[1]["figure"].startswith("No-op") and rows[1]["met"] is True   # rawscan reruns by design


def test_the_forced_row_names_every_stage_misses_8_minutes_and_has_no_noop_row():
    rows = summary_rows(result(True, 745.0, []))
    assert len(rows) == 1
    assert rows[0]["figure"].startswith("Smoke `dvc repro --force` in a fresh clone: every stage (68)")
    assert rows[0]["met"] is False and abs(rows[0]["ratio"] - 745.0 / 480) < 1e-12


def test_a_stages_fixed_cost_is_read_from_the_no_work_stages_of_the_newest_repro(tmp_path, monkeypatch):
    import json
    from benchmarks import bench_startup
    from benchmarks.e2e_repro import FORCED_JSON, PLAIN_JSON

    def record(date: str, scale: float) -> dict:
        walls = {"train@faces-synth-copy-input-0": 2.0, "generate@actors-synth-copy-input-0": 3.0,
                 "evaluate@actors-synth-copy-input-0": 9.0, "train@faces-synth-frgan-0": 20.0}
        return {"date": date, "fresh": {"stages": [{"stage": s, "wall_s": w * scale} for s, w in walls.items()]}}
    (tmp_path / PLAIN_JSON).write_text(json.dumps(record("2026-12-07 03:56", 1.0)))
    (tmp_path / FORCED_JSON).write_text(json.dumps(record("2026-12-07 00:29", 10.0)))
    monkeypatch.setattr(bench_startup, "OUT", tmp_path)
    newest = bench_startup.newest_repro_record()
    assert newest["date"] == "2026-12-07 03:56"
    # copy-input's train and generate only: its evaluate stage computes metrics, frgan trains
    assert bench_startup.no_work_stages(newest) == {"train@faces-synth-copy-input-0": 2.0,
                                                    "generate@actors-synth-copy-input-0": 3.0}
    (tmp_path / PLAIN_JSON).unlink()
    assert bench_startup.newest_repro_record()["date"] == "2026-12-07 00:29"
