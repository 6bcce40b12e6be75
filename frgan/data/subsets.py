"""Capped subsets of a real dataset that every method can still train and be tested on.

Shared by the MUG and Penn Action adapters (`real_max_videos` in the profile). Two rules:

* `stratified_cap`: the videos are taken class by class, one (gm, gr, test) triple per class
  per round. A class thus enters the subset with one video in each split, so its test videos
  always have G_M's (gm) and G_R's (gr) training clips of the same class. A plain round-robin
  over (class, split) cells spreads a dozen videos over all 8 Penn actions but leaves test
  actions with no training clip (VGAN's per-class networks then have none to generate from).
  Our choice: fewer classes, each complete (12 videos -> 4 Penn actions, 4 MUG expressions).
* `drop_untrainable_tests`: any test video whose class has no gm or no gr video (a short real
  tree, a missing expression folder) is dropped; the adapter logs one line naming the classes.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, TypeVar

from frgan.data.records import SPLITS

Item = TypeVar("Item")
TRAINING_SPLITS = ("gm", "gr")   # G_M trains on gm, G_R on gr (paper 4.1); both must hold the class


def stratified_cap(cells: dict[tuple[str, str], list[Item]], classes: Sequence[str],
                   max_items: Optional[int]) -> list[Item]:
    """At most max_items items, drawn round by round: in each round every class in `classes`
    order gives its next gm, then gr, then test item (cells[(class, split)], already ordered).

    A class whose cell is empty skips that split; the order of the result is the draw order.
    """
    queues = {key: list(items) for key, items in cells.items()}
    limit = sum(len(q) for q in queues.values()) if max_items is None else max_items
    chosen: list[Item] = []
    while len(chosen) < limit and any(queues.values()):
        for cls in classes:
            for split in SPLITS:
                queue = queues.get((cls, split))
                if queue and len(chosen) < limit:
                    chosen.append(queue.pop(0))
    return chosen


def drop_untrainable_tests(items: Sequence[Item], label_of: Callable[[Item], str],
                           split_of: Callable[[Item], str], dataset: str) -> tuple[list[Item], Optional[str]]:
    """(`items` less the test items of classes with no gm or no gr item, the one line saying
    which were dropped or None). The caller logs the line, once per read."""
    trained = {split: {label_of(i) for i in items if split_of(i) == split} for split in TRAINING_SPLITS}
    trainable = set.intersection(*trained.values())
    dropped = sorted({label_of(i) for i in items if split_of(i) == "test"} - trainable)
    kept = [i for i in items if not (split_of(i) == "test" and label_of(i) in dropped)]
    if not dropped:
        return kept, None
    return kept, (f"{dataset}: {len(items) - len(kept)} test video(s) of {', '.join(dropped)} dropped: the "
                  "subset has no training video of that class in split gm or gr (raise real_max_videos "
                  "or read the whole dataset)")


def cells_of(items: Sequence[Item], key: Callable[[Item], tuple[str, str]]) -> dict[tuple[str, str], list[Item]]:
    """Items grouped by key(item) = (class, split), each group in the items' order."""
    cells: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        cells.setdefault(key(item), []).append(item)
    return cells

