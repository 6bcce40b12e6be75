"""Synthetic face renders for checking an embedder offline (no face dataset ships here).

``render_face(identity, size, shift)`` draws a frontal, shaded cartoon face (skin ellipse
with radial shading, hair cap, neck, eye sockets, eyes, brows, nose shadow, mouth) that
dlib's HOG detector finds at 64-256 px. An ``Identity`` fixes colours and proportions;
renders of one identity differ only by the pixel ``shift``.

``identity_separation(embedder, ...)`` embeds a few identities, each rendered at a few
shifts, and returns the unit-length L2 distances within and between identities: a working
face embedder must put the first well below the second. Run
``python -m metrics.embedders.synthetic [embedder]`` to print them.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

SUPERSAMPLING = 4  # drawn at 4x the output size, blurred, then downsampled (anti-aliasing)
BACKGROUND = (90, 110, 130)
DEFAULT_SHIFTS = ((0, 0), (2, 1), (-1, 2), (1, -2))


@dataclass(frozen=True)
class Identity:
    """Colours (RGB) and proportions (fractions of the image side) of one synthetic person."""

    skin: tuple[int, int, int]
    iris: tuple[int, int, int]
    hair: tuple[int, int, int]
    face_width: float  # 0.5-0.62
    eye_gap: float  # distance between eye centres, 0.28-0.36
    mouth_width: float  # 0.18-0.30
    nose_length: float  # 0.10-0.16


EXAMPLE_IDENTITIES = (
    Identity((224, 180, 150), (60, 40, 20), (40, 30, 20), 0.55, 0.32, 0.22, 0.12),
    Identity((170, 120, 90), (30, 60, 90), (120, 80, 30), 0.62, 0.28, 0.30, 0.16),
    Identity((240, 210, 190), (40, 90, 40), (200, 180, 100), 0.50, 0.36, 0.18, 0.10),
)


def _ellipse(xx, yy, cx, cy, rx, ry) -> np.ndarray:
    """((x - cx) / rx)^2 + ((y - cy) / ry)^2: <= 1 inside the ellipse."""
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2


def render_face(identity: Identity, size: int = 64, shift: tuple[float, float] = (0, 0)) -> np.ndarray:
    """One (size, size, 3) uint8 frame of ``identity``, moved by ``shift`` = (dx, dy) pixels."""
    side = SUPERSAMPLING * size
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    cx = side / 2 + shift[0] * SUPERSAMPLING
    cy = side / 2 + shift[1] * SUPERSAMPLING + 0.03 * side
    half_width, half_height = identity.face_width * side / 2, 0.36 * side
    skin = np.array(identity.skin, dtype=np.float64)
    image = np.empty((side, side, 3))
    image[:] = BACKGROUND

    image[(np.abs(xx - cx) < 0.45 * half_width) & (yy > cy)] = 0.7 * skin  # neck
    face_radius = _ellipse(xx, yy, cx, cy, half_width, half_height)
    inside_face = face_radius <= 1
    # Lit from the front: darker towards the rim, which gives the detector its gradients.
    shading = 1.0 - 0.45 * np.clip(face_radius, 0, 1) ** 1.5
    image[inside_face] = skin * shading[inside_face][:, None]
    hair_cap = (_ellipse(xx, yy, cx, cy - 0.06 * side, 1.08 * half_width, 1.02 * half_height) <= 1) & (
        yy < cy - 0.55 * half_height + 0.1 * np.abs(xx - cx))
    image[hair_cap] = identity.hair

    eye_y = cy - 0.06 * side
    for sign in (-1, 1):
        _draw_eye(image, xx, yy, cx + sign * identity.eye_gap * side / 2, eye_y, side, identity)
    _draw_nose_and_mouth(image, xx, yy, cx, eye_y, side, identity)

    pixels = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    pixels = pixels.filter(ImageFilter.GaussianBlur(SUPERSAMPLING * 0.75))
    return np.asarray(pixels.resize((size, size), Image.LANCZOS))


def _draw_eye(image, xx, yy, ex, ey, side, identity: Identity) -> None:
    socket = _ellipse(xx, yy, ex, ey - 0.01 * side, 0.09 * side, 0.05 * side)
    image *= (1 - 0.35 * np.exp(-1.5 * socket))[..., None]  # eye-socket shadow
    white = _ellipse(xx, yy, ex, ey, 0.055 * side, 0.022 * side) <= 1
    image[white] = (235, 235, 230)
    image[white & (_ellipse(xx, yy, ex, ey, 0.022 * side, 0.022 * side) <= 1)] = identity.iris
    image[_ellipse(xx, yy, ex, ey, 0.01 * side, 0.01 * side) <= 1] = (10, 10, 10)  # pupil
    brow = (np.abs(yy - (ey - 0.065 * side)) < 0.014 * side) & (np.abs(xx - ex) < 0.07 * side)
    image[brow] = 0.6 * np.array(identity.hair, dtype=np.float64)


def _draw_nose_and_mouth(image, xx, yy, cx, eye_y, side, identity: Identity) -> None:
    nose_length = identity.nose_length * side
    bridge = (np.abs(xx - cx) < 0.03 * side + (yy - eye_y) / nose_length * 0.02 * side) & (
        yy > eye_y) & (yy < eye_y + nose_length)
    image[bridge & (xx > cx)] *= 0.8  # shadow on one side of the nose
    image[_ellipse(xx, yy, cx, eye_y + nose_length, 0.045 * side, 0.015 * side) <= 1] *= 0.6
    mouth_y = eye_y + nose_length + 0.08 * side
    half_mouth = identity.mouth_width * side / 2
    image[_ellipse(xx, yy, cx, mouth_y, half_mouth, 0.025 * side) <= 1] = (140, 50, 55)
    image[(np.abs(yy - mouth_y) < 0.004 * side) & (np.abs(xx - cx) < half_mouth)] = (60, 20, 20)


def render_identities(identities, size: int = 64, shifts=DEFAULT_SHIFTS) -> np.ndarray:
    """(len(identities), len(shifts), size, size, 3) uint8: every identity at every shift."""
    return np.stack([[render_face(identity, size, shift) for shift in shifts] for identity in identities])


def identity_separation(embedder, identities=EXAMPLE_IDENTITIES, size: int = 64,
                        shifts=DEFAULT_SHIFTS) -> dict:
    """Unit-length L2 distances within one identity (renders at different shifts) and between
    identities (their unshifted renders), plus how many frames used the no-face fallback."""
    embedded = embedder.embed(render_identities(identities, size, shifts))
    vectors = embedded.vectors
    n_identities, n_shifts = vectors.shape[:2]
    same = [np.linalg.norm(vectors[i, 0] - vectors[i, j])
            for i in range(n_identities) for j in range(1, n_shifts)]
    different = [np.linalg.norm(vectors[i, 0] - vectors[k, 0])
                 for i in range(n_identities) for k in range(i + 1, n_identities)]
    return {"same": np.array(same), "different": np.array(different),
            "n_fell_back": embedded.n_fell_back, "n_frames": vectors.shape[0] * vectors.shape[1]}


def main(argv: list[str]) -> None:
    from . import create_embedder

    name = argv[0] if argv else "dlib"
    for size in (64, 128):
        result = identity_separation(create_embedder(name), size=size)
        print(f"{name} {size}px: same identity {result['same'].min():.3f}-{result['same'].max():.3f} "
              f"(mean {result['same'].mean():.3f}), different {result['different'].min():.3f}-"
              f"{result['different'].max():.3f} (mean {result['different'].mean():.3f}), "
              f"fell back {result['n_fell_back']}/{result['n_frames']}")


if __name__ == "__main__":
    main(sys.argv[1:])
