"""Seeding. Every random draw of a training step comes from a generator seeded by
(run seed, step), so step n does the same thing whether the run got there in one go or was
killed and resumed: a resumed CPU run ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (run seed, stage name, step...), stable across processes."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def step_generator(seed: int, step: int, stream: str = "step") -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, stream, step))


def step_rng(seed: int, step: int, stream: str = "step") -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, stream, step))


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (model init); ask torch for deterministic kernels.

    On the CPU this makes runs bit-identical. On a GPU, cuDNN is set deterministic and
    benchmark mode off; a few CUDA kernels stay non-deterministic (scatter-add in some
    backward passes), so GPU reruns agree to a tolerance, not bit-for-bit.
    """
    random.seed(derive_seed(seed, "python"))
    np.random.seed(derive_seed(seed, "numpy") % 2**32)
    torch.manual_seed(derive_seed(seed, "torch"))
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
