"""Aggregation (per frame, per video, per class) and statistics over videos and seeds.

The unit of evidence is the video: per-frame scores are averaged to one score per video
first, and every interval and test below resamples videos, not frames (frames of one video
are strongly correlated).

* ``bootstrap_mean``: mean over videos with a percentile-bootstrap interval (resample the
  videos with replacement ``n_resamples`` times; the interval is the (alpha/2, 1 - alpha/2)
  quantiles of the resampled means), by ``scipy.stats.bootstrap``.
* ``bootstrap_mean_over_seeds``: several training seeds, each with its per-video scores. The
  point estimate is the mean over seeds of each seed's mean over videos; the interval comes
  from a two-level bootstrap (resample seeds, then videos within each drawn seed), so it
  carries both the seed-to-seed and the video-to-video spread. One seed reduces to
  ``bootstrap_mean``.
* ``paired_difference``: do methods A and B differ on the same test videos? d_i = a_i - b_i
  per video; the interval is a paired bootstrap of mean(d) (``scipy.stats.bootstrap``, paired). The p-value is two-sided, from the
  Wilcoxon signed-rank test on d (scipy, default: no normality assumption on d, robust to a
  few extreme videos) or from the paired bootstrap (``test="bootstrap"``:
  p = min(1, 2 min(P*(mean d* <= 0), P*(mean d* >= 0)))).
* ``wilson_interval``: a binomial proportion k/n (the user study's preference shares) with
  Wilson's score interval, which stays inside [0, 1] and is sensible at k = 0, k = n and small n.

All resampling is seeded (``seed``); non-finite scores are refused (cap PSNR first, see
``metrics.pixel``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .pixel import PSNR_CAP_DB, cap_psnr

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean with its bootstrap interval; ``n`` counts the resampled units (videos or seeds)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairedComparison:
    """mean(a - b) over paired videos, its paired-bootstrap interval and a two-sided p-value."""

    mean_difference: float
    low: float
    high: float
    p_value: float
    test: str
    n: int
    confidence: float

    def as_dict(self) -> dict:
        return asdict(self)


def _finite_vector(values, name: str = "values") -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} holds non-finite scores; cap PSNR (metrics.pixel.cap_psnr) first")
    return values


def _resampled_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` resamples-with-replacement of ``values`` (same size)."""
    indices = rng.integers(0, values.size, size=(n_resamples, values.size))
    return values[indices].mean(axis=1)


def _interval(resampled: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of resampled statistics, computed as scipy.stats.bootstrap does."""
    from scipy.stats import quantile
    alpha = (1.0 - confidence) / 2
    low, high = quantile(resampled, np.asarray([alpha, 1 - alpha]))
    return float(low), float(high)


def _scipy_bootstrap(samples: tuple[np.ndarray, ...], statistic, n_resamples: int, confidence: float,
                     seed: int) -> tuple[float, float, np.ndarray]:
    """scipy.stats.bootstrap's percentile interval of `statistic` (paired over the samples) and its
    resampled statistics. It draws each replicate's indices with Generator.integers(0, n), as
    `_resampled_means` does. One value: scipy refuses it; the interval is that value."""
    if samples[0].size == 1:
        value = float(statistic(*samples, axis=-1))
        return value, value, np.full(n_resamples, value)
    from scipy.stats import bootstrap   # here: scipy.stats takes 0.35 s to import
    result = bootstrap(samples, statistic, n_resamples=n_resamples, confidence_level=confidence,
                       method="percentile", paired=len(samples) > 1, vectorized=True,
                       rng=np.random.default_rng(seed))
    interval = result.confidence_interval
    return float(interval.low), float(interval.high), result.bootstrap_distribution


def bootstrap_mean(values, n_resamples: int = DEFAULT_RESAMPLES,
                   confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> Estimate:
    """Mean of per-video scores with a percentile-bootstrap interval over videos (scipy)."""
    values = _finite_vector(values)
    low, high, _ = _scipy_bootstrap((values,), np.mean, n_resamples, confidence, seed)
    return Estimate(float(values.mean()), low, high, values.size, confidence)


def bootstrap_mean_over_seeds(values_by_seed: Mapping | Sequence, n_resamples: int = DEFAULT_RESAMPLES,
                              confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> Estimate:
    """Mean over training seeds of per-seed mean scores, with a two-level bootstrap interval.

    ``values_by_seed``: per-video scores of each seed (a mapping seed -> scores, or a list).
    Each replicate draws S seeds with replacement and, for every draw, resamples that seed's
    videos with replacement; the replicate is the mean of the S resampled means.
    """
    groups = list(values_by_seed.values()) if isinstance(values_by_seed, Mapping) else list(values_by_seed)
    groups = [_finite_vector(group, "a seed's scores") for group in groups]
    if not groups:
        raise ValueError("no seeds given")
    rng = np.random.default_rng(seed)
    drawn_seeds = rng.integers(0, len(groups), size=(n_resamples, len(groups)))
    within_seed_means = np.empty(drawn_seeds.shape)
    for index, group in enumerate(groups):
        drawn_here = drawn_seeds == index
        within_seed_means[drawn_here] = _resampled_means(group, int(drawn_here.sum()), rng)
    point = float(np.mean([group.mean() for group in groups]))
    low, high = _interval(within_seed_means.mean(axis=1), confidence)
    return Estimate(point, low, high, len(groups), confidence)


def paired_difference(scores_a, scores_b, test: str = "wilcoxon", n_resamples: int = DEFAULT_RESAMPLES,
                      confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> PairedComparison:
    """Paired comparison of two methods' per-video scores (same videos, same order)."""
    a = _finite_vector(scores_a, "scores_a")
    b = _finite_vector(scores_b, "scores_b")
    if a.shape != b.shape:
        raise ValueError(f"paired scores need equal lengths, got {a.size} and {b.size}")
    differences = a - b
    low, high, resampled = _scipy_bootstrap((a, b), _mean_difference, n_resamples, confidence, seed)
    if test == "wilcoxon":
        p_value = _wilcoxon_p(differences)
    elif test == "bootstrap":
        p_value = min(1.0, 2.0 * min(np.mean(resampled <= 0), np.mean(resampled >= 0)))
    else:
        raise ValueError(f"test must be 'wilcoxon' or 'bootstrap', got {test!r}")
    return PairedComparison(float(differences.mean()), low, high, float(p_value), test,
                            differences.size, confidence)


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a - b, axis=axis)


def _wilcoxon_p(differences: np.ndarray) -> float:
    # All-zero differences: the methods agree on every video, nothing to reject.
    if np.all(differences == 0):
        return 1.0
    from scipy import stats as scipy_stats   # here: 0.5 s to import, and only the paired comparisons use it
    return float(scipy_stats.wilcoxon(differences, alternative="two-sided").pvalue)


def wilson_interval(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of the proportion p = k/n (k successes in n trials), with z the
    normal's (1 + confidence) / 2 quantile:

        center = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))

    It treats the trials as independent; answers that cluster (by question, by rater) make the
    true uncertainty larger. scipy.stats.binomtest computes it (exactly 0 at k = 0, 1 at k = n).
    """
    if n <= 0:
        raise ValueError("n must be positive")
    from scipy.stats import binomtest   # here: scipy.stats takes 0.5 s to import
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


# ---------------------------------------------------------------- tables (pandas)

def frame_table(scores: Mapping[str, np.ndarray], video_ids: Sequence | None = None,
                classes: Sequence | None = None) -> pd.DataFrame:
    """Long table, one row per (video, frame): columns video, class, frame, then each metric.

    ``scores`` maps a metric name to per-frame values (N, T), e.g. ``pixel_metrics(...)`` or
    ``{"identity_distance": identity_distances(...)}``.
    """
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
    n_videos, n_frames = next(iter(arrays.values())).shape
    if any(values.shape != (n_videos, n_frames) for values in arrays.values()):
        raise ValueError("all per-frame score arrays must share one (N, T) shape")
    video_ids = list(video_ids) if video_ids is not None else list(range(n_videos))
    classes = list(classes) if classes is not None else [None] * n_videos
    table = pd.DataFrame({
        "video": np.repeat(video_ids, n_frames),
        "class": np.repeat(np.asarray(classes, dtype=object), n_frames),
        "frame": np.tile(np.arange(n_frames), n_videos),
    })
    for name, values in arrays.items():
        table[name] = values.ravel()
    return table


def video_table(frames: pd.DataFrame, psnr_cap_db: float = PSNR_CAP_DB) -> pd.DataFrame:
    """Per-video means of a ``frame_table``; PSNR is capped first and capped frames counted."""
    frames = frames.copy()
    metric_columns = [column for column in frames.columns if column not in ("video", "class", "frame")]
    if "psnr" in frames:
        frames["psnr_capped_frames"] = np.isinf(frames["psnr"]).astype(int)
        frames["psnr"] = cap_psnr(frames["psnr"].to_numpy(), psnr_cap_db)
    aggregations = {column: "mean" for column in metric_columns}
    if "psnr" in frames:
        aggregations["psnr_capped_frames"] = "sum"
    return frames.groupby(["video", "class"], dropna=False, sort=False).agg(aggregations).reset_index()


def summary_table(videos: pd.DataFrame, metrics: Sequence[str], by: str | None = None,
                  n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                  seed: int = 0) -> pd.DataFrame:
    """Mean and bootstrap interval of each metric over videos; one row per metric (and group).

    ``by="class"`` gives the per-class table (Fig. 7) followed by an ``"all"`` group.
    """
    groups = [("all", videos)]
    if by is not None:
        groups = [(name, group) for name, group in videos.groupby(by, sort=True)] + groups
    rows = []
    for group_name, group in groups:
        for metric in metrics:
            estimate = bootstrap_mean(group[metric], n_resamples, confidence, seed)
            row = {by: group_name} if by is not None else {}
            rows.append({**row, "metric": metric, **estimate.as_dict()})
    return pd.DataFrame(rows)


def compare_methods(videos_a: pd.DataFrame, videos_b: pd.DataFrame, metric: str, test: str = "wilcoxon",
                    n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                    seed: int = 0) -> PairedComparison:
    """``paired_difference`` of one metric between two methods' video tables, paired on ``video``."""
    paired = videos_a[["video", metric]].merge(videos_b[["video", metric]], on="video",
                                               suffixes=("_a", "_b"), validate="one_to_one")
    if len(paired) != len(videos_a) or len(paired) != len(videos_b):
        raise ValueError("the two methods were not scored on the same videos")
    return paired_difference(paired[f"{metric}_a"], paired[f"{metric}_b"], test, n_resamples,
                             confidence, seed)
