"""Morphable face models: one interface, and the project's own procedural model.

`MorphableModel` is what every 3D morphable model (3DMM) in the suite looks like: a mean mesh,
a linear identity basis and a linear expression basis over the same vertices, shared triangles
and the vertex indices of the 68 iBUG landmarks. The Surrey and Basel face models get adapters
to this same interface; nothing here depends on them.

`ProceduralFaceModel` needs no files: it builds a head mesh, 16 identity components and six
named expression blendshapes from analytic formulas, so the synthetic `faces-synth` dataset can
be generated anywhere.

Model space (the procedural model's; adapters convert theirs): x to the face's left as seen by a
viewer (i.e. image right), y up, z out of the face towards the viewer; the origin sits in the
middle of the head at about eye level, and one unit is roughly the face's half-width.

How the procedural head is built
--------------------------------
The head is a tensor-product grid: rows of constant height y (fine over the face, coarse over
the cranium) times columns of constant angle around the vertical axis (fine over the front,
coarse at the back). Each row is a superellipse cross-section whose half-width and front depth
follow a head profile (a dome above the eyes, a squarish jaw below). Facial relief (nose, brow
ridge, eye sockets, cheekbones, lips, chin) is added as smooth bumps of depth over "canonical
face coordinates" (fx, fy): the frontal projection of the undeformed grid point. Those
coordinates also serve as texture coordinates: eyes, brows, lips, nostrils and hair are drawn
by analytic shapes in (fx, fy) (see `ProceduralFaceModel.region_weights`), so they stay sharp
however coarse the mesh, and move with the vertices they belong to when the face deforms.

The mouth is a real opening: the grid has three coincident rows on the mouth line, the upper
lip's edge (A), a middle row (M) set back into the head and the lower lip's edge (B). At rest
the strip A-M-B has no frontal area; expressions that drop the jaw or raise the upper lip move
A and B apart (only inside the mouth's width) and the strip shows the dark mouth cavity and teeth.
A cylinder for the neck is appended after the head's vertices.

The 68 iBUG landmarks
---------------------
Each landmark is defined as a target point in canonical face coordinates, derived from the
same layout constants that draw the features (`FaceLayout`), and snapped to the nearest
front-facing head vertex (never a middle mouth row vertex; inner-lip points are snapped within
the lip-edge rows A or B). Points are numbered as in iBUG / dlib, the subject's right side
(image left, negative x) first:

=========  =================================================================================
indices    where (canonical face coordinates)
=========  =================================================================================
0-16       jaw: 17 points evenly spaced by arc length along a curve 10% inside the face
           outline, from level with the eyes on the image left, round the chin (8, bottom
           centre) to the image right
17-21      image-left brow, outer to inner, along the brow's centre line
22-26      image-right brow, inner to outer
27-30      nose bridge from between the eyes (27) down to the tip (30)
31-35      base of the nose, left alar base (31) through the subnasale (33) to the right
36-41      image-left eye: outer corner 36, upper lid 37-38, inner corner 39, lower lid 40-41
42-47      image-right eye: inner corner 42, upper lid 43-44, outer corner 45, lower lid 46-47
48-59      outer lip contour: left corner 48, upper lip 49-53 (51 at the cupid's bow dip),
           right corner 54, lower lip 55-59 (57 bottom centre)
60-67      inner lip contour: corners 60 and 64 and upper inner lip 61-63 on row A,
           lower inner lip 65-67 on row B
=========  =================================================================================
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]

N_LANDMARKS = 68
# The six basic expressions of the MUG database, in the order the paper lists them.
EXPRESSION_NAMES = ("anger", "fear", "disgust", "happiness", "sadness", "surprise")
# Per-vertex semantic regions of the procedural model, in the order they are painted.
REGION_NAMES = ("skin", "neck", "lips", "brows", "hair", "eyes", "iris", "mouth")


class MorphableModel:
    """A linear 3DMM: shape(alpha, beta) = mean + sum_i alpha_i id_i + sum_j beta_j expr_j.

    mean: (V, 3) float32; id_basis: (n_id, V, 3); expr_basis: (n_expr, V, 3);
    triangles: (F, 3) int64, counter-clockwise seen from outside;
    landmark_ids: (68,) int64 vertex indices in iBUG 68-point order;
    expression_names: one name per expression component (generic for unnamed blendshapes).
    """

    def __init__(self, mean: np.ndarray, id_basis: np.ndarray, expr_basis: np.ndarray,
                 triangles: np.ndarray, landmark_ids: np.ndarray,
                 expression_names: Optional[Sequence[str]] = None) -> None:
        self.mean = np.ascontiguousarray(mean, dtype=np.float32)
        n_vertices = self.mean.shape[0]
        self.id_basis = np.ascontiguousarray(id_basis, dtype=np.float32).reshape(-1, n_vertices, 3)
        self.expr_basis = np.ascontiguousarray(expr_basis, dtype=np.float32).reshape(-1, n_vertices, 3)
        self.triangles = np.ascontiguousarray(triangles, dtype=np.int64)
        self.landmark_ids = np.ascontiguousarray(landmark_ids, dtype=np.int64)
        names = expression_names or [f"expr_{j}" for j in range(self.expr_basis.shape[0])]
        self.expression_names = list(names)
        self._check()
        self._torch_cache: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def _check(self) -> None:
        v = self.mean.shape[0]
        if self.mean.shape != (v, 3):
            raise ValueError(f"mean has shape {self.mean.shape}, expected (V, 3)")
        if self.triangles.ndim != 2 or self.triangles.shape[1] != 3:
            raise ValueError(f"triangles have shape {self.triangles.shape}, expected (F, 3)")
        if self.triangles.min() < 0 or self.triangles.max() >= v:
            raise ValueError(f"triangles index vertices outside [0, {v})")
        if self.landmark_ids.shape != (N_LANDMARKS,):
            raise ValueError(f"landmark_ids have shape {self.landmark_ids.shape}, expected (68,)")
        if len(self.expression_names) != self.n_expr:
            raise ValueError(f"{len(self.expression_names)} expression names for {self.n_expr} components")

    @property
    def n_vertices(self) -> int:
        return self.mean.shape[0]

    @property
    def n_id(self) -> int:
        return self.id_basis.shape[0]

    @property
    def n_expr(self) -> int:
        return self.expr_basis.shape[0]

    def _bases_like(self, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The mean and both bases as flat torch tensors on like's device and dtype (cached)."""
        key = (like.device, like.dtype)
        if key not in self._torch_cache:
            as_t = functools.partial(torch.as_tensor, device=like.device, dtype=like.dtype)
            self._torch_cache[key] = (as_t(self.mean), as_t(self.id_basis.reshape(self.n_id, -1)),
                                      as_t(self.expr_basis.reshape(self.n_expr, -1)))
        return self._torch_cache[key]

    def shape(self, alpha: ArrayLike, beta: ArrayLike) -> ArrayLike:
        """Vertices (..., V, 3) for identity alpha (..., n_id) and expression beta (..., n_expr).

        Leading dimensions broadcast. numpy in -> numpy float32 out; if either argument is a
        torch tensor the result is a torch tensor on that tensor's device.
        """
        if isinstance(alpha, torch.Tensor) or isinstance(beta, torch.Tensor):
            like = alpha if isinstance(alpha, torch.Tensor) else beta
            dtype = like.dtype if like.is_floating_point() else torch.float32
            alpha_t = torch.as_tensor(alpha, dtype=dtype, device=like.device)
            beta_t = torch.as_tensor(beta, dtype=dtype, device=like.device)
            mean, ids, exprs = self._bases_like(alpha_t)
            offset = alpha_t @ ids                            # (..., V*3)
            offset = offset + beta_t @ exprs if self.n_expr else offset
            return mean + offset.unflatten(-1, (self.n_vertices, 3))
        alpha_n = np.asarray(alpha, dtype=np.float32)
        beta_n = np.asarray(beta, dtype=np.float32)
        offset = alpha_n @ self.id_basis.reshape(self.n_id, -1)
        offset = offset + beta_n @ self.expr_basis.reshape(self.n_expr, -1)
        return self.mean + offset.reshape(*offset.shape[:-1], self.n_vertices, 3)

    def landmarks(self, alpha: ArrayLike, beta: ArrayLike) -> ArrayLike:
        """The 68 landmark vertices (..., 68, 3) of shape(alpha, beta)."""
        vertices = self.shape(alpha, beta)
        if isinstance(vertices, torch.Tensor):
            return vertices[..., torch.as_tensor(self.landmark_ids, device=vertices.device), :]
        return vertices[..., self.landmark_ids, :]


# ---------------------------------------------------------------------------------------------
# the procedural face

@dataclass(frozen=True)
class FaceLayout:
    """Where the facial features sit, in canonical face coordinates (fx right, fy up).

    Units: the face is about 1.6 wide at the cheeks; the eyes are at fy = eye_y.
    """

    eye_x: float = 0.27            # eye centres at (+-eye_x, eye_y)
    eye_y: float = 0.10
    eye_half_width: float = 0.11
    eye_upper: float = 0.047       # upper lid height above the eye's centre line
    eye_lower: float = 0.035       # lower lid depth below it
    iris_radius: float = 0.045
    pupil_radius: float = 0.018
    brow_x: float = 0.28           # brow centres at (+-brow_x, brow_y)
    brow_y: float = 0.23          # height of the brow's ends; the arch rises above
    brow_half_width: float = 0.185
    brow_arch: float = 0.045
    brow_thickness: float = 0.04
    nose_root_y: float = 0.12
    nose_tip_y: float = -0.235
    nose_base_y: float = -0.31
    mouth_y: float = -0.52         # the mouth line: rows A, M, B
    mouth_half_width: float = 0.215
    upper_lip: float = 0.062        # outer upper lip height above the mouth line at the centre
    lower_lip: float = 0.075       # outer lower lip depth below it
    chin_y: float = -0.985         # bottom of the chin on the jaw landmark curve
    hairline_y: float = 0.62


# Head profile: half-width and front/back depth of the cross-section at height y.
HEAD_TOP = 1.12          # top of the cranium
JAW_EXPONENT = 2.5      # squareness of the jaw's outline
JAW_BOTTOM = 1.0        # |y| where the jaw's outline closes under the chin
HEAD_HALF_WIDTH = 0.74
HEAD_FRONT_DEPTH = 0.85
HEAD_BACK_DEPTH = 0.95
SECTION_EXPONENT = 2.6   # superellipse exponent of each cross-section (2 = ellipse, more = boxier)
MOUTH_SETBACK = 0.07     # how far the middle mouth row sits behind the lips
HAIR_VOLUME = 0.07       # how far hair stands off the scalp
# Mesh resolution: spacing of face rows and count of frontal columns.
FACE_ROW_STEP = 0.034
FRONT_COLUMNS = 45
FRONT_EXTENT = 0.96      # frontal columns reach this fraction of the half-width
BACK_COLUMNS_PER_SIDE = 8
NECK_RADII = (0.40, 0.34)  # x and z radii of the neck cylinder
NECK_CENTRE_Z = -0.14
NECK_ROWS = np.array([-0.40, -0.80, -1.20, -1.60, -2.00, -2.40])
NECK_COLUMNS = 24


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 below edge0, 1 above edge1 (edges may be in either order), C1 in between."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(fx, fy, cx, cy, sx, sy):
    """Unnormalised 2-D Gaussian bump centred on (cx, cy)."""
    return np.exp(-0.5 * (((fx - cx) / sx) ** 2 + ((fy - cy) / sy) ** 2))


def _pair(fx, fy, cx, cy, sx, sy):
    """A left-right symmetric pair of bumps at (+-cx, cy)."""
    return _gauss(np.abs(fx), fy, cx, cy, sx, sy)


def half_width(y: np.ndarray) -> np.ndarray:
    """Half-width of the head at height y: a dome above the eyes, a jaw below."""
    y = np.asarray(y, dtype=np.float64)
    upper = np.sqrt(np.clip(1.0 - (y / HEAD_TOP) ** 2, 0.0, None))
    # A superellipse a little squarer than an ellipse, for a jaw rather than an egg.
    lower = np.clip(1.0 - np.abs(y / JAW_BOTTOM) ** JAW_EXPONENT, 0.0, None) ** (1 / JAW_EXPONENT)
    return HEAD_HALF_WIDTH * np.where(y >= 0.0, upper, lower)


def front_depth(y: np.ndarray) -> np.ndarray:
    """How far the face's front stands out at height y. High exponents keep the face's front
    nearly flat from forehead to chin, as a face is, rather than round as a ball is."""
    y = np.asarray(y, dtype=np.float64)
    upper = np.clip(1.0 - np.abs(y / HEAD_TOP) ** 2.5, 0.0, None) ** (1 / 2.5)
    lower = np.clip(1.0 - np.abs(y / 1.05) ** 6, 0.0, None) ** (1 / 6)
    return HEAD_FRONT_DEPTH * np.where(y >= 0.0, upper, lower)


def back_depth(y: np.ndarray) -> np.ndarray:
    """How far the back of the head reaches behind the origin at height y."""
    y = np.asarray(y, dtype=np.float64)
    upper = np.sqrt(np.clip(1.0 - (y / HEAD_TOP) ** 2, 0.0, None))
    lower = np.sqrt(np.clip(1.0 - (y / JAW_BOTTOM) ** 2, 0.0, None))
    return HEAD_BACK_DEPTH * np.where(y >= 0.0, upper, lower)


def _rows(layout: FaceLayout) -> tuple[np.ndarray, np.ndarray]:
    """Row heights top to bottom with the mouth line tripled (A, M, B), and each row's side."""
    cranium = HEAD_TOP * np.sin(np.radians(np.linspace(90.0, 34.0, 8)))
    face_top = cranium[-1] - FACE_ROW_STEP
    upper = np.linspace(face_top, layout.mouth_y, int(round((face_top - layout.mouth_y) / FACE_ROW_STEP)) + 1)
    lower_end = -0.955
    lower = np.linspace(layout.mouth_y, lower_end, int(round((layout.mouth_y - lower_end) / FACE_ROW_STEP)) + 1)
    chin = np.array([-0.972, -0.985, -0.994, -JAW_BOTTOM])
    row_y = np.concatenate([cranium, upper, [layout.mouth_y], lower, chin])
    n_upper = len(cranium) + len(upper)              # the last of these is row A
    row_side = np.concatenate([np.ones(n_upper), [0.0], -np.ones(len(row_y) - n_upper - 1)])
    return row_y, row_side


def _columns() -> np.ndarray:
    """Column angles in (-pi, pi], increasing (so x increases across the front).

    Frontal columns are evenly spaced in x (so evenly spaced in the image); the back is coarse.
    """
    q = SECTION_EXPONENT
    s = np.linspace(-FRONT_EXTENT, FRONT_EXTENT, FRONT_COLUMNS)
    front = np.sign(s) * np.arcsin(np.abs(s) ** (q / 2))   # inverts x = W sgn|sin t|^(2/q)
    edge = front[-1]
    back = np.linspace(edge, np.pi, BACK_COLUMNS_PER_SIDE + 1)[1:]
    return np.concatenate([-back[::-1][1:], front, back])   # +pi once, -pi dropped


def _superellipse(angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit superellipse |x|^q + |z|^q = 1 at the given angles: (x, z)."""
    q = SECTION_EXPONENT
    sin, cos = np.sin(angle), np.cos(angle)
    return np.sign(sin) * np.abs(sin) ** (2 / q), np.sign(cos) * np.abs(cos) ** (2 / q)


def _grid_triangles(n_rows: int, n_cols: int, offset: int) -> np.ndarray:
    """Two triangles per cell of a grid closed round in the column direction, rows running
    downwards and columns rightwards seen from outside; wound counter-clockwise from outside."""
    r, c = np.meshgrid(np.arange(n_rows - 1), np.arange(n_cols), indexing="ij")
    c_next = (c + 1) % n_cols
    a, b = r * n_cols + c, r * n_cols + c_next             # top-left, top-right
    d, e = (r + 1) * n_cols + c, (r + 1) * n_cols + c_next  # bottom-left, bottom-right
    tris = np.stack([np.stack([a, d, e], -1), np.stack([a, e, b], -1)], -2).reshape(-1, 3)
    return tris + offset


def _relief(fx: np.ndarray, fy: np.ndarray, L: FaceLayout) -> np.ndarray:
    """Depth added to the head's front by facial features, at canonical points (fx, fy)."""
    # Nose: a ridge from the root between the eyes to the tip, widening downwards, that ends
    # abruptly at the base (the underside of the nose), plus a rounded tip and two alae.
    t = np.clip((L.nose_root_y - fy) / (L.nose_root_y - L.nose_tip_y), 0.0, 1.0)
    ridge_height = 0.035 + 0.155 * t ** 1.4
    ridge_width = 0.040 + 0.035 * t
    below_tip = _smoothstep(L.nose_tip_y + 0.01, L.nose_base_y - 0.005, fy)
    above_root = _smoothstep(L.nose_root_y - 0.02, L.nose_root_y + 0.08, fy)
    ridge = ridge_height * np.exp(-0.5 * (fx / ridge_width) ** 2) * (1 - below_tip) * (1 - above_root)
    tip = 0.035 * _gauss(fx, fy, 0.0, L.nose_tip_y + 0.005, 0.045, 0.04) * (1 - below_tip)
    alae = 0.055 * _pair(fx, fy, 0.075, L.nose_tip_y - 0.04, 0.035, 0.035) * (1 - below_tip)
    nose = ridge + tip + alae
    # Eyes: a socket under the brow ridge, with the eyeball bulging inside it.
    socket = -0.075 * _pair(fx, fy, L.eye_x, L.eye_y + 0.01, 0.12, 0.075)
    eyeball = 0.032 * _pair(fx, fy, L.eye_x, L.eye_y, 0.07, 0.045)
    brow_ridge = 0.035 * np.exp(-0.5 * ((fy - L.brow_y) / 0.055) ** 2) * np.exp(-(np.abs(fx) / 0.5) ** 4)
    cheekbones = 0.035 * _pair(fx, fy, 0.40, -0.12, 0.13, 0.10)
    temples = -0.03 * _pair(fx, fy, 0.62, 0.30, 0.08, 0.15)
    # Mouth: the muzzle is rounder than the cheeks; full lips; a groove under the lower lip;
    # a philtrum groove; the chin.
    muzzle = 0.05 * _gauss(fx, fy, 0.0, L.mouth_y, 0.26, 0.16)
    lips = (0.028 * _gauss(fx, fy, 0.0, L.mouth_y + 0.03, 0.15, 0.028)
            + 0.035 * _gauss(fx, fy, 0.0, L.mouth_y - 0.035, 0.13, 0.032))
    philtrum = -0.008 * _gauss(fx, fy, 0.0, (L.mouth_y + L.nose_base_y) / 2, 0.02, 0.06)
    labiomental = -0.02 * _gauss(fx, fy, 0.0, L.mouth_y - 0.13, 0.12, 0.035)
    chin = 0.05 * _gauss(fx, fy, 0.0, L.chin_y + 0.12, 0.14, 0.09)
    return (nose + socket + eyeball + brow_ridge + cheekbones + temples + muzzle + lips
            + philtrum + labiomental + chin)


def _mouth_gate(fx: np.ndarray, L: FaceLayout) -> np.ndarray:
    """1 across the middle of the mouth, 0 from the corners outwards: where the lips can part."""
    return 1.0 - _smoothstep(0.55 * L.mouth_half_width, L.mouth_half_width, np.abs(fx))


class _Fields:
    """Canonical per-vertex quantities the identity and expression fields are written in."""

    def __init__(self, fx, fy, front, side, head, base, layout: FaceLayout) -> None:
        self.fx, self.fy, self.front, self.head = fx, fy, front, head
        self.base = base                                   # (V, 3) undeformed grid positions
        self.L = layout
        self.sign = np.sign(fx)
        self.upper_weight = (side + 1.0) / 2.0             # 1 upper lip side, 0.5 middle row, 0 lower
        self.gate = _mouth_gate(fx, layout)
        self.facing = _smoothstep(0.15, 0.5, front) * head  # fades fields out towards the back

    def vec(self, dx=0.0, dy=0.0, dz=0.0) -> np.ndarray:
        """(V, 3) displacement, limited to the head's front."""
        shape = self.fx.shape
        return np.stack([np.broadcast_to(np.asarray(d, dtype=np.float64), shape) for d in (dx, dy, dz)],
                        -1) * self.facing[:, None]

    # -- regions used by several fields
    def pair(self, cx, cy, sx, sy):
        return _pair(self.fx, self.fy, cx, cy, sx, sy)

    def gauss(self, cx, cy, sx, sy):
        return _gauss(self.fx, self.fy, cx, cy, sx, sy)

    def jaw_drop(self) -> np.ndarray:
        """The jaw opening by one unit of its travel: lower lip and chin move down and back."""
        L = self.L
        below_line = _smoothstep(L.mouth_y, L.mouth_y - 0.3, self.fy)
        # Inside the mouth's width the lower lip separates from the upper; outside, the skin
        # stretches from nothing at the mouth line to the full drop at the chin.
        lower = (1.0 - self.upper_weight) * np.maximum(self.gate, below_line)
        lateral = np.exp(-0.5 * (self.fx / 0.55) ** 2)
        weight = lower * lateral
        return self.vec(dy=-weight, dz=-0.25 * weight)

    def lid_stretch(self, upper: float, lower: float) -> np.ndarray:
        """Eyelids: upper > 0 raises the upper lid (eyes widen), lower > 0 raises the lower lid
        (squint). A vertical stretch about each eye's centre line, local to the eye."""
        L = self.L
        rel = self.fy - L.eye_y
        near_eye = self.pair(L.eye_x, L.eye_y, 0.13, 0.065)
        dy = np.where(rel > 0, upper * rel, -lower * rel) * near_eye
        return self.vec(dy=dy)

    def toward_line(self, amount: float) -> np.ndarray:
        """Lips pressed: both lips thin towards the mouth line, which itself stays put."""
        L = self.L
        rel = self.fy - L.mouth_y
        weight = np.exp(-1.5 * (self.fx / L.mouth_half_width) ** 2) * np.exp(-0.5 * (rel / 0.09) ** 2)
        return self.vec(dy=-amount * rel * weight)

    def mouth_width(self, amount: float) -> np.ndarray:
        """Mouth widened (amount > 0) or narrowed: a horizontal stretch about the mouth's centre."""
        L = self.L
        weight = (np.exp(-0.5 * (self.fx / (1.2 * L.mouth_half_width)) ** 2)
                  * np.exp(-0.5 * ((self.fy - L.mouth_y) / 0.1) ** 2))
        return self.vec(dx=amount * self.fx * weight)

    def corners(self, dx: float, dy: float, dz: float = 0.0) -> np.ndarray:
        """Mouth corners moved outwards by dx, up by dy (mirrored left-right)."""
        weight = self.pair(self.L.mouth_half_width, self.L.mouth_y, 0.09, 0.085)
        return self.vec(dx=dx * self.sign * weight, dy=dy * weight, dz=dz * weight)

    def upper_lip_raise(self, amount: float) -> np.ndarray:
        """Upper lip lifted off the lower one in the middle of the mouth (shows upper teeth)."""
        L = self.L
        weight = (self.upper_weight * self.gate
                  * np.exp(-0.5 * ((self.fy - L.mouth_y - 0.03) / 0.08) ** 2))
        return self.vec(dy=amount * weight)

    def brows(self, inner_dy=0.0, outer_dy=0.0, whole_dy=0.0, inner_dx=0.0) -> np.ndarray:
        """Brows: the inner ends, outer ends or whole brows moved; inner_dx > 0 pulls the inner
        ends towards the nose (knitting)."""
        L = self.L
        inner = self.pair(L.brow_x - L.brow_half_width + 0.05, L.brow_y + 0.01, 0.085, 0.075)
        outer = self.pair(L.brow_x + L.brow_half_width - 0.05, L.brow_y + 0.01, 0.085, 0.075)
        whole = self.pair(L.brow_x, L.brow_y + 0.02, 0.17, 0.085)
        forehead = (_smoothstep(L.brow_y, L.brow_y + 0.2, self.fy)
                    * (1 - _smoothstep(L.brow_y + 0.2, L.hairline_y + 0.1, self.fy))
                    * np.exp(-0.5 * (self.fx / 0.45) ** 2))
        dy = inner_dy * inner + outer_dy * outer + whole_dy * np.maximum(whole, 0.5 * forehead)
        return self.vec(dx=-inner_dx * self.sign * inner, dy=dy)


def _expression_basis(f: _Fields) -> np.ndarray:
    """The six blendshapes at full intensity (beta = 1), in EXPRESSION_NAMES order."""
    L = f.L
    jaw = 0.18 * f.jaw_drop()
    cheeks = f.pair(0.34, -0.21, 0.10, 0.09)
    nose_sides = f.pair(0.075, -0.09, 0.05, 0.09)
    alae = f.pair(0.08, L.nose_tip_y - 0.045, 0.045, 0.04)
    chin = f.gauss(0.0, L.mouth_y - 0.3, 0.18, 0.11)
    anger = (f.brows(inner_dy=-0.05, whole_dy=-0.015, inner_dx=0.03) + f.vec(dz=0.012 * f.pair(0.14, 0.24, 0.08, 0.06))
             + f.lid_stretch(upper=-0.25, lower=0.35) + f.toward_line(0.35) + f.mouth_width(-0.10)
             + f.vec(dx=0.015 * f.sign * alae))
    fear = (f.brows(inner_dy=0.05, whole_dy=0.03, inner_dx=0.02) + f.lid_stretch(upper=0.6, lower=-0.15)
            + f.mouth_width(0.22) + f.corners(0.0, -0.02, -0.01) + 0.35 * jaw)
    disgust = (f.vec(dy=0.035 * nose_sides + 0.025 * alae, dz=0.012 * nose_sides)
               + f.upper_lip_raise(0.05) + f.brows(inner_dy=-0.025, whole_dy=-0.02, inner_dx=0.015)
               + f.lid_stretch(upper=-0.1, lower=0.35) + f.vec(dy=0.02 * cheeks)
               + f.corners(0.0, -0.012) + 0.15 * jaw)
    happiness = (f.corners(0.035, 0.06, -0.02) + f.mouth_width(0.10) + f.upper_lip_raise(0.012)
                 + 0.3 * jaw + f.vec(dy=0.03 * cheeks, dz=0.02 * cheeks)
                 + f.lid_stretch(upper=-0.1, lower=0.4))
    sadness = (f.brows(inner_dy=0.05, outer_dy=-0.025, inner_dx=0.012) + f.lid_stretch(upper=-0.2, lower=0.0)
               + f.corners(-0.01, -0.05) + f.vec(dy=0.025 * chin, dz=0.012 * chin) + f.toward_line(0.12))
    surprise = (f.brows(whole_dy=0.065, inner_dy=0.01) + f.lid_stretch(upper=0.75, lower=-0.15)
                + jaw + f.mouth_width(-0.12))
    return np.stack([anger, fear, disgust, happiness, sadness, surprise])


IDENTITY_NAMES = ("face_width", "lower_face_length", "head_depth", "jaw_width", "chin_forward",
                  "nose_length", "nose_prominence", "nose_width", "eye_spacing", "eye_height",
                  "brow_height", "mouth_width", "lip_fullness", "cheekbones", "forehead_slope",
                  "mouth_height")


def _identity_basis(f: _Fields) -> np.ndarray:
    """16 smooth identity components, one standard deviation each, in IDENTITY_NAMES order."""
    L = f.L
    x, y, z = f.base[:, 0], f.base[:, 1], f.base[:, 2]
    everywhere = f.head[:, None]                           # global changes reach the back too
    nose = _smoothstep(L.nose_root_y, L.nose_tip_y, f.fy) * (1 - _smoothstep(L.nose_tip_y, L.nose_base_y - 0.04, f.fy))
    nose_profile = nose * np.exp(-0.5 * (f.fx / 0.06) ** 2)
    lip_band = np.exp(-1.5 * (f.fx / L.mouth_half_width) ** 2)
    rel_mouth = f.fy - L.mouth_y
    components = [
        everywhere * np.stack([0.045 * x, 0 * y, 0 * z], -1),                                    # face_width
        everywhere * np.stack([0 * x, 0.07 * np.minimum(y, 0.0), 0 * z], -1),                     # lower_face_length
        everywhere * np.stack([0 * x, 0 * y, 0.05 * z], -1),                                     # head_depth
        everywhere * np.stack([0.07 * x * _smoothstep(-0.1, -0.7, y), 0 * y, 0 * z], -1),         # jaw_width
        f.vec(dz=0.045 * f.gauss(0.0, L.chin_y + 0.15, 0.2, 0.12)),                                     # chin_forward
        f.vec(dy=-0.03 * f.gauss(0.0, L.nose_tip_y, 0.09, 0.09)),                                # nose_length
        f.vec(dz=0.04 * nose_profile),                                                            # nose_prominence
        f.vec(dx=0.022 * f.sign * f.pair(0.08, L.nose_tip_y - 0.03, 0.05, 0.07)),                 # nose_width
        f.vec(dx=0.022 * f.sign * f.pair(L.eye_x, L.eye_y + 0.03, 0.14, 0.1)),                     # eye_spacing
        f.vec(dy=0.022 * f.pair(L.eye_x, L.eye_y + 0.03, 0.16, 0.11)),                             # eye_height
        f.vec(dy=0.02 * f.pair(L.brow_x, L.brow_y + 0.02, 0.18, 0.05)),                            # brow_height
        f.mouth_width(0.1),                                                                        # mouth_width
        f.vec(dy=0.2 * rel_mouth * lip_band * np.exp(-0.5 * (rel_mouth / 0.08) ** 2),
              dz=0.015 * lip_band * np.exp(-0.5 * (rel_mouth / 0.06) ** 2)),                      # lip_fullness
        f.vec(dx=0.015 * f.sign * f.pair(0.40, -0.1, 0.12, 0.1), dz=0.03 * f.pair(0.40, -0.1, 0.12, 0.1)),  # cheekbones
        f.vec(dz=-0.05 * _smoothstep(0.25, 0.9, f.fy)),                                            # forehead_slope
        f.vec(dy=0.022 * f.gauss(0.0, L.mouth_y, 0.3, 0.12)),                                      # mouth_height
    ]
    return np.stack(components)


def _landmark_targets(L: FaceLayout) -> tuple[np.ndarray, np.ndarray]:
    """The 68 landmarks in canonical coordinates, and which row class each may snap to
    (0 any front vertex except the middle mouth row, +1 only row A, -1 only row B)."""
    targets = np.zeros((N_LANDMARKS, 2))
    rows = np.zeros(N_LANDMARKS, dtype=np.int64)
    # Jaw: a curve 10% inside the outline, squashed slightly upwards at the bottom so the chin
    # point stays on the face; 17 points evenly spaced by arc length.
    fy = np.linspace(L.eye_y, -JAW_BOTTOM, 2000)
    fx = -0.90 * half_width(fy)
    fy = np.where(fy < 0, fy * (-L.chin_y / JAW_BOTTOM), fy)
    half = np.concatenate([np.stack([fx, fy], -1), np.stack([-fx[::-1], fy[::-1]], -1)[1:]])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(half, axis=0), axis=1))])
    at = np.linspace(0.0, arc[-1], 17)
    targets[0:17] = np.stack([np.interp(at, arc, half[:, 0]), np.interp(at, arc, half[:, 1])], -1)
    # Brows along their centre line, outer to inner on the image left, inner to outer on the right.
    u = np.linspace(-0.9, 0.9, 5)
    brow_x = L.brow_x + u * L.brow_half_width
    brow_y = brow_centre_line(np.abs(brow_x), L)
    targets[17:22] = np.stack([-brow_x[::-1], brow_y[::-1]], -1)
    targets[22:27] = np.stack([brow_x, brow_y], -1)
    # Nose bridge and base.
    targets[27:31] = np.stack([np.zeros(4), np.linspace(L.eye_y + 0.01, L.nose_tip_y, 4)], -1)
    base_x = np.array([-0.085, -0.042, 0.0, 0.042, 0.085])
    targets[31:36] = np.stack([base_x, L.nose_base_y + 0.012 * (np.abs(base_x) / 0.085)], -1)
    # Eyes: corners, and the lids at a third of the half-width either side of the centre.
    for first, sign in ((36, -1.0), (42, 1.0)):
        u_pts = np.array([1.0, 1 / 3, -1 / 3, -1.0, -1 / 3, 1 / 3])   # outer to inner, then back
        if sign > 0:
            u_pts = np.array([-1.0, -1 / 3, 1 / 3, 1.0, 1 / 3, -1 / 3])  # inner to outer, then back
        lids = np.array([0, 1, 1, 0, -1, -1])
        ex = L.eye_x + u_pts * L.eye_half_width
        upper, lower = eye_lids(u_pts, L)
        ey = np.where(lids > 0, upper, np.where(lids < 0, lower, L.eye_y + 0.008 * u_pts))
        targets[first:first + 6] = np.stack([sign * ex, ey], -1)
    # Outer lips: corners, upper contour (cupid's bow), lower contour.
    mw, my = L.mouth_half_width, L.mouth_y
    upper_x = np.array([-0.6, -0.25, 0.0, 0.25, 0.6]) * mw
    lower_x = np.array([0.6, 0.3, 0.0, -0.3, -0.6]) * mw
    targets[48] = (-mw, my)
    targets[49:54] = np.stack([upper_x, upper_lip_line(upper_x, L)], -1)
    targets[54] = (mw, my)
    targets[55:60] = np.stack([lower_x, lower_lip_line(lower_x, L)], -1)
    # Inner lips on the lip-edge rows.
    inner_upper = np.array([-0.8, -0.4, 0.0, 0.4, 0.8]) * mw
    targets[60:65] = np.stack([inner_upper, np.full(5, my)], -1)
    rows[60:65] = 1
    inner_lower = np.array([0.4, 0.0, -0.4]) * mw
    targets[65:68] = np.stack([inner_lower, np.full(3, my)], -1)
    rows[65:68] = -1
    return targets, rows


# -- feature outlines in canonical coordinates, shared by the landmarks and the texture

def eye_lids(u, L: FaceLayout):
    """Upper and lower lid heights at u = (|fx| - eye_x) / eye_half_width (positive outwards).

    An almond: the upper lid peaks slightly towards the nose, the lower lid dips slightly
    outwards, and the outer corner sits a little higher than the inner (canthal tilt).
    """
    lib = torch if isinstance(u, torch.Tensor) else np
    open_ = lib.clip(1.0 - u * u, 0.0, None)
    centre = L.eye_y + 0.008 * u
    upper = centre + L.eye_upper * open_ ** 0.6 * (1.0 - 0.12 * u)
    lower = centre - L.eye_lower * open_ ** 0.8 * (1.0 + 0.12 * u)
    return upper, lower


def brow_centre_line(ax, L: FaceLayout):
    """Height of the brow's centre line at |fx| = ax: an arch peaking a little outwards."""
    u = (ax - L.brow_x - 0.03) / L.brow_half_width
    return L.brow_y + L.brow_arch * (1.0 - u * u)


def upper_lip_line(fx, L: FaceLayout):
    """Top edge of the upper lip, with the cupid's bow dip at the centre."""
    lib = torch if isinstance(fx, torch.Tensor) else np
    lx = lib.clip(1.0 - (fx / L.mouth_half_width) ** 2, 0.0, None)
    return L.mouth_y + L.upper_lip * lx ** 0.5 * (1.0 - 0.28 * lib.exp(-((fx / 0.035) ** 2)))


def lower_lip_line(fx, L: FaceLayout):
    """Bottom edge of the lower lip."""
    lib = torch if isinstance(fx, torch.Tensor) else np
    lx = lib.clip(1.0 - (fx / L.mouth_half_width) ** 2, 0.0, None)
    return L.mouth_y - L.lower_lip * lx ** 0.7


def _barycentric_embedding(points: np.ndarray, uv: np.ndarray, triangles: np.ndarray):
    """For 2-D points, the triangle of the (u, v) mesh holding each, and its weights.

    Returns vertex ids (P, 3) and weights (P, 3), so that a point follows the mesh as it deforms.
    """
    a, b, c = uv[triangles[:, 0]], uv[triangles[:, 1]], uv[triangles[:, 2]]
    ids, weights = [], []
    for p in points:
        det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        safe = np.where(np.abs(det) > 1e-12, det, np.inf)
        w1 = ((p[0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (p[1] - a[:, 1]) * (c[:, 0] - a[:, 0])) / safe
        w2 = ((b[:, 0] - a[:, 0]) * (p[1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (p[0] - a[:, 0])) / safe
        w = np.stack([1 - w1 - w2, w1, w2], -1)
        hit = int(np.argmax(w.min(1)))                    # the triangle the point is most inside
        ids.append(triangles[hit])
        weights.append(w[hit])
    return np.array(ids, dtype=np.int64), np.array(weights, dtype=np.float32)


class ProceduralFaceModel(MorphableModel):
    """The project's file-free face model (see the module docstring for how it is built).

    Besides the MorphableModel arrays it holds what the renderer needs to paint the face:
    layout: the FaceLayout the features were drawn from;
    vertex_attributes: (V, 6) float32 per vertex: canonical fx, fy, frontness (cosine of the
        angle from straight ahead, 0 at the back), mouth side (+1 upper, 0 middle row, -1
        lower), mouth cavity (1 on the middle row inside the mouth) and neck (1 on the neck);
    regions: (V,) int64 index into REGION_NAMES, the region painted at each vertex at rest;
    eye_centre_ids, eye_centre_weights: (2, 3) barycentric embedding of the two eye centres
        (image-left first), to place the irises on the deformed mesh;
    identity_names: what each identity component changes.
    """

    def __init__(self, layout: FaceLayout = FaceLayout()) -> None:
        self.layout = layout
        row_y, row_side = _rows(layout)
        angles = _columns()
        n_rows, n_cols = len(row_y), len(angles)

        # Head grid: every row a superellipse of the profile's width and depth.
        unit_x, unit_z = _superellipse(angles)
        y = np.repeat(row_y, n_cols)
        ux, uz = np.tile(unit_x, n_rows), np.tile(unit_z, n_rows)
        base = np.stack([half_width(y) * ux, y, np.where(uz >= 0, front_depth(y), back_depth(y)) * uz], -1)
        front = np.clip(np.tile(np.cos(angles), n_rows), 0.0, 1.0)
        side = np.repeat(row_side, n_cols)
        fx, fy = base[:, 0], base[:, 1]
        head_tris = _grid_triangles(n_rows, n_cols, 0)

        # Relief on the front; the middle mouth row sinks into the head inside the mouth.
        facing = _smoothstep(0.1, 0.45, front)
        mean = base.copy()
        mean[:, 2] += _relief(fx, fy, layout) * facing
        cavity = (side == 0) * _mouth_gate(fx, layout) * facing
        mean[:, 2] -= MOUTH_SETBACK * cavity

        # Neck: an open cylinder reaching from inside the head to below the frame.
        neck_angles = np.linspace(-np.pi, np.pi, NECK_COLUMNS, endpoint=False)
        ny = np.repeat(NECK_ROWS, NECK_COLUMNS)
        na = np.tile(neck_angles, len(NECK_ROWS))
        neck = np.stack([NECK_RADII[0] * np.sin(na), ny, NECK_CENTRE_Z + NECK_RADII[1] * np.cos(na)], -1)
        neck_tris = _grid_triangles(len(NECK_ROWS), NECK_COLUMNS, len(mean))

        # Hair has volume: push the haired scalp outwards, smoothly from the hairline.
        hair_attrs = np.stack([fx, fy, front, side, cavity, np.zeros_like(fx)], -1)
        hair = self.region_weights(torch.as_tensor(hair_attrs), softness=0.15)["hair"].numpy()
        outwards = base * np.array([1.0, 0.6, 1.0])
        outwards /= np.maximum(np.linalg.norm(outwards, axis=1, keepdims=True), 1e-9)
        mean += HAIR_VOLUME * hair[:, None] * outwards

        n_head, n_neck = len(mean), len(neck)
        is_head = np.concatenate([np.ones(n_head), np.zeros(n_neck)])
        all_base = np.concatenate([base, neck])
        attrs = np.stack([
            np.concatenate([fx, neck[:, 0]]),
            np.concatenate([fy, neck[:, 1]]),
            np.concatenate([front, np.zeros(n_neck)]),
            np.concatenate([side, -np.ones(n_neck)]),
            np.concatenate([cavity, np.zeros(n_neck)]),
            1.0 - is_head,
        ], -1)
        fields = _Fields(attrs[:, 0], attrs[:, 1], attrs[:, 2], attrs[:, 3], is_head, all_base, layout)
        triangles = np.concatenate([head_tris, neck_tris])
        landmark_ids = self._snap_landmarks(attrs, layout)
        super().__init__(np.concatenate([mean, neck]), _identity_basis(fields), _expression_basis(fields),
                         triangles, landmark_ids, EXPRESSION_NAMES)
        self.identity_names = list(IDENTITY_NAMES)
        self.vertex_attributes = attrs.astype(np.float32)
        front_head = head_tris[(front[head_tris] > 0.3).all(1)]
        self.eye_centre_ids, self.eye_centre_weights = _barycentric_embedding(
            np.array([[-layout.eye_x, layout.eye_y], [layout.eye_x, layout.eye_y]]), attrs[:, :2], front_head)
        self.regions = self._vertex_regions()

    @staticmethod
    def _snap_landmarks(attrs: np.ndarray, layout: FaceLayout) -> np.ndarray:
        targets, rows = _landmark_targets(layout)
        fx, fy, front, side = attrs[:, 0], attrs[:, 1], attrs[:, 2], attrs[:, 3]
        usable = (front > 0.25) & (attrs[:, 5] == 0)
        ids = np.empty(N_LANDMARKS, dtype=np.int64)
        for k, ((tx, ty), row) in enumerate(zip(targets, rows)):
            allowed = usable & ((side == row) if row != 0 else (side != 0))
            # Prefer the most frontal of equally near vertices (the chin's closing row is a seam).
            dist = np.hypot(fx - tx, fy - ty) + 1e-3 * (1.0 - front)
            ids[k] = np.flatnonzero(allowed)[np.argmin(dist[allowed])]
        return ids

    def eye_centres(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) vertices -> (B, 2, 3) positions of the two eye centres (image-left first)."""
        ids = torch.as_tensor(self.eye_centre_ids, device=vertices.device)
        w = torch.as_tensor(self.eye_centre_weights, device=vertices.device, dtype=vertices.dtype)
        return (vertices[:, ids] * w[None, :, :, None]).sum(2)

    def region_weights(self, attributes: torch.Tensor, eye_offset: Optional[torch.Tensor] = None,
                       *, brow_scale: float = 1.0, hairline_shift: float = 0.0,
                       softness: float = 0.006) -> dict[str, torch.Tensor]:
        """Soft masks in [0, 1] of each painted feature at points with the given attributes.

        attributes: (..., 6) as vertex_attributes (per vertex, or interpolated per pixel).
        eye_offset: (..., 2) offset of each point from its eye's centre on the deformed face,
            to draw round irises however the lids move; default: from the canonical centre.
        brow_scale: brow thickness factor; hairline_shift: raises (+) or lowers the hairline.
        softness: width of the edges, in canonical units (about a pixel or less at 96 px).
        Returns masks "hair", "brows", "lips", "nostrils", "eyes", "lash", "iris", "pupil",
        "mouth", "teeth", "neck" and the skin tints "blush" and "shadow".
        """
        L = self.layout
        fx, fy, front, side, cavity, neck = attributes.unbind(-1)
        face = (1.0 - neck) * (front > 0.2)

        def inside(distance, width=softness):
            # Signed distance (negative inside) -> coverage with a linear edge of the given width.
            return (0.5 - distance / width).clamp(0.0, 1.0)

        ax = fx.abs()
        hairline = L.hairline_y + hairline_shift - 0.24 * (ax / 0.7) ** 2
        hair = torch.maximum(inside(hairline - fy, 2 * softness),
                             inside(front - 0.45, 0.04) * inside(-0.02 - fy, 0.03)) * (1.0 - neck)

        u_brow = (ax - L.brow_x) / L.brow_half_width
        thickness = L.brow_thickness * brow_scale * (1.0 - 0.45 * ((u_brow + 1) / 2).clamp(0, 1))
        brow_d = torch.maximum((fy - brow_centre_line(ax, L)).abs() - thickness / 2,
                               (u_brow.abs() - 1.0) * L.brow_half_width)
        brows = inside(brow_d) * face

        lip_d = torch.maximum(torch.maximum(fy - upper_lip_line(fx, L), lower_lip_line(fx, L) - fy),
                              ax - L.mouth_half_width)
        lips = inside(lip_d) * face

        nostril_d = torch.sqrt(((ax - 0.04) / 0.022) ** 2 + ((fy - L.nose_base_y - 0.006) / 0.011) ** 2) - 1.0
        nostrils = inside(nostril_d * 0.011) * face

        u_eye = (ax - L.eye_x) / L.eye_half_width
        upper, lower = eye_lids(u_eye, L)
        eye_d = torch.maximum(torch.maximum(fy - upper, lower - fy), (u_eye.abs() - 1.0) * L.eye_half_width)
        eyes = inside(eye_d) * face
        lash_d = torch.maximum((fy - upper - 0.003).abs() - 0.006 * (1.0 + 0.5 * u_eye.clamp(0, 1)),
                               (u_eye.abs() - 1.08) * L.eye_half_width)
        lash = inside(lash_d) * face
        if eye_offset is None:
            eye_offset = torch.stack([ax - L.eye_x, fy - L.eye_y], -1)
        radius = eye_offset.norm(dim=-1)
        iris = eyes * inside(radius - L.iris_radius)
        pupil = eyes * inside(radius - L.pupil_radius)

        # The cavity attribute rises from 0 on the lip edges to 1 on the middle mouth row; the
        # teeth sit just inside the lips (the side attribute says upper or lower).
        mouth = ((cavity - 0.03) / 0.2).clamp(0, 1)
        central = 1.0 - ((ax - 0.5 * L.mouth_half_width) / (0.35 * L.mouth_half_width)).clamp(0, 1)
        upper_teeth = ((side - 0.35) / 0.08).clamp(0, 1) * ((0.95 - side) / 0.04).clamp(0, 1)
        lower_teeth = ((-side - 0.6) / 0.08).clamp(0, 1) * ((0.92 + side) / 0.05).clamp(0, 1)
        teeth = mouth * central * torch.maximum(upper_teeth, 0.7 * lower_teeth)

        blush = _torch_pair(fx, fy, 0.34, -0.23, 0.09, 0.07) * face
        shadow = (_torch_pair(fx, fy, L.eye_x, L.eye_y + 0.075, 0.1, 0.028)   # lid crease
                  + 0.6 * _torch_pair(fx, fy, L.eye_x + 0.02, L.eye_y - 0.07, 0.08, 0.025)) * face
        return dict(hair=hair, brows=brows, lips=lips, nostrils=nostrils, eyes=eyes, lash=lash,
                    iris=iris, pupil=pupil, mouth=mouth, teeth=teeth, neck=neck, blush=blush,
                    shadow=shadow)

    def _vertex_regions(self) -> np.ndarray:
        """Label each vertex with the last REGION_NAMES region painted over it at rest."""
        w = self.region_weights(torch.as_tensor(self.vertex_attributes))
        layers = {"neck": w["neck"], "lips": w["lips"], "brows": w["brows"], "hair": w["hair"],
                  "eyes": w["eyes"], "iris": w["iris"], "mouth": w["mouth"]}
        labels = torch.zeros(self.n_vertices, dtype=torch.int64)
        for name in REGION_NAMES[1:]:
            labels[layers[name] > 0.5] = REGION_NAMES.index(name)
        return labels.numpy()


def _torch_pair(fx, fy, cx, cy, sx, sy):
    return torch.exp(-0.5 * (((fx.abs() - cx) / sx) ** 2 + ((fy - cy) / sy) ** 2))


@functools.lru_cache(maxsize=None)
def procedural_face_model() -> ProceduralFaceModel:
    """The default procedural model, built once per process (it is deterministic)."""
    return ProceduralFaceModel()
