"""Bootstrap intervals, the two-level seed bootstrap, paired tests, the pandas tables and the
Wilson interval."""
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from metrics.pixel import PSNR_CAP_DB
from metrics.stats import (
    bootstrap_mean,
    bootstrap_mean_over_seeds,
    compare_methods,
    frame_table,
    paired_difference,
    summary_table,
    video_table,
    wilson_interval,
)
from tests.conftest import REPO


@pytest.fixture
def rng():
    return np.random.default_rng(3)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean(rng):
    values = rng.normal(0.2, 0.05, 200)
    first = bootstrap_mean(values, n_resamples=500, seed=11)
    assert first == bootstrap_mean(values, n_resamples=500, seed=11)
    assert first.low < first.mean < first.high and first.n == 200
    # Standard error 0.05 / sqrt(200) = 0.0035: the 95% interval spans about 4 of them.
    assert 0.010 < first.high - first.low < 0.018


def test_bootstrap_refuses_infinite_scores():
    with pytest.raises(ValueError, match="cap PSNR"):
        bootstrap_mean([20.0, np.inf])


def test_seed_bootstrap_widens_with_seed_spread(rng):
    videos = [rng.normal(0.2, 0.05, 100) for _ in range(3)]
    shifted = [group + offset for group, offset in zip(videos, (-0.05, 0.0, 0.05))]
    tight = bootstrap_mean_over_seeds(videos, n_resamples=500)
    wide = bootstrap_mean_over_seeds({0: shifted[0], 1: shifted[1], 2: shifted[2]}, n_resamples=500)
    assert tight.n == 3 and wide.mean == pytest.approx(np.mean([g.mean() for g in shifted]))
    assert wide.high - wide.low > 2 * (tight.high - tight.low)


def test_one_seed_matches_the_video_bootstrap_scale(rng):
    values = rng.normal(1.0, 0.1, 300)
    single = bootstrap_mean_over_seeds([values], n_resamples=1000)
    plain = bootstrap_mean(values, n_resamples=1000)
    assert single.mean == plain.mean
    assert single.high - single.low == pytest.approx(plain.high - plain.low, rel=0.2)


def test_paired_difference_detects_a_shift_and_not_noise(rng):
    base = rng.normal(0.3, 0.1, 60)
    better = base - 0.02 + rng.normal(0, 0.005, 60)
    same = base + rng.normal(0, 0.005, 60)
    for test in ("wilcoxon", "bootstrap"):
        shifted = paired_difference(better, base, test=test, n_resamples=1000)
        assert shifted.p_value < 1e-3 and shifted.high < 0
        assert paired_difference(same, base, test=test, n_resamples=1000).p_value > 0.01
    assert paired_difference(base, base).p_value == 1.0
    with pytest.raises(ValueError):
        paired_difference(base, base, test="t-test")


def per_frame_scores(rng):
    psnr = rng.uniform(15, 30, (4, 3))
    psnr[0, 0] = np.inf
    return {"mse": rng.uniform(0.01, 0.05, (4, 3)), "psnr": psnr}


def test_frame_video_and_class_tables(rng):
    scores = per_frame_scores(rng)
    frames = frame_table(scores, video_ids=["v0", "v1", "v2", "v3"], classes=["golf", "golf", "jump", "jump"])
    assert len(frames) == 12 and list(frames.columns) == ["video", "class", "frame", "mse", "psnr"]
    videos = video_table(frames)
    assert list(videos["video"]) == ["v0", "v1", "v2", "v3"]
    assert videos.loc[0, "psnr_capped_frames"] == 1
    expected_psnr = np.minimum(scores["psnr"], PSNR_CAP_DB).mean(axis=1)
    np.testing.assert_allclose(videos["psnr"], expected_psnr)
    np.testing.assert_allclose(videos["mse"], scores["mse"].mean(axis=1))

    by_class = summary_table(videos, ["mse", "psnr"], by="class", n_resamples=200)
    assert list(by_class["class"]) == ["golf", "golf", "jump", "jump", "all", "all"]
    golf_mse = by_class[(by_class["class"] == "golf") & (by_class["metric"] == "mse")].iloc[0]
    assert golf_mse["mean"] == pytest.approx(scores["mse"][:2].mean())


def test_summary_table_without_classes(rng):
    overall = summary_table(video_table(frame_table(per_frame_scores(rng))), ["mse"], n_resamples=100)
    assert overall.loc[0, "n"] == 4 and overall.loc[0, "metric"] == "mse"


def test_compare_methods_pairs_on_video_ids():
    a = pd.DataFrame({"video": ["x", "y", "z", "w", "u", "t"], "mse": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    b = a.iloc[::-1].assign(mse=lambda t: t["mse"] + 0.01)  # same videos, other order
    comparison = compare_methods(a, b, "mse", n_resamples=200)
    assert comparison.mean_difference == pytest.approx(-0.01)
    with pytest.raises(ValueError, match="same videos"):
        compare_methods(a, b.iloc[:5], "mse")


def _wilson_closed_form(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The textbook formula (z: the normal's 97.5% quantile), clipped to [0, 1]."""
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (0, 10), (5, 10), (8, 10), (10, 10), (1, 3),
                                  (0, 54), (17, 36), (54, 54), (81, 100), (0, 1000), (1000, 1000)])
def test_wilson_interval_is_the_closed_form(k, n):
    # scipy's arithmetic differs from the formula's in the last bit (<= 3e-16); at k = 0 and
    # k = n it gives 0 and 1 exactly where the formula rounds to 2e-19 or 0.9999999999999999.
    assert wilson_interval(k, n) == pytest.approx(_wilson_closed_form(k, n), abs=1e-15)
    low, high = wilson_interval(k, n)
    assert (low == 0.0) == (k == 0) and (high == 1.0) == (k == n)


def test_wilson_interval_known_values():
    assert tuple(round(v, 4) for v in wilson_interval(5, 10)) == (0.2366, 0.7634)
    assert tuple(round(v, 4) for v in wilson_interval(81, 100)) == (0.7222, 0.8749)
    low90, high90 = wilson_interval(8, 10, confidence=0.90)
    low95, high95 = wilson_interval(8, 10)
    assert low95 < low90 < 0.8 < high90 < high95
    with pytest.raises(ValueError, match="n must be positive"):
        wilson_interval(0, 0)


def test_metrics_stats_imports_no_scipy_stats_until_used():
    code = "import sys, metrics.stats; print('scipy.stats' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_two_level_bootstraps_pieces_are_scipys_percentile_bootstrap():
    """bootstrap_mean and paired_difference are scipy.stats.bootstrap (percentile); the two-level
    seed/video bootstrap, which scipy lacks, resamples and takes its interval the same way: on
    one level its pieces give scipy's interval bit for bit."""
    from scipy import stats as scipy_stats
    from metrics.stats import _interval, _resampled_means
    for seed in range(20):
        rng = np.random.default_rng(seed)
        values = rng.normal(size=int(rng.integers(2, 40))) * 3
        ours = bootstrap_mean(values, seed=seed)
        scipys = scipy_stats.bootstrap((values,), np.mean, n_resamples=2000, method="percentile",
                                       rng=np.random.default_rng(seed), vectorized=True).confidence_interval
        assert (ours.low, ours.high) == (scipys.low, scipys.high)
        assert _interval(_resampled_means(values, 2000, np.random.default_rng(seed)), 0.95) == (ours.low, ours.high)
    one = bootstrap_mean([0.25])   # scipy refuses one value: the interval is the value
    assert (one.mean, one.low, one.high) == (0.25, 0.25, 0.25)
