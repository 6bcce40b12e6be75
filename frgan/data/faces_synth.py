"""faces-synth: a synthetic stand-in for the MUG facial-expression database.

Each subject is an identity of the procedural morphable face model (`frgan.conditions.morphable`)
with its own skin, lip, brow, hair and eye colours, light and background. Each video shows one
of the six basic expressions: neutral, a smooth onset at a random time to an apex of random
intensity, then a hold, under a small smooth head-pose jitter, framed like a MUG crop. Every
frame comes with its exact ground truth: 68 landmarks, identity alpha, expression beta, pose.

Everything is a deterministic function of the arguments: subject i's parameters depend only on
(seed, i), a video's only on (seed, subject, expression, take), and rendering is deterministic
torch on the CPU, so the same call yields byte-identical frames.

Conventions: landmarks are in pixels with pixel centres at integer coordinates (x = column,
y = row; the OpenCV / dlib convention), x first. pose = (yaw, pitch, roll) in radians, then
tx, ty (pixel position of the model origin) and scale (pixels per model unit), as used by
`frgan.conditions.render.project` (weak perspective).
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from frgan.conditions import render
from frgan.conditions.morphable import (EXPRESSION_NAMES, MorphableModel, ProceduralFaceModel,
                                        procedural_face_model)
from frgan.data.records import SPLITS, VideoRecord

EXPRESSIONS = EXPRESSION_NAMES

# Palettes the per-subject colours are drawn from (RGB in [0, 1]), then jittered.
SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.90, 0.70, 0.56], [0.80, 0.58, 0.43],
                       [0.62, 0.43, 0.30], [0.42, 0.28, 0.19]])
HAIR_COLOURS = np.array([[0.10, 0.08, 0.07], [0.25, 0.16, 0.10], [0.42, 0.28, 0.16],
                         [0.72, 0.56, 0.34], [0.55, 0.53, 0.50], [0.50, 0.22, 0.10]])
IRIS_COLOURS = np.array([[0.35, 0.22, 0.12], [0.20, 0.13, 0.08], [0.30, 0.45, 0.62],
                         [0.35, 0.45, 0.30], [0.45, 0.38, 0.22]])
BACKGROUNDS = np.array([[0.30, 0.38, 0.55], [0.55, 0.58, 0.62], [0.72, 0.70, 0.64],
                        [0.25, 0.42, 0.45], [0.45, 0.45, 0.52]])
SCLERA = (0.92, 0.90, 0.87)
MOUTH_INTERIOR = (0.25, 0.07, 0.07)
TEETH = (0.93, 0.91, 0.84)
PUPIL = (0.03, 0.03, 0.03)

IDENTITY_CLIP = 2.5      # identity coefficients are N(0, 1) clipped to +- this
# Landmark-box width / frame width of the authors' MUG crop (REFERENCE-NOTES): the box squared,
# grown to its diagonal, then cut at 0.95 of that: 1 / (sqrt(2) * 0.95) for a box wider than tall.
FACE_FILL = 0.745


# ---------------------------------------------------------------------------------------------
# subjects

def split_of_subject(index: int, n_subjects: int) -> str:
    """Subject index -> "gm", "gr" or "test": consecutive thirds, as even as possible.

    Subject i goes to group floor(3 i / n): group sizes differ by at most one, and each group is
    non-empty when n_subjects >= 3.
    """
    if not 0 <= index < n_subjects:
        raise ValueError(f"subject index {index} outside [0, {n_subjects})")
    return SPLITS[3 * index // n_subjects]


@dataclass
class Appearance:
    """How one subject looks and is lit. Colours are RGB in [0, 1]; light_dir points from the
    face towards the light in the camera frame (x right, y up, z to the viewer)."""

    skin: tuple[float, float, float]
    lips: tuple[float, float, float]
    brows: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    background: tuple[float, float, float]
    background_gradient: float     # the background darkens by this fraction from top to bottom
    light_dir: tuple[float, float, float]
    ambient: float
    diffuse: float
    specular: float                 # strength of a soft highlight on skin and lips
    brow_scale: float               # brow thickness factor
    hairline_shift: float           # canonical units, + raises the hairline

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Appearance":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class Framing:
    """Where the head sits in the frame and its resting orientation (radians)."""

    face_fill: float        # width of the landmark box (jaw to jaw) / frame width, at rest
    centre_x: float         # centre of the landmark box, as a fraction of the frame size
    centre_y: float
    yaw: float
    pitch: float
    roll: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Subject:
    """Everything that makes one faces-synth subject: identity, looks and framing."""

    index: int
    name: str               # "s003"
    split: str
    alpha: np.ndarray       # (n_id,) identity coefficients
    appearance: Appearance
    framing: Framing

    def to_dict(self) -> dict:
        return dict(index=self.index, name=self.name, split=self.split,
                    alpha=[float(a) for a in self.alpha], appearance=self.appearance.to_dict(),
                    framing=self.framing.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "Subject":
        return cls(d["index"], d["name"], d["split"], np.asarray(d["alpha"], dtype=np.float32),
                   Appearance.from_dict(d["appearance"]), Framing(**d["framing"]))


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator per (seed, keys), so adding subjects or takes changes nothing else."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def _colour(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> np.ndarray:
    """A palette colour, blended with its neighbour and jittered per channel."""
    i = rng.integers(len(palette))
    blend = palette[i] + rng.uniform(0, 0.5) * (palette[(i + 1) % len(palette)] - palette[i])
    return np.clip(blend + rng.normal(0, jitter, 3), 0.0, 1.0)


def _tuple(v) -> tuple[float, float, float]:
    return tuple(round(float(x), 6) for x in v)


def _appearance(rng: np.random.Generator) -> Appearance:
    # Skin anywhere along the tone scale; lips a redder, darker skin; brows a darker hair.
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    lo = int(min(np.floor(t), len(SKIN_TONES) - 2))
    skin = SKIN_TONES[lo] + (t - lo) * (SKIN_TONES[lo + 1] - SKIN_TONES[lo])
    skin = np.clip(skin + rng.normal(0, 0.015, 3), 0, 1)
    lips = np.clip(skin * np.array([0.88, 0.55, 0.55]) + np.array([0.08, 0.0, 0.02]) + rng.normal(0, 0.02, 3), 0, 1)
    hair = _colour(rng, HAIR_COLOURS, 0.02)
    brows = np.clip(hair * rng.uniform(0.55, 0.9), 0, 1)
    iris = _colour(rng, IRIS_COLOURS, 0.02)
    background = _colour(rng, BACKGROUNDS, 0.04)
    # Light from in front, above and to one side, as in a studio.
    azimuth, elevation = np.radians(rng.uniform(-35, 35)), np.radians(rng.uniform(10, 40))
    light = np.array([np.sin(azimuth) * np.cos(elevation), np.sin(elevation),
                      np.cos(azimuth) * np.cos(elevation)])
    ambient = rng.uniform(0.32, 0.45)
    return Appearance(
        skin=_tuple(skin), lips=_tuple(lips), brows=_tuple(brows), hair=_tuple(hair), iris=_tuple(iris),
        background=_tuple(background), background_gradient=round(float(rng.uniform(0.0, 0.25)), 6),
        light_dir=_tuple(light), ambient=round(float(ambient), 6),
        diffuse=round(float(1.0 - ambient + rng.uniform(0.0, 0.12)), 6),
        specular=round(float(rng.uniform(0.03, 0.10)), 6),
        brow_scale=round(float(rng.uniform(0.9, 1.35)), 6),
        hairline_shift=round(float(rng.uniform(-0.05, 0.08)), 6))


def _framing(rng: np.random.Generator) -> Framing:
    deg = np.radians
    return Framing(face_fill=round(float(FACE_FILL * rng.uniform(0.97, 1.03)), 6),
                   centre_x=round(float(0.5 + rng.uniform(-0.015, 0.015)), 6),
                   centre_y=round(float(0.53 + rng.uniform(-0.015, 0.015)), 6),
                   yaw=round(float(deg(rng.normal(0, 2.0))), 6), pitch=round(float(deg(rng.normal(0, 2.0))), 6),
                   roll=round(float(deg(rng.normal(0, 1.5))), 6))


def subjects(n_subjects: int, seed: int, model: Optional[MorphableModel] = None) -> list[Subject]:
    """The per-subject parameters of a faces-synth dataset (what `iter_videos` renders)."""
    model = model or procedural_face_model()
    out = []
    for i in range(n_subjects):
        rng = _rng(seed, i, 0)
        alpha = np.clip(rng.normal(0, 1, model.n_id), -IDENTITY_CLIP, IDENTITY_CLIP).astype(np.float32)
        out.append(Subject(i, f"s{i:03d}", split_of_subject(i, n_subjects), np.round(alpha, 6),
                           _appearance(rng), _framing(rng)))
    return out


def rest_pose(model: MorphableModel, alpha: np.ndarray, framing: Framing, image_size: int) -> np.ndarray:
    """(6,) pose placing the subject's neutral face as a MUG crop would: the landmark box's
    width is face_fill of the frame and its centre at (centre_x, centre_y) of the frame."""
    lms = model.landmarks(np.asarray(alpha, np.float32), np.zeros(model.n_expr, np.float32))
    (x0, y0), (x1, y1) = lms[:, :2].min(0), lms[:, :2].max(0)
    scale = framing.face_fill * image_size / (x1 - x0)
    # Pixel centres are integers, so the frame spans [-0.5, S - 0.5]: its centre is (S - 1) / 2.
    tx = framing.centre_x * image_size - 0.5 - scale * (x0 + x1) / 2
    ty = framing.centre_y * image_size - 0.5 + scale * (y0 + y1) / 2   # image y points down
    return np.array([framing.yaw, framing.pitch, framing.roll, tx, ty, scale], dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# motion

def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def expression_curve(n_frames: int, rng: np.random.Generator, apex: float) -> np.ndarray:
    """(T,) intensity: 0 for the first frames, a smoothstep onset from a random start, then the
    apex held. The onset starts within the first third and lasts a quarter to a half of the
    video, so every video reaches its apex; frame 0 is always neutral."""
    start = rng.uniform(0.08, 0.3) * n_frames
    duration = max(rng.uniform(0.25, 0.45) * n_frames, 1.0)
    t = np.arange(n_frames, dtype=np.float64)
    curve = apex * smoothstep((t - start) / duration)
    curve[0] = 0.0
    return curve.astype(np.float32)


def smooth_jitter(n_frames: int, rng: np.random.Generator, std: float, dims: int) -> np.ndarray:
    """(T, dims) smooth zero-start noise of standard deviation ~std: two low-frequency sinusoids
    per dimension with random phases (at most two cycles over the video)."""
    t = np.arange(n_frames, dtype=np.float64)[:, None] / max(n_frames, 1)
    out = np.zeros((n_frames, dims))
    for _ in range(2):
        freq = rng.uniform(0.3, 2.0, dims)
        phase = rng.uniform(0, 2 * np.pi, dims)
        out += np.sin(2 * np.pi * freq * t + phase) - np.sin(phase)   # starts at 0
    return out * std / np.sqrt(2.0)


# ---------------------------------------------------------------------------------------------
# rendering

def _albedo(model: ProceduralFaceModel, appearance: Appearance, attrs: torch.Tensor,
            eye_offset: torch.Tensor, softness: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel albedo (..., 3) and the skin-likeness (..., 1) that carries the highlight."""
    w = model.region_weights(attrs, eye_offset, brow_scale=appearance.brow_scale,
                             hairline_shift=appearance.hairline_shift, softness=softness)
    col = {k: torch.tensor(v, dtype=torch.float32) for k, v in dict(
        skin=appearance.skin, lips=appearance.lips, brows=appearance.brows, hair=appearance.hair,
        iris=appearance.iris, sclera=SCLERA, mouth=MOUTH_INTERIOR, teeth=TEETH, pupil=PUPIL).items()}

    def over(base, colour, weight):
        return torch.lerp(base, colour.expand_as(base), weight[..., None])   # paint with coverage weight

    skin = col["skin"] * (1.0 - 0.18 * w["shadow"][..., None])
    skin = skin * (1.0 + 0.10 * w["blush"][..., None] * torch.tensor([0.6, -0.4, -0.4]))
    skin = over(skin, col["skin"] * 0.88, w["neck"])                      # the neck a little darker
    albedo = over(skin, col["lips"], w["lips"])
    albedo = over(albedo, col["skin"] * 0.35, w["nostrils"])
    albedo = over(albedo, col["brows"], w["brows"])
    albedo = over(albedo, col["hair"], w["hair"])
    albedo = over(albedo, col["sclera"], w["eyes"])
    albedo = over(albedo, col["iris"], w["iris"])
    albedo = over(albedo, col["pupil"], w["pupil"])
    albedo = over(albedo, col["brows"] * 0.5, w["lash"])
    albedo = over(albedo, col["mouth"], w["mouth"])
    albedo = over(albedo, col["teeth"], w["teeth"])
    shiny = (1.0 - w["hair"]) * (1.0 - w["eyes"]) * (1.0 - w["mouth"]) * (1.0 - w["brows"])
    return albedo, shiny[..., None]


def _background(appearance: Appearance, batch: int, size: int) -> torch.Tensor:
    """(B, H, W, 3) a backdrop darkening linearly from top to bottom."""
    ramp = 1.0 - appearance.background_gradient * torch.linspace(0.0, 1.0, size)
    bg = torch.tensor(appearance.background, dtype=torch.float32)[None, :] * ramp[:, None]
    return bg[None, :, None, :].expand(batch, size, size, 3)


def _highlight(normals: torch.Tensor, appearance: Appearance) -> torch.Tensor:
    """Blinn-Phong highlight (viewer along +z): specular * max(n . h, 0)^24, shape (..., 1)."""
    light = torch.tensor(appearance.light_dir, dtype=torch.float32)
    half = light / light.norm() + torch.tensor([0.0, 0.0, 1.0])
    half = half / half.norm()
    return appearance.specular * (normals @ half).clamp(min=0.0)[..., None] ** 24


def render_face(model: ProceduralFaceModel, appearance: Appearance, alpha, beta, pose,
                image_size: int, *, supersample: int = 2) -> np.ndarray:
    """Render frames of a face: (T, S, S, 3) uint8 RGB.

    alpha: (n_id,) or (T, n_id); beta: (T, n_expr); pose: (T, 6) (see module docstring).
    supersample: render at this multiple of image_size and average down (anti-aliasing).
    Any identity can wear any appearance and any expression sequence, so this also renders
    the true retargeted video: one subject's betas on another's alpha, appearance and pose.
    """
    beta = torch.as_tensor(np.asarray(beta, np.float32))
    n_frames = beta.shape[0]
    alpha = torch.as_tensor(np.asarray(alpha, np.float32)).expand(n_frames, model.n_id)
    pose = torch.as_tensor(np.asarray(pose, np.float32)).reshape(n_frames, 6)
    k = supersample
    size = image_size * k
    triangles = torch.as_tensor(model.triangles)
    with torch.no_grad():
        vertices = model.shape(alpha, beta)                              # (T, V, 3) model space
        screen = render.project(vertices, pose)
        # Supersampled pixel centres: output pixel x covers hi-res x' in [k x, k x + k - 1], so
        # x' = k (x + 0.5) - 0.5.
        hi = torch.cat([(screen[..., :2] + 0.5) * k - 0.5, screen[..., 2:] * k], -1)
        frags = render.rasterize(hi, triangles, size, size, cull_backfaces=True)
        normals_v = render.vertex_normals(render.rotate(vertices, pose), triangles)
        attrs_v = torch.as_tensor(model.vertex_attributes).expand(n_frames, -1, -1)
        # Per covered pixel: canonical attributes, model-space (x, y) and the camera normal.
        per_pixel = render.interpolate_pixels(frags, triangles, torch.cat([attrs_v, vertices[..., :2], normals_v], -1))
        attrs, position, normals = per_pixel[:, :6], per_pixel[:, 6:8], per_pixel[:, 8:]
        normals = normals / normals.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        # Each pixel's iris offset is measured from the centre of the eye on its side.
        frame_of_pixel = frags.pixels // (size * size)
        eye_xy = model.eye_centres(vertices)[..., :2]                  # (T, 2, 2)
        eye_xy = eye_xy[frame_of_pixel, (attrs[:, 0] > 0).long()]
        softness = 0.7 / (float(pose[:, 5].mean()) * k)   # about 0.7 hi-res px in canonical units
        albedo, shiny = _albedo(model, appearance, attrs, position - eye_xy, max(softness, 0.002))
        lit = render.lambert(albedo, normals, light_dir=appearance.light_dir,
                             ambient=appearance.ambient, diffuse=appearance.diffuse)
        lit = lit + shiny * _highlight(normals, appearance)
        image = render.composite(frags, lit, _background(appearance, n_frames, size)).permute(0, 3, 1, 2)
        image = F.avg_pool2d(image, k) if k > 1 else image
        frames = (image.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return frames.permute(0, 2, 3, 1).contiguous().numpy()


def landmarks_px(model: MorphableModel, alpha, beta, pose) -> np.ndarray:
    """(T, 68, 2) float32 projected landmark vertices, pixel-centre convention, x then y."""
    beta = torch.as_tensor(np.asarray(beta, np.float32))
    alpha = torch.as_tensor(np.asarray(alpha, np.float32)).expand(beta.shape[0], model.n_id)
    lms = model.landmarks(alpha, beta)
    return render.project(lms, torch.as_tensor(np.asarray(pose, np.float32)))[..., :2].numpy()


# ---------------------------------------------------------------------------------------------
# the dataset

@contextlib.contextmanager
def _torch_threads(n: Optional[int]):
    """Run the block with n torch intra-op threads, then restore the caller's setting."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def iter_videos(image_size: int, n_subjects: int, n_frames: int, seed: int,
                pose_jitter_deg: float = 3.0, takes_per_expression: int = 1, *,
                apex_range: tuple[float, float] = (0.75, 1.0), supersample: Optional[int] = None,
                expressions: Sequence[str] = EXPRESSIONS, threads: Optional[int] = 1) -> Iterator[VideoRecord]:
    """Yield every video: subjects in order, then expressions, then takes.

    image_size: side S of the square frames. n_frames: T frames per video.
    pose_jitter_deg: standard deviation of the smooth yaw/pitch/roll jitter within a video
        (degrees); translation jitters by 1% of the frame per 3 degrees.
    takes_per_expression: videos per subject and expression (clip ids end _t0, _t1, ...).
    apex_range: each take's apex intensity is uniform in this range (1 = full blendshape).
    supersample: anti-aliasing factor; default 3 for frames up to 48 px, else 2.
    expressions: which expressions to generate (default all six, in EXPRESSIONS order).
    threads: torch intra-op threads while a video renders (the caller's setting is restored
        before each yield); None keeps the caller's. Measured on 2 dedicated cores, 2 threads
        are about 1.3x faster than 1; on cores shared with other busy processes, 2 threads were
        up to 40x slower (OpenMP threads waiting on each other), so the default is 1.
    """
    model = procedural_face_model()
    k = supersample or (3 if image_size <= 48 else 2)
    for subject in subjects(n_subjects, seed, model):
        base = rest_pose(model, subject.alpha, subject.framing, image_size)
        for expression in expressions:
            e = EXPRESSIONS.index(expression)
            for take in range(takes_per_expression):
                rng = _rng(seed, subject.index, 1 + e, take)
                beta = np.zeros((n_frames, model.n_expr), np.float32)
                beta[:, e] = expression_curve(n_frames, rng, rng.uniform(*apex_range))
                pose = np.repeat(base[None], n_frames, 0)
                pose[:, :3] += smooth_jitter(n_frames, rng, np.radians(pose_jitter_deg), 3)
                pose[:, 3:5] += smooth_jitter(n_frames, rng, 0.01 * image_size * pose_jitter_deg / 3.0, 2)
                pose = pose.astype(np.float32)
                with _torch_threads(threads):
                    frames = render_face(model, subject.appearance, subject.alpha, beta, pose, image_size,
                                         supersample=k)
                    landmarks = landmarks_px(model, subject.alpha, beta, pose)
                gt = dict(landmarks=landmarks,
                          alpha=np.repeat(subject.alpha[None], n_frames, 0).astype(np.float32),
                          beta=beta, pose=pose)
                yield VideoRecord(clip_id=f"{subject.name}_{expression}_t{take}", subject=subject.name,
                                  label=expression, split=subject.split, frames=frames, gt=gt)
