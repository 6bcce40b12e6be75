"""prepare: frames per second of generating and storing each synthetic dataset at the smoke
profile and at paper size (one subject / a few actors, to keep the run short)."""
from __future__ import annotations

import time

import pytest

from frgan.config import load_params
from frgan.data.clipstore import write_clip_store
from frgan.data.sources import SOURCES

PROFILE_OVERRIDES = {
    "smoke": {},
    "paper-size": {"faces_size": 96, "actors_size": 64, "faces_subjects": 3, "actors_per_action": 3},
}


@pytest.mark.parametrize("dataset", ["faces-synth", "actors-synth"])
@pytest.mark.parametrize("profile", list(PROFILE_OVERRIDES))
def test_prepare_frames_per_second(benchmark, record, tmp_path, dataset, profile):
    params = load_params("params.yaml")
    size = params.size.model_copy(update=PROFILE_OVERRIDES[profile])
    params = params.model_copy(update={"profiles": {**params.profiles, params.profile: size}})
    frames = []

    def build():
        source = SOURCES[dataset](params)
        started = time.perf_counter()
        meta = write_clip_store(source.records, tmp_path / "store", {"dataset": dataset})
        frames.append((meta["n_frames"], time.perf_counter() - started))

    benchmark.pedantic(build, rounds=1, iterations=1)
    n, seconds = min(frames, key=lambda f: f[1])
    record(f"prepare-{dataset}-{profile}", frames=n, seconds=seconds, frames_per_s=n / seconds)
