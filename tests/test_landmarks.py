"""dlib's 68-point landmarker: model located by path, None without a face, points on a real face."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from frgan.conditions.landmarks import DlibLandmarker, predictor_path


@pytest.fixture(scope="module")
def landmarker():
    return DlibLandmarker()  # loads the ~100 MB predictor once for the module


def real_face() -> np.ndarray:
    """A real photograph with one frontal face: scikit-image's astronaut (a pinned dependency).

    A face drawn with PIL (ellipses for head, eyes, mouth; about 240 px, blurred) is not found
    by dlib's HOG detector, which was trained on photographs; hence a photo.
    """
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the test photograph")
    try:
        return data.astronaut()
    except Exception as err:  # the image ships with the wheel; a trimmed install may lack it
        pytest.skip(f"scikit-image's astronaut image is unavailable: {err}")


def test_predictor_is_found_in_the_package_files():
    path = predictor_path()
    assert path.name == "shape_predictor_68_face_landmarks.dat"
    assert path.parent.name == "models" and path.is_file()


def test_missing_package_names_what_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="face_recognition_models.*pip install face-recognition-models"):
        predictor_path()


def test_missing_model_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere.dat"
    with pytest.raises(FileNotFoundError, match=f"{missing}.*face-recognition-models"):
        DlibLandmarker(model_path=missing)


def test_blank_image_has_no_face(landmarker):
    assert landmarker(np.full((120, 160, 3), 128, np.uint8)) is None


def test_rejects_images_that_are_not_uint8_rgb(landmarker):
    with pytest.raises(ValueError, match=r"expected uint8 \(H, W, 3\)"):
        landmarker(np.zeros((50, 50), np.uint8))
    with pytest.raises(ValueError, match="float32"):
        landmarker(np.zeros((50, 50, 3), np.float32))


def test_real_face_gives_68_points_inside_the_image(landmarker):
    image = real_face()
    points = landmarker(image)
    assert points is not None, "dlib found no face in the astronaut photograph"
    assert points.shape == (68, 2) and points.dtype == np.float32
    h, w = image.shape[:2]
    assert (points >= 0).all() and (points[:, 0] < w).all() and (points[:, 1] < h).all()
    # The face is in the upper middle of that picture, not on the flag patch lower left.
    assert 150 < points[:, 0].mean() < 300 and 60 < points[:, 1].mean() < 200


def test_detecting_on_a_shrunk_copy_finds_the_same_points(landmarker):
    image = real_face()
    full = landmarker(image)
    fast = DlibLandmarker(detect_max_side=256)(image)
    assert fast is not None
    assert np.abs(fast - full).max() <= 3.0  # pixels on a 512 px image

