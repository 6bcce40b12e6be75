"""The report stage: published numbers match the paper's text, tables from evaluate JSONs (cell
format, "not run", dataset in titles), several training seeds pooled and methods paired on their
per-video scores, findings, the regression gate and its errors."""
from __future__ import annotations

import json
import re
import shutil
from typing import Optional

import numpy as np
import pandas as pd
import pytest
import yaml

from frgan.config import load_params
from frgan.data.errors import DatasetError
from reporting.budget import budget_frame, load_budgets, train_wall_times, write_budget
from reporting.claims import _table, check_claims, paired_test
from reporting.figures import acd_points, class_scores, frame_scores
from reporting.floor import floor_checks
from reporting.outputs import write_report
from reporting.results import Interval, load_evaluation, load_evaluations, load_published, load_results
from reporting.runs import report_key
from reporting.tables import Cell, build_tables, seeds_text
from tests.conftest import REPO, run_module

PAPER = REPO.parent / "shared" / "paper" / "frgan-eccv2018.md"
PUBLISHED = REPO / "reports" / "published.yaml"


# ---------------------------------------------------------------------------------------------
# reports/published.yaml against the paper's text.

def paper_tables(text: str) -> dict[int, list[list[str]]]:
    """Table number -> its tab-separated rows (header first), bold tags removed."""
    tables, lines = {}, text.splitlines()
    for i, line in enumerate(lines):
        caption = re.match(r"\*\*Table (\d)\.\*\*", line)
        if not caption:
            continue
        rows, j = [], i + 1
        while j < len(lines) and "\t" not in lines[j]:
            j += 1
        while j < len(lines) and "\t" in lines[j]:
            rows.append([re.sub(r"</?b>", "", cell).strip() for cell in lines[j].split("\t")])
            j += 1
        tables[int(caption.group(1))] = rows
    return tables


def paper_value(table: int, rows: list[list[str]], row_index: int, column: str) -> str:
    header, data = rows[0], rows[1:]
    if table == 2:   # one cell "ours / competitor"
        ours, competitor = data[row_index][1].split("/")
        return {"Ours (%)": ours, "Competitor (%)": competitor}[column].strip()
    return data[row_index][header.index(column)]


@pytest.fixture(scope="module")
def paper():
    if not PAPER.is_file():
        pytest.skip(f"the paper's text is not at {PAPER}")
    return paper_tables(PAPER.read_text())


def test_published_numbers_match_the_paper(paper):
    entries = yaml.safe_load(PUBLISHED.read_text())["numbers"]
    row_order: dict[int, list[str]] = {}
    compared = 0
    for entry in entries:
        table = entry["table"]
        order = row_order.setdefault(table, [])
        if entry["row"] not in order:
            order.append(entry["row"])
        printed = paper_value(table, paper[table], order.index(entry["row"]), entry["column"])
        if entry["value"] is None:
            assert printed == "-", (entry, printed)
        else:
            assert float(printed) == entry["value"], (entry, printed)
        compared += 1
    assert compared >= 6 and set(row_order) == {1, 2, 3, 4}
    for table, rows in row_order.items():   # every paper row is typed, in the paper's order
        assert len(rows) == len(paper[table]) - 1, table
        if table != 4:   # Table 4's labels lost their negation bars in the text copy
            assert rows == [r[0] for r in paper[table][1:]], table


def test_published_entries_are_complete():
    entries = yaml.safe_load(PUBLISHED.read_text())["numbers"]
    for entry in entries:
        assert entry["direction"] in ("lower", "higher") and entry["source"].startswith(f"Table {entry['table']}")
    published = load_published(PUBLISHED)
    assert len(published) == len(entries)   # no duplicate (table, row, column)


# ---------------------------------------------------------------------------------------------
# Tables from fake evaluate JSONs.

def write_evaluation(folder, dataset: str, method: str, seed: Optional[int] = 0, **metrics) -> None:
    """evaluate-<dataset>-<method>-seed<seed>.json as the evaluate stage names it (seed None: the
    reference row, no seed); metrics: name -> (mean, low, high)."""
    folder.mkdir(parents=True, exist_ok=True)
    body = {"dataset": dataset, "method": method, "videos": 4, "frames_per_video": 8}
    if seed is not None:
        body["seed"] = seed
    body.update({k.replace("__", "/"): dict(zip(("mean", "low", "high"), v)) for k, v in metrics.items()})
    suffix = "" if seed is None else f"-seed{seed}"
    (folder / f"evaluate-{dataset}-{method}{suffix}.json").write_text(json.dumps(body))


@pytest.fixture
def fake_metrics(tmp_path):
    folder = tmp_path / "metrics"
    write_evaluation(folder, "faces-synth", "frgan", acd_i=(0.123, 0.118, 0.138), acd_c=(0.09, 0.08, 0.10))
    write_evaluation(folder, "faces-synth", "mocogan", acd_i=(0.30, 0.29, 0.31), acd_c=(0.20, 0.19, 0.21))
    write_evaluation(folder, "actors-synth", "frgan", mse=(0.5, 0.4, 0.6), mse_gt=(0.02, 0.018, 0.022),
                     psnr=(16.0, 15.0, 17.0), psnr__golf_swing=(17.0, 16.0, 18.0))
    write_evaluation(folder, "actors-synth", "vgan", mse=(0.04, 0.035, 0.045), psnr__golf_swing=(14.0, 13.0, 15.0))
    plots = tmp_path / "plots"   # per-frame CSVs, as the evaluate stage writes them
    plots.mkdir()
    for method, base in (("frgan", 16.0), ("vgan", 14.0)):
        rows = [{"video": v, "class": "golf_swing", "frame": f, "mse": 0.02, "psnr": base - 0.1 * f + v}
                for v in range(2) for f in range(4)]
        pd.DataFrame(rows).to_csv(plots / f"evaluate-actors-synth-{method}-seed0.csv", index=False)
    return folder


def build(tmp_path, metrics, faces="faces-synth", actors="actors-synth", profile="smoke"):
    evaluations = load_evaluations(metrics)
    tables, files = write_report(evaluations, load_published(PUBLISHED), profile, faces, actors,
                                        tmp_path / "tables", tmp_path / "figures", metrics.parent / "plots")
    return {t.spec.number: t for t in tables}, files


def cell(table, row: str, column: str) -> str:
    return table.cells[(row, column)].text()


def test_cells_show_reproduced_interval_published_and_delta(tmp_path, fake_metrics):
    tables, _ = build(tmp_path, fake_metrics)
    assert cell(tables[1], "FRGAN", "ACD-I") == "0.123 ± 0.010 (0.184, -0.061)"
    assert cell(tables[3], "VGAN", "MSE") == "0.040 ± 0.005 (0.047, -0.007)"
    assert cell(tables[3], "VGAN", "MSE (GT)") == "-"   # neither printed nor measured
    assert cell(tables[4], "G_M (dense) + G_R", "MSE") == "0.020 ± 0.002 (0.011, +0.009)"  # mse_gt


def test_missing_methods_show_not_run(tmp_path, fake_metrics):
    tables, _ = build(tmp_path, fake_metrics)
    assert cell(tables[1], "MCNet", "ACD-I") == "not run"
    assert cell(tables[1], "Reference", "ACD-C") == "not run"
    assert cell(tables[3], "Villegas et al.", "MSE (GT)") == "not run"
    assert cell(tables[4], "G_M (dense) only", "ACD-C") == "not run"
    markdown = (tmp_path / "tables" / "table4.md").read_text()
    assert "| G_M without dense, no G_R | not run | not run | not run |" in markdown


def test_cell_text_formats():
    interval = Interval(0.0112, 0.0100, 0.0120)
    assert Cell(interval, 0.011, "ok").text() == "0.011 ± 0.001 (0.011, +0.000)"
    assert Cell(Interval(0.0109, 0.01, 0.012), 0.011, "ok").text() == "0.011 ± 0.001 (0.011, +0.000)"
    assert Cell(interval, None, "ok").text() == "0.011 ± 0.001 (-)"
    assert Cell(None, 0.011, "not measured").text() == "not measured"


def test_a_half_width_below_the_papers_precision_shows_two_significant_digits():
    """faces-synth's pixel errors are ~1e-3: at the paper's 3 decimals they would all read
    "0.001 ± 0.000". A zero-width interval (copy-input's ACD) keeps 3 decimals."""
    assert Interval(0.00071, 0.00044, 0.00102).text() == "0.00071 ± 0.00029"
    assert Interval(0.00105, 0.00091, 0.00122).text() == "0.00105 ± 0.00015"
    assert Interval(0.0112, 0.0109, 0.0120).text() == "0.011 ± 0.001"       # 0.00055 rounds to 0.001
    assert Interval(0.0, 0.0, 0.0).text() == "0.000 ± 0.000"
    assert Interval(1.2e-6, 1.1e-6, 1.3e-6).text() == "0.000001 ± 0.000000"   # the JSONs' 6 decimals


def test_titles_name_the_dataset_the_numbers_came_from(tmp_path, fake_metrics):
    build(tmp_path, fake_metrics)
    table1 = (tmp_path / "tables" / "table1.md").read_text().splitlines()[0]
    table3 = (tmp_path / "tables" / "table3.md").read_text().splitlines()[0]
    table4 = (tmp_path / "tables" / "table4.md").read_text().splitlines()[0]
    assert "reproduced on faces-synth (synthetic stand-in for MUG)" in table1
    assert "reproduced on actors-synth (synthetic stand-in for Penn Action)" in table3
    assert "faces-synth" in table4 and "actors-synth" in table4
    mug, _ = build(tmp_path / "real", fake_metrics, faces="mug", actors="penn")
    assert mug[1].title().endswith("reproduced on MUG")
    assert cell(mug[1], "FRGAN", "ACD-I") == "not run"   # faces-synth numbers never fill a MUG table


def test_csv_keeps_the_numbers_in_the_paper_layout(tmp_path, fake_metrics):
    build(tmp_path, fake_metrics)
    frame = pd.read_csv(tmp_path / "tables" / "table3.csv").set_index("method")
    assert list(frame.index) == ["VGAN", "Mathieu et al.", "Villegas et al.", "FRGAN", "Copy the input frame"]
    assert float(frame.loc["FRGAN", "MSE [actors-synth]"]) == 0.5
    assert frame.loc["FRGAN", "MSE published [Penn Action]"] == 0.023
    assert frame.loc["Mathieu et al.", "MSE [actors-synth]"] == "not run"


def test_findings_state_whether_the_paper_order_holds(tmp_path, fake_metrics):
    build(tmp_path, fake_metrics)
    summary = (tmp_path / "tables" / "summary.md").read_text()
    assert "not a reproduction of the paper" in summary      # the smoke caveat
    table1 = summary.split("## Table 1")[1].split("## Table 3")[0]
    assert "- ACD-I (lower is better): paper FRGAN (0.184) < MoCoGAN (0.291); reproduced " \
           "FRGAN (0.123) < MoCoGAN (0.300): **holds**" in table1
    table3 = summary.split("## Table 3")[1].split("## Table 4")[0]
    assert "- MSE (lower is better)" in table3 and "**does not hold**: VGAN is best, not FRGAN" in table3
    assert "- MSE (GT): **cannot check**: only FRGAN has a reproduced number" in table3
    assert "Reference: not run (" in table1


def test_figures_are_written(tmp_path, fake_metrics):
    _, files = build(tmp_path, fake_metrics)
    figures = sorted(p.name for p in files if p.suffix == ".png")
    assert figures == ["acd-faces.png", "psnr-per-class.png", "psnr-per-frame.png", "published-vs-reproduced.png"]
    assert all(p.stat().st_size > 0 for p in files)
    assert class_scores(load_evaluations(fake_metrics), "actors-synth", "psnr").shape == (2, 5)


def test_per_frame_and_acd_figure_data(tmp_path, fake_metrics):
    frames = frame_scores(tmp_path / "plots", "actors-synth", "psnr")
    assert sorted(frames["method"].unique()) == ["frgan", "vgan"] and len(frames) == 8
    first = frames[(frames["method"] == "frgan") & (frames["frame"] == 0)]["psnr"].item()
    assert first == pytest.approx(16.5)   # mean over the two videos (16.0 and 17.0)
    acd = acd_points(load_evaluations(fake_metrics), "faces-synth")
    assert list(acd["method"]) == ["frgan", "mocogan"] and acd.loc[0, "acd_i_high"] == 0.138


def test_figures_are_written_without_per_frame_results(tmp_path, fake_metrics):
    evaluations = load_evaluations(fake_metrics)
    _, files = write_report(evaluations, load_published(PUBLISHED), "smoke", "mug", "penn",
                                   tmp_path / "t", tmp_path / "f", tmp_path / "no-plots")
    assert {"psnr-per-frame.png", "acd-faces.png"} <= {p.name for p in files}
    assert all(p.stat().st_size > 0 for p in files)


# ---------------------------------------------------------------------------------------------
# Several training seeds of one method: pooled from the per-video scores; methods paired.

CLASSES = ("golf_swing", "bowl")


def write_videos(folder, dataset: str, method: str, seed: Optional[int], **columns) -> pd.DataFrame:
    """reports/videos/evaluate-<dataset>-<method>-seed<seed>.csv as the evaluate stage writes it:
    video, class, then one column per metric (8 videos, classes alternating)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(next(iter(columns.values())))
    table = pd.DataFrame({"video": range(n), "class": [CLASSES[v % 2] for v in range(n)], **columns})
    suffix = "" if seed is None else f"-seed{seed}"
    table.to_csv(folder / f"evaluate-{dataset}-{method}{suffix}.csv", index=False)
    return table


def write_seed_run(metrics, videos, dataset: str, method: str, seed: int, mse: np.ndarray) -> pd.DataFrame:
    """One training seed's per-video CSV and its evaluate JSON (means of the CSV's columns)."""
    table = write_videos(videos, dataset, method, seed, mse=mse)
    by_class = {f"mse__{c}": (float(table.mse[table["class"] == c].mean()), 0.0, 1.0) for c in CLASSES}
    write_evaluation(metrics, dataset, method, seed, mse=(float(table.mse.mean()), 0.0, 1.0), **by_class)
    return table


@pytest.fixture
def seeded_results(tmp_path):
    """FRGAN on actors-synth with training seeds 0 and 1, VGAN with seed 0 only."""
    metrics, videos = tmp_path / "metrics", tmp_path / "videos"
    rng = np.random.default_rng(5)
    frgan = {seed: write_seed_run(metrics, videos, "actors-synth", "frgan", seed,
                                  np.round(rng.uniform(0.01, 0.03, 8) + 0.004 * seed, 4)) for seed in (0, 1)}
    vgan = write_seed_run(metrics, videos, "actors-synth", "vgan", 0, np.round(rng.uniform(0.03, 0.05, 8), 4))
    return {"metrics": metrics, "videos": videos, "frgan": frgan, "vgan": vgan}


def test_seeds_of_one_method_are_pooled_from_their_per_video_scores(seeded_results):
    from metrics.stats import bootstrap_mean_over_seeds
    metrics, videos, frgan = seeded_results["metrics"], seeded_results["videos"], seeded_results["frgan"]
    dataset, method, seed, scores = load_evaluation(metrics / "evaluate-actors-synth-frgan-seed1.json")
    assert (dataset, method, seed) == ("actors-synth", "frgan", 1) and set(scores) == {"mse", *(f"mse/{c}" for c in CLASSES)}

    results = load_results(metrics, videos_dir=videos, bootstrap_seed=0)
    assert results.seeds[("actors-synth", "frgan")] == [0, 1] and results.seeds[("actors-synth", "vgan")] == [0]
    assert load_evaluations(metrics, videos_dir=videos, bootstrap_seed=0) == results.scores
    pooled = results.scores[("actors-synth", "frgan")]
    for key, rows in [("mse", lambda t: t), *((f"mse/{c}", lambda t, c=c: t[t["class"] == c]) for c in CLASSES)]:
        groups = [rows(frgan[seed]).mse.to_numpy() for seed in (0, 1)]
        seed_means = [load_evaluation(metrics / f"evaluate-actors-synth-frgan-seed{seed}.json")[3][key].mean
                      for seed in (0, 1)]
        assert seed_means == pytest.approx([g.mean() for g in groups])         # the JSONs agree with the CSVs
        assert pooled[key].mean == pytest.approx(np.mean(seed_means), abs=1e-6), key   # mean of the seed means
        expected = bootstrap_mean_over_seeds(groups, seed=0)                  # two-level bootstrap interval
        assert (pooled[key].low, pooled[key].high) == (round(expected.low, 6), round(expected.high, 6)), key
        assert pooled[key].low < pooled[key].mean < pooled[key].high
    # one seed: its JSON as written, not re-estimated
    assert results.scores[("actors-synth", "vgan")]["mse"] == Interval(
        float(seeded_results["vgan"].mse.mean()), 0.0, 1.0)
    # per-video scores, each video averaged over the seeds (what the paired tests compare)
    averaged = results.videos[("actors-synth", "frgan")].set_index("video")
    assert list(averaged.index) == list(range(8))
    np.testing.assert_allclose(averaged.mse, (frgan[0].mse + frgan[1].mse).to_numpy() / 2)
    assert list(averaged["class"]) == list(frgan[0]["class"])
    # a cell of the table is the pooled interval; the table says which seeds it pools
    tables = {t.spec.number: t for t in build_tables(load_published(PUBLISHED), results.scores,
                                                             "faces-synth", "actors-synth", results)}
    assert tables[3].cells[("FRGAN", "MSE")].reproduced == pooled["mse"]
    assert "Training seeds 0, 1 (`train.seeds`) pooled" in seeds_text(tables[3])


def test_pooling_weighs_every_seed_alike(tmp_path):
    """The mean of the seed means, not of all videos together: told apart when the counts differ."""
    metrics, videos = tmp_path / "metrics", tmp_path / "videos"
    few = write_seed_run(metrics, videos, "actors-synth", "frgan", 0, np.array([0.01, 0.01]))
    many = write_seed_run(metrics, videos, "actors-synth", "frgan", 3, np.array([0.03] * 6))
    pooled = load_evaluations(metrics, videos_dir=videos)[("actors-synth", "frgan")]["mse"]
    assert pooled.mean == pytest.approx(0.02, abs=1e-6)                      # (0.01 + 0.03) / 2
    assert pd.concat([few, many]).mse.mean() == pytest.approx(0.025)         # what it is not
    assert pooled.low == pytest.approx(0.01, abs=1e-6) and pooled.high == pytest.approx(0.03, abs=1e-6)


def test_a_pooled_method_needs_every_seeds_per_video_scores(seeded_results):
    missing = seeded_results["videos"] / "evaluate-actors-synth-frgan-seed1.csv"
    missing.unlink()
    with pytest.raises(DatasetError, match=re.escape(f"{missing}: missing; seeds [0, 1] of actors-synth/frgan")):
        load_results(seeded_results["metrics"], videos_dir=seeded_results["videos"])


def test_only_the_listed_seeds_are_pooled(seeded_results):
    """A seed dropped from train.seeds leaves its outs behind (DVC does not delete them): skipped."""
    metrics, videos = seeded_results["metrics"], seeded_results["videos"]
    only_0 = load_results(metrics, videos_dir=videos, seeds=[0])
    assert only_0.seeds[("actors-synth", "frgan")] == [0]
    assert only_0.scores[("actors-synth", "frgan")] == load_evaluation(
        metrics / "evaluate-actors-synth-frgan-seed0.json")[3]
    # the default folder of the per-video scores is videos/ beside the metrics folder
    assert load_results(metrics).scores == load_results(metrics, videos_dir=videos).scores


def test_an_evaluate_json_under_another_name_is_refused(tmp_path):
    folder = tmp_path / "metrics"
    write_evaluation(folder, "actors-synth", "frgan", 1, mse=(0.02, 0.01, 0.03))
    for wrong in ("evaluate-actors-synth-frgan-seed2.json", "evaluate-actors-synth-frgan.json",
                  "evaluate-actors-synth-vgan-seed1.json"):
        other = tmp_path / wrong.removesuffix(".json")
        other.mkdir()
        (other / wrong).write_text((folder / "evaluate-actors-synth-frgan-seed1.json").read_text())
        with pytest.raises(DatasetError, match=re.escape(
                f"{other / wrong}: holds dataset 'actors-synth', method 'frgan', seed 1: expected the name "
                "evaluate-actors-synth-frgan-seed1.json")):
            load_evaluations(other)
    # a method's result without a seed (a file of the layout before train.seeds), under either name
    for name in ("evaluate-actors-synth-frgan.json", "evaluate-actors-synth-frgan-seed0.json"):
        seedless = tmp_path / f"seedless-{name}"
        write_evaluation(seedless, "actors-synth", "frgan", None, mse=(0.02, 0.01, 0.03))
        (seedless / "evaluate-actors-synth-frgan.json").rename(seedless / name)
        with pytest.raises(DatasetError, match=re.escape(
                f"{seedless / name}: no 'seed': expected evaluate-actors-synth-frgan-seed<s>.json from a "
                "training seed (a file from before train.seeds? delete it and run `dvc repro`)")):
            load_evaluations(seedless)
    reference = tmp_path / "reference"   # the reference row: no seed, no suffix
    write_evaluation(reference, "faces-synth", "reference", None, acd_i=(0.1, 0.09, 0.11))
    assert load_evaluation(reference / "evaluate-faces-synth-reference.json")[:3] == \
        ("faces-synth", "reference", None)


def test_claims_pair_two_methods_on_the_same_videos(tmp_path, seeded_results):
    from metrics.stats import compare_methods
    results = load_results(seeded_results["metrics"], videos_dir=seeded_results["videos"])
    published = load_published(PUBLISHED)
    frgan = seeded_results["frgan"]
    averaged = frgan[0].assign(mse=(frgan[0].mse + frgan[1].mse) / 2)
    paired = compare_methods(averaged, seeded_results["vgan"], "mse")
    assert paired.n == 8
    text = (f"; paired over 8 videos: FRGAN - VGAN = {paired.mean_difference:+.3f} [{paired.low:+.3f}, "
            f"{paired.high:+.3f}], Wilcoxon p = {paired.p_value:.2g}")
    tables = build_tables(published, results.scores, "faces-synth", "actors-synth", results)
    [f] = [c for c in check_claims(tables) if c.key == "f"]
    [vgan_line] = [e for e in f.evidence if "VGAN" in e]
    assert vgan_line.startswith("MSE (lower is better): FRGAN ") and vgan_line.endswith(text), vgan_line
    assert paired.mean_difference < 0 and f.verdict.startswith("cannot check (Mathieu et al. MSE not run")
    table3 = _table(tables, 3)
    assert paired_test(table3, "MSE", "FRGAN", "VGAN") == paired
    # without per-video scores, the same comparison has no paired part
    plain = build_tables(published, results.scores, "faces-synth", "actors-synth")
    [f_plain] = [c for c in check_claims(plain) if c.key == "f"]
    assert [e for e in f_plain.evidence if "paired over" in e] == []
    assert [e + text for e in f_plain.evidence] == f.evidence
    # and the claims file shows it
    write_report(results.scores, published, "smoke", "faces-synth", "actors-synth", tmp_path / "t",
                        tmp_path / "f", tmp_path / "no-plots", results=results)
    assert text.removeprefix("; ") in (tmp_path / "t" / "claims.md").read_text()


# ---------------------------------------------------------------------------------------------
# The paper's claims.

def test_claims_verdicts(tmp_path, fake_metrics):
    tables, files = build(tmp_path, fake_metrics)
    verdicts = {c.key: c for c in check_claims(list(tables.values()))}
    assert verdicts["b"].verdict == "supported"      # FRGAN 0.123 and 0.09 < 0.2
    assert verdicts["f"].verdict == "not supported"  # FRGAN MSE 0.5 vs VGAN 0.04
    assert verdicts["a"].verdict.startswith("cannot check (MCNet ACD-I not run; Villegas et al. ACD-I not run")
    assert verdicts["a"].verdict.endswith(": missing)")
    assert verdicts["d"].verdict.startswith("cannot check (")
    claims = (tmp_path / "tables" / "claims.md").read_text()
    assert tmp_path / "tables" / "claims.md" in files
    assert "not a reproduction of the paper" in claims.split("| Claim |")[0]   # the caveat comes first
    assert "| (b) FRGAN's ACD-I and ACD-C are both below 0.2 | Table 1, section 4.2 | supported | no |" in claims
    assert "- MSE (lower is better): FRGAN 0.500 ± 0.100 vs VGAN 0.040 ± 0.005: does not hold" in claims


def test_claims_say_when_intervals_overlap(tmp_path):
    folder = tmp_path / "metrics"
    write_evaluation(folder, "actors-synth", "frgan", mse=(0.030, 0.020, 0.040), mse_gt=(0.01, 0.009, 0.011))
    write_evaluation(folder, "actors-synth", "villegas17", mse=(0.035, 0.025, 0.045), mse_gt=(0.03, 0.02, 0.04))
    tables, _ = build(tmp_path, folder)
    [e] = [c for c in check_claims(list(tables.values())) if c.key == "e"]
    assert e.verdict == "supported" and e.overlaps == ["MSE: FRGAN and Villegas et al."]
    assert "holds (95% intervals overlap)" in e.evidence[0]


def test_villegas_claim_ranks(tmp_path):
    folder = tmp_path / "metrics"
    for method, acd_i, acd_c in (("mcnet", 0.5, 0.3), ("villegas17", 0.7, 0.13), ("mocogan", 0.3, 0.2),
                                 ("frgan", 0.18, 0.1)):
        write_evaluation(folder, "faces-synth", method, acd_i=(acd_i, acd_i - 0.01, acd_i + 0.01),
                         acd_c=(acd_c, acd_c - 0.01, acd_c + 0.01))
    tables, _ = build(tmp_path, folder)
    claims = {c.key: c.verdict for c in check_claims(list(tables.values()))}
    assert claims["a"] == claims["b"] == claims["c"] == "supported"   # the paper's own Table 1 pattern


# ---------------------------------------------------------------------------------------------
# The stage's command line.

def _stage_dir(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "reports").mkdir()
    shutil.copy(PUBLISHED, tmp_path / "reports" / "published.yaml")
    return tmp_path / "reports" / "metrics"


def test_malformed_evaluate_json_is_a_one_line_error(tmp_path):
    metrics = _stage_dir(tmp_path)
    metrics.mkdir()
    (metrics / "evaluate-actors-synth-frgan-seed0.json").write_text('{"dataset": "actors-synth", "method": ')
    result = run_module("pipelines.report", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: reports/metrics/evaluate-actors-synth-frgan-seed0.json: not valid JSON (Expecting value at line 1)"]
    assert not (tmp_path / "reports" / "tables").exists()


# ---------------------------------------------------------------------------------------------
# MLflow: one experiment per table, one run per method, findable from the table file, no duplicates.

def test_mlflow_runs_per_table_findable_from_the_footer_and_not_duplicated(tmp_path, fake_metrics):
    import mlflow
    metrics = _stage_dir(tmp_path)
    shutil.copytree(fake_metrics, metrics)
    shutil.copytree(fake_metrics.parent / "plots", tmp_path / "reports" / "plots")
    write_train_json(metrics, "actors-synth", "frgan")   # a train stage's budget (no MLflow train run: n/a)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    first = run_module("pipelines.report", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert first.returncode == 0, first.stderr
    budget = (tmp_path / "reports" / "tables" / "budget.md").read_text()
    assert "| actors-synth | frgan | 0 | gm+gr | 12 | 210 | 1,680 | 9,999 | n/a |" in budget
    assert (tmp_path / "reports" / "tables" / "budget.csv").is_file()
    footer = (tmp_path / "reports" / "tables" / "table3.md").read_text().strip().splitlines()[-1]
    key = re.search(r"tags\.report_key = '([0-9a-f]{16})'", footer).group(1)
    assert "experiment `FRGAN-Repro/table3`" in footer
    client = mlflow.MlflowClient(uri)

    def runs(experiment, query=""):
        found = client.get_experiment_by_name(experiment)
        return client.search_runs([found.experiment_id], query) if found else []

    [parent] = runs("FRGAN-Repro", f"tags.report_key = '{key}'")
    assert {"budget.json", "budget.md", "budget.csv"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert f"tags.report_key = '{key}'" in budget
    # The table's runs are top-level in its experiment (its page lists a row per method with its
    # metrics, nothing collapsed), linked to the report run by a tag; the footer says how to filter.
    assert "`tags.run_kind = 'method'`" in footer
    [table3] = runs("FRGAN-Repro/table3", f"tags.report_key = '{key}' and tags.run_kind = 'table'")
    assert table3.data.tags["mlflow.runName"] == "table 3" and table3.data.tags["table"] == "3"
    methods = {r.data.tags["method"]: r for r in runs("FRGAN-Repro/table3", f"tags.report_key = '{key}' and tags.run_kind = 'method'")}
    assert set(methods) == {"frgan", "vgan"}   # the rows with results; Mathieu/Villegas not run
    for run in [table3, *methods.values()]:
        assert "mlflow.parentRunId" not in run.data.tags and run.info.status == "FINISHED"
        assert run.data.tags["source_run_id"] == parent.info.run_id
        assert run.data.tags["git_commit"] == parent.data.tags["git_commit"]
    assert methods["frgan"].data.metrics["mse"] == 0.5 and methods["frgan"].data.metrics["mse_gt"] == 0.02
    assert methods["frgan"].data.metrics["mse_low"] == 0.4 and methods["frgan"].data.metrics["mse_high"] == 0.6
    assert methods["frgan"].data.params["published.mse"] == "0.023"    # Table 3, Ours
    # the per-frame scores as a CSV artifact of the method's run (every seed), no dataset input
    assert not methods["frgan"].inputs.dataset_inputs
    frames = pd.read_csv(mlflow.artifacts.download_artifacts(
        run_id=methods["frgan"].info.run_id, artifact_path="per-frame/actors-synth.csv", tracking_uri=uri))
    expected = pd.read_csv(tmp_path / "reports" / "plots" / "evaluate-actors-synth-frgan-seed0.csv").assign(seed=0)
    pd.testing.assert_frame_equal(frames, expected)
    assert "table3.json" in [a.path for a in client.list_artifacts(table3.info.run_id)]
    for experiment in ("FRGAN-Repro", "FRGAN-Repro/table3"):   # the UI's training view, not GenAI
        assert client.get_experiment_by_name(experiment).tags["mlflow.experimentKind"] == "custom_model_development"
    # the saved view the footer names: this report's method runs, the table's metric columns shown
    assert "saved view `table3`" in footer
    view = json.loads(client.get_experiment_by_name("FRGAN-Repro/table3").tags["mlflow.sharedViewState.table3"])
    state = json.loads(view["state"])
    assert {r.info.run_id for r in runs("FRGAN-Repro/table3", state["searchFilter"])} == {r.info.run_id for r in methods.values()}
    assert {"metrics.`mse`", "metrics.`mse_gt`", "params.`published.mse`"} <= set(state["selectedColumns"])
    counted = {e.name: len(runs(e.name)) for e in client.search_experiments()}
    second = run_module("pipelines.report", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert second.returncode == 0, second.stderr
    assert "nothing logged" in second.stdout
    assert {e.name: len(runs(e.name)) for e in client.search_experiments()} == counted
    write_evaluation(metrics, "actors-synth", "vgan", mse=(0.05, 0.045, 0.055))   # an input changed: a new report
    third = run_module("pipelines.report", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert third.returncode == 0, third.stderr
    assert len(runs("FRGAN-Repro")) == counted["FRGAN-Repro"] + 1


def test_table2_shows_the_study_answers_or_says_there_are_none(tmp_path, fake_metrics):
    from reporting import study
    evaluations = load_evaluations(fake_metrics)
    published = load_published(PUBLISHED)
    answers = tmp_path / "answers.csv"
    write_report(evaluations, published, "smoke", "faces-synth", "actors-synth", tmp_path / "t",
                        tmp_path / "f", fake_metrics.parent / "plots", answers_csv=answers)
    empty = (tmp_path / "t" / "table2.md").read_text()
    assert "No answers yet" in empty and "%" not in empty.split("\n", 1)[1].replace("(%)", "")
    rows = [{"dataset": "faces-synth", "study_id": "s", "rater": f"r{i % 2}", "question": f"q{i}",
             "expression": "anger", "competitor": "mcnet", "left_method": "frgan", "right_method": "mcnet",
             "chosen_method": "frgan" if i < 3 else "mcnet", "seconds": 1.0, "answered_at": "x"} for i in range(4)]
    pd.DataFrame(rows, columns=study.ANSWER_COLUMNS).to_csv(answers, index=False)
    write_report(evaluations, published, "smoke", "faces-synth", "actors-synth", tmp_path / "t",
                        tmp_path / "f", fake_metrics.parent / "plots", answers_csv=answers)
    table2 = (tmp_path / "t" / "table2.md").read_text()
    assert "| Ours / MCNet [38] | 75.0 | 25.0 |" in table2 and "84.2 / 15.8" in table2


# ---------------------------------------------------------------------------------------------
# The floor (copy-input): its rows, the faces truth columns, and claims.md's verdict per method.

def write_run(metrics, videos, dataset: str, method: str, **columns) -> None:
    """A seed-0 run: per-video CSV (8 videos) and the evaluate JSON of its means (interval mean +- 0.001,
    or +- 0 where every video has the same score)."""
    table = write_videos(videos, dataset, method, 0, **{k: np.asarray(v, float) for k, v in columns.items()})
    half = {k: 0.0 if table[k].nunique() == 1 else 0.001 for k in columns}
    write_evaluation(metrics, dataset, method, 0, **{k: (float(table[k].mean()), float(table[k].mean()) - half[k],
                                                         float(table[k].mean()) + half[k]) for k in columns})


@pytest.fixture
def floor_results(tmp_path):
    """actors-synth: FRGAN beats the floor on every video; Mathieu has a lower mean but an interval
    across 0; VGAN is worse. faces-synth: the floor copies a nearly still face (MSE 0.001), FRGAN
    does not beat it."""
    metrics, videos = tmp_path / "metrics", tmp_path / "videos"
    floor = np.linspace(0.010, 0.012, 8)
    swing = np.array([-0.004, 0.003] * 4)                 # mean -0.0005, signs alternate
    write_run(metrics, videos, "actors-synth", "copy-input", mse=floor, mse_gt=floor)
    write_run(metrics, videos, "actors-synth", "frgan", mse=floor - 0.004, mse_gt=floor - 0.003)
    write_run(metrics, videos, "actors-synth", "mathieu", mse=floor + swing, mse_gt=floor + swing)
    write_run(metrics, videos, "actors-synth", "vgan", mse=floor + 0.02, mse_gt=floor + 0.02)
    still = np.full(8, 0.001)
    write_run(metrics, videos, "faces-synth", "copy-input", mse=still, psnr=np.full(8, 30.0),
              acd_i=np.zeros(8), acd_c=np.zeros(8))
    write_run(metrics, videos, "faces-synth", "frgan", mse=still + np.linspace(0.015, 0.02, 8),
              psnr=np.full(8, 17.0), acd_i=np.full(8, 0.3), acd_c=np.full(8, 0.2))
    write_run(metrics, videos, "faces-synth", "mcnet", mse=still + 0.02, psnr=np.full(8, 16.0),
              acd_i=np.full(8, 0.5), acd_c=np.full(8, 0.1))
    results = load_results(metrics, videos_dir=videos)
    tables, _ = write_report(results.scores, load_published(PUBLISHED), "smoke", "faces-synth",
                                    "actors-synth", tmp_path / "tables", tmp_path / "figures", tmp_path / "no-plots",
                                    results=results)
    return {"tables": {t.spec.number: t for t in tables}, "folder": tmp_path / "tables", "results": results}


def test_floor_row_in_tables_1_3_4_with_its_numbers_and_the_acd_footer(floor_results):
    tables, folder = floor_results["tables"], floor_results["folder"]
    row = "Copy the input frame"
    assert cell(tables[1], row, "ACD-I") == cell(tables[1], row, "ACD-C") == "0.000 ± 0.000 (-)"   # no published value
    assert cell(tables[1], row, "MSE (true video)") == "0.001 ± 0.000 (-)"
    assert cell(tables[1], row, "PSNR (true video)") == "30.000 ± 0.000 (-)"
    assert cell(tables[3], row, "MSE") == "0.011 ± 0.001 (-)" and cell(tables[3], row, "MSE (GT)") == "0.011 ± 0.001 (-)"
    assert cell(tables[4], row, "ACD-I") == "0.000 ± 0.000 (-)" and cell(tables[4], row, "MSE") == "0.011 ± 0.001 (-)"
    sentence = ("Its ACD-I and ACD-C are 0 by construction: ACD alone rewards a still video, which is why the "
                "paper has the Reference row.")
    for number in (1, 4):
        text = (folder / f"table{number}.md").read_text()
        rows_end = text.rindex("| Copy the input frame |") if number == 4 else text.rindex("| Reference |")
        assert text.index(sentence) > rows_end, number    # a footer: under the rows
    assert sentence not in (folder / "table3.md").read_text()      # no ACD in Table 3
    assert "| Copy the input frame | 0.011 ± 0.001 (-) | 0.011 ± 0.001 (-) |" in (folder / "table3.md").read_text()
    # the floor is no method of the paper: left out of its orderings and claims
    summary = (folder / "summary.md").read_text()
    assert "Copy the input frame" not in summary and "- MSE (true video)" not in summary   # (it is in titles)
    claims = {c.key: c for c in check_claims(list(tables.values()))}
    assert not any("Copy the input frame" in e for c in claims.values() for e in c.evidence)
    assert claims["f"].verdict == "supported"   # FRGAN vs VGAN and Mathieu only: the floor is no baseline
    # claim (a) compares FRGAN with the baselines that ran (MCNet here), never with the floor's ACD of 0
    assert [e.split(":")[1].split(" vs ")[1].split(" ")[0] for e in claims["a"].evidence] == ["MCNet"] * 2


def test_faces_truth_columns_are_labelled_not_in_the_paper(floor_results):
    tables, folder = floor_results["tables"], floor_results["folder"]
    assert [c.label for c in tables[1].spec.columns] == ["ACD-I", "ACD-C", "MSE (true video)", "PSNR (true video)"]
    assert [c.label for c in tables[4].spec.columns] == ["ACD-I", "ACD-C", "MSE", "MSE (true video)",
                                                         "PSNR (true video)"]
    assert cell(tables[1], "FRGAN", "MSE (true video)") == "0.018 ± 0.001 (-)"   # 0.0185
    assert cell(tables[4], "G_M (dense) + G_R", "PSNR (true video)") == "17.000 ± 0.000 (-)"
    assert cell(tables[1], "Reference", "MSE (true video)") == "not run"
    for number in (1, 4):
        assert "not in the paper" in (folder / f"table{number}.md").read_text()
    assert tables[1].directions["PSNR (true video)"] == "higher"
    frame = pd.read_csv(folder / "table1.csv").set_index("method")
    assert float(frame.loc["FRGAN", "MSE (true video) [faces-synth]"]) == pytest.approx(0.0185)
    assert not [c for c in frame.columns if c.startswith("MSE (true video) published")]   # nothing published
    assert "ACD-I published [MUG]" in frame.columns


def test_claims_say_which_methods_beat_the_floor(floor_results):
    checks = {(c.method, c.column): c for c in floor_checks(floor_results["results"],
                                                                     floor_results["tables"][1].datasets)}
    assert checks[("frgan", "actors-synth MSE")].verdict == "beats"
    assert checks[("frgan", "actors-synth MSE (GT)")].verdict == "beats"
    assert checks[("mathieu", "actors-synth MSE")].verdict == "does not beat"   # lower mean, interval across 0
    assert checks[("vgan", "actors-synth MSE")].verdict == "does not beat"
    assert checks[("frgan", "faces-synth MSE (true video)")].verdict == "does not beat"
    assert checks[("mcnet", "actors-synth MSE")].verdict == "cannot check (not run)"
    assert {m for m, _ in checks} == {"frgan", "mathieu", "vgan", "mcnet"}          # not copy-input itself
    # the verdicts follow the rule on the paired test (metrics.stats.compare_methods)
    from metrics.stats import compare_methods
    results = floor_results["results"]
    frgan = compare_methods(results.videos[("actors-synth", "frgan")],
                            results.videos[("actors-synth", "copy-input")], "mse")
    mathieu = compare_methods(results.videos[("actors-synth", "mathieu")],
                              results.videos[("actors-synth", "copy-input")], "mse")
    assert frgan.mean_difference == pytest.approx(-0.004) and frgan.high < 0
    assert mathieu.mean_difference < 0 < mathieu.high
    claims = (floor_results["folder"] / "claims.md").read_text()
    assert "## The floor: does each method beat copying the input frame (copy-input)?" in claims
    assert "the 95% paired-bootstrap interval of the difference" in claims and "excludes 0" in claims
    [line] = [l for l in claims.splitlines() if l.startswith("| frgan |")]
    assert line.startswith("| frgan | **does not beat**: ") and f"**beats**: -0.0040 [{frgan.low:+.4f}, " \
        f"{frgan.high:+.4f}], p = {frgan.p_value:.2g}, 8 videos |" in line
    assert "| mcnet | **does not beat**: " in claims and "| cannot check (not run) |" in claims


def test_without_the_floor_claims_say_it_cannot_be_checked(tmp_path, fake_metrics):
    build(tmp_path, fake_metrics)
    claims = (tmp_path / "tables" / "claims.md").read_text()
    assert "Cannot check: no per-video MSE of `copy-input`" in claims


# ---------------------------------------------------------------------------------------------
# The training budget table: counts from train-*.json, wall time from MLflow.

def write_train_json(folder, dataset: str, method: str, seed: int = 0, **counts) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    body = {"dataset": dataset, "method": method, "seed": seed, "splits": ["gm", "gr"],
            "clips": 12, "generator_steps": 210, "samples_seen": 1680, "parameters": 9999, **counts}
    (folder / f"train-{dataset}-{method}-seed{seed}.json").write_text(json.dumps(body))


def log_train_run(dataset: str, method: str, seed: int, start_ms: int, seconds: float, status="FINISHED"):
    """A train stage's MLflow run, its times set (tests cannot wait for a real duration)."""
    import mlflow
    from frgan import tracking
    client = mlflow.MlflowClient(tracking.tracking_uri())
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(tracking.EXPERIMENT)
    run = client.create_run(experiment_id, start_time=start_ms, tags={
        "stage": f"train@{dataset}-{method}-{seed}", "dataset": dataset, "method": method, "seed": str(seed)})
    client.set_terminated(run.info.run_id, status=status, end_time=start_ms + int(seconds * 1000))


def test_budget_table_from_train_jsons_and_mlflow_wall_times(tmp_path):
    metrics = tmp_path / "metrics"
    write_train_json(metrics, "actors-synth", "frgan")
    write_train_json(metrics, "actors-synth", "copy-input", clips=0, generator_steps=0, samples_seen=0, parameters=0)
    write_train_json(metrics, "actors-synth", "frgan", seed=1, parameters=123456)
    write_train_json(metrics, "faces-synth", "frgan", seed=2)   # a seed dropped from train.seeds: left out
    write_evaluation(metrics, "actors-synth", "frgan", mse=(0.02, 0.01, 0.03))   # other files are not budgets
    log_train_run("actors-synth", "frgan", 0, 1_000_000, 100.0)
    log_train_run("actors-synth", "frgan", 0, 2_000_000, 42.5)                    # the newest finished run
    log_train_run("actors-synth", "frgan", 0, 3_000_000, 7.0, status="FAILED")   # not finished: ignored
    log_train_run("actors-synth", "frgan", 1, 1_000_000, 61.25)
    walls = train_wall_times()
    assert walls[("actors-synth", "frgan", 0)] == 42.5 and walls[("actors-synth", "frgan", 1)] == 61.25
    budgets = load_budgets(metrics, seeds=[0, 1])
    frame = budget_frame(budgets, walls)
    assert list(frame.columns) == ["dataset", "method", "seed", "splits", "clips", "generator_steps",
                                   "samples_seen", "parameters", "wall_time_s"]
    assert [(r.method, r.seed) for r in frame.itertuples()] == [("copy-input", 0), ("frgan", 0), ("frgan", 1)]
    files = write_budget(frame, "smoke", tmp_path, run_key="0123456789abcdef")
    md = (tmp_path / "budget.md").read_text()
    assert "| actors-synth | frgan | 0 | gm+gr | 12 | 210 | 1,680 | 9,999 | 42.5 |" in md
    assert "| actors-synth | frgan | 1 | gm+gr | 12 | 210 | 1,680 | 123,456 | 61.2 |" in md   # one decimal
    assert "| actors-synth | copy-input | 0 | gm+gr | 0 | 0 | 0 | 0 | n/a |" in md             # no MLflow run
    assert "not pooled" in md and "tags.report_key = '0123456789abcdef'" in md and "faces-synth" not in md
    csv = pd.read_csv(files[1])
    assert csv.wall_time_s.tolist()[1:] == [42.5, 61.2] and np.isnan(csv.wall_time_s[0])
    assert csv.parameters.tolist() == [0, 9999, 123456]


def test_bad_train_json_is_a_one_line_error(tmp_path):
    folder = tmp_path / "metrics"
    write_train_json(folder, "actors-synth", "frgan", clips=-1)
    path = folder / "train-actors-synth-frgan-seed0.json"
    with pytest.raises(DatasetError, match=re.escape(f"{path}: expected an object with string 'dataset'")):
        load_budgets(folder)
    write_train_json(folder, "actors-synth", "frgan", seed=3)
    (folder / "train-actors-synth-frgan-seed3.json").rename(path)
    with pytest.raises(DatasetError, match=re.escape(f"{path}: holds dataset 'actors-synth', method 'frgan', seed 3: "
                                                     "expected the name train-actors-synth-frgan-seed3.json")):
        load_budgets(folder)
    path.write_text("{")
    with pytest.raises(DatasetError, match=re.escape(f"{path}: not valid JSON")):
        load_budgets(folder)


def test_report_key_reads_the_train_jsons_not_the_wall_times(tmp_path, fake_metrics):
    params = load_params(REPO / "params.yaml")
    key = report_key(params, fake_metrics, tmp_path / "plots", PUBLISHED, tmp_path / "none.csv",
                            tmp_path / "videos")
    log_train_run("actors-synth", "frgan", 0, 1_000_000, 5.0)   # a new wall time: same key
    assert report_key(params, fake_metrics, tmp_path / "plots", PUBLISHED, tmp_path / "none.csv",
                             tmp_path / "videos") == key
    write_train_json(fake_metrics, "actors-synth", "frgan")          # a budget the report reads: a new key
    assert report_key(params, fake_metrics, tmp_path / "plots", PUBLISHED, tmp_path / "none.csv",
                             tmp_path / "videos") != key
