"""dlib's 68-point facial landmarks: the frontal face detector, then the shape predictor.

The predictor's weights come from the `face-recognition-models` wheel. That package's
`__init__` imports `pkg_resources`, which new setuptools no longer ships, so the model file is
located by path from the package's spec and the package itself is never imported.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional

import numpy as np

MODELS_PACKAGE = "face_recognition_models"
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
N_LANDMARKS = 68


def predictor_path() -> Path:
    """Where the installed 68-point predictor lives; FileNotFoundError naming what to install."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {MODELS_PACKAGE!r} is not installed; expected it to provide models/{PREDICTOR_FILE} "
            f"(pip install face-recognition-models)")
    path = Path(spec.submodule_search_locations[0]) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; expected dlib's 68-point predictor from the face-recognition-models "
            f"package (pip install --force-reinstall face-recognition-models)")
    return path


class DlibLandmarker:
    """image (H, W, 3) uint8 RGB -> (68, 2) float32 pixel (x, y) of the largest face, or None.

    upsample: how many times dlib's HOG detector doubles the image to find small faces; the
        authors' MUG preprocessing uses 1.
    detect_max_side: when set, detection runs on a copy shrunk so its longer side is at most this
        many pixels (the predictor still runs at full resolution). Detection dominates the cost on
        large frames, and MUG's faces are large, so this trades nothing visible for speed.
    """

    def __init__(self, model_path: Optional[str | Path] = None, upsample: int = 1,
                 detect_max_side: Optional[int] = None) -> None:
        import dlib  # imported here so modules that only accept a landmarker need no dlib

        path = Path(model_path) if model_path is not None else predictor_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; expected dlib's 68-point shape predictor "
                                    f"(pip install face-recognition-models)")
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(path))
        self.upsample = upsample
        self.detect_max_side = detect_max_side

    def __call__(self, image: np.ndarray) -> Optional[np.ndarray]:
        image = _as_rgb_uint8(image)
        face = self._largest_face(image)
        if face is None:
            return None
        shape = self._predictor(image, face)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)

    def _largest_face(self, image: np.ndarray):
        scale = self._detection_scale(image.shape[:2])
        small = image if scale == 1.0 else _shrink(image, scale)
        faces = self._detector(small, self.upsample)
        if len(faces) == 0:
            return None
        best = max(faces, key=lambda r: r.width() * r.height())
        if scale == 1.0:
            return best
        return self._dlib.rectangle(round(best.left() / scale), round(best.top() / scale),
                                    round(best.right() / scale), round(best.bottom() / scale))

    def _detection_scale(self, hw: tuple[int, int]) -> float:
        if self.detect_max_side is None or max(hw) <= self.detect_max_side:
            return 1.0
        return self.detect_max_side / max(hw)


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"landmarks: image {image.dtype}{tuple(image.shape)}, expected uint8 (H, W, 3)")
    return np.ascontiguousarray(image)  # dlib needs a C-contiguous buffer


def _shrink(image: np.ndarray, scale: float) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
