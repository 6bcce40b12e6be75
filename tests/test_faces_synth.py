"""faces-synth and the morphable-model interface under it."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from frgan.conditions import render
from frgan.conditions.morphable import (EXPRESSION_NAMES, N_LANDMARKS, REGION_NAMES, MorphableModel,
                                        procedural_face_model)
from frgan.data import faces_synth as fs
from frgan.data.records import SPLITS

SIZE, FRAMES = 32, 8


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return procedural_face_model()


@pytest.fixture(scope="module")
def videos():
    """Three subjects x two expressions, small: enough for every per-video check."""
    return list(fs.iter_videos(SIZE, 3, FRAMES, seed=7, expressions=("happiness", "surprise")))


# ---------------------------------------------------------------------------------------------
# the morphable model

def _landmarks(model, expression=None, amount=1.0):
    beta = np.zeros(model.n_expr, np.float32)
    if expression is not None:
        beta[EXPRESSION_NAMES.index(expression)] = amount
    return model.landmarks(np.zeros(model.n_id, np.float32), beta)


def test_procedural_model_has_the_interface(model):
    v = model.n_vertices
    assert 1000 <= v <= 4000
    assert model.mean.shape == (v, 3) and model.mean.dtype == np.float32
    assert model.id_basis.shape == (model.n_id, v, 3) and 10 <= model.n_id <= 20
    assert model.expr_basis.shape == (6, v, 3)
    assert list(model.expression_names) == list(EXPRESSION_NAMES) == list(fs.EXPRESSIONS)
    assert model.triangles.dtype == np.int64 and model.triangles.max() < v
    assert model.landmark_ids.shape == (N_LANDMARKS,) and len(set(model.landmark_ids.tolist())) == N_LANDMARKS
    assert set(np.unique(model.regions)) == set(range(len(REGION_NAMES)))


def test_shape_is_linear_and_the_same_in_numpy_and_torch(model):
    rng = np.random.default_rng(0)
    alpha = rng.normal(size=(4, model.n_id)).astype(np.float32)
    beta = rng.uniform(size=(4, model.n_expr)).astype(np.float32)
    numpy_shape = model.shape(alpha, beta)
    torch_shape = model.shape(torch.from_numpy(alpha), torch.from_numpy(beta))
    assert isinstance(torch_shape, torch.Tensor) and numpy_shape.shape == (4, model.n_vertices, 3)
    np.testing.assert_allclose(torch_shape.numpy(), numpy_shape, atol=1e-5)
    by_hand = (model.mean + np.einsum("i,ivc->vc", alpha[1], model.id_basis)
               + np.einsum("j,jvc->vc", beta[1], model.expr_basis))
    np.testing.assert_allclose(numpy_shape[1], by_hand, atol=1e-5)
    # One identity broadcasts over a sequence of expressions.
    np.testing.assert_allclose(model.shape(alpha[0], beta)[2], model.shape(alpha[0], beta[2]), atol=1e-6)


def test_a_generic_model_gets_generic_expression_names():
    mean = np.zeros((4, 3), np.float32)
    generic = MorphableModel(mean, np.zeros((2, 4, 3)), np.ones((3, 4, 3)), np.array([[0, 1, 2], [0, 2, 3]]),
                             np.zeros(68, np.int64))
    assert generic.expression_names == ["expr_0", "expr_1", "expr_2"]
    np.testing.assert_allclose(generic.shape(np.zeros(2), np.array([1.0, 0.0, 2.0])), np.full((4, 3), 3.0))
    with pytest.raises(ValueError):
        MorphableModel(mean, np.zeros((2, 4, 3)), np.ones((3, 4, 3)), np.array([[0, 1, 9]]), np.zeros(68, np.int64))


def test_landmarks_are_in_ibug_order_on_the_neutral_face(model):
    lm = _landmarks(model)
    x, y = lm[:, 0], lm[:, 1]
    assert x[0] < x[8] < x[16] and y[8] < y[0]                        # jaw: left, chin at the bottom
    assert x[36] < x[39] < x[42] < x[45]                              # eyes: image left first
    assert y[37] > y[41] and y[44] > y[46]                            # upper lids above lower lids
    assert y[19] > y[37] > y[30] > y[51] > y[57] > y[8]               # brow > eye > nose > lips > chin
    assert x[48] < x[51] < x[54] and abs(x[51]) < 1e-6
    np.testing.assert_allclose(lm[62], lm[66], atol=1e-6)            # the lips meet at rest
    np.testing.assert_allclose(x[:17], -x[16::-1], atol=0.04)         # symmetric jaw


@pytest.mark.parametrize("expression, check", [
    ("happiness", lambda d, n, a: d[[48, 54], 1].min() > 0.03 and (a[54, 0] - a[48, 0]) > (n[54, 0] - n[48, 0])),
    ("surprise", lambda d, n, a: d[17:27, 1].mean() > 0.03 and d[8, 1] < -0.1 and a[62, 1] - a[66, 1] > 0.1),
    ("anger", lambda d, n, a: d[[21, 22], 1].max() < -0.03 and (a[22, 0] - a[21, 0]) < (n[22, 0] - n[21, 0])),
    ("sadness", lambda d, n, a: d[[48, 54], 1].max() < -0.03 and d[[21, 22], 1].min() > 0.03),
    ("fear", lambda d, n, a: d[17:27, 1].mean() > 0.03 and (a[54, 0] - a[48, 0]) > (n[54, 0] - n[48, 0]) + 0.03
     and (a[37, 1] - a[41, 1]) > (n[37, 1] - n[41, 1])),
    ("disgust", lambda d, n, a: d[51, 1] > 0.02 and d[[31, 35], 1].min() > 0.01 and d[[21, 22], 1].max() < 0),
])
def test_each_expression_moves_the_landmarks_the_intended_way(model, expression, check):
    neutral, apex = _landmarks(model), _landmarks(model, expression)
    assert check(apex - neutral, neutral, apex), expression


def test_expressions_keep_the_lips_from_crossing(model):
    for name in EXPRESSION_NAMES:
        apex = _landmarks(model, name)
        assert (apex[[61, 62, 63], 1] >= apex[[67, 66, 65], 1] - 1e-6).all(), name


# ---------------------------------------------------------------------------------------------
# the generator

def test_split_of_subject_gives_three_even_disjoint_groups():
    for n in range(3, 13):
        groups = [fs.split_of_subject(i, n) for i in range(n)]
        assert groups == sorted(groups, key=SPLITS.index)                  # consecutive thirds
        sizes = [groups.count(s) for s in SPLITS]
        assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1 and sum(sizes) == n
    assert [fs.split_of_subject(i, 9) for i in range(9)] == ["gm"] * 3 + ["gr"] * 3 + ["test"] * 3
    with pytest.raises(ValueError):
        fs.split_of_subject(9, 9)


def test_records_have_the_promised_shapes_and_names(videos, model):
    assert [v.clip_id for v in videos[:2]] == ["s000_happiness_t0", "s000_surprise_t0"]
    for v in videos:
        assert v.frames.shape == (FRAMES, SIZE, SIZE, 3) and v.frames.dtype == np.uint8
        assert v.subject == v.clip_id[:4] and v.label in v.clip_id
        assert v.split == fs.split_of_subject(int(v.subject[1:]), 3)
        assert v.gt["landmarks"].shape == (FRAMES, 68, 2)
        assert v.gt["alpha"].shape == (FRAMES, model.n_id)
        assert v.gt["beta"].shape == (FRAMES, 6) and v.gt["pose"].shape == (FRAMES, 6)
        assert all(a.dtype == np.float32 for a in v.gt.values())


def test_generation_is_deterministic(videos):
    again = list(fs.iter_videos(SIZE, 3, FRAMES, seed=7, expressions=("happiness", "surprise")))
    for a, b in zip(videos, again, strict=True):
        assert a.clip_id == b.clip_id and a.frames.tobytes() == b.frames.tobytes()
        assert all(a.gt[k].tobytes() == b.gt[k].tobytes() for k in a.gt)
    other_seed = next(fs.iter_videos(SIZE, 3, FRAMES, seed=8, expressions=("happiness",)))
    assert other_seed.frames.tobytes() != videos[0].frames.tobytes()


def test_a_subject_does_not_depend_on_how_many_there_are():
    few, many = fs.subjects(3, seed=1), fs.subjects(7, seed=1)
    for a, b in zip(few, many):
        assert np.array_equal(a.alpha, b.alpha) and a.appearance == b.appearance and a.framing == b.framing


def test_subjects_serialise_to_json_and_back():
    for s in fs.subjects(3, seed=2):
        d = json.loads(json.dumps(s.to_dict()))
        back = fs.Subject.from_dict(d)
        assert back.appearance == s.appearance and back.framing == s.framing
        np.testing.assert_array_equal(back.alpha, s.alpha)


def test_expression_rises_from_neutral_to_a_held_apex(videos):
    for v in videos:
        e = EXPRESSION_NAMES.index(v.label)
        curve = v.gt["beta"][:, e]
        assert curve[0] == 0 and 0.75 <= curve[-1] <= 1.0
        assert (np.diff(curve) >= 0).all()
        assert (np.delete(v.gt["beta"], e, axis=1) == 0).all()
        assert not np.array_equal(v.frames[0], v.frames[-1])


def test_pose_jitter_is_small_and_smooth(videos):
    for v in videos:
        angles = np.degrees(v.gt["pose"][:, :3])
        assert np.abs(angles).max() < 20
        assert np.abs(np.diff(angles, axis=0)).max() < 6          # a few degrees per frame at most
        assert np.ptp(v.gt["pose"][:, 5]) == 0                     # the crop's scale is fixed per take


def _fragments(model, video):
    alpha, beta, pose = (torch.from_numpy(video.gt[k]) for k in ("alpha", "beta", "pose"))
    screen = render.project(model.shape(alpha, beta), pose)
    return screen, render.rasterize(screen, torch.from_numpy(model.triangles), SIZE, SIZE, cull_backfaces=True)


def test_landmarks_land_on_the_rendered_face(videos, model):
    for v in videos:
        screen, frags = _fragments(model, v)
        projected = screen[:, torch.from_numpy(model.landmark_ids)]
        lm = torch.from_numpy(v.gt["landmarks"])
        assert (lm - projected[..., :2]).norm(dim=-1).max() < 2.0
        assert (lm >= -0.5).all() and (lm <= SIZE - 0.5).all()              # inside the frame
        cols, rows = lm.round().long().clamp(0, SIZE - 1).unbind(-1)
        frame = torch.arange(FRAMES)[:, None]
        covered = frags.mask[frame, rows, cols]
        assert covered[:, 17:].all(), v.clip_id                       # inner points: never on the background
        # Jaw points sit on the face's outline (as in iBUG), within a pixel of it at 32 px: the
        # pixel holding the point, or one next to it, is covered.
        near = F.max_pool2d(frags.mask[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0
        assert near[frame, rows, cols][:, :17].all(), v.clip_id
        # And mostly it is the landmark's own surface that is seen there, not something in front.
        visible = frags.depth[frame, rows, cols] > projected[..., 2] - 0.15 * v.gt["pose"][0, 5]
        assert visible[:, 17:].float().mean() > 0.9, v.clip_id


def test_the_face_fills_the_frame_like_a_mug_crop(videos):
    for v in videos:
        lm = v.gt["landmarks"][0]
        width = lm[16, 0] - lm[0, 0]
        assert 0.70 * SIZE <= width <= 0.85 * SIZE
        assert abs(lm[:, 0].mean() - (SIZE - 1) / 2) < 0.08 * SIZE


def test_render_face_reproduces_a_video_and_retargets(videos, model):
    subjects = fs.subjects(3, seed=7)
    source, target = videos[1], videos[4]                 # s000 surprise, s002 happiness
    again = fs.render_face(model, subjects[0].appearance, source.gt["alpha"], source.gt["beta"],
                           source.gt["pose"], SIZE, supersample=3)
    assert again.tobytes() == source.frames.tobytes()
    # s000's surprise on s002: s002's face and framing, s000's expression.
    retargeted = fs.render_face(model, subjects[2].appearance, target.gt["alpha"][0], source.gt["beta"],
                                target.gt["pose"], SIZE, supersample=3)
    assert retargeted.shape == source.frames.shape
    assert np.array_equal(retargeted[0], target.frames[0])                 # both start neutral
    assert not np.array_equal(retargeted[-1], target.frames[-1])
    lm = fs.landmarks_px(model, target.gt["alpha"][0], source.gt["beta"], target.gt["pose"])
    assert lm[-1, 66, 1] - lm[-1, 62, 1] > 1.0                             # the mouth is open
