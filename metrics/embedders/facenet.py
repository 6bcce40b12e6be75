"""``facenet``: facenet-pytorch's InceptionResnetV1 (512-D) trained on VGGFace2.

This is the embedding MoCoGAN-HD's authors used for their ACD. Pipeline per frame:
1. MTCNN (facenet-pytorch's, with the P/R/O-net weights bundled in its wheel) detects the
   largest face and crops it to 160x160 with ``fixed_image_standardization``
   ((x - 127.5) / 128).
2. No face detected: the whole frame is resized to 160x160 and standardised the same way
   (the frames are already face crops); counted in ``fell_back``.
3. InceptionResnetV1 in eval mode; the base class normalises to unit length (the network's
   output already is).

Weights: ``20180402-114759-vggface2.pt`` from ``weights_path`` or the torch hub cache
(``$TORCH_HOME/checkpoints``, default ``~/.cache/torch/checkpoints``). Nothing is downloaded:
a missing file raises ``MissingWeightsError`` naming the file and where to get it.
``allow_random_init=True`` skips the weights (random network) and exists for tests only.
torch is imported when the embedder is constructed, not when ``metrics`` is imported.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from . import register_embedder
from .base import Embedder, MissingWeightsError

WEIGHTS_FILE = "20180402-114759-vggface2.pt"
WEIGHTS_URL = f"https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/{WEIGHTS_FILE}"
IMAGE_SIZE = 160


def default_weights_path() -> Path:
    """Where facenet-pytorch caches the VGGFace2 weights: $TORCH_HOME/checkpoints/<file>."""
    cache_home = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.getenv("TORCH_HOME", os.path.join(cache_home, "torch"))
    return Path(torch_home).expanduser() / "checkpoints" / WEIGHTS_FILE


def resolve_weights_path(weights_path: str | Path | None) -> Path:
    """The weights file to load; raises MissingWeightsError (one line) when it is absent."""
    path = Path(weights_path).expanduser() if weights_path is not None else default_weights_path()
    if not path.is_file():
        raise MissingWeightsError(
            f"facenet weights not found: {path}; download {WEIGHTS_URL} to that path "
            "(or pass weights_path=)")
    return path


@register_embedder("facenet")
class FacenetEmbedder(Embedder):
    """facenet-pytorch InceptionResnetV1 (VGGFace2) on MTCNN crops; see the module docstring."""

    dim = 512

    def __init__(self, weights_path: str | Path | None = None, device: str = "cpu",
                 batch_size: int = 32, allow_random_init: bool = False) -> None:
        super().__init__()
        # Checked before importing torch, so a missing file fails fast.
        self.weights_path = None if allow_random_init else resolve_weights_path(weights_path)
        import torch
        from facenet_pytorch import MTCNN, InceptionResnetV1

        self._torch = torch
        self.device = torch.device(device)
        self.batch_size = batch_size
        self._network = InceptionResnetV1(pretrained=None, classify=False).eval()
        if self.weights_path is None:
            warnings.warn("facenet embedder with random weights: for tests only", stacklevel=3)
        else:
            self._load_weights(self.weights_path)
        self._network.to(self.device)
        self._mtcnn = MTCNN(image_size=IMAGE_SIZE, margin=0, post_process=True,
                            select_largest=True, device=self.device)

    def _load_weights(self, path: Path) -> None:
        state = self._torch.load(path, map_location="cpu", weights_only=True)
        # The file also holds the 8631-way VGGFace2 classifier, unused for embeddings.
        state = {key: value for key, value in state.items() if not key.startswith("logits.")}
        self._network.load_state_dict(state)

    def _embed_batch(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        crops, fell_back = zip(*(self.face_crop(frame) for frame in frames))
        batch = self._torch.stack(crops)
        vectors = []
        with self._torch.inference_mode():
            for start in range(0, batch.shape[0], self.batch_size):
                chunk = batch[start:start + self.batch_size].to(self.device)
                vectors.append(self._network(chunk).cpu().double().numpy())
        return np.concatenate(vectors), np.array(fell_back, dtype=bool)

    def face_crop(self, frame: np.ndarray):
        """The standardised (3, 160, 160) face crop of one frame, and whether it fell back."""
        # A PIL image: for numpy input facenet-pytorch crops with OpenCV, not a dependency here.
        crop = self._mtcnn(Image.fromarray(frame))
        if crop is not None:
            return crop, False
        return self._whole_frame(frame), True

    def _whole_frame(self, frame: np.ndarray):
        image = self._torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()
        resized = self._torch.nn.functional.interpolate(
            image, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)[0]
        return (resized - 127.5) / 128.0  # facenet-pytorch's fixed_image_standardization
