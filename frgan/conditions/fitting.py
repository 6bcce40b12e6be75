"""Fitting a morphable model to 2D landmarks: the project's own batched least squares in torch.

What G_C needs from every video (paper 3.1): one identity alpha for the whole video, and per
frame an expression beta and a head pose. Unknowns, with the weak-perspective camera of
`render.project` (x_px = tx + s X_cam, y_px = ty - s Y_cam, X_cam = R(yaw, pitch, roll) X):

    per video:  alpha (n_id,)
    per frame:  pose (yaw, pitch, roll, tx, ty, s) and beta (n_expr,)

Objective (per video v, frames t of v, landmarks l that the model defines and the frame has):

    E_v = sum_t sum_l |proj_tl - obs_tl|^2 / c_t^2 + w_alpha |alpha_v|^2 + w_beta sum_t |beta_t|^2

c_t is the RMS distance of frame t's observed landmarks from their centroid (px), so the data
term is in units of the face's size: the weights mean the same at 32 px and at 96 px. With
alpha, beta ~ N(0, 1) priors and landmark noise sigma (in those units) the MAP weights are
sigma^2: dlib's noise is about 2-4 % of that spread, hence the defaults of 1e-3.

Solver: Levenberg-Marquardt (Gauss-Newton with adaptive Marquardt damping mu diag(H)), on all
frames of many videos at once. Each frame's 6 + n_expr unknowns couple to the others only
through its video's alpha, so the normal equations are block-arrow shaped: the per-frame blocks
are eliminated with one batched inverse (Schur complement), leaving one n_id x n_id system per
video. Jacobians are closed-form (weak perspective is linear in all but the three angles).
Steps are accepted or rejected per video (mu shrinks or grows per video), and a video stops
once it no longer improves, so a video's result does not depend on which videos share its batch.
Everything runs in float64 on the CPU: deterministic, and far from round-off limits.

Initialisation: alpha = beta = 0; each frame's pose from a 2D similarity (Procrustes) between
the mean shape's landmarks seen from the front and the observed ones (roll, scale, translation;
yaw = pitch = 0).

Identifiability: 68 2D landmarks pin down the pose and the expression well, but not every
identity direction: components that move vertices mostly in depth (e.g. the procedural model's
head depth) show up in 2D only through head turns, and components that move no landmark (its
forehead slope) not at all, so the regulariser keeps them near 0. Compare fitted alpha with a
ground truth only up to that. With few frames and noisy landmarks a large identity basis (the
SFM's 63, the BFM's 199 components) can absorb noise into the identity: raise w_alpha then.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from frgan.conditions.morphable import N_LANDMARKS, MorphableModel

# A frame needs this many usable landmarks (6 pose unknowns + expression, 2 equations each).
MIN_LANDMARKS = 8
# Marquardt damping: start, factor on an accepted step (shrink) and on a rejected one (grow).
DAMPING_START, DAMPING_SHRINK, DAMPING_GROW = 1e-3, 0.3, 10.0
DAMPING_RANGE = (1e-12, 1e12)
# A video stops after this many iterations in a row without a relative decrease above STALL_TOL
# (a millionth of the cost: far below what landmark noise makes of it).
STALL_ITERATIONS, STALL_TOL = 3, 1e-6


@dataclass(frozen=True)
class FitSettings:
    alpha_weight: float = 1e-3    # w_alpha: Tikhonov weight on the identity (see module docstring)
    beta_weight: float = 1e-3     # w_beta: Tikhonov weight on each frame's expression
    iterations: int = 50          # Levenberg-Marquardt iterations at most


@dataclass
class VideoFit:
    """One video's fit: alpha (n_id,), beta (T, n_expr), pose (T, 6), error_px (T,)."""

    alpha: np.ndarray
    beta: np.ndarray
    pose: np.ndarray
    error_px: np.ndarray


@dataclass
class BatchFit:
    """Many videos' fit: alpha (n_videos, n_id); per frame beta (N, n_expr), pose (N, 6) and
    error_px (N,): the mean over the frame's usable landmarks of the reprojection distance."""

    alpha: np.ndarray
    beta: np.ndarray
    pose: np.ndarray
    error_px: np.ndarray
    iterations: int


@dataclass(frozen=True)
class LandmarkBasis:
    """The model restricted to the landmarks it defines (landmark_ids >= 0), float64 torch."""

    usable: torch.Tensor       # (68,) bool: which iBUG landmarks the model has
    mean: torch.Tensor         # (L, 3)
    identity: torch.Tensor     # (n_id, L, 3)
    expression: torch.Tensor   # (n_expr, L, 3)

    @classmethod
    def of(cls, model: MorphableModel) -> "LandmarkBasis":
        ids = torch.as_tensor(model.landmark_ids)
        usable = ids >= 0
        picked = ids[usable]
        as64 = lambda a: torch.as_tensor(a, dtype=torch.float64)[..., picked, :]   # noqa: E731
        return cls(usable, as64(model.mean), as64(model.id_basis), as64(model.expr_basis))


# ---------------------------------------------------------------------------------------------
# the model of a frame, and its derivatives

def _about_axis(angle: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-handed rotation by angle (N,) about camera axis 0 (x), 1 (y) or 2 (z), and its
    derivative with respect to the angle: two (N, 3, 3)."""
    c, s = torch.cos(angle), torch.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]            # the plane rotated: i -> j
    rot = torch.zeros(angle.shape + (3, 3), dtype=angle.dtype)
    d_rot = torch.zeros_like(rot)
    rot[:, axis, axis] = 1.0
    rot[:, i, i], rot[:, i, j], rot[:, j, i], rot[:, j, j] = c, -s, s, c
    d_rot[:, i, i], d_rot[:, i, j], d_rot[:, j, i], d_rot[:, j, j] = -s, -c, c, -s
    return rot, d_rot


def rotation_and_derivatives(pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """R = Rz(roll) Rx(pitch) Ry(yaw) as `render.rotation_matrix`, (N, 3, 3), and dR / d(yaw,
    pitch, roll), (N, 3, 3, 3) with the angle in dimension 1."""
    r_yaw, d_yaw = _about_axis(pose[:, 0], 1)
    r_pitch, d_pitch = _about_axis(pose[:, 1], 0)
    r_roll, d_roll = _about_axis(pose[:, 2], 2)
    rot = r_roll @ r_pitch @ r_yaw
    d_rot = torch.stack([r_roll @ r_pitch @ d_yaw, r_roll @ d_pitch @ r_yaw, d_roll @ r_pitch @ r_yaw], 1)
    return rot, d_rot


_IMAGE_AXES = (1.0, -1.0)    # camera x, y -> pixel x, y (image y points down)


def landmark_shapes(basis: LandmarkBasis, beta: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Model-space landmarks (N, L, 3) of beta (N, n_expr) and alpha (N, n_id)."""
    n, n_landmarks = beta.shape[0], basis.mean.shape[0]
    offset = (alpha @ basis.identity.reshape(basis.identity.shape[0], n_landmarks * 3)
              + beta @ basis.expression.reshape(basis.expression.shape[0], n_landmarks * 3))
    return basis.mean + offset.reshape(n, n_landmarks, 3)


def project_landmarks(basis: LandmarkBasis, pose: torch.Tensor, beta: torch.Tensor,
                      alpha: torch.Tensor) -> torch.Tensor:
    """pose (N, 6), beta (N, n_expr), alpha (N, n_id) -> (N, L, 2) landmark pixels (as
    `render.project`)."""
    rot, _ = rotation_and_derivatives(pose)
    camera = landmark_shapes(basis, beta, alpha) @ rot.transpose(1, 2)
    flip = camera.new_tensor(_IMAGE_AXES)
    return pose[:, None, 3:5] + pose[:, None, 5:6] * flip * camera[..., :2]


def _jacobians(basis: LandmarkBasis, pose: torch.Tensor, beta: torch.Tensor, alpha: torch.Tensor):
    """Derivatives of the landmark pixels (N, L, 2) with respect to pose (N, L, 2, 6),
    beta (N, L, 2, n_expr) and alpha (N, L, 2, n_id): weak perspective is linear in everything
    but the angles, so all are closed-form."""
    rot, d_rot = rotation_and_derivatives(pose)
    shape = landmark_shapes(basis, beta, alpha)                                     # (N, L, 3)
    flip = shape.new_tensor(_IMAGE_AXES)
    scale = pose[:, 5, None, None]
    camera_xy = (shape @ rot.transpose(1, 2))[..., :2] * flip                       # (N, L, 2)
    d_angles = torch.einsum("nkab,nlb->nlak", d_rot[:, :, :2], shape) * flip[:, None]
    d_shift = torch.eye(2, dtype=pose.dtype).expand(*camera_xy.shape, 2)
    d_pose = torch.cat([scale[..., None] * d_angles, d_shift, camera_xy[..., None]], -1)
    # d/d(coefficient) = s * flip * (R basis_k)_xy
    sr = pose[:, 5, None, None] * flip[:, None] * rot[:, :2]                       # (N, 2, 3)
    d_beta = torch.einsum("nab,elb->nlae", sr, basis.expression)
    d_alpha = torch.einsum("nab,ilb->nlai", sr, basis.identity)
    return d_pose, d_beta, d_alpha


# ---------------------------------------------------------------------------------------------
# initialisation

def similarity_pose(model_xy: torch.Tensor, observed: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Frontal pose (N, 6) from a weighted 2D similarity: model (L, 2) x-right/y-up to observed
    pixels (N, L, 2) with weights (N, L). Returns yaw = pitch = 0, roll, tx, ty, scale."""
    target = observed * observed.new_tensor([1.0, -1.0])            # pixels -> y up
    w = weight / weight.sum(1, keepdim=True)
    model_centre = torch.einsum("nl,lc->nc", w, model_xy)
    target_centre = torch.einsum("nl,nlc->nc", w, target)
    p = model_xy[None] - model_centre[:, None]
    q = target - target_centre[:, None]
    dot = (w * (p * q).sum(-1)).sum(1)
    cross = (w * (p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0])).sum(1)
    roll = torch.atan2(cross, dot)
    scale = torch.hypot(dot, cross) / (w * (p * p).sum(-1)).sum(1)
    c, s = torch.cos(roll), torch.sin(roll)
    rotated = torch.stack([c * model_centre[:, 0] - s * model_centre[:, 1],
                           s * model_centre[:, 0] + c * model_centre[:, 1]], -1)
    shift = target_centre - scale[:, None] * rotated
    zero = torch.zeros_like(roll)
    return torch.stack([zero, zero, roll, shift[:, 0], -shift[:, 1], scale], -1)


def landmark_spread(observed: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(N,) RMS distance of each frame's usable landmarks from their centroid, px."""
    w = weight / weight.sum(1, keepdim=True)
    centre = torch.einsum("nl,nlc->nc", w, observed)
    return torch.sqrt((w * ((observed - centre[:, None]) ** 2).sum(-1)).sum(1))


# ---------------------------------------------------------------------------------------------
# the solver

@dataclass
class _State:
    pose: torch.Tensor     # (N, 6)
    beta: torch.Tensor     # (N, E)
    alpha: torch.Tensor    # (K, I)


class _Problem:
    """Observed landmarks of N frames of K videos, and the objective's pieces over them."""

    def __init__(self, basis: LandmarkBasis, observed: torch.Tensor, weight: torch.Tensor,
                 video: torch.Tensor, n_videos: int, settings: FitSettings) -> None:
        self.basis, self.video, self.n_videos, self.settings = basis, video, n_videos, settings
        self.observed = observed
        self.weight = weight / landmark_spread(observed, weight)[:, None]       # mask / c_t

    def _weighted(self, per_landmark: torch.Tensor) -> torch.Tensor:
        """(N, L, 2, ...) times each landmark's weight (mask / c_t)."""
        w = self.weight.reshape(self.weight.shape + (1,) * (per_landmark.ndim - 2))
        return per_landmark * w

    def residuals(self, s: _State) -> torch.Tensor:
        """(N, 2L) weighted, size-normalised reprojection residuals."""
        proj = project_landmarks(self.basis, s.pose, s.beta, s.alpha[self.video])
        return self._weighted(proj - self.observed).flatten(1)

    def per_video(self, per_frame: torch.Tensor) -> torch.Tensor:
        """Sum per-frame values (N, ...) into their videos (K, ...)."""
        out = per_frame.new_zeros((self.n_videos,) + per_frame.shape[1:])
        return out.index_add_(0, self.video, per_frame)

    def cost(self, s: _State) -> torch.Tensor:
        """(K,) the objective E_v of every video."""
        r = self.residuals(s)
        frame = (r * r).sum(1) + self.settings.beta_weight * (s.beta * s.beta).sum(1)
        return self.per_video(frame) + self.settings.alpha_weight * (s.alpha * s.alpha).sum(1)

    def step(self, s: _State, damping: torch.Tensor) -> _State:
        """One damped Gauss-Newton step for every video, by Schur complement on alpha."""
        cfg, video = self.settings, self.video
        alpha_f = s.alpha[video]
        r = self.residuals(s)                                                           # (N, M)
        j_pose, j_beta, j_alpha = (self._weighted(j).flatten(1, 2)
                                   for j in _jacobians(self.basis, s.pose, s.beta, alpha_f))
        j_frame = torch.cat([j_pose, j_beta], -1)                                       # (N, M, P)
        n_pose = j_pose.shape[-1]
        reg_frame = torch.cat([torch.zeros(n_pose, dtype=r.dtype),
                               torch.full((j_beta.shape[-1],), cfg.beta_weight, dtype=r.dtype)])
        jt = j_frame.transpose(1, 2)
        h_ff = jt @ j_frame + torch.diag(reg_frame)                                     # (N, P, P)
        h_fa = jt @ j_alpha                                                             # (N, P, I)
        g_f = (jt @ r[..., None])[..., 0] + reg_frame * torch.cat([torch.zeros_like(s.pose), s.beta], -1)
        h_aa = self.per_video(j_alpha.transpose(1, 2) @ j_alpha)
        h_aa = h_aa + cfg.alpha_weight * torch.eye(h_aa.shape[-1], dtype=r.dtype)       # (K, I, I)
        g_a = self.per_video((j_alpha.transpose(1, 2) @ r[..., None])[..., 0]) + cfg.alpha_weight * s.alpha

        h_ff = _damped(h_ff, damping[video])
        h_aa = _damped(h_aa, damping)
        # The damped per-frame blocks are small, symmetric positive definite and well
        # conditioned: one batched inverse is far faster on the CPU than batched solves.
        inverse = torch.linalg.inv(h_ff)                                                # (N, P, P)
        inv_h_fa = inverse @ h_fa                                                       # (N, P, I)
        inv_g_f = inverse @ g_f[..., None]                                              # (N, P, 1)
        schur = h_aa - self.per_video(h_fa.transpose(1, 2) @ inv_h_fa)
        rhs = g_a - self.per_video((h_fa.transpose(1, 2) @ inv_g_f)[..., 0])
        d_alpha = -torch.linalg.solve(schur, rhs[..., None])[..., 0]                   # (K, I)
        d_frame = -(inv_g_f + inv_h_fa @ d_alpha[video][..., None])[..., 0]            # (N, P)
        return _State(s.pose + d_frame[:, :n_pose], s.beta + d_frame[:, n_pose:], s.alpha + d_alpha)

    def error_px(self, s: _State) -> torch.Tensor:
        """(N,) mean reprojection distance over each frame's usable landmarks, px."""
        proj = project_landmarks(self.basis, s.pose, s.beta, s.alpha[self.video])
        usable = self.weight > 0
        dist = torch.where(usable, (proj - self.observed).norm(dim=-1), 0.0)
        return dist.sum(1) / usable.sum(1)


def _damped(h: torch.Tensor, damping: torch.Tensor) -> torch.Tensor:
    """H + mu diag(H) (Marquardt), with a floor on diag(H) so no direction is left undamped."""
    diagonal = torch.diagonal(h, dim1=-2, dim2=-1).clamp(min=1e-9)
    return h + torch.diag_embed(damping[:, None] * diagonal)


def _select(mask_video: torch.Tensor, video: torch.Tensor, new: _State, old: _State) -> _State:
    frame = mask_video[video][:, None]
    return _State(torch.where(frame, new.pose, old.pose), torch.where(frame, new.beta, old.beta),
                  torch.where(mask_video[:, None], new.alpha, old.alpha))


def _check_landmarks(landmarks: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
    """(N, 68, 2) -> (N, L) 1/0 weights of landmarks both observed (finite) and in the model."""
    if landmarks.ndim != 3 or landmarks.shape[1:] != (N_LANDMARKS, 2):
        raise ValueError(f"landmarks have shape {tuple(landmarks.shape)}, expected (frames, 68, 2)")
    weight = torch.isfinite(landmarks[:, usable]).all(-1).to(torch.float64)
    few = torch.nonzero(weight.sum(1) < MIN_LANDMARKS)
    if len(few):
        frame = int(few[0])
        raise ValueError(f"frame {frame}: {int(weight[frame].sum())} usable landmarks, expected at "
                         f"least {MIN_LANDMARKS} (NaN marks a landmark that was not found)")
    return weight


@contextlib.contextmanager
def torch_threads(n: Optional[int]) -> Iterator[None]:
    """Run the block with n torch intra-op threads (None: unchanged), then restore the setting."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fit_videos(model: MorphableModel, landmarks, video_of_frame, settings: FitSettings = FitSettings(),
               on_iteration: Optional[Callable[[int, float], None]] = None, *,
               threads: Optional[int] = 1) -> BatchFit:
    """Fit many videos at once.

    landmarks: (N, 68, 2) pixels (x, y; pixel centres at integers), NaN where not found.
    video_of_frame: (N,) int video number of each frame, 0 .. n_videos - 1 (any order).
    on_iteration(iteration, total_cost): called after each iteration (e.g. to log progress).
    Landmarks the model does not define (landmark_ids == -1) and NaN landmarks are ignored;
    a frame with fewer than MIN_LANDMARKS usable ones is a ValueError naming its row.
    threads: torch threads while fitting (None: the caller's). The tensors are small: one thread
        is about as fast as several, many times faster when the cores are shared, and makes the
        result independent of the machine's core count.
    """
    with torch_threads(threads):
        return _fit(model, landmarks, video_of_frame, settings, on_iteration)


def _fit(model, landmarks, video_of_frame, settings, on_iteration) -> BatchFit:
    basis = LandmarkBasis.of(model)
    lms = torch.as_tensor(np.array(landmarks, dtype=np.float64))
    weight = _check_landmarks(lms, basis.usable)
    observed = torch.nan_to_num(lms[:, basis.usable], nan=0.0)
    video = torch.as_tensor(np.asarray(video_of_frame), dtype=torch.int64)
    if video.shape != (lms.shape[0],) or (video.numel() and video.min() < 0):
        raise ValueError(f"video_of_frame has shape {tuple(video.shape)} or negative ids; expected "
                         f"({lms.shape[0]},) ids >= 0")
    n_videos = int(video.max()) + 1 if video.numel() else 0
    problem = _Problem(basis, observed, weight, video, n_videos, settings)

    state = _State(similarity_pose(basis.mean[:, :2], observed, weight),
                   torch.zeros(lms.shape[0], model.n_expr, dtype=torch.float64),
                   torch.zeros(n_videos, model.n_id, dtype=torch.float64))
    cost = problem.cost(state)
    damping = torch.full((n_videos,), DAMPING_START, dtype=torch.float64)
    stalled = torch.zeros(n_videos, dtype=torch.int64)
    done = 0
    for done in range(1, settings.iterations + 1):
        active = stalled < STALL_ITERATIONS
        if not bool(active.any()):
            break
        candidate = problem.step(state, damping)
        new_cost = problem.cost(candidate)
        better = (new_cost < cost) & active
        state = _select(better, video, candidate, state)
        improved = torch.where(better, cost - new_cost, 0.0) > STALL_TOL * cost
        cost = torch.where(better, new_cost, cost)
        damping = torch.where(better, damping * DAMPING_SHRINK, damping * DAMPING_GROW).clamp(*DAMPING_RANGE)
        stalled = torch.where(improved, 0, stalled + 1)
        if on_iteration is not None:
            on_iteration(done, float(cost.sum()))
    return BatchFit(state.alpha.numpy().astype(np.float32), state.beta.numpy().astype(np.float32),
                    state.pose.numpy().astype(np.float32),
                    problem.error_px(state).numpy().astype(np.float32), done)


def fit_video(model: MorphableModel, landmarks, settings: FitSettings = FitSettings()) -> VideoFit:
    """Fit one video: landmarks (T, 68, 2) -> alpha (n_id,), beta (T, n_expr), pose (T, 6) and
    the per-frame reprojection error in px (T,)."""
    n_frames = np.asarray(landmarks).shape[0]
    fit = fit_videos(model, landmarks, np.zeros(n_frames, np.int64), settings)
    return VideoFit(fit.alpha[0], fit.beta, fit.pose, fit.error_px)
