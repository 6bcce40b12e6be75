"""reference@<faces dataset>: Table 1's "Reference" row, ACD of real training videos.

    python -m pipelines.reference --dataset faces-synth

Paper 4.2: the ACD of the training videos is the reference a generator should approach (real
videos keep the identity, so ACD-I and ACD-C measure how much a real face's embedding moves
while it makes the expression). Each training clip (splits gm and gr) of at least T frames gives one video: its
first T frames, with frame 0 as the "input"; T is the generated test videos' length, so the
row is comparable with the methods'. Same embedder, same bootstrap as evaluate.

Outs: reports/metrics/evaluate-<dataset>-reference.json (the report reads it as method
`reference`) and reports/plots/evaluate-<dataset>-reference.csv.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from frgan.config import Params
from frgan.data.errors import DatasetError
from frgan.task import Task, TestItems
from pipelines import _stage
from pipelines.evaluate import score_videos, write_scores
from pipelines.paths import REFERENCE
from pipelines.train import load_task

METHOD = REFERENCE
SPLITS = ("gm", "gr")   # the training splits (G_M's and G_R's; MUG: the authors' train and val subjects)


def reference_items(task: Task, n_frames: int) -> tuple[TestItems, np.ndarray]:
    """The training clips as (items whose input is each clip's frame 0, videos (N, T, H, W, 3) uint8)."""
    if task.kind != "faces":
        raise DatasetError(f"--dataset {task.dataset}: the reference row is Table 1's (ACD of faces); "
                           "expected a faces dataset (faces-synth or mug)")
    clips = pd.concat([task.store.split(name) for name in SPLITS])
    clips = clips[clips.length >= n_frames]
    if clips.empty:
        raise DatasetError(f"{task.store.root}: no training clip (splits {', '.join(SPLITS)}) of {n_frames}+ frames")
    rows = clips.start.values[:, None] + np.arange(n_frames)[None, :]
    s = task.size
    videos = np.asarray(task.store.frames[rows.ravel()]).reshape(len(clips), n_frames, s, s, 3)
    index = pd.DataFrame({"item": np.arange(len(clips)), "clip_id": clips.clip_id.values,
                          "subject": clips.subject.values, "label": clips.label.values})
    first = task.frames_of_rows(clips.start.values)
    items = TestItems(index, first, task.cond_of_rows(clips.start.values), cond=None, cond_gt=None, truth=None)
    return items, videos


def test_length(task: Task) -> int:
    """T of the generated test videos (the evaluation set of the conditions stage)."""
    index = pd.read_csv(task.conditions / "test_index.csv")
    return int(index.n_targets.iloc[0])


def main(params: Params, args) -> None:
    task = load_task(params, args.dataset)
    items, videos = reference_items(task, test_length(task))
    stage = f"reference@{args.dataset}"
    write_scores(stage, params, args.dataset, METHOD, None,
                 lambda: score_videos(task, items, videos, None, params.evaluate.embedder, args.dataset,
                                      METHOD, params.seed))


if __name__ == "__main__":
    _stage.run(main, _stage.parser(__doc__.splitlines()[0], dataset=True))
