"""The 3DMM landmark fitter and the real-model loaders (SFM via eos-py, BFM 2009 .mat)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import savemat

from frgan.conditions import fitting
from frgan.conditions.fitting import FitSettings, fit_video, fit_videos
from frgan.conditions.models_real import (ModelFileError, load_bfm, load_sfm, outward_triangles,
                                          read_ibug_mapping)
from frgan.conditions.morphable import N_LANDMARKS, MorphableModel, procedural_face_model
from frgan.conditions.render import rotation_matrix
from frgan.data.faces_synth import landmarks_px

SFM_FOLDER = Path(__file__).resolve().parent.parent.parent / "shared" / "3dmm" / "sfm"
needs_sfm = pytest.mark.skipif(not (SFM_FOLDER / "sfm_shape_3448.bin").is_file(),
                               reason=f"Surrey Face Model files not found in {SFM_FOLDER}")
# Near-pure least squares: with exact landmarks the regulariser only biases the answer.
EXACT = FitSettings(alpha_weight=1e-6, beta_weight=1e-6)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return procedural_face_model()


def synthetic_video(model: MorphableModel, n_frames: int, seed: int):
    """Known alpha (n_id,), beta (T, n_expr) and pose (T, 6) with head turns up to 15 degrees."""
    rng = np.random.default_rng(seed)
    alpha = np.clip(rng.normal(0, 1, model.n_id), -2.5, 2.5).astype(np.float32)
    beta = np.zeros((n_frames, model.n_expr), np.float32)
    beta[:, rng.integers(model.n_expr)] = np.linspace(0.0, 1.0, n_frames)
    beta[:, rng.integers(model.n_expr)] += np.linspace(0.0, 0.5, n_frames)
    pose = np.zeros((n_frames, 6), np.float32)
    pose[:, :3] = np.radians(rng.uniform(-15, 15, (n_frames, 3)))
    pose[:, 3:5] = 32 + rng.normal(0, 2, (n_frames, 2))
    pose[:, 5] = 25.0                                     # px per unit: a 64 px MUG-like crop
    return alpha, beta, pose


# ---------------------------------------------------------------------------------------------
# the fitter

def test_rotation_and_jacobians_match_the_renderer_and_autograd(model):
    torch.manual_seed(0)
    pose = torch.randn(3, 6, dtype=torch.float64)
    pose[:, 5] = 20.0
    beta = torch.randn(3, model.n_expr, dtype=torch.float64)
    alpha = torch.randn(3, model.n_id, dtype=torch.float64)
    rot, _ = fitting.rotation_and_derivatives(pose)
    torch.testing.assert_close(rot, rotation_matrix(pose[:, 0], pose[:, 1], pose[:, 2]))
    basis = fitting.LandmarkBasis.of(model)
    closed_form = fitting._jacobians(basis, pose, beta, alpha)
    for i in range(3):
        auto = torch.autograd.functional.jacobian(
            lambda p, b, a: fitting.project_landmarks(basis, p[None], b[None], a[None])[0],
            (pose[i], beta[i], alpha[i]))
        for ours, theirs in zip(closed_form, auto):
            torch.testing.assert_close(ours[i], theirs)


def test_projection_matches_the_dataset_landmarks(model):
    alpha, beta, pose = synthetic_video(model, 4, seed=1)
    basis = fitting.LandmarkBasis.of(model)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)   # noqa: E731
    ours = fitting.project_landmarks(basis, t(pose), t(beta), t(np.repeat(alpha[None], 4, 0)))
    np.testing.assert_allclose(ours.numpy(), landmarks_px(model, alpha, beta, pose), atol=1e-3)


def test_fitter_recovers_the_ground_truth_of_the_procedural_model(model):
    """Exact landmarks of known parameters, fitted with a negligible regulariser.

    Tolerances: the data are exact, so the reprojection error is limited only by convergence
    (< 0.01 px, far below the brief's 0.5 px); beta and the pose are determined by 68 landmarks
    under 15-degree head turns (beta < 0.01 of a full expression, angles < 0.05 degrees).
    alpha only up to what 2D landmarks see: depth-only components are seen through the head
    turns, but `forehead_slope` moves no landmark (< 0.001 units) and stays unidentified, so it is
    left out of the alpha check.
    """
    identified = np.abs(model.id_basis[:, model.landmark_ids]).max(axis=(1, 2)) > 0.005
    assert identified.sum() == model.n_id - 1
    for seed in range(2):
        alpha, beta, pose = synthetic_video(model, 8, seed)
        fit = fit_video(model, landmarks_px(model, alpha, beta, pose), EXACT)
        assert fit.alpha.shape == (model.n_id,) and fit.beta.shape == (8, model.n_expr)
        assert fit.pose.shape == (8, 6) and fit.error_px.shape == (8,)
        assert fit.error_px.max() < 0.01
        assert np.abs(fit.beta - beta).max() < 0.01
        assert np.degrees(np.abs(fit.pose[:, :3] - pose[:, :3]).max()) < 0.05
        assert np.abs(fit.pose[:, 5] / pose[:, 5] - 1).max() < 1e-3
        assert np.abs(fit.alpha - alpha)[identified].max() < 0.05


def test_default_regulariser_stays_close(model):
    """With the defaults (weights 1e-3, tuned for dlib's noise) the fit is biased towards 0 but
    still reprojects within 0.1 px and keeps beta within 0.25 of a full expression."""
    alpha, beta, pose = synthetic_video(model, 8, seed=3)
    fit = fit_video(model, landmarks_px(model, alpha, beta, pose))
    assert fit.error_px.max() < 0.1
    assert np.abs(fit.beta - beta).max() < 0.25


def test_missing_landmarks_and_undefined_ones_are_ignored(model):
    """landmark_ids == -1 (a model without the jaw line) and NaN observations (a landmark not
    found) take no part; garbage at those points changes nothing."""
    ids = model.landmark_ids.copy()
    ids[:17] = -1
    jawless = MorphableModel(model.mean, model.id_basis, model.expr_basis, model.triangles, ids,
                             model.expression_names)
    alpha, beta, pose = synthetic_video(model, 6, seed=4)
    lms = landmarks_px(model, alpha, beta, pose).astype(np.float64)
    lms[:, :17] = 1e6                        # the model has no such landmarks
    lms[2, 40:44] = np.nan                   # not found in frame 2
    fit = fit_video(jawless, lms, EXACT)
    assert np.isfinite(fit.error_px).all() and fit.error_px.max() < 0.01
    assert np.abs(fit.beta - beta).max() < 0.02


def test_too_few_landmarks_or_a_wrong_shape_is_a_clear_error(model):
    alpha, beta, pose = synthetic_video(model, 4, seed=5)
    lms = landmarks_px(model, alpha, beta, pose)
    lms[3] = np.nan
    with pytest.raises(ValueError, match="frame 3: 0 usable landmarks"):
        fit_video(model, lms)
    with pytest.raises(ValueError, match=r"shape \(4, 60, 2\), expected \(frames, 68, 2\)"):
        fit_video(model, lms[:, :60])


def test_videos_are_independent_of_their_batch_and_deterministic(model):
    videos = [synthetic_video(model, 5, seed) for seed in (6, 7)]
    lms = np.concatenate([landmarks_px(model, *v) for v in videos])
    together = fit_videos(model, lms, np.repeat([0, 1], 5))
    again = fit_videos(model, lms, np.repeat([0, 1], 5))
    for name in ("alpha", "beta", "pose", "error_px"):
        assert np.array_equal(getattr(together, name), getattr(again, name))
    alone = fit_video(model, lms[5:])
    np.testing.assert_allclose(alone.alpha, together.alpha[1], atol=1e-5)
    np.testing.assert_allclose(alone.beta, together.beta[5:], atol=1e-5)


# ---------------------------------------------------------------------------------------------
# the Surrey Face Model

def test_ibug_mapping_leaves_the_contour_out(tmp_path):
    path = tmp_path / "map.txt"
    path.write_text("[landmark_mappings]\n 9 = 33 # chin\n31 = 114\n")
    ids = read_ibug_mapping(path)
    assert ids.shape == (N_LANDMARKS,) and ids[8] == 33 and ids[30] == 114
    assert (np.delete(ids, [8, 30]) == -1).all()


@needs_sfm
def test_sfm_loads_in_model_space():
    sfm = load_sfm(SFM_FOLDER)
    assert (sfm.n_vertices, sfm.n_id, sfm.n_expr) == (3448, 63, 6)
    assert sfm.expression_names == ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    contour = list(range(0, 8)) + list(range(9, 17)) + [60, 64]       # iBUG 1-8, 10-17, 61, 65
    assert (sfm.landmark_ids[contour] == -1).all() and (np.delete(sfm.landmark_ids, contour) >= 0).all()
    np.testing.assert_allclose(sfm.mean[:, 0].max() - sfm.mean[:, 0].min(), 2.0, rtol=1e-5)
    lms = sfm.mean[sfm.landmark_ids]
    assert lms[36, 0] < lms[45, 0] and lms[19, 1] > lms[57, 1] > lms[8, 1]    # x right, y up
    assert lms[30, 2] > lms[36, 2]                                               # nose to the viewer
    corners = sfm.mean[sfm.triangles]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    assert normals[corners[:, :, 2].mean(1) > 0.3, 2].mean() > 0               # front faces the viewer


@needs_sfm
def test_sfm_fits_its_own_landmarks():
    """The SFM lacks the jaw line and two mouth corners; the other 50 landmarks are enough for a
    sub-pixel fit (tolerance as the procedural test) and betas within 0.05."""
    sfm = load_sfm(SFM_FOLDER)
    alpha, beta, pose = synthetic_video(sfm, 6, seed=8)
    lms = landmarks_px(sfm, alpha, beta, pose)
    lms[:, sfm.landmark_ids < 0] = np.nan          # what a landmark map of the SFM gives
    fit = fit_video(sfm, lms, EXACT)
    assert fit.error_px.max() < 0.01
    assert np.abs(fit.beta - beta).max() < 0.05


# ---------------------------------------------------------------------------------------------
# the Basel Face Model 2009 (a tiny fake with its fields)

def _tiny_bfm(n_components: int = 2) -> dict:
    """A tetrahedron in the BFM 2009's layout: shapeMU (3V, 1), shapePC (3V, n), shapeEV (n, 1),
    tl (F, 3) 1-based, keypoints (68,) 1-based."""
    vertices = np.array([[0, 0, 1], [1, 0, -1], [-1, 0.8, -1], [-1, -0.8, -1]], np.float64) * 5e4
    tl = np.array([[1, 2, 3], [1, 3, 4], [1, 4, 2], [2, 4, 3]])                 # outward
    pcs = np.linalg.qr(np.random.default_rng(0).normal(size=(12, n_components)))[0]
    return {"shapeMU": vertices.reshape(-1, 1), "shapePC": pcs, "shapeEV": np.arange(1, n_components + 1.0)[:, None],
            "tl": tl.astype(np.float64), "keypoints": np.resize(np.arange(1, 5), N_LANDMARKS)[None].astype(np.float64)}


def test_bfm_loads_from_its_fields(tmp_path):
    fields = _tiny_bfm()
    savemat(tmp_path / "bfm.mat", fields)
    bfm = load_bfm(tmp_path / "bfm.mat")
    assert (bfm.n_vertices, bfm.n_id, bfm.n_expr) == (4, 2, 0)
    np.testing.assert_allclose(bfm.mean[:, 0].max() - bfm.mean[:, 0].min(), 2.0)
    # Components are scaled by their standard deviations, in the same units as the mean.
    unit = 5e4
    np.testing.assert_allclose(bfm.id_basis[1], fields["shapePC"][:, 1].reshape(4, 3) * 2.0 / unit, atol=1e-6)
    np.testing.assert_array_equal(bfm.landmark_ids, np.resize(np.arange(4), N_LANDMARKS))
    np.testing.assert_array_equal(bfm.triangles, fields["tl"].astype(int) - 1)


def test_bfm_with_an_expression_basis_and_reversed_winding(tmp_path):
    fields = _tiny_bfm()
    fields["tl"] = fields["tl"][:, ::-1].copy()
    savemat(tmp_path / "bfm.mat", fields)
    savemat(tmp_path / "exp.mat", {"w_exp": np.eye(12)[:, :3], "sigma_exp": np.array([1.0, 2.0, 3.0])})
    bfm = load_bfm(tmp_path / "bfm.mat", expression_path=tmp_path / "exp.mat")
    assert bfm.n_expr == 3
    np.testing.assert_array_equal(bfm.triangles, outward_triangles(bfm.mean, bfm.triangles))
    np.testing.assert_array_equal(bfm.triangles, _tiny_bfm()["tl"].astype(int) - 1)


@pytest.mark.parametrize("missing", ["shapeMU", "shapePC", "shapeEV", "tl"])
def test_bfm_missing_a_field_names_the_file_and_the_field(tmp_path, missing):
    fields = _tiny_bfm()
    del fields[missing]
    path = tmp_path / "broken.mat"
    savemat(path, fields)
    with pytest.raises(ModelFileError) as info:
        load_bfm(path)
    message = str(info.value)
    assert message == f"{path}: missing field '{missing}'" and "\n" not in message


def test_bfm_expression_file_missing_its_basis_and_absent_landmarks(tmp_path):
    fields = _tiny_bfm()
    savemat(tmp_path / "bfm.mat", fields)
    savemat(tmp_path / "exp.mat", {"sigma_exp": np.ones(3)})
    with pytest.raises(ModelFileError, match=r"exp\.mat: missing field 'w_exp'"):
        load_bfm(tmp_path / "bfm.mat", expression_path=tmp_path / "exp.mat")
    del fields["keypoints"]
    savemat(tmp_path / "nokeys.mat", fields)
    with pytest.raises(ModelFileError, match="face_landmarks_path"):
        load_bfm(tmp_path / "nokeys.mat")
    (tmp_path / "ids.txt").write_text(" ".join(["-1"] * 60 + ["0", "1", "2", "3"] * 2))
    assert (load_bfm(tmp_path / "nokeys.mat", landmarks_path=tmp_path / "ids.txt").landmark_ids[:60] == -1).all()
    with pytest.raises(ModelFileError, match="file not found"):
        load_bfm(tmp_path / "absent.mat")
