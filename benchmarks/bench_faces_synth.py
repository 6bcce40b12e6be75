"""faces-synth: frames per second of generating videos (rendering + ground truth), at the smoke
profile's 32 px and at the paper's 96 px, and of the rasterizer alone."""
from __future__ import annotations

import time

import pytest
import torch

from frgan.conditions import render
from frgan.data import faces_synth as fs

# (image size, subjects, frames per video): 32 px is the smoke profile's whole dataset.
CASES = {"32px": (32, 9, 20), "96px": (96, 2, 20)}


@pytest.mark.parametrize("case", list(CASES))
def test_faces_synth_frames_per_second(benchmark, record, case):
    size, n_subjects, n_frames = CASES[case]
    runs = []

    def generate():
        started = time.perf_counter()
        n = sum(len(r.frames) for r in fs.iter_videos(size, n_subjects, n_frames, seed=0))
        runs.append((n, time.perf_counter() - started))

    benchmark.pedantic(generate, rounds=1, iterations=1)
    n, seconds = min(runs, key=lambda r: r[1])
    record(f"faces-synth-{case}", image_size=size, frames=n, seconds=seconds, frames_per_s=n / seconds,
           torch_threads=1)


def test_rasterizer_frames_per_second(benchmark, record):
    """A batch of 32 face meshes at 96 x 96 (no supersampling), rasterized in one call."""
    model = fs.procedural_face_model()
    subject = fs.subjects(1, seed=0)[0]
    pose = torch.as_tensor(fs.rest_pose(model, subject.alpha, subject.framing, 96)).expand(32, 6)
    alpha = torch.as_tensor(subject.alpha).expand(32, -1)
    screen = render.project(model.shape(alpha, torch.zeros(32, model.n_expr)), pose)
    triangles = torch.as_tensor(model.triangles)
    benchmark(lambda: render.rasterize(screen, triangles, 96, 96, cull_backfaces=True))
    mean = benchmark.stats.stats.mean
    record("rasterize-96px-batch32", seconds_per_batch=mean, frames_per_s=32 / mean,
           torch_threads=torch.get_num_threads())
