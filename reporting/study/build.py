"""build: the study folder from the generate stage's test videos.

Reads each method's videos of the first training seed (data/generated/...), draws the questions
(draw.py), encodes every drawn video as a looping GIF under an opaque name and writes the folder
atomically (folder.py describes it).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from frgan.config import Params
from frgan.data.errors import DatasetError
from frgan.io import atomic_dir, write_gif
from frgan.paths import generated_path, stage_name
from reporting.study.draw import FRGAN, draw_questions
from reporting.study.folder import DB_FILE, QUESTIONS_FILE, GIFS_DIR
from reporting.study.store import count_answers


@dataclass(frozen=True)
class Generated:
    method: str
    folder: Path
    videos: np.ndarray      # (items, T, H, W, 3) uint8, memory-mapped
    labels: list[str]       # expression of each item (index.csv `label`)
    clip_ids: list[str]     # index.csv `clip_id` (or the item number)


def load_generated(dataset: str, method: str, seed: int) -> Generated:
    """One method's generated test videos (training seed `seed`); DatasetError naming the file when
    absent or malformed."""
    import pandas as pd
    folder = generated_path(dataset, method, seed)
    wanted = f"the output of {stage_name('generate', dataset, method, seed)} (videos.u8, index.csv, meta.json)"
    if not folder.is_dir():
        raise DatasetError(f"{folder}: generated videos not found (expected {wanted})")
    meta_path, index_path, videos_path = folder / "meta.json", folder / "index.csv", folder / "videos.u8"
    for path in (meta_path, index_path, videos_path):
        if not path.is_file():
            raise DatasetError(f"{path}: file not found (expected {wanted})")
    try:
        shape = [int(n) for n in json.loads(meta_path.read_text())["shape"]]
        if len(shape) != 5 or shape[-1] != 3 or min(shape) < 1:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise DatasetError(f"{meta_path}: expected JSON with `shape` [items, frames, height, width, 3]") from None
    if videos_path.stat().st_size != int(np.prod(shape)):
        raise DatasetError(f"{videos_path}: {videos_path.stat().st_size} bytes, expected "
                           f"{int(np.prod(shape))} for shape {shape} (meta.json)")
    try:
        index = pd.read_csv(index_path)
    except (ValueError, OSError) as exc:
        raise DatasetError(f"{index_path}: not a readable CSV ({type(exc).__name__})") from None
    if "label" not in index.columns or len(index) != shape[0]:
        raise DatasetError(f"{index_path}: expected a `label` column and {shape[0]} rows (meta.json), "
                           f"got columns {list(index.columns)} and {len(index)} rows")
    videos = np.memmap(videos_path, dtype=np.uint8, mode="r", shape=tuple(shape))
    clip_ids = (index["clip_id"] if "clip_id" in index.columns else index.index).astype(str).tolist()
    return Generated(method, folder, videos, index["label"].astype(str).tolist(), clip_ids)


def video_name(seed: int, method: str, item: int) -> str:
    # Opaque: the page never tells a rater which method made a video.
    return hashlib.sha256(f"frgan-study|{seed}|{method}|{item}".encode()).hexdigest()[:20] + ".gif"


def study_id_of(record: Mapping[str, Any]) -> str:
    """A short hash of the draw: answers are only ever tallied against the draw they answered."""
    core = {k: record[k] for k in ("dataset", "seed", "questions", "videos")}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()[:12]


def build(params: Params, folder: Optional[Path] = None, force: bool = False) -> dict[str, Any]:
    """Draw the questions, encode their videos as looping GIFs, write the study folder atomically.
    Returns the record written to questions.json."""
    study = params.study
    folder = Path(folder or study.folder)
    dataset = study.dataset or params.report.faces_dataset
    if dataset is None:   # a graph without faces (report.faces_dataset: null): nothing to rate
        raise DatasetError("params.yaml: study.dataset and report.faces_dataset are both null; expected a faces "
                           "dataset of prepare.datasets to draw the study's videos from (set study.dataset)")
    seed = params.seed if study.seed is None else study.seed
    answered = count_answers(folder / DB_FILE)
    if answered and not force:
        raise DatasetError(f"{folder / DB_FILE}: holds {answered} answers of the current study; run "
                           "`python -m pipelines.study tally` and move the folder away, or pass --force")
    train_seed = params.train.seeds[0]   # the study shows one training run per method: the first seed's
    generated = {m: load_generated(dataset, m, train_seed) for m in [FRGAN, *study.competitors]}
    draw = draw_questions({m: g.labels for m, g in generated.items()}, list(study.competitors),
                          study.videos_per_expression, study.questions, seed)
    if not draw.questions:
        raise DatasetError(f"{generated[FRGAN].folder}: no question can be drawn (expected videos of the "
                           f"same expression from {FRGAN} and at least one of {list(study.competitors)})")
    videos: dict[str, dict[str, Any]] = {}
    questions = []
    for q in draw.questions:
        sides = {}
        for side, method, item in (("frgan", FRGAN, q["frgan_item"]),
                                   ("competitor", q["competitor"], q["competitor_item"])):
            name = video_name(seed, method, item)
            videos[name] = {"method": method, "item": item, "clip_id": generated[method].clip_ids[item],
                            "expression": q["expression"]}
            sides[side] = name
        questions.append({"id": q["id"], "expression": q["expression"], "competitor": q["competitor"],
                          "frgan_video": sides["frgan"], "competitor_video": sides["competitor"]})
    record: dict[str, Any] = {
        "dataset": dataset, "seed": seed, "train_seed": train_seed,
        "paper": {"videos_per_expression": 10, "questions": 54, "raters_per_question": 3},
        "planned": {"videos_per_expression": study.videos_per_expression, "questions": study.questions,
                    "raters_per_question": study.raters_per_question, "per_cell": draw.planned},
        "competitors": list(study.competitors), "expressions": draw.expressions,
        "selected": draw.selected, "shortfall": draw.shortfall,
        "fps": study.fps, "display_px": study.display_px,
        "questions": questions, "videos": videos,
    }
    record["study_id"] = study_id_of(record)
    with atomic_dir(folder) as out:
        (out / GIFS_DIR).mkdir()
        from tqdm.auto import tqdm
        for name, v in tqdm(sorted(videos.items()), desc="study GIFs", unit="video", disable=None):
            write_gif(np.asarray(generated[v["method"]].videos[v["item"]]), out / GIFS_DIR / name, study.fps)
        (out / QUESTIONS_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record
