"""Speed switches for FRGAN's training steps: bf16 autocast, torch.compile,
channels_last, and a thread that prepares the next batches while a step runs.

fp32 eager without prefetching is the default and what every committed number was made with.
- `precision="bf16"`: the forward passes and losses of a step run under `torch.autocast` in
  bfloat16 (weights, optimiser state and the backward's accumulation stay fp32); numbers move
  by bf16's rounding, so such a run is its own configuration (the checkpoint fingerprint says so).
- `compile=True`: the generators' forwards are `torch.compile`d; the critics stay eager (WGAN-GP's
  gradient penalty needs a double backward, which compiled graphs do not support). The modules
  themselves, and so checkpoints and saved models, stay the eager ones (same state-dict keys);
  float rounding only.
- `channels_last=True`: 4-D weights and batches in NHWC (5-D: NDHWC), what cuDNN's fastest
  convolutions want; float rounding only.
- `prefetch=n`: a background thread draws the batches of the next n steps. A step's batch
  depends only on (seed, step) (`step_rng`), not on when it is drawn, so the numbers are
  bit-identical with any n, and a resumed run draws the same batches as an unbroken one.
Generation is not affected: it runs fp32 eager whatever these say.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import torch

from frgan.config import Precision


@dataclass(frozen=True)
class Acceleration:
    precision: Precision = "fp32"   # "bf16": autocast forward passes and losses to bfloat16
    compile: bool = False           # torch.compile the generators' forward (critics stay eager)
    channels_last: bool = False     # NHWC / NDHWC weights and batches
    prefetch: int = 0               # batches a background thread prepares ahead (0: none)

    def numeric_key(self) -> dict[str, Any]:
        """The switches that can move a number (for fingerprints); empty at the defaults, so
        an fp32 eager run keeps the fingerprint it had before these switches existed."""
        key = {"precision": self.precision, "compile": self.compile, "channels_last": self.channels_last}
        return {} if key == {"precision": "fp32", "compile": False, "channels_last": False} else key

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """The context a step's forward passes and losses run in."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def module(self, module: torch.nn.Module) -> torch.nn.Module:
        """`module` in the memory format asked for (in place; returns it): 4-D weights NHWC, 5-D
        (3-D convolutions) NDHWC. (`Module.to(memory_format=...)` refuses a module with both.)"""
        if self.channels_last:
            formats = {4: torch.channels_last, 5: torch.channels_last_3d}
            for p in module.parameters():
                if p.dim() in formats:
                    p.data = p.data.contiguous(memory_format=formats[p.dim()])
        return module

    def forward(self, module: torch.nn.Module) -> Callable[..., Any]:
        """What a step calls to run `module`: the module, or its compiled forward."""
        return torch.compile(module) if self.compile else module

    def layout(self, tensor: torch.Tensor) -> torch.Tensor:
        """A batch tensor in the memory format asked for (the samplers make it on the device)."""
        if self.channels_last and tensor.dim() in (4, 5):
            fmt = torch.channels_last if tensor.dim() == 4 else torch.channels_last_3d
            tensor = tensor.contiguous(memory_format=fmt)
        return tensor


class Prefetcher:
    """`fetch(n)` returns `make(n)`; with depth > 0, a background thread has started on the
    next `depth` steps' batches (below `stop`) by the time `fetch(n)` returns. `make` must
    depend on n only (the step's own RNG), so the order of calls changes nothing."""

    def __init__(self, make: Callable[[int], Any], depth: int, stop: int):
        self.make, self.depth, self.stop = make, depth, stop
        self.pending: dict[int, Future] = {}
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") if depth > 0 else None

    def __call__(self, n: int) -> Any:
        if self.pool is None:
            return self.make(n)
        future = self.pending.pop(n, None) or self.pool.submit(self.make, n)
        for ahead in range(n + 1, min(n + 1 + self.depth, self.stop)):
            if ahead not in self.pending:
                self.pending[ahead] = self.pool.submit(self.make, ahead)
        return future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pending.clear()

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
