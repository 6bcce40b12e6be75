"""Where each stage of dvc.yaml writes, in one place (dvc.yaml spells the same paths out).

Training seeds (params.yaml `train.seeds`) are a matrix axis of train, generate and evaluate:
every per-method path carries the seed, `seed-<s>` as a folder or `-seed<s>` in a file name.
The reference row (ACD of real videos) has no training seed and no suffix. Light on purpose
(no torch): the report, the study and the gate import it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

REFERENCE = "reference"   # the method name of Table 1's Reference row: real videos, no training seed
METRICS_DIR = Path("reports/metrics")   # evaluate-<dataset>-<method>[-seed<s>].json (DVC metrics),
                                        # train-<dataset>-<method>-seed<s>.json (training budgets)
PLOTS_DIR = Path("reports/plots")       # the same name .csv: per-frame scores (per video and frame)
VIDEOS_DIR = Path("reports/videos")     # the same name .csv: per-video scores (pooled intervals, paired tests)


def store_path(dataset: str) -> str:
    """The prepare stage's clip store of `dataset`."""
    return f"data/prepared/{dataset}"


def conditions_path(dataset: str) -> str:
    """The conditions stage's motion conditions and test set of `dataset`."""
    return f"data/conditions/{dataset}"


def seed_folder(seed: int) -> str:
    return f"seed-{seed}"


def model_path(dataset: str, method: str, seed: int) -> Path:
    return Path("models") / dataset / method / seed_folder(seed)


def checkpoint_path(dataset: str, method: str, seed: int) -> Path:
    return Path("checkpoints") / dataset / method / seed_folder(seed)


def generated_path(dataset: str, method: str, seed: int) -> Path:
    return Path("data/generated") / dataset / method / seed_folder(seed)


def run_stem(dataset: str, method: str, seed: Optional[int]) -> str:
    """<dataset>-<method>-seed<s>; the reference row (seed None) has no suffix."""
    return f"{dataset}-{method}" + ("" if seed is None else f"-seed{seed}")


def result_name(dataset: str, method: str, seed: Optional[int]) -> str:
    """The stem of evaluate's files: evaluate-<dataset>-<method>[-seed<s>]."""
    return f"evaluate-{run_stem(dataset, method, seed)}"


def train_metrics_path(dataset: str, method: str, seed: int) -> Path:
    """train's budget record (DVC metrics): clips, generator steps, samples seen, parameters."""
    return METRICS_DIR / f"train-{run_stem(dataset, method, seed)}.json"


def sheet_path(dataset: str, method: str, seed: int) -> Path:
    """generate's contact sheet of a few test items."""
    return Path("reports/figures") / f"generate-{run_stem(dataset, method, seed)}.png"


_SEED_SUFFIX = re.compile(r"-seed(\d+)$")


def seed_of_name(stem: str) -> Optional[int]:
    """The seed a result file's stem names, or None (the reference row)."""
    match = _SEED_SUFFIX.search(stem)
    return int(match.group(1)) if match else None


def stage_name(kind: str, dataset: str, method: Optional[str] = None, seed: Optional[int] = None) -> str:
    """DVC's matrix name: <kind>@<dataset>[-<method>[-<seed>]] (items joined by '-')."""
    items = [dataset] + ([method] if method else []) + ([str(seed)] if seed is not None else [])
    return f"{kind}@{'-'.join(items)}"
