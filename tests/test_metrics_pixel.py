"""MSE / PSNR / SSIM against scikit-image, frame by frame, on [0, 1] values."""
import numpy as np
import pytest
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from metrics.pixel import PSNR_CAP_DB, cap_psnr, mse, pixel_metrics, psnr, ssim

TOLERANCE = 1e-6


def skimage_per_frame(generated, target):
    """Reference: scikit-image on every frame, values scaled to [0, 1] as float64."""
    x = generated.astype(np.float64) / 255 if generated.dtype == np.uint8 else generated.astype(np.float64)
    y = target.astype(np.float64) / 255 if target.dtype == np.uint8 else target.astype(np.float64)
    shape = x.shape[:-3]
    flat_x, flat_y = x.reshape((-1,) + x.shape[-3:]), y.reshape((-1,) + y.shape[-3:])
    with np.errstate(divide="ignore"):
        scores = {
            "mse": [mean_squared_error(a, b) for a, b in zip(flat_x, flat_y)],
            "psnr": [peak_signal_noise_ratio(a, b, data_range=1) for a, b in zip(flat_x, flat_y)],
            "ssim": [structural_similarity(a, b, channel_axis=-1, data_range=1) for a, b in zip(flat_x, flat_y)],
        }
    return {name: np.array(values).reshape(shape) for name, values in scores.items()}


def assert_matches_skimage(generated, target):
    expected = skimage_per_frame(generated, target)
    got = {"mse": mse(generated, target), "psnr": psnr(generated, target), "ssim": ssim(generated, target)}
    for name in expected:
        assert got[name].shape == expected[name].shape
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=TOLERANCE, err_msg=name)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_uint8_random_videos_match_skimage(rng):
    target = rng.integers(0, 256, (3, 4, 32, 40, 3), dtype=np.uint8)
    noise = rng.integers(-40, 41, target.shape)
    generated = np.clip(target.astype(int) + noise, 0, 255).astype(np.uint8)
    assert_matches_skimage(generated, target)


def test_float_random_videos_match_skimage(rng):
    target = rng.random((2, 3, 24, 24, 3))
    generated = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1)
    assert_matches_skimage(generated, target)
    assert_matches_skimage(generated.astype(np.float32), target.astype(np.float32))


def test_uint8_matches_skimage_on_uint8_directly(rng):
    """skimage on raw uint8 (data_range 255) gives the same PSNR and SSIM: both are scale-free."""
    x = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert psnr(x, y) == pytest.approx(peak_signal_noise_ratio(y, x), abs=TOLERANCE)
    assert ssim(x, y) == pytest.approx(structural_similarity(x, y, channel_axis=-1), abs=TOLERANCE)
    assert mse(x, y) == pytest.approx(mean_squared_error(x, y) / 255**2, abs=1e-12)


def test_identical_frames_give_infinite_psnr_without_warning(rng):
    frames = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    with np.errstate(all="raise"):
        values = psnr(frames, frames)
    assert np.all(np.isposinf(values))
    assert np.all(mse(frames, frames) == 0)
    np.testing.assert_allclose(ssim(frames, frames), 1.0, atol=1e-12)
    assert np.all(cap_psnr(values) == PSNR_CAP_DB)


def test_constant_frames_match_skimage():
    shape = (1, 2, 16, 16, 3)
    for a, b in [(0.0, 0.0), (0.5, 0.5), (0.0, 1.0), (0.25, 0.3)]:
        generated, target = np.full(shape, a), np.full(shape, b)
        expected = skimage_per_frame(generated, target)
        np.testing.assert_allclose(mse(generated, target), expected["mse"], atol=TOLERANCE)
        np.testing.assert_allclose(ssim(generated, target), expected["ssim"], atol=TOLERANCE)
        np.testing.assert_array_equal(np.isinf(psnr(generated, target)), np.isinf(expected["psnr"]))


def test_constant_uint8_frame_against_textured_frame(rng):
    target = rng.integers(0, 256, (1, 1, 20, 20, 3), dtype=np.uint8)
    generated = np.full_like(target, 128)
    assert_matches_skimage(generated, target)


def test_smallest_frame_for_the_window_and_too_small_frames(rng):
    x, y = rng.random((7, 7, 3)), rng.random((7, 7, 3))
    assert ssim(x, y) == pytest.approx(structural_similarity(x, y, channel_axis=-1, data_range=1), abs=TOLERANCE)
    with pytest.raises(ValueError, match="win_size"):
        ssim(rng.random((6, 8, 3)), rng.random((6, 8, 3)))


def test_paper_scale_range_is_enforced(rng):
    tanh_output = rng.uniform(-1, 1, (1, 1, 8, 8, 3))
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        mse(tanh_output, tanh_output)
    with pytest.raises(ValueError, match="shape mismatch"):
        mse(np.zeros((1, 1, 8, 8, 3)), np.zeros((1, 1, 8, 9, 3)))
    with pytest.raises(TypeError):
        mse(np.zeros((1, 8, 8, 3), np.int32), np.zeros((1, 8, 8, 3), np.int32))


# ------------------------------------------------------------------ NaN and infinity (issue 17, item 6)

ENTRY_POINTS = {
    "mse": mse, "psnr": psnr, "ssim": ssim, "pixel_metrics": pixel_metrics,
    "pixel_metrics-no-ssim": lambda g, t: pixel_metrics(g, t, with_ssim=False),
}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("which", ["generated", "target"])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_nan_and_inf_frames_are_refused_with_the_array_named(rng, entry, which, bad):
    frames = {"generated": rng.random((2, 3, 8, 8, 3)), "target": rng.random((2, 3, 8, 8, 3))}
    frames[which][1, 2, 4, 5, 1] = bad
    with pytest.raises(ValueError, match=rf"^{which}: \d NaN and \d infinite values among 1152") as error:
        ENTRY_POINTS[entry](frames["generated"], frames["target"])
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("which", ["generated", "target"])
def test_a_nan_float_frame_beside_a_uint8_one_is_refused(rng, which):
    frames = {"generated": rng.integers(0, 256, (1, 2, 8, 8, 3), dtype=np.uint8),
              "target": rng.integers(0, 256, (1, 2, 8, 8, 3), dtype=np.uint8)}
    frames[which] = frames[which] / 255.0
    frames[which][0, 0, 0, 0, 0] = np.nan
    for metric in (mse, ssim):
        with pytest.raises(ValueError, match=rf"^{which}: 1 NaN and 0 infinite"):
            metric(frames["generated"], frames["target"])


def test_the_out_of_range_error_names_the_array_too(rng):
    with pytest.raises(ValueError, match=r"^target: float frames must lie in \[0, 1\]"):
        mse(rng.random((1, 8, 8, 3)), rng.random((1, 8, 8, 3)) * 255)
