"""Speed of the face task's G_C: normal maps rendered in torch batches vs one frame at a time,
and the batched landmark fitter, at the smoke profile's 32 px and the paper's 96 px. Run with
`make bench` (pytest-benchmark); nothing here asserts on time. One torch thread, as the
conditions stage runs (see faces.build_face_conditions)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

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
def test_normal_maps_batched(benchmark, record, size):
    model, alpha, beta, pose = _frames(size, N_FRAMES)
    benchmark.pedantic(faces.normal_maps, args=(model, alpha, beta, pose, size), rounds=3, iterations=1,
                       warmup_rounds=1)
    mean = benchmark.stats.stats.mean
    record(f"face-normal-maps-{size}px-batched", frames=N_FRAMES, seconds=mean, frames_per_s=N_FRAMES / mean)


@pytest.mark.parametrize("size", SIZES)
def test_normal_maps_per_frame(benchmark, record, size):
    model, alpha, beta, pose = _frames(size, N_FRAMES)

    def one_at_a_time():
        for i in range(N_FRAMES):
            faces.normal_maps(model, alpha[i:i + 1], beta[i:i + 1], pose[i:i + 1], size)

    benchmark.pedantic(one_at_a_time, rounds=3, iterations=1, warmup_rounds=1)
    mean = benchmark.stats.stats.mean
    record(f"face-normal-maps-{size}px-per-frame", frames=N_FRAMES, seconds=mean, frames_per_s=N_FRAMES / mean)


def test_fit_frames_per_second(benchmark, record):
    """The smoke profile's whole faces-synth: 54 videos x 20 frames of exact landmarks, fitted at once."""
    n_videos, n_frames = 54, 20
    model, alpha, beta, pose = _frames(32, n_videos * n_frames, n_subjects=n_videos)
    landmarks = np.concatenate([fs.landmarks_px(model, alpha[i], beta[i:i + 1], pose[i:i + 1])
                                for i in range(len(pose))])
    video = np.repeat(np.arange(n_videos), n_frames)
    result = benchmark.pedantic(fit_videos, args=(model, landmarks, video), rounds=3, iterations=1,
                                warmup_rounds=1)
    mean = benchmark.stats.stats.mean
    record("face-fit-1080-frames", frames=len(pose), seconds=mean, frames_per_s=len(pose) / mean,
           iterations=result.iterations, error_px=float(result.error_px.mean()))
