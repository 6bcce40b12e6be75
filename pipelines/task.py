"""A dataset's `frgan.task.Task` as the stages see it: the prepared clip store and the
conditions stage's folder. No torch at import (frgan.task makes tensors only when asked)."""
from __future__ import annotations

from pathlib import Path

from frgan.config import Params
from frgan.data.clipstore import ClipStore
from frgan.task import Task
from pipelines.paths import conditions_path, store_path


def load_task(params: Params, dataset: str) -> Task:
    return Task(dataset, params, ClipStore(store_path(dataset)), Path(conditions_path(dataset)))
