"""Table 2 from the answers CSV alone (reports/study/answers.csv, written by tally.py).

The report stage writes reports/tables/table2.md with `table2_markdown(answers_csv, published)`;
`table2_frame` gives the numbers. FRGAN's share carries a Wilson interval
(metrics.stats.wilson_interval) that treats answers as independent, as the paper does.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

from frgan.data.errors import DatasetError
from reporting.layout import DATASET_TITLES
from reporting.study.draw import FRGAN

ANSWERS_CSV = Path("reports/study/answers.csv")
ANSWER_COLUMNS = ["dataset", "study_id", "rater", "question", "expression", "competitor",
                  "left_method", "right_method", "chosen_method", "seconds", "answered_at"]
NO_ANSWERS = "no answers yet"
# Table 2's rows, as printed in the paper (reports/published.yaml), and the datasets' titles.
PAPER_ROWS = {
    "mcnet": "Ours / MCNet [38]",
    "villegas17": "Ours / Villegas et al. [39]",
    "mocogan": "Ours / MoCoGAN [37]",
}


def read_answers(answers_csv: Path):
    """The answers CSV as a DataFrame; an empty one (the right columns) when the file is absent."""
    import pandas as pd
    path = Path(answers_csv)
    if not path.is_file():
        return pd.DataFrame(columns=ANSWER_COLUMNS)
    try:
        frame = pd.read_csv(path, dtype={"rater": str, "question": str})
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=ANSWER_COLUMNS)
    missing = [c for c in ("competitor", "chosen_method", "rater", "question") if c not in frame.columns]
    if missing:
        raise DatasetError(f"{path}: missing columns {missing} (expected {ANSWER_COLUMNS})")
    bad = ~frame["chosen_method"].isin([FRGAN]) & (frame["chosen_method"] != frame["competitor"])
    if bad.any():
        raise DatasetError(f"{path}: row {int(bad.idxmax()) + 2}: chosen_method must be {FRGAN} or the "
                           "row's competitor")
    return frame


def table2_frame(answers_csv: Path = ANSWERS_CSV):
    """Table 2 from the answers CSV: one row per competitor (paper order first) with answers n,
    FRGAN chosen k, FRGAN % and competitor %, the Wilson 95% interval of FRGAN % (low, high),
    and the questions and raters behind it. Percentages are NaN where a pair has no answers."""
    import pandas as pd

    from metrics.stats import wilson_interval   # here: the metrics package takes 0.7 s to import
    frame = read_answers(answers_csv)
    competitors = [c for c in PAPER_ROWS] + sorted(set(frame["competitor"].astype(str)) - set(PAPER_ROWS))
    records = []
    for c in competitors:
        rows = frame[frame["competitor"].astype(str) == c]
        n = int(len(rows))
        k = int((rows["chosen_method"] == FRGAN).sum())
        low, high = wilson_interval(k, n) if n else (math.nan, math.nan)
        records.append({
            "row": PAPER_ROWS.get(c, f"Ours / {c}"), "competitor": c, "answers": n, "frgan_chosen": k,
            "ours_pct": 100.0 * k / n if n else math.nan,
            "competitor_pct": 100.0 * (n - k) / n if n else math.nan,
            "ours_low_pct": 100.0 * low, "ours_high_pct": 100.0 * high,
            "questions": int(rows["question"].nunique()), "raters": int(rows["rater"].nunique()),
        })
    return pd.DataFrame.from_records(records)


def _published_value(published: Any, row: str, column: str) -> Optional[float]:
    """A published Table 2 number from the report's load_published dict ((2, row, column) -> object
    with .value), a plain {(2, row, column): float} dict, or None."""
    if not published:
        return None
    entry = published.get((2, row, column))
    value = getattr(entry, "value", entry)
    return None if value is None else float(value)


def table2_markdown(answers_csv: Path = ANSWERS_CSV, published: Any = None,
                    dataset: Optional[str] = None) -> str:
    """Table 2 as markdown for reports/tables/table2.md. With no answers it says "no answers yet"
    and shows no percentage; a pair without answers reads "no answers yet" in its row.

    published: the report's load_published() dict, or {(2, row, column): value}; None: no column of
    published numbers is filled. dataset: named in the title when the CSV names none (no answers).
    """
    frame = read_answers(answers_csv)
    datasets = sorted(set(frame["dataset"].dropna().astype(str))) if "dataset" in frame.columns else []
    if not datasets and dataset:
        datasets = [dataset]
    where = ", ".join(DATASET_TITLES.get(d, d) for d in datasets)
    title = "### Table 2: user preference (FRGAN vs each competitor)" + (f", rated on {where}" if where else "")
    if frame.empty:
        return (f"{title}\n\n{NO_ANSWERS.capitalize()}: nobody has taken the study, so this table "
                "shows no numbers. Run it with colleagues (README, \"Running the user study (Table 2)\"), "
                f"then `python -m pipelines.study tally` fills `{ANSWERS_CSV}`. The paper's "
                "numbers are in `reports/published.yaml`.\n")
    table = table2_frame(answers_csv)
    raters, asked = frame["rater"].nunique(), frame["question"].nunique()
    lines = [title, "",
             f"{len(frame)} answers from {raters} rater{'s' if raters != 1 else ''} on {asked} "
             f"question{'s' if asked != 1 else ''}. Ours / Competitor: share of answers preferring each "
             "side; then the Wilson 95% interval of FRGAN's share (answers treated as independent, as "
             "the paper's percentages are); last column: the paper's Ours / Competitor on MUG.", "",
             "| Methods | Ours (%) | Competitor (%) | FRGAN 95% interval (%) | Answers | Published on MUG (%) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in table.itertuples():
        ours_pub = _published_value(published, r.row, "Ours (%)")
        comp_pub = _published_value(published, r.row, "Competitor (%)")
        pub = f"{ours_pub:.1f} / {comp_pub:.1f}" if ours_pub is not None and comp_pub is not None else "-"
        if r.answers == 0:
            lines.append(f"| {r.row} | {NO_ANSWERS} | {NO_ANSWERS} | - | 0 | {pub} |")
        else:
            lines.append(f"| {r.row} | {r.ours_pct:.1f} | {r.competitor_pct:.1f} | "
                         f"{r.ours_low_pct:.1f} - {r.ours_high_pct:.1f} | {r.answers} | {pub} |")
    return "\n".join(lines) + "\n"
