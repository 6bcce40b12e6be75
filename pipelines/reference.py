"""reference@<faces dataset>: Table 1's "Reference" row, ACD of real training videos.

    python -m pipelines.reference --dataset faces-synth

Paper 4.2: the ACD of the training videos is the reference a generator should approach (real
videos keep the identity, so ACD-I and ACD-C measure how much a real face's embedding moves
while it makes the expression). Each training clip (splits gm and gr) is scored the way a
generated test video is (frgan.conditions.faces.retargeting_plan): its frame 0 (the neutral
start) is the input, input_frame = 0 as in the test items, and the scored video is the T frames
after it, T = n_targets of the test set. So ACD-I averages ||e(x_t) - e(x_0)|| over t = 1..T (no
zero for the input itself) and ACD-C pairs only those T frames. A clip needs T + 1 frames;
shorter ones are skipped and counted (printed, and `clips_too_short` in the JSON). Same embedder,
same bootstrap as evaluate.

The stage is a DVC matrix over report.reference_datasets (params.yaml): [] in a graph without a
faces dataset yields no stage.

Outs: reports/metrics/evaluate-<dataset>-reference.json (the report reads it as method
`reference`) and reports/plots/evaluate-<dataset>-reference.csv.
"""
from __future__ import annotations

if __name__ == "__main__":   # first: MLflow imports in a helper process meanwhile (frgan.tracking.prestart)
    from frgan.tracking import prestart
    prestart()

import numpy as np
import pandas as pd

from frgan.config import Params
from frgan.data.clipstore import TRAIN_SPLITS
from frgan.data.errors import DatasetError
from frgan.task import Task, TestFrames
from metrics.scoring import score_videos
from pipelines import _stage
from frgan.paths import REFERENCE
from frgan.task import load_task

METHOD = REFERENCE
SPLITS = TRAIN_SPLITS   # the training splits (G_M's and G_R's; MUG: the authors' train and val subjects)


INPUT_FRAME = 0   # the test items' input_frame on faces (retargeting_plan): the clip's neutral start


def reference_clips(task: Task, n_frames: int) -> tuple[pd.DataFrame, int]:
    """(training clips of at least INPUT_FRAME + 1 + n_frames frames, how many were shorter)."""
    if task.kind != "faces":
        raise DatasetError(f"--dataset {task.dataset}: the reference row is Table 1's (ACD of faces); "
                           "expected a faces dataset (faces-synth or mug)")
    clips = pd.concat([task.store.split(name) for name in SPLITS])
    needed = INPUT_FRAME + 1 + n_frames
    long_enough = clips[clips.length >= needed]
    if long_enough.empty:
        raise DatasetError(f"{task.store.root}: no training clip (splits {', '.join(SPLITS)}) of {needed}+ "
                           f"frames (an input frame and the {n_frames} frames a test video is scored on)")
    return long_enough, len(clips) - len(long_enough)


def reference_items(task: Task, n_frames: int) -> tuple[TestFrames, np.ndarray, int]:
    """The training clips as (items whose input is each clip's frame INPUT_FRAME, videos
    (N, n_frames, H, W, 3) uint8 of the frames after it, clips skipped as too short)."""
    clips, skipped = reference_clips(task, n_frames)
    inputs = clips.start.values + INPUT_FRAME
    rows = inputs[:, None] + 1 + np.arange(n_frames)[None, :]
    s = task.size
    videos = np.asarray(task.store.frames[rows.ravel()]).reshape(len(clips), n_frames, s, s, 3)
    index = pd.DataFrame({"item": np.arange(len(clips)), "clip_id": clips.clip_id.values,
                          "subject": clips.subject.values, "label": clips.label.values})
    items = TestFrames(index, np.asarray(task.store.frames[inputs]), truth=None)
    return items, videos, skipped


def test_length(task: Task) -> int:
    """T of the generated test videos (the evaluation set of the conditions stage)."""
    index = pd.read_csv(task.conditions / "test_index.csv")
    return int(index.n_targets.iloc[0])


def main(params: Params, args) -> None:
    task = load_task(params, args.dataset)
    n_frames = test_length(task)
    items, videos, skipped = reference_items(task, n_frames)
    stage = f"reference@{args.dataset}"
    if skipped:
        print(f"{stage}: {skipped} training clip(s) shorter than {INPUT_FRAME + 1 + n_frames} frames skipped; "
              f"{len(videos)} scored")

    def compute():
        result, frames, per_video = score_videos(task.kind, items, videos, None, params.evaluate.embedder,
                                                 args.dataset, METHOD, params.seed)
        return {**result, "clips_too_short": skipped}, frames, per_video

    _stage.write_scores(stage, params, args.dataset, METHOD, None, compute)


if __name__ == "__main__":
    _stage.run(main, _stage.parser(__doc__.splitlines()[0], dataset=True), registry=False)
