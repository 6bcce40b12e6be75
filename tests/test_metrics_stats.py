"""Bootstrap intervals, the two-level seed bootstrap, paired tests and the pandas tables."""
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
    seeds_summary_table,
    summary_table,
    video_table,
)


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


def test_tables_without_classes_and_over_seeds(rng):
    by_seed = {seed: video_table(frame_table(per_frame_scores(rng))) for seed in range(3)}
    overall = summary_table(by_seed[0], ["mse"], n_resamples=100)
    assert overall.loc[0, "n"] == 4 and overall.loc[0, "metric"] == "mse"
    seeds = seeds_summary_table(by_seed, ["mse", "psnr"], n_resamples=100)
    assert list(seeds["n_seeds"]) == [3, 3]


def test_compare_methods_pairs_on_video_ids():
    a = pd.DataFrame({"video": ["x", "y", "z", "w", "u", "t"], "mse": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    b = a.iloc[::-1].assign(mse=lambda t: t["mse"] + 0.01)  # same videos, other order
    comparison = compare_methods(a, b, "mse", n_resamples=200)
    assert comparison.mean_difference == pytest.approx(-0.01)
    with pytest.raises(ValueError, match="same videos"):
        compare_methods(a, b.iloc[:5], "mse")
