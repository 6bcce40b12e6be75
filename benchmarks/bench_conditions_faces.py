"""Speed of the face task's G_C: normal maps rendered in torch batches vs one frame at a time,
and the batched landmark fitter, at the smoke profile's 32 px and the paper's 96 px. Run with
`make bench` (pytest-benchmark); nothing here asserts on time. One torch thread, as the
conditions stage runs (see faces.build_face_conditions)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from benchmarks.harness import fmt, row

from frgan.conditions import faces
from frgan.conditions.fitting import fit_videos
from frgan.data import faces_synth as fs

N_FRAMES = 64          # one batch of maps (faces.RENDER_BATCH)
SIZES = [32, 96]       # smoke profile; paper 4.1


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _frames(size: int, n_frames: int, n_subjects: int = 4, seed: int = 0):
    """Per frame alpha, beta, pose: subjects at rest pose with a rising expression and head turns."""
    model = fs.procedural_face_model()
    rng = np.random.default_rng(seed)
    subjects = fs.subjects(n_subjects, seed)
    per = n_frames // n_subjects
    alpha = np.repeat(np.stack([s.alpha for s in subjects]), per, 0)
    pose = np.repeat(np.stack([fs.rest_pose(model, s.alpha, s.framing, size) for s in subjects]), per, 0)
    pose[:, :3] += np.radians(rng.normal(0, 5, (len(pose), 3)))
    beta = np.zeros((len(pose), model.n_expr), np.float32)
    beta[np.arange(len(pose)), rng.integers(model.n_expr, size=len(pose))] = rng.uniform(0, 1, len(pose))
    return model, alpha.astype(np.float32), beta, pose.astype(np.float32)


@pytest.mark.parametrize("size", SIZES)
def test_normal_maps_batched_vs_per_frame(benchmark, record, size):
    """The same 64 maps rendered in one torch batch and one frame per call; ratio of frames/s."""
    model, alpha, beta, pose = _frames(size, N_FRAMES)
    batched = benchmark.pedantic(faces.normal_maps, args=(model, alpha, beta, pose, size), rounds=3, iterations=1,
                                 warmup_rounds=1)
    t_batched = benchmark.stats.stats.min

    def one_at_a_time():
        return [faces.normal_maps(model, alpha[i:i + 1], beta[i:i + 1], pose[i:i + 1], size) for i in range(N_FRAMES)]

    one_at_a_time()
    t_per_frame = min(_seconds(one_at_a_time) for _ in range(2))
    per_frame = np.concatenate([np.asarray(m) for m in one_at_a_time()])
    diff = np.abs(np.asarray(batched).astype(np.int16) - per_frame)
    differing, max_diff = int((diff > 0).sum()), int(diff.max())
    ratio = t_per_frame / t_batched
    record(f"face-normal-maps-{size}px", frames=N_FRAMES, batched_frames_per_s=N_FRAMES / t_batched,
           per_frame_frames_per_s=N_FRAMES / t_per_frame, speedup=ratio, differing_values=differing,
           max_abs_diff=max_diff, values=int(diff.size), torch_threads=1,
           summary=[row(f"Normal maps at {size} px, batched in torch vs a per-frame loop (64 frames, 1 thread)",
                        f"{fmt(N_FRAMES / t_batched)} vs {fmt(N_FRAMES / t_per_frame)} frames/s; "
                        f"{differing} of {diff.size:,} uint8 values differ (by at most {max_diff})",
                        "(none)", ratio, None, order=50)])


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_fit_frames_per_second(benchmark, record):
    """The smoke profile's whole faces-synth: 54 videos x 20 frames of exact landmarks, fitted at once."""
    n_videos, n_frames = 54, 20
    model, alpha, beta, pose = _frames(32, n_videos * n_frames, n_subjects=n_videos)
    landmarks = np.concatenate([fs.landmarks_px(model, alpha[i], beta[i:i + 1], pose[i:i + 1])
                                for i in range(len(pose))])
    video = np.repeat(np.arange(n_videos), n_frames)
    result = benchmark.pedantic(fit_videos, args=(model, landmarks, video), rounds=2, iterations=1,
                                warmup_rounds=1)
    best = benchmark.stats.stats.min
    record("face-fit-1080-frames", frames=len(pose), seconds=best, frames_per_s=len(pose) / best,
           iterations=result.iterations, error_px=float(result.error_px.mean()), torch_threads=1,
           summary=[row("3DMM fitting (Levenberg-Marquardt, batched over 54 videos x 20 frames, 1 thread)",
                        f"{fmt(len(pose) / best)} frames/s, landmark error {float(result.error_px.mean()):.3g} px",
                        "(none)", None, None, order=51)])
