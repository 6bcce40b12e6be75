"""What the benchmarks share: synthetic clip stores and tasks of any size, the machine's dense
matmul ceiling, step capture (time and FLOPs of a method's real training step), the scaling
exponent, peak memory, and the rows of reports/benchmarks/summary.md.

Nothing here asserts on time: the figures are recorded, and summary.md compares them with the
issue's targets.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_THREADS = torch.get_num_threads()
# Figures one benchmark hands to another within one pytest session (e.g. the G_M step rate the
# loader is compared with): name -> figures.
SESSION: dict[str, dict] = {}

# ---------------------------------------------------------------------------------------------
# Summary rows: every benchmark that has a figure for summary.md records `summary=[row(...)]`.


def row(figure: str, measured: str, target: str = "", ratio: Optional[float] = None,
        met: Optional[bool] = None, note: str = "", order: int = 50) -> dict[str, Any]:
    """One line of summary.md: the figure, the issue's target, what was measured, the ratio
    the target is about (None: not a ratio), whether it is met (None: no target)."""
    return {"figure": figure, "target": target, "measured": measured, "ratio": ratio, "met": met,
            "note": note, "order": order}


# ---------------------------------------------------------------------------------------------
# Devices and the practical ceiling.


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_flops(device: str = "cpu", n: int = 2048, dtype: torch.dtype = torch.float32,
                 seconds: float = 0.6) -> float:
    """Dense n x n matmul FLOP/s (2 n^3 per product), best of the calls that fit in `seconds`:
    the practical ceiling every conv net here is compared with (same threads, same process)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    sync(device)
    best, spent = math.inf, 0.0
    calls = 0
    while spent < seconds or calls < 3:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        sync(device)
        dt = time.perf_counter() - t0
        best, spent, calls = min(best, dt), spent + dt, calls + 1
    return 2.0 * n ** 3 / best


# ---------------------------------------------------------------------------------------------
# Synthetic clip stores and tasks (random frames: what the loader and the steps cost does not
# depend on what the pixels show).

FACE_LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
ACTOR_LABELS = ("baseball_pitch", "bench_press", "clean_and_jerk", "jumping_jacks", "pullup",
                "pushup", "squat", "tennis_serve")


def synthetic_records(kind: str, size: int, subjects_per_split: int, frames: int, seed: int = 0):
    """VideoRecords: `subjects_per_split` subjects in each of gm / gr / test, one clip per label."""
    from frgan.data.records import SPLITS, VideoRecord
    rng = np.random.default_rng(seed)
    labels = FACE_LABELS if kind == "faces" else ACTOR_LABELS
    for split in SPLITS:
        for s in range(subjects_per_split):
            subject = f"{split}{s:03d}"
            for label in labels:
                clip = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
                if kind == "actors":
                    gt = {"joints": rng.uniform(0, size - 1, (frames, 13, 2)).astype(np.float32),
                          "visibility": np.ones((frames, 13), np.float32)}
                else:
                    gt = {"pose": np.zeros((frames, 6), np.float32)}
                yield VideoRecord(f"{subject}-{label}", subject, label, split, clip, gt)


def synthetic_task(folder: Path, kind: str, size: int, subjects_per_split: int = 2, frames: int = 40,
                   params=None, seed: int = 0):
    """A Task over a fresh synthetic clip store in `folder` (faces: with random normal maps)."""
    from frgan.data.clipstore import ClipStore, write_clip_store
    from frgan.task import Task
    dataset = "faces-synth" if kind == "faces" else "actors-synth"
    folder = Path(folder)
    store_dir, cond_dir = folder / "store", folder / "conditions"
    meta = write_clip_store(synthetic_records(kind, size, subjects_per_split, frames, seed), store_dir,
                            {"dataset": dataset})
    cond_dir.mkdir(parents=True, exist_ok=True)
    if kind == "faces":
        rng = np.random.default_rng(seed + 1)
        maps = np.memmap(cond_dir / "maps.u8", dtype=np.uint8, mode="w+",
                         shape=(meta["n_frames"], size, size, 3))
        for lo in range(0, meta["n_frames"], 256):
            chunk = maps[lo:lo + 256]
            chunk[:] = rng.integers(0, 256, chunk.shape, dtype=np.uint8)
        maps.flush()
        del maps
    params = params if params is not None else bench_params()
    # the test horizon T (Task.horizon: G_R trains on windows forecast as far ahead): the
    # profile's predicted poses, as the conditions stage writes it
    (cond_dir / "test_index.csv").write_text(f"item,n_targets\n0,{params.size.pose_predict}\n")
    return Task(dataset, params, ClipStore(store_dir), cond_dir)


def bench_params(device: str = "cpu", **size_overrides):
    """params.yaml with the active profile's sizes overridden and train.device set."""
    from frgan.config import load_params
    params = load_params(ROOT / "params.yaml")
    size = params.size.model_copy(update=size_overrides)
    train = params.train.model_copy(update={"device": device})
    return params.model_copy(update={"profiles": {**params.profiles, params.profile: size}, "train": train})


# ---------------------------------------------------------------------------------------------
# Step capture: run a method's own training function, but let `run_training` (which every
# method calls with its step closure) time a few of its steps and count their FLOPs, then stop.

TRAINING_MODULES = ("frgan.train.frgan", "baselines.common", "baselines.mocogan", "baselines.vgan")   # where run_training is called


class StepsCaptured(Exception):
    """Raised by the patched run_training once the steps are measured (stops the training)."""


class _NoModuleTracking:
    """Stands in for FlopCounterMode's ModuleTracker: every FLOP is counted under "Global"."""
    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return None


def capture_steps(train: Callable[[], Any], device: str, warmup: int = 1, timed: int = 3,
                  count_flops: bool = True, wrap: Optional[Callable[[], contextlib.AbstractContextManager]] = None,
                  max_seconds: float = math.inf) -> dict[str, float]:
    """Call `train()` (a method's training function) with run_training patched: `warmup` steps,
    then one step under FlopCounterMode (FLOPs of forward + backward + the double backward of the
    gradient penalty, as run), then `timed` steps (stopping early after max_seconds). Returns
    seconds per step (mean and best), FLOPs per step and the step count; `wrap` is a context
    manager put around every step (e.g. autocast)."""
    import importlib

    from torch.utils.flop_counter import FlopCounterMode

    result: dict[str, float] = {}
    wrap = wrap or contextlib.nullcontext

    def fake_run_training(*args, **kwargs):     # run_training(name, steps, step_fn, modules, ...)
        names = ("name", "steps", "step_fn")
        given = {**dict(zip(names, args)), **{k: v for k, v in kwargs.items() if k in names}}
        name, step_fn = given["name"], given["step_fn"]
        n = 0
        for _ in range(warmup):
            with wrap():
                step_fn(n)
            n += 1
        if count_flops:
            counter = FlopCounterMode(display=False)
            # No per-module breakdown: its backward hooks break torch.autograd.grad (the
            # gradient penalty) in this torch; the total is all we need.
            counter.mod_tracker = _NoModuleTracking()
            with counter, wrap():
                step_fn(n)
            n += 1
            result["flops_per_step"] = float(counter.get_total_flops())
        sync(device)
        times = []
        started = time.perf_counter()
        for _ in range(timed):
            t0 = time.perf_counter()
            with wrap():
                step_fn(n)
            sync(device)
            times.append(time.perf_counter() - t0)
            n += 1
            if time.perf_counter() - started > max_seconds:
                break
        result.update(seconds_per_step=float(np.mean(times)), best_seconds_per_step=float(np.min(times)),
                      timed_steps=len(times), training=name)
        raise StepsCaptured

    modules = [importlib.import_module(m) for m in TRAINING_MODULES]
    saved = [m.run_training for m in modules]
    try:
        for m in modules:
            m.run_training = fake_run_training
        try:
            train()
        except StepsCaptured:
            pass
    finally:
        for m, original in zip(modules, saved):
            m.run_training = original
    if "seconds_per_step" not in result:
        raise RuntimeError("the training function returned without calling run_training")
    return result


# ---------------------------------------------------------------------------------------------
# Scaling and memory.


def fit_exponent(sizes: Iterable[float], seconds: Iterable[float]) -> float:
    """Least-squares slope of log(seconds) on log(size): 1 = linear."""
    x, y = np.log(np.asarray(list(sizes), float)), np.log(np.asarray(list(seconds), float))
    return float(np.polyfit(x, y, 1)[0])


def rss_mb() -> dict[str, float]:
    """This process's current RSS, anonymous RSS and peak RSS (VmHWM), MB (Linux /proc)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def fmt(x: float, digits: int = 3) -> str:
    """A number with `digits` significant digits, without scientific notation for common sizes."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    magnitude = int(math.floor(math.log10(abs(x))))
    decimals = max(0, digits - 1 - magnitude)
    return f"{x:,.{decimals}f}"


def threads() -> int:
    return torch.get_num_threads()


def cpu_info() -> dict[str, Any]:
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_avg": os.getloadavg()}
