"""Throughput of the metrics (pytest-benchmark; kept out of the test run).

    PYTHONPATH=. python -m pytest benchmarks/bench_metrics.py --benchmark-only -s

* pixel-<metric>: batched ``metrics.pixel`` vs a per-frame scikit-image loop on the same
  256 frames (16 videos x 16 frames, 64x64 RGB uint8, the paper's Penn Action size).
* dlib-descriptors: dlib's ResNet on 32 aligned chips, batched (``batch_size=64``) vs one chip
  per call (``batch_size=1``).
* acd-dlib: end to end, 2 videos x 16 frames of synthetic faces at 64 px: detection,
  alignment, descriptors, ACD-I and ACD-C; batched vs one chip at a time.

Each benchmark stores frames/s in ``extra_info``; once both sides of a group have run, the
ratio (batched / reference) is printed (visible with ``-s``) and stored as ``speedup``.
"""
import numpy as np
import pytest
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from metrics.acd import acd_c, acd_i
from metrics.embedders import create_embedder
from metrics.embedders.synthetic import EXAMPLE_IDENTITIES, render_identities
from metrics.pixel import mse, psnr, ssim

PIXEL_SHAPE = (16, 16, 64, 64, 3)
BATCHED, REFERENCE = "batched", "reference"

_frames_per_s: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module")
def video_pair():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, PIXEL_SHAPE, dtype=np.uint8)
    generated = np.clip(target.astype(int) + rng.integers(-30, 31, PIXEL_SHAPE), 0, 255).astype(np.uint8)
    return generated, target


def _skimage_loop(function):
    def run(generated, target):
        x = generated.reshape((-1,) + generated.shape[-3:]) / 255.0
        y = target.reshape((-1,) + target.shape[-3:]) / 255.0
        return np.array([function(a, b) for a, b in zip(x, y)])
    return run


PIXEL_IMPLEMENTATIONS = {
    "mse": {BATCHED: mse, REFERENCE: _skimage_loop(mean_squared_error)},
    "psnr": {BATCHED: psnr,
             REFERENCE: _skimage_loop(lambda a, b: peak_signal_noise_ratio(a, b, data_range=1))},
    "ssim": {BATCHED: ssim,
             REFERENCE: _skimage_loop(lambda a, b: structural_similarity(a, b, channel_axis=-1, data_range=1))},
}


def _record(benchmark, capsys, group: str, side: str, n_frames: int) -> None:
    """Store frames/s; print and store the batched / reference ratio once both are known."""
    if benchmark.stats is None:  # --benchmark-disable
        return
    frames_per_s = n_frames / benchmark.stats.stats.mean
    benchmark.extra_info["frames_per_s"] = frames_per_s
    _frames_per_s[(group, side)] = frames_per_s
    if (group, BATCHED) in _frames_per_s and (group, REFERENCE) in _frames_per_s:
        speedup = _frames_per_s[(group, BATCHED)] / _frames_per_s[(group, REFERENCE)]
        benchmark.extra_info["speedup"] = speedup
        with capsys.disabled():
            print(f"\n{group}: batched {_frames_per_s[(group, BATCHED)]:.1f} frames/s, "
                  f"reference {_frames_per_s[(group, REFERENCE)]:.1f} frames/s, ratio {speedup:.2f}x")


@pytest.mark.parametrize("side", [BATCHED, REFERENCE])
@pytest.mark.parametrize("metric", list(PIXEL_IMPLEMENTATIONS))
def test_pixel_metric_throughput(benchmark, capsys, video_pair, metric, side):
    benchmark.group = f"pixel-{metric}"
    function = PIXEL_IMPLEMENTATIONS[metric][side]
    result = benchmark.pedantic(function, args=video_pair, rounds=5, iterations=1, warmup_rounds=1)
    assert np.asarray(result).size == PIXEL_SHAPE[0] * PIXEL_SHAPE[1]
    _record(benchmark, capsys, f"pixel-{metric}", side, PIXEL_SHAPE[0] * PIXEL_SHAPE[1])


@pytest.fixture(scope="module")
def face_videos():
    """(2, 16, 64, 64, 3): two synthetic identities, each at 16 small shifts."""
    shifts = [(dx, dy) for dx in (-2, -1, 1, 2) for dy in (-2, -1, 1, 2)]
    return render_identities(EXAMPLE_IDENTITIES[:2], size=64, shifts=shifts)


@pytest.fixture(scope="module")
def embedders():
    pytest.importorskip("dlib")
    return {BATCHED: create_embedder("dlib", batch_size=64), REFERENCE: create_embedder("dlib", batch_size=1)}


@pytest.mark.parametrize("side", [BATCHED, REFERENCE])
def test_dlib_descriptor_throughput(benchmark, capsys, embedders, face_videos, side):
    benchmark.group = "dlib-descriptors"
    embedder = embedders[side]
    chips = [embedder.face_chip(frame)[0] for frame in face_videos.reshape((-1, 64, 64, 3))]
    benchmark.pedantic(embedder.descriptors, args=(chips,), rounds=2, iterations=1, warmup_rounds=1)
    _record(benchmark, capsys, "dlib-descriptors", side, len(chips))


@pytest.mark.parametrize("side", [BATCHED, REFERENCE])
def test_acd_dlib_throughput(benchmark, capsys, embedders, face_videos, side):
    benchmark.group = "acd-dlib"
    embedder = embedders[side]

    def acd_end_to_end():
        vectors = embedder.embed(face_videos).vectors
        return acd_i(vectors[:, 1:], vectors[:, 0]), acd_c(vectors)

    benchmark.pedantic(acd_end_to_end, rounds=2, iterations=1, warmup_rounds=1)
    _record(benchmark, capsys, "acd-dlib", side, face_videos.shape[0] * face_videos.shape[1])
