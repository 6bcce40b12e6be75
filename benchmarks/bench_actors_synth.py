"""actors-synth generator: frames per second at the smoke size (32 px) and paper size (64 px),
generation only (no clip store): 3 actors x 8 actions x 24 frames per round."""
from __future__ import annotations

import time

import pytest

from frgan.data import actors_synth

ACTORS, FRAMES = 3, 24


@pytest.mark.parametrize("image_size", [32, 64])
def test_actors_synth_frames_per_second(benchmark, record, image_size):
    rounds = []

    def generate():
        started = time.perf_counter()
        n = sum(rec.frames.shape[0] for rec in actors_synth.iter_videos(image_size, ACTORS, FRAMES, seed=0))
        rounds.append((n, time.perf_counter() - started))

    benchmark.pedantic(generate, rounds=3, iterations=1)
    n, seconds = min(rounds, key=lambda r: r[1])
    benchmark.extra_info["frames_per_s"] = n / seconds
    record(f"actors-synth-generate-{image_size}px", frames=n, seconds=seconds, frames_per_s=n / seconds)
