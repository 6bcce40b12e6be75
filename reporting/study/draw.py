"""The paper's draw of the study's questions (section 4.2), from each method's per-video labels.

Pure: no files, no encoding (build.py does those). The scheme is in the package docstring.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

FRGAN = "frgan"
DRAW_STREAM = 2018_0402   # mixed into the seed: the study's draw is its own random stream


@dataclass(frozen=True)
class Draw:
    seed: int
    expressions: list[str]
    selected: dict[str, dict[str, list[int]]]     # method -> expression -> item numbers, in draw order
    planned: dict[str, dict[str, int]]            # competitor -> expression -> questions planned
    questions: list[dict[str, Any]]               # id, expression, competitor, frgan_item, competitor_item
    shortfall: list[str]                          # what the paper's scheme wanted and did not get


def _select(labels: Mapping[str, list[str]], methods: list[str], expressions: list[str],
            videos_per_expression: int, rng: np.random.Generator, shortfall: list[str]):
    """Step 1: per method and expression, up to videos_per_expression videos without replacement."""
    selected: dict[str, dict[str, list[int]]] = {}
    for method in methods:
        selected[method] = {}
        for expression in expressions:
            items = [i for i, label in enumerate(labels[method]) if label == expression]
            k = min(videos_per_expression, len(items))
            picked = rng.choice(len(items), size=k, replace=False) if k else []
            selected[method][expression] = [items[j] for j in picked]
        short = {e: len(v) for e, v in selected[method].items() if len(v) < videos_per_expression}
        if short and len(short) == len(expressions) and len(set(short.values())) == 1:
            shortfall.append(f"{method}: {next(iter(short.values()))} videos of {videos_per_expression} "
                             "wanted per expression")
        elif short:
            shortfall.append(f"{method}: " + ", ".join(f"{e} {k}" for e, k in short.items())
                             + f" videos of {videos_per_expression} wanted")
    return selected


def draw_questions(labels: Mapping[str, list[str]], competitors: list[str], videos_per_expression: int,
                   n_questions: int, seed: int) -> Draw:
    """The paper's draw, from each method's per-item expression labels (labels[method][item]).

    Reproducible: the same inputs and seed give the same draw. See the package docstring.
    """
    rng = np.random.default_rng([seed, DRAW_STREAM])
    expressions = sorted(set(labels[FRGAN]))
    shortfall: list[str] = []
    selected = _select(labels, [FRGAN, *competitors], expressions, videos_per_expression, rng, shortfall)

    # 2. Spread the questions evenly over competitor x expression, the remainder at random.
    cells = [(c, e) for c in competitors for e in expressions]
    base, extra = divmod(n_questions, len(cells))
    bonus = set(rng.choice(len(cells), size=extra, replace=False).tolist()) if extra else set()
    planned: dict[str, dict[str, int]] = {c: {} for c in competitors}
    for k, (c, e) in enumerate(cells):
        planned[c][e] = base + (1 if k in bonus else 0)

    # 3. Per expression: each FRGAN and each competitor video in at most one question. With too
    # few videos, the cells of an expression are filled round-robin so they stay balanced.
    questions = []
    cells_short: dict[tuple[str, str], tuple[int, int]] = {}
    for e in expressions:
        frgan_pool = list(selected[FRGAN][e])
        got = {c: 0 for c in competitors}
        progress = True
        while progress and frgan_pool:
            progress = False
            for c in competitors:
                if frgan_pool and got[c] < planned[c][e] and got[c] < len(selected[c][e]):
                    questions.append({"expression": e, "competitor": c,
                                      "frgan_item": int(frgan_pool.pop(0)),
                                      "competitor_item": int(selected[c][e][got[c]])})
                    got[c] += 1
                    progress = True
        for c in competitors:
            if got[c] < planned[c][e]:
                cells_short[(c, e)] = (got[c], planned[c][e])
    if cells_short and len(cells_short) == len(cells) and len(set(cells_short.values())) == 1:
        got_, planned_ = next(iter(cells_short.values()))
        shortfall.append(f"questions per competitor and expression: {got_} of {planned_} planned")
    elif cells_short:
        shortfall.append("questions short: " + ", ".join(
            f"{FRGAN} vs {c}/{e} {g} of {p}" for (c, e), (g, p) in cells_short.items()))
    order = {(c, e): k for k, (c, e) in enumerate(cells)}
    questions.sort(key=lambda q: order[(q["competitor"], q["expression"])])   # stable: draw order within
    for k, q in enumerate(questions, start=1):
        q["id"] = f"q{k:03d}"
    if len(questions) < n_questions:
        shortfall.insert(0, f"questions: {len(questions)} of the {n_questions} planned "
                            "(each video is shown in at most one question)")
    return Draw(seed, expressions, selected, planned, questions, shortfall)
