"""tally: the answer store -> reports/study/answers.csv (with the draw beside it, study.json),
Table 2's markdown, and an MLflow run `study-tally` with its numbers. Table 2 itself is table2.py.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from frgan.config import Params
from frgan.data.errors import DatasetError
from frgan.io import atomic_file
from reporting.layout import PUBLISHED
from reporting.study import store
from reporting.study.folder import DB_FILE, QUESTIONS_FILE, Study, open_study
from reporting.study.table2 import ANSWER_COLUMNS, ANSWERS_CSV, table2_frame, table2_markdown

STUDY_RECORD = "study.json"   # written beside the answers CSV


def export_answers(study: Study, db_path: Path) -> list[dict[str, Any]]:
    """Every answer of the study's database, oldest first, as ANSWER_COLUMNS rows."""
    questions = study.questions
    out = []
    for rater, question, left, right, chosen, seconds, at in store.answers(
            db_path, study.study_id, study.folder / QUESTIONS_FILE):
        q = questions[question]
        out.append({"dataset": study.record["dataset"], "study_id": study.study_id, "rater": rater,
                    "question": question, "expression": q["expression"], "competitor": q["competitor"],
                    "left_method": left, "right_method": right, "chosen_method": chosen,
                    "seconds": round(float(seconds), 3), "answered_at": at})
    return out


def write_answers_csv(rows: Iterable[Mapping[str, Any]], path: Path = ANSWERS_CSV) -> None:
    import pandas as pd
    frame = pd.DataFrame(list(rows), columns=ANSWER_COLUMNS)
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def _load_published(path: Path = PUBLISHED) -> dict[tuple[int, str, str], Any]:
    """The published numbers as the report reads them; {} when unreadable (the tally still prints
    its own numbers)."""
    from reporting.results import load_published
    try:
        return load_published(path)
    except DatasetError:
        return {}


def tally(params: Params, folder: Optional[Path] = None, db_path: Optional[Path] = None,
          out: Path = ANSWERS_CSV, log: bool = True) -> str:
    """Export the answers to `out` (and the draw to study.json beside it), return Table 2's markdown;
    log: also an MLflow run `study-tally` with Table 2's numbers and the CSV."""
    from frgan import tracking
    study = open_study(Path(folder or params.study.folder))
    db_path = Path(db_path or study.folder / DB_FILE)
    rows = export_answers(study, db_path)
    write_answers_csv(rows, out)
    with atomic_file(Path(out).with_name(STUDY_RECORD)) as tmp:
        tmp.write_text(json.dumps(study.record, indent=1, sort_keys=True) + "\n")
    text = table2_markdown(out, _load_published())
    if log:
        table = table2_frame(out)
        with tracking.start_run("study-tally", params, tags={"dataset": study.record["dataset"],
                                                            "study_id": study.study_id}):
            metrics: dict[str, float] = {"answers": float(len(rows)),
                                         "raters": float(len({r["rater"] for r in rows})),
                                         "questions": float(len(study.questions))}
            for r in table.itertuples():
                metrics[f"table2_{r.competitor}_answers"] = float(r.answers)
                if r.answers:
                    metrics[f"table2_{r.competitor}_ours_pct"] = float(r.ours_pct)
                    metrics[f"table2_{r.competitor}_ours_low_pct"] = float(r.ours_low_pct)
                    metrics[f"table2_{r.competitor}_ours_high_pct"] = float(r.ours_high_pct)
            tracking.log_metrics(metrics)
            tracking.log_artifact(out)
    return text


def coverage(study: Study, rows: list[Mapping[str, Any]], wanted: int) -> str:
    """One line: how many questions have the wanted number of answers (paper: 3 raters each)."""
    per_q = {q: 0 for q in study.questions}
    for r in rows:
        per_q[r["question"]] = per_q.get(r["question"], 0) + 1
    full = sum(1 for n in per_q.values() if n >= wanted)
    return (f"{full} of {len(per_q)} questions have {wanted}+ answers "
            f"(min {min(per_q.values(), default=0)}, max {max(per_q.values(), default=0)})")
