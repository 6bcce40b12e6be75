"""Pixel metrics between generated and ground-truth frames: MSE, PSNR, SSIM (Table 3, Fig. 7).

Value range
-----------
Every metric here works on pixel values in [0, 1]:

* ``uint8`` input is divided by 255;
* floating-point input is taken to be in [0, 1] already. Values outside [0, 1] (beyond a
  1e-6 tolerance) raise ``ValueError``, because the usual mistake -- passing a generator's
  tanh output in [-1, 1] or un-normalised [0, 255] floats -- would otherwise change MSE by a
  constant factor without any sign of it. Convert [-1, 1] with ``(x + 1) / 2``.
* NaN or infinite values raise ``ValueError`` naming the array (``generated`` / ``target``):
  a metric of a NaN frame is NaN, which would pass silently (``metrics.checks``).

All arithmetic is float64 whatever the input dtype.

Why [0, 1]: the paper's Table 3 MSE values are 0.011-0.047. The per-pixel MSE of two
natural 64x64 frames that differ visibly is of order 1e-2 on [0, 1] values. On [0, 255]
values the same frames give 255**2 = 65025 times more (hundreds to thousands), on [-1, 1]
values 2**2 = 4 times more (0.04-0.19), and a sum over pixels instead of a mean would be
64*64*3 = 12288 times more. Only "mean over pixels and channels, values in [0, 1]" puts the
paper's numbers in the range they have, so that is the definition used here.

Shapes
------
Frames are ``(..., H, W, C)`` (typically ``(N, T, H, W, C)`` for N videos of T frames);
every function returns one value per frame, i.e. the leading shape (``(N, T)``).

Infinite PSNR
-------------
PSNR of identical frames is +inf (MSE = 0). ``psnr`` returns ``np.inf`` for them explicitly
(no division-by-zero warning). Averages cannot take inf, so every aggregate in this package
(``metrics.stats``) first caps per-frame PSNR at ``PSNR_CAP_DB``
(100 dB) and counts how many frames were capped. Why cap rather than exclude: excluding drops
exactly the best frames (biasing the mean down and giving videos different frame counts),
while a cap keeps every frame and is deterministic. Why 100 dB: it lies above every finite
PSNR that 8-bit frames can reach up to 128x128 RGB (the smallest nonzero MSE is one channel of
one pixel off by 1/255, i.e. PSNR_max = 10 log10(255**2 * H * W * C) = 89.0 dB at 64x64x3 and
95.0 dB at 128x128x3), so the cap changes only frames that are exactly identical. Note that a
capped frame still moves a video's mean a lot (a 100 dB frame among 31 frames at 20 dB adds
2.5 dB): whether a copy of the input frame at t = 0 is scored is the evaluation's decision.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from .checks import finite_bounds

PSNR_CAP_DB = 100.0

# scikit-image's structural_similarity defaults (gaussian_weights=False).
SSIM_WIN_SIZE = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# SSIM is computed this many frames at a time, to bound the float64 temporaries.
_SSIM_FRAMES_PER_CHUNK = 8
_RANGE_TOLERANCE = 1e-6


def to_unit_range(frames: np.ndarray, name: str = "frames") -> np.ndarray:
    """Return ``frames`` as float64 in [0, 1]: uint8 / 255 (cannot hold NaN: not scanned),
    floats checked (finite, in [0, 1]; errors name the array `name`) and kept."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames.astype(np.float64) / 255.0
    if not np.issubdtype(frames.dtype, np.floating):
        raise TypeError(f"{name}: frames must be uint8 or floating point, got {frames.dtype}")
    low, high = finite_bounds(frames, name)     # the one min/max pass: NaN/inf and range
    if low < -_RANGE_TOLERANCE or high > 1.0 + _RANGE_TOLERANCE:
        raise ValueError(
            f"{name}: float frames must lie in [0, 1], got [{low:.4g}, {high:.4g}]; "
            "convert [-1, 1] images with (x + 1) / 2, [0, 255] ones with x / 255"
        )
    return frames.astype(np.float64, copy=False)


def _checked_pair(generated, target) -> tuple[np.ndarray, np.ndarray]:
    generated, target = np.asarray(generated), np.asarray(target)
    if generated.shape != target.shape:
        raise ValueError(f"shape mismatch: generated {generated.shape} vs target {target.shape}")
    if generated.ndim < 3:
        raise ValueError(f"frames must be (..., H, W, C), got shape {generated.shape}")
    return generated, target


def _per_frame_sum_of_squares(difference: np.ndarray, dtype) -> np.ndarray:
    flat = difference.reshape(difference.shape[:-3] + (-1,))
    return np.einsum("...i,...i->...", flat, flat, dtype=dtype)


def _uint8_sum_of_squares(generated: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame sum of (x - y)**2 over two uint8 arrays, exact, in integers.

    The difference (in [-255, 255]) is formed in int16 and squared in place as uint16: the
    square is < 2**16, so the modular uint16 product is the exact square. The sum is
    accumulated in uint32 while every frame's total fits (H W C * 255**2 < 2**32, frames up to
    ~66,000 values: 148x148 RGB), in uint64 beyond. Same integers as an int64 sum, 3x faster.
    """
    difference = generated.astype(np.int16)
    difference -= target
    squares = difference.view(np.uint16)
    squares *= squares
    flat = squares.reshape(generated.shape[:-3] + (-1,))
    accumulator = np.uint32 if flat.shape[-1] * 255**2 < 2**32 else np.uint64
    return np.add.reduce(flat, axis=-1, dtype=accumulator).astype(np.int64)


def mse(generated, target) -> np.ndarray:
    """Per-frame mean squared error on [0, 1] values.

    MSE = 1 / (H W C) * sum_{h,w,c} (x_hwc - y_hwc)**2, with x, y in [0, 1].
    Returns the leading shape of the inputs (``(N, T)`` for ``(N, T, H, W, C)`` frames).
    Two uint8 inputs are differenced in integers (exact) and divided by 255**2 at the end.
    """
    generated, target = _checked_pair(generated, target)
    n_values = int(np.prod(generated.shape[-3:]))
    if generated.dtype == np.uint8 and target.dtype == np.uint8:
        return _uint8_sum_of_squares(generated, target) / (n_values * 255.0**2)
    x, y = to_unit_range(generated, "generated"), to_unit_range(target, "target")
    return _per_frame_sum_of_squares(x - y, np.float64) / n_values


def psnr_from_mse(mse_values) -> np.ndarray:
    """PSNR = 10 log10(1 / MSE) for a peak value of 1; MSE = 0 gives +inf explicitly."""
    mse_values = np.asarray(mse_values, dtype=np.float64)
    result = np.full(mse_values.shape, np.inf)
    nonzero = mse_values > 0
    result[nonzero] = -10.0 * np.log10(mse_values[nonzero])
    return result


def psnr(generated, target) -> np.ndarray:
    """Per-frame peak signal-to-noise ratio in dB on [0, 1] values.

    PSNR = 10 log10(1**2 / MSE), MSE as in ``mse``. Identical frames (MSE = 0) give +inf;
    aggregates cap it at ``PSNR_CAP_DB`` (see the module docstring).
    """
    return psnr_from_mse(mse(generated, target))


def cap_psnr(psnr_values, cap_db: float = PSNR_CAP_DB) -> np.ndarray:
    """min(PSNR, cap_db): the form every average of PSNR in this package uses."""
    return np.minimum(np.asarray(psnr_values, dtype=np.float64), cap_db)


def _window_means(stack: np.ndarray, size: int) -> np.ndarray:
    """Mean over every size x size window lying fully inside the frame.

    ``stack`` is (S, M, H, W, C) (S images per frame); the result is
    (S, M, H - size + 1, W - size + 1, C). These are exactly the positions scikit-image keeps
    after cropping its reflect-padded uniform filter, so the padding never enters. Rows are
    cropped before the second (column) pass, which therefore skips the discarded rows.
    """
    half = size // 2
    height, width = stack.shape[2], stack.shape[3]
    rows = uniform_filter1d(stack, size, axis=2)[:, :, half:height - half]
    return uniform_filter1d(rows, size, axis=3)[:, :, :, half:width - half]


def _ssim_frames(x: np.ndarray, y: np.ndarray, win_size: int) -> np.ndarray:
    """SSIM of (M, H, W, C) frame pairs in [0, 1]; returns (M,)."""
    n_window = win_size * win_size
    cov_norm = n_window / (n_window - 1.0)  # sample covariance, as scikit-image by default
    c1 = (SSIM_K1 * 1.0) ** 2  # data_range = 1
    c2 = (SSIM_K2 * 1.0) ** 2
    # Only the sum var_x + var_y enters SSIM, so x^2 + y^2 is filtered as one image:
    # one filtering call for the four images x, y, x^2 + y^2, xy of every frame.
    images = np.empty((4,) + x.shape)
    images[0], images[1] = x, y
    np.multiply(x, x, out=images[2])
    images[2] += y * y
    np.multiply(x, y, out=images[3])
    mu_x, mu_y, mean_sum_of_squares, mean_xy = _window_means(images, win_size)
    mu_xy = mu_x * mu_y
    mu_x2_plus_mu_y2 = mu_x * mu_x + mu_y * mu_y
    cov_xy = cov_norm * (mean_xy - mu_xy)
    var_x_plus_var_y = cov_norm * (mean_sum_of_squares - mu_x2_plus_mu_y2)
    ssim_map = ((2 * mu_xy + c1) * (2 * cov_xy + c2)) / (
        (mu_x2_plus_mu_y2 + c1) * (var_x_plus_var_y + c2))
    # Mean over positions per channel, then over channels (= mean over both, equal counts).
    return ssim_map.mean(axis=(1, 2, 3))


def _window_sums(stack: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Sums of `size` consecutive entries along `axis` (length n - size + 1), by doubling:
    pieces of 1, 2, 4, ... entries, one shifted add each, combined by the bits of `size` (7 =
    1 + 2 + 4: four array additions instead of six). Exact on integer values as long as
    every sum is exactly representable (see _ssim_uint8)."""
    n = stack.shape[axis]
    n_out = n - size + 1

    def take(array: np.ndarray, start: int, stop: int) -> np.ndarray:
        index = [slice(None)] * array.ndim
        index[axis] = slice(start, stop)
        return array[tuple(index)]

    pieces, power, width, offset, remaining = [], stack, 1, 0, size
    while remaining:
        if remaining & 1:
            pieces.append(take(power, offset, offset + n_out))
            offset += width
        remaining >>= 1
        if remaining:
            power = take(power, 0, power.shape[axis] - width) + take(power, width, power.shape[axis])
            width *= 2
    total = pieces[0] + pieces[1] if len(pieces) > 1 else pieces[0].copy()
    for piece in pieces[2:]:
        total += piece
    return total


def _ssim_uint8(generated: np.ndarray, target: np.ndarray, win_size: int) -> np.ndarray:
    """SSIM of uint8 frames from exact integer window sums; the same formula as `ssim`.

    With x = X / 255 (X the uint8 values), n = win_size**2 and the window sums Sx, Sy,
    Sq = sum(X**2 + Y**2), Sxy = sum(X Y) -- integers, summed exactly in float32 while
    n * 2 * 255**2 < 2**24 (win_size <= 11), in float64 beyond -- the skimage terms are
        2 mu_x mu_y + C1    = (2 P + k1) / (n**2 255**2),     P = Sx Sy
        2 cov_xy + C2       = (2 R + k2) / (n (n-1) 255**2),  R = n Sxy - P
        mu_x**2 + mu_y**2 + C1 = (Q + k1) / (n**2 255**2),    Q = Sx**2 + Sy**2
        var_x + var_y + C2  = (V + k2) / (n (n-1) 255**2),    V = n Sq - Q
    with k1 = C1 n**2 255**2, k2 = C2 n (n-1) 255**2, so SSIM = (2P + k1)(2R + k2) / ((Q + k1)(V + k2)),
    evaluated in float64 (P, Q, R, V exact there). No variance is formed by cancelling two
    rounded means, so this equals the float64 filtering path to ~1e-15, and is ~8x faster.
    (Threads over the chunks did not help on a 2-core machine: the passes are memory-bound.)
    """
    n = win_size * win_size
    k1 = (SSIM_K1 * 255.0) ** 2 * n * n
    k2 = (SSIM_K2 * 255.0) ** 2 * n * (n - 1)
    exact_in_float32 = n * 2 * 255**2 < 2**24
    dtype = np.float32 if exact_in_float32 else np.float64
    leading_shape = generated.shape[:-3]
    x_all = generated.reshape((-1,) + generated.shape[-3:])
    y_all = target.reshape((-1,) + target.shape[-3:])
    per_frame = np.empty(x_all.shape[0])

    def chunk(start: int) -> None:
        stop = start + _SSIM_FRAMES_PER_CHUNK
        x, y = x_all[start:stop], y_all[start:stop]
        images = np.empty((4,) + x.shape, dtype)
        images[0], images[1] = x, y
        np.multiply(images[0], images[0], out=images[2])
        images[2] += images[1] * images[1]
        np.multiply(images[0], images[1], out=images[3])
        sx, sy, sq, sxy = _window_sums(_window_sums(images, win_size, 2), win_size, 3)
        two_p = np.multiply(sx, sy, dtype=np.float64)
        two_p *= 2.0
        q = np.multiply(sx, sx, dtype=np.float64)
        q += np.multiply(sy, sy, dtype=np.float64)
        numerator = np.multiply(sxy, 2.0 * n, dtype=np.float64)     # 2 n Sxy
        numerator -= two_p                                           # 2 R
        numerator += k2
        two_p += k1
        numerator *= two_p
        denominator = np.multiply(sq, float(n), dtype=np.float64)   # n Sq
        denominator -= q                                             # V
        denominator += k2
        q += k1
        denominator *= q
        numerator /= denominator
        per_frame[start:stop] = numerator.mean(axis=(1, 2, 3))

    for start in range(0, x_all.shape[0], _SSIM_FRAMES_PER_CHUNK):
        chunk(start)
    return per_frame.reshape(leading_shape)


def ssim(generated, target, win_size: int = SSIM_WIN_SIZE) -> np.ndarray:
    """Per-frame structural similarity on [0, 1] values, batched.

    Matches ``skimage.metrics.structural_similarity(x, y, channel_axis=-1, data_range=1)``
    with its defaults (uniform 7x7 window, K1 = 0.01, K2 = 0.03, sample covariance):
    for each channel and each 7x7 window fully inside the frame,
        mu_x, mu_y = window means, s_x2, s_y2, s_xy = window (co)variances * 49/48,
        SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x**2 + mu_y**2 + C1)(s_x2 + s_y2 + C2)),
        C1 = (0.01 * 1)**2, C2 = (0.03 * 1)**2,
    averaged over windows, then over channels. Frames need H, W >= win_size.
    Two uint8 inputs take an exact integer path (`_ssim_uint8`, ~8x faster); it agrees with
    the float64 filtering path used for float inputs to ~1e-15.
    """
    generated, target = _checked_pair(generated, target)
    height, width = generated.shape[-3], generated.shape[-2]
    if win_size < 3 or win_size % 2 == 0 or win_size > min(height, width):
        raise ValueError(
            f"win_size must be odd, >= 3 and <= min(H, W) = {min(height, width)}, got {win_size}")
    if generated.dtype == np.uint8 and target.dtype == np.uint8:
        return _ssim_uint8(generated, target, win_size)
    x, y = to_unit_range(generated, "generated"), to_unit_range(target, "target")
    leading_shape = x.shape[:-3]
    x = x.reshape((-1,) + x.shape[-3:])
    y = y.reshape((-1,) + y.shape[-3:])
    per_frame = np.empty(x.shape[0])
    for start in range(0, x.shape[0], _SSIM_FRAMES_PER_CHUNK):
        stop = start + _SSIM_FRAMES_PER_CHUNK
        per_frame[start:stop] = _ssim_frames(x[start:stop], y[start:stop], win_size)
    return per_frame.reshape(leading_shape)


PIXEL_METRICS = ("mse", "psnr", "ssim")


def pixel_metrics(generated, target, with_ssim: bool = True) -> dict[str, np.ndarray]:
    """All per-frame pixel metrics at once (MSE computed once, PSNR derived from it)."""
    per_frame_mse = mse(generated, target)
    scores = {"mse": per_frame_mse, "psnr": psnr_from_mse(per_frame_mse)}
    if with_ssim:
        scores["ssim"] = ssim(generated, target)
    return scores
