"""The study folder as build writes it and serve and tally read it back (`Study`, `open_study`).

    questions.json          the draw (never served: it names the methods)
    videos/<opaque>.gif     the only files the server sends
    answers.sqlite          written by serve (store.py)
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frgan.data.errors import DatasetError

QUESTIONS_FILE = "questions.json"
GIFS_DIR = "videos"   # the study folder's GIFs (not frgan.paths.VIDEOS_DIR, the per-video scores)
DB_FILE = "answers.sqlite"
VIDEO_RE = re.compile(r"[0-9a-f]{20}\.gif")
BUILD_COMMAND = "`python -m pipelines.study build`"


@dataclass(frozen=True)
class Study:
    folder: Path
    record: dict[str, Any]

    @property
    def study_id(self) -> str:
        return self.record["study_id"]

    @property
    def questions(self) -> dict[str, dict[str, Any]]:
        return {q["id"]: q for q in self.record["questions"]}

    def order_for(self, rater: str) -> list[str]:
        """The rater's question order: shuffled per rater, the same on every visit."""
        ids = [q["id"] for q in self.record["questions"]]
        random.Random(f"{self.study_id}|order|{rater}").shuffle(ids)
        return ids

    def sides(self, rater: str, question: str) -> tuple[str, str]:
        """(left video, right video) of a question for a rater: a fair coin per rater and question."""
        q = self.questions[question]
        coin = hashlib.sha256(f"{self.study_id}|side|{rater}|{question}".encode()).digest()[0] & 1
        pair = (q["frgan_video"], q["competitor_video"])
        return pair if coin == 0 else pair[::-1]

    def method_of(self, video: str) -> str:
        return self.record["videos"][video]["method"]


def open_study(folder: Path) -> Study:
    """The study of `folder`; DatasetError naming the file when it is absent or malformed."""
    folder = Path(folder)
    path = folder / QUESTIONS_FILE
    if not folder.is_dir():
        raise DatasetError(f"{folder}: study folder not found (expected the output of {BUILD_COMMAND})")
    try:
        record = json.loads(path.read_text())
        if not (isinstance(record["questions"], list) and isinstance(record["videos"], dict)
                and isinstance(record["study_id"], str)):
            raise TypeError
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found (expected the output of {BUILD_COMMAND})") from None
    except (ValueError, KeyError, TypeError):
        raise DatasetError(f"{path}: expected the JSON written by {BUILD_COMMAND} "
                           "(questions, videos, study_id)") from None
    for name in record["videos"]:
        if not VIDEO_RE.fullmatch(name) or not (folder / GIFS_DIR / name).is_file():
            raise DatasetError(f"{folder / GIFS_DIR / name}: video of {path} not found")
    return Study(folder, record)
