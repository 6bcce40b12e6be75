"""Training-step throughput of every method's real step, with its FLOP/s as a fraction of the
machine's own dense matmul FLOP/s measured in the same run (the practical ceiling).

Each case calls the method's own training function (frgan.train.frgan.train_gm / train_gr,
each baseline's `train`) on a synthetic clip store at the paper's frame size; `run_training`
is patched to run one step under torch's FlopCounterMode (forward, backward and the gradient
penalty's double backward, as the step runs them; it doubles as the warm-up), then timed steps,
and stop.
So a step is exactly what `dvc repro` runs: data sampling, critic update(s), generator update.

Sizes: the paper's frames and clips (faces 96x96, G_R clips of 32 frames; actors 64x64, clips of
16). On a GPU: the paper's width 64 and batch 32, and each FRGAN case also with bf16 autocast +
channels_last (and torch.compile of the generator) as a ratio against fp32 eager, with model FLOP
utilisation against the GPU's measured bf16 matmul rate. On a CPU a batch of 32 does not fit a
small machine (a width-64 G_M step at 96x96, batch 32, peaks near 28 GB) and the steps would take
minutes: width 32 (the synth profile's, FRGAN_BENCH_WIDTH), batch 2 (FRGAN_BENCH_CPU_BATCH; G_R 1,
FRGAN_BENCH_CPU_GR_BATCH); samples/s barely depends on the batch on a CPU. FLOPs at width 32 are
~1/4 of width 64's (one G_M forward at 96 px: 75.5 GFLOP per sample at width 64).

On a CPU each FRGAN step is also run on one thread against the one-thread matmul (robust to other
jobs on a shared machine, which slow a two-thread step far more than a two-thread matmul), and
with `train.channels_last` against the one-thread NCHW step.
Smoke profile: every method's step at the size `dvc repro` runs by default, with the default
threads and with one, times the profile's step count; and each of FRGAN's speed switches
(`train.precision`, `train.compile`, `train.channels_last`, `train.prefetch`; frgan/train/accel.py)
alone against fp32 eager, for G_M and G_R (issue 21).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from benchmarks import harness
from frgan.train.accel import Acceleration
from benchmarks.harness import (bench_params, capture_steps, cpu_info, matmul_flops, row,
                                synthetic_task)

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
WIDTH = int(os.environ.get("FRGAN_BENCH_WIDTH", "64" if CUDA else "32"))
CPU_BATCH = int(os.environ.get("FRGAN_BENCH_CPU_BATCH", "2"))
CPU_GR_BATCH = int(os.environ.get("FRGAN_BENCH_CPU_GR_BATCH", "1"))
TIMED = int(os.environ.get("FRGAN_BENCH_STEPS", "2"))
TARGET_FRACTION = 0.40
GENERATED = 32      # frames every method generates (paper 4.3)

# case -> (kind, image side, G_R clip length, what trains)
FRGAN_CASES = {
    "gm-faces-96px": ("faces", 96, 32, "gm"),
    "gm-actors-64px": ("actors", 64, 16, "gm"),
    "gr-faces-T32-96px": ("faces", 96, 32, "gr"),
    "gr-actors-T16-64px": ("actors", 64, 16, "gr"),
}
# one G_R step at 96 px, 32 frames is several TFLOP at width 64 (most of it G_M's coarse clip, whose
# first frame is encoded once per window, see test_coarse_clip): on a CPU its channels_last
# variant would take minutes more; G_R at 64 px shows the effect
SKIP_CHANNELS_LAST = ("gr-faces-T32-96px",)
# G_R's coarse clip at the paper's frame and clip sizes: (kind, image side, clip length)
COARSE_CASES = {"faces-96px-T32": ("faces", 96, 32), "actors-64px-T16": ("actors", 64, 16)}
# every baseline at the Penn Action size (Table 3's dataset; on a CPU the 96 px, 32-frame face
# clips of Table 1 would take minutes per step for the video models)
BASELINE_CASES = {name: ("actors", 64, 16) for name in ("villegas17", "mcnet", "mocogan", "vgan", "mathieu")}


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    """One synthetic task per (kind, side), built lazily."""
    made = {}

    def get(kind: str, side: int, clip: int, batch: int):
        key = (kind, side, clip, batch)
        if key not in made:
            params = bench_params(DEVICE, width=WIDTH, batch=batch, gm_steps=10**6, gr_steps=10**6,
                                  **{"faces_size": side} if kind == "faces" else {"actors_size": side},
                                  **{"gr_clip_faces": clip} if kind == "faces" else {"gr_clip_actors": clip})
            folder = tmp_path_factory.mktemp(f"{kind}{side}")
            task = synthetic_task(folder, kind, side, subjects_per_split=1, frames=max(clip + 2, GENERATED + 2),
                                  params=params)
            # no test set on disk: what a method's config reads from it is the number of frames
            # every method generates (VGAN trains on clips of that length + 1)
            task.test_items = lambda: SimpleNamespace(n_frames=GENERATED)
            made[key] = (task, params)
        return made[key]
    return get


def _frgan_train(task, params, what: str, checkpoints: Path, accel: Acceleration = Acceleration()):
    """FRGAN's G_M or G_R training at `params`, with the speed switches `accel`."""
    import dataclasses

    from frgan.methods import get_method
    from frgan.train import frgan as fr
    cfg = dataclasses.replace(get_method("frgan").config(task, params), accel=accel)
    if what == "gm":
        return lambda: fr.train_gm(task, cfg, checkpoints, 10**9, None, 10**9)
    gm = fr.build_gm(task, cfg).eval()
    return lambda: fr.train_gr(task, cfg, gm.to(cfg.device), checkpoints, 10**9, None, 10**9)


def _measure(train, batch: int, wrap=None, flops_per_step: float | None = None, max_seconds: float = 12.0,
             timed: int = TIMED) -> dict:
    """Time `train`'s steps between two matmul-ceiling measurements. FLOPs: counted on the first
    step (which doubles as the warm-up) unless given (a variant with the same FLOPs)."""
    before = matmul_flops(DEVICE)
    count = flops_per_step is None
    steps = capture_steps(train, DEVICE, warmup=0 if count else 1, timed=timed, count_flops=count, wrap=wrap,
                          max_seconds=max_seconds)
    after = matmul_flops(DEVICE)
    ceiling = max(before, after)
    if not count:
        steps["flops_per_step"] = flops_per_step
    out = {**steps, "batch": batch, "samples_per_s": batch / steps["seconds_per_step"],
           "matmul_flops_per_s": ceiling, "matmul_before": before, "matmul_after": after,
           "torch_threads": torch.get_num_threads()}
    out["flops_per_s"] = steps["flops_per_step"] / steps["seconds_per_step"]
    out["fraction_of_matmul"] = out["flops_per_s"] / ceiling
    return out


def test_matmul_ceiling(benchmark, record):
    """The practical ceiling every step is compared with: dense fp32 matmul FLOP/s (2048^2, and
    1024^2 / 4096^2 for the spread), default threads and one thread."""
    figures = {f"fp32_{n}": benchmark.pedantic(lambda: matmul_flops(DEVICE, n=n), rounds=1, iterations=1)
               if n == 2048 else matmul_flops(DEVICE, n=n) for n in (2048, 1024, 4096)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        figures["fp32_2048_one_thread"] = matmul_flops(DEVICE)
    finally:
        torch.set_num_threads(threads)
    if CUDA:
        figures["bf16_8192"] = matmul_flops("cuda", n=8192, dtype=torch.bfloat16)
    record("matmul-ceiling", device=DEVICE, **cpu_info(), **figures, summary=[
        row(f"Dense fp32 matmul, 2048^2, {threads} threads ({DEVICE}): the practical ceiling",
            f"{figures['fp32_2048'] / 1e9:.0f} GFLOP/s (1 thread {figures['fp32_2048_one_thread'] / 1e9:.0f}; "
            f"1024^2 {figures['fp32_1024'] / 1e9:.0f}, 4096^2 {figures['fp32_4096'] / 1e9:.0f})", "(reference)",
            None, None, order=19)])


STEP_NOTE = ("what the FLOP counter counts is convolutions and matmuls (forward, backward, and the gradient "
             "penalty's double backward); BatchNorm, activations, the dense decoder's concatenations, Adam and "
             "the data sampling are memory-bound and uncounted but take their time; NCHW convolutions with "
             "32-64 channels run far below oneDNN's blocked/channels_last kernels (see the channels_last rows); "
             "the double backward of a convolution is not a tuned kernel")


@pytest.mark.parametrize("case", list(FRGAN_CASES))
def test_frgan_step(benchmark, record, tasks, tmp_path, case):
    kind, side, clip, what = FRGAN_CASES[case]
    batch = 32 if CUDA else (CPU_GR_BATCH if what == "gr" else CPU_BATCH)
    task, params = tasks(kind, side, clip, batch)
    name = "G_M" if what == "gm" else "G_R"
    figures = {"device": DEVICE, "width": WIDTH, "side": side, "clip": clip if what == "gr" else None,
               **cpu_info()}
    eager = benchmark.pedantic(lambda: _measure(_frgan_train(task, params, what, tmp_path / "e"), batch),
                               rounds=1, iterations=1)
    figures["eager_nchw"] = eager
    harness.SESSION[f"train-step-{case}"] = eager
    summary = []
    frac = eager["fraction_of_matmul"]
    label = f"{name} training step, {case} (width {WIDTH}, batch {batch}, {DEVICE})"
    if CUDA:
        summary.append(row(label + ": FLOP/s / matmul FLOP/s", f"{eager['samples_per_s']:.3g} samples/s, "
                           f"{eager['flops_per_s'] / 1e12:.3g} TFLOP/s of {eager['matmul_flops_per_s'] / 1e12:.3g}",
                           "", frac, None, order=20))
    else:
        # the same step on one thread against the one-thread matmul: robust to other jobs on the
        # machine, which slow a two-thread step (OpenMP threads wait for each other) far more
        # than a two-thread matmul
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            one = _measure(_frgan_train(task, params, what, tmp_path / "one"), batch,
                           flops_per_step=eager["flops_per_step"], max_seconds=6.0)
        finally:
            torch.set_num_threads(threads)
        figures["eager_nchw_one_thread"] = one
        best = max(frac, one["fraction_of_matmul"])
        summary.append(row(label + ": FLOP/s / matmul FLOP/s",
                           f"{eager['samples_per_s']:.3g} samples/s, {eager['flops_per_s'] / 1e9:.3g} GFLOP/s of "
                           f"{eager['matmul_flops_per_s'] / 1e9:.3g} ({threads} threads: {frac:.2f}; 1 thread: "
                           f"{one['flops_per_s'] / 1e9:.3g} of {one['matmul_flops_per_s'] / 1e9:.3g}, "
                           f"{one['fraction_of_matmul']:.2f})",
                           ">= 0.40 of matmul (at the same threads; better of 2 and 1)", best,
                           best >= TARGET_FRACTION, order=20, note=STEP_NOTE if best < TARGET_FRACTION else ""))
    if not CUDA and case not in SKIP_CHANNELS_LAST:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)     # compared with the one-thread NCHW step: robust to other jobs
        try:
            cl = _measure(_frgan_train(task, params, what, tmp_path / "cl", Acceleration(channels_last=True)),
                          batch, flops_per_step=eager["flops_per_step"], max_seconds=6.0)
        finally:
            torch.set_num_threads(threads)
        one = figures["eager_nchw_one_thread"]
        figures["channels_last_one_thread"] = cl
        figures["channels_last_speedup"] = one["seconds_per_step"] / cl["seconds_per_step"]
        summary.append(row(f"{name} {case}: train.channels_last vs NCHW, 1 thread (ratio: speed-up)",
                           f"{cl['samples_per_s']:.3g} vs {one['samples_per_s']:.3g} samples/s, "
                           f"{cl['fraction_of_matmul']:.2f} vs {one['fraction_of_matmul']:.2f} of matmul",
                           "", figures["channels_last_speedup"], None, order=21))
    elif CUDA:
        bf16_peak = matmul_flops("cuda", n=8192, dtype=torch.bfloat16)
        figures["cuda_bf16_matmul_flops_per_s"] = bf16_peak
        figures["cuda_device"] = torch.cuda.get_device_name()
        for variant, compiled in (("bf16_channels_last", False), ("bf16_channels_last_compile", True)):
            accel = Acceleration(precision="bf16", channels_last=True, compile=compiled, prefetch=2)
            try:
                fast = _measure(_frgan_train(task, params, what, tmp_path / variant, accel), batch,
                                flops_per_step=eager["flops_per_step"])
            except Exception as exc:       # e.g. torch.compile unsupported here: say so, keep going
                figures[variant] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                continue
            fast["speedup_vs_fp32_eager"] = eager["seconds_per_step"] / fast["seconds_per_step"]
            fast["mfu_vs_bf16_matmul"] = eager["flops_per_step"] / fast["seconds_per_step"] / bf16_peak
            figures[variant] = fast
            summary.append(row(f"{name} {case}: {variant} vs fp32 eager (GPU)",
                               f"{fast['samples_per_s']:.3g} samples/s, MFU {fast['mfu_vs_bf16_matmul']:.2f}",
                               "", fast["speedup_vs_fp32_eager"], None, order=22))
    record(f"train-step-{case}", summary=summary, **figures)


@pytest.mark.parametrize("case", list(COARSE_CASES))
def test_coarse_clip(benchmark, record, tasks, case):
    """G_R's input (frgan.train.frgan.coarse_clip): G_M's frame for every condition of a window,
    each from the window's first frame. The first frame and its condition are encoded once per
    window (`MotionForecaster.forward_targets`) where the code used to repeat them for every frame
    (f_I and f_M on B*K rows); both ways on the same G_M (eval mode) and the same loader batch,
    alternating, best time of each. The outputs agree up to float rounding."""
    from frgan.methods import get_method
    from frgan.train import frgan as fr
    from frgan.train.seeding import step_rng
    kind, side, clip = COARSE_CASES[case]
    batch = 8 if CUDA else 1
    task, params = tasks(kind, side, clip, batch)
    cfg = get_method("frgan").config(task, params)
    torch.manual_seed(0)
    gm = fr.build_gm(task, cfg).to(DEVICE).eval()
    first, first_cond, _, cond = (x.to(DEVICE) for x in task.sample_windows("gr", batch, clip, step_rng(0, 0, "bench")))
    b, c, k = cond.shape[:3]

    def repeat(x):
        return x.unsqueeze(1).expand(b, k, *x.shape[1:]).reshape(b * k, *x.shape[1:])

    @torch.no_grad()
    def per_frame():   # the code before: every frame's (I_t, M_t) pair a row of G_M's batch
        out = gm(repeat(first), repeat(first_cond), cond.transpose(1, 2).reshape(b * k, c, side, side)).output
        return out.reshape(b, k, *out.shape[1:]).transpose(1, 2)

    def once():
        return fr.coarse_clip(gm, first, first_cond, cond)

    def measure() -> tuple[dict[str, float], float, int]:
        best, max_diff, rounds = {"per_frame": math.inf, "once": math.inf}, 0.0, 0
        started = time.perf_counter()
        while rounds < 2 or (rounds < 5 and time.perf_counter() - started < 20.0):
            outputs = {}
            for name, fn in (("per_frame", per_frame), ("once", once)):
                harness.sync(DEVICE)
                t0 = time.perf_counter()
                outputs[name] = fn()
                harness.sync(DEVICE)
                best[name] = min(best[name], time.perf_counter() - t0)
            max_diff = max(max_diff, float((outputs["once"] - outputs["per_frame"]).abs().max()))
            rounds += 1
        return best, max_diff, rounds

    best, max_diff, rounds = benchmark.pedantic(measure, rounds=1, iterations=1)
    speedup = best["per_frame"] / best["once"]
    record(f"coarse-clip-{case}", device=DEVICE, width=WIDTH, side=side, clip=clip, batch=batch, **cpu_info(),
           seconds_per_frame_path=best["per_frame"], seconds_encode_once=best["once"], speedup=speedup,
           max_abs_diff=max_diff, rounds=rounds,
           summary=[row(f"G_R's coarse clip, {case} (width {WIDTH}, batch {batch}, {DEVICE}): first frame encoded "
                        "once per window vs once per frame (ratio: speed-up)",
                        f"{best['once']:.3g} vs {best['per_frame']:.3g} s per clip; max abs difference "
                        f"{max_diff:.1e} (float rounding)", "", speedup, None, order=21)])


@pytest.mark.parametrize("method", list(BASELINE_CASES))
def test_baseline_step(benchmark, record, tasks, tmp_path, method):
    from frgan.methods import get_method
    kind, side, clip = BASELINE_CASES[method]
    batch = 32 if CUDA else CPU_BATCH
    task, params = tasks(kind, side, clip, batch)
    m = get_method(method)
    (tmp_path / "out").mkdir()
    train = lambda: m.train(task, params, tmp_path / "out", tmp_path / "checkpoints", None)   # noqa: E731
    result = benchmark.pedantic(lambda: _measure(train, batch), rounds=1, iterations=1)
    frac = result["fraction_of_matmul"]
    record(f"train-step-{method}", device=DEVICE, width=WIDTH, side=side, clip=clip, **cpu_info(),
           eager_nchw=result,
           summary=[row(f"{method} training step, {kind} {side}px (width {WIDTH}, batch {batch}, {DEVICE}): "
                        "FLOP/s / matmul FLOP/s",
                        f"{result['samples_per_s']:.3g} samples/s, {result['flops_per_s'] / 1e9:.3g} GFLOP/s "
                        f"of {result['matmul_flops_per_s'] / 1e9:.3g}", "", frac, None, order=23)])


SMOKE_METHODS = ("frgan-gm", "frgan-gr", "villegas17", "mcnet", "mocogan", "vgan", "mathieu")


@pytest.fixture(scope="module")
def smoke_task(tmp_path_factory):
    """A synthetic faces store of the smoke profile's shape (32 px, 3 subjects per split, 20 frames)."""
    params = bench_params("cpu")
    size = params.size
    task = synthetic_task(tmp_path_factory.mktemp("smoke"), "faces", size.faces_size, subjects_per_split=3,
                          frames=size.faces_frames, params=params)
    task.test_items = lambda: SimpleNamespace(n_frames=size.pose_predict)
    return task, params


@pytest.mark.parametrize("method", SMOKE_METHODS)
def test_smoke_profile_step(benchmark, record, smoke_task, tmp_path, method):
    """Each method's training step at the smoke profile (faces 32 px, width 8, batch 8), what
    `dvc repro` runs by default, with the default torch threads (one per core) and with one
    thread; times the profile's step count = the training part of its train@faces-synth stage."""
    from frgan.methods import get_method
    task, params = smoke_task
    size = params.size
    if method.startswith("frgan"):
        what = method.split("-")[1]
        train = lambda: _frgan_train(task, params, what, tmp_path / "ckpt")()   # noqa: E731
        n_steps = size.gm_steps if what == "gm" else size.gr_steps
    else:
        m = get_method(method)
        (tmp_path / "out").mkdir(exist_ok=True)
        train = lambda: m.train(task, params, tmp_path / "out", tmp_path / "checkpoints", None)   # noqa: E731
        n_steps = size.gm_steps
    threads = torch.get_num_threads()
    default = benchmark.pedantic(lambda: _measure(train, size.batch, max_seconds=3.0), rounds=1, iterations=1)
    torch.set_num_threads(1)
    try:
        one = _measure(train, size.batch, flops_per_step=default["flops_per_step"], max_seconds=3.0)
    finally:
        torch.set_num_threads(threads)
    figures = {"default_threads": default, "one_thread": one}
    rows = [row(f"Smoke-profile step, {method} (faces {size.faces_size} px, width {size.width}, batch {size.batch}): "
                f"{threads} threads vs 1 (ratio: speed with 1 thread / {threads})",
                f"{default['seconds_per_step'] * 1e3:.0f} vs {one['seconds_per_step'] * 1e3:.0f} ms/step "
                f"({default['fraction_of_matmul']:.2f} of matmul); x {n_steps} steps = "
                f"{default['seconds_per_step'] * n_steps:.0f} vs {one['seconds_per_step'] * n_steps:.0f} s",
                "(none)", default["seconds_per_step"] / one["seconds_per_step"], None, order=24)]
    record(f"train-step-smoke-{method}", **figures, steps_in_stage=n_steps, width=size.width, side=size.faces_size,
           batch=size.batch, **cpu_info(), summary=rows)


# Each speed switch alone (frgan/train/accel.py): what it is, and the Acceleration it sets.
SWITCH_STEPS = 30   # timed steps per switch (smoke steps take 50-250 ms on 2 cores)
SWITCHES = {
    "bf16 (train.precision)": Acceleration(precision="bf16"),
    "channels_last (train.channels_last)": Acceleration(channels_last=True),
    "torch.compile (train.compile)": Acceleration(compile=True),
    "prefetch 2 (train.prefetch)": Acceleration(prefetch=2),
}


@pytest.mark.parametrize("what", ["gm", "gr"])
def test_frgan_switches(benchmark, record, smoke_task, tmp_path, what):
    """Each of FRGAN's speed switches alone against fp32 eager, at the smoke profile's size with
    the default threads (on a GPU: its paper-size rows are in test_frgan_step). The first step
    (torch.compile's build, a minute on a CPU) is the warm-up, not timed; then SWITCH_STEPS
    steps (at most 10 s), and fp32 eager is timed again after the switches: the faster of its
    two runs is the reference (another job on the machine slows whichever runs beside it)."""
    task, params = smoke_task
    size = params.size
    name = {"gm": "G_M", "gr": "G_R"}[what]
    measure = lambda accel, **kw: _measure(_frgan_train(task, params, what, tmp_path / "run", accel),  # noqa: E731
                                           size.batch, max_seconds=10.0, timed=SWITCH_STEPS, **kw)
    first = benchmark.pedantic(lambda: measure(Acceleration()), rounds=1, iterations=1)
    figures, rows, runs = {"fp32_eager_first": first}, [], {}
    for label, accel in SWITCHES.items():
        try:
            runs[label] = measure(accel, flops_per_step=first["flops_per_step"])
        except Exception as exc:       # e.g. no C++ compiler for inductor: say so, keep going
            figures[label] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            rows.append(row(f"Smoke-profile {name} step ({DEVICE}): {label} vs fp32 eager", f"failed: {exc}"[:200],
                            "", None, None, order=26))
    figures["fp32_eager_again"] = again = measure(Acceleration(), flops_per_step=first["flops_per_step"])
    eager = min(first, again, key=lambda run: run["seconds_per_step"])
    for label, fast in runs.items():
        fast["speedup_vs_fp32_eager"] = eager["seconds_per_step"] / fast["seconds_per_step"]
        figures[label] = fast
        rows.append(row(f"Smoke-profile {name} step ({DEVICE}, {torch.get_num_threads()} threads): {label} vs fp32 "
                        "eager (ratio: speed-up)",
                        f"{fast['seconds_per_step'] * 1e3:.0f} vs {eager['seconds_per_step'] * 1e3:.0f} ms/step",
                        "", fast["speedup_vs_fp32_eager"], None, order=26))
    record(f"train-switches-smoke-{what}", **figures, width=size.width, side=size.faces_size, batch=size.batch,
           **cpu_info(), summary=rows)
