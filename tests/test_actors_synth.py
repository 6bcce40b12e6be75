"""actors-synth: determinism, splits, ground truth on the drawn figure, distinct actions."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from frgan.data import actors_synth
from frgan.data.records import SPLITS
from frgan.data.skeleton import ACTIONS, JOINT_NAMES, LIMBS, N_JOINTS

SIZE, ACTORS, FRAMES = 32, 3, 12


@pytest.fixture(scope="module")
def videos():
    return list(actors_synth.iter_videos(SIZE, ACTORS, FRAMES, seed=3, return_masks=True))


@pytest.fixture(scope="module")
def unmirrored():
    """Six actors per action, never mirrored, for comparing motions across actions."""
    return list(actors_synth.iter_videos(SIZE, 6, 24, seed=11, mirror_prob=0.0))


def test_skeleton_constants():
    assert N_JOINTS == 13 and JOINT_NAMES[0] == "head" and JOINT_NAMES[12] == "right_ankle"
    assert len(LIMBS) == 12 and len(set(LIMBS)) == 12
    assert {j for limb in LIMBS for j in limb} == set(range(13))  # a tree over all joints
    assert ACTIONS == ("baseball_pitch", "baseball_swing", "clean_and_jerk", "golf_swing",
                       "jumping_jacks", "jump_rope", "tennis_forehand", "tennis_serve")


def test_records_have_the_promised_form(videos):
    assert len(videos) == ACTORS * len(ACTIONS)
    for rec in videos:
        assert rec.frames.shape == (FRAMES, SIZE, SIZE, 3) and rec.frames.dtype == np.uint8
        assert rec.gt["joints"].shape == (FRAMES, 13, 2) and rec.gt["joints"].dtype == np.float32
        assert rec.gt["visibility"].shape == (FRAMES, 13) and rec.gt["visibility"].dtype == np.float32
        assert set(np.unique(rec.gt["visibility"])) <= {0.0, 1.0}
        assert rec.clip_id == f"{rec.subject}_{rec.label}" and rec.subject.startswith("a")
    assert [r.clip_id for r in videos[:2]] == ["a000_baseball_pitch", "a000_baseball_swing"]
    assert len({r.clip_id for r in videos}) == len(videos)


def test_same_arguments_give_byte_identical_videos(videos):
    again = list(actors_synth.iter_videos(SIZE, ACTORS, FRAMES, seed=3, return_masks=True))
    for a, b in zip(videos, again, strict=True):
        assert a.clip_id == b.clip_id and a.split == b.split
        assert a.frames.tobytes() == b.frames.tobytes()
        for key in a.gt:
            assert a.gt[key].tobytes() == b.gt[key].tobytes()


def test_seed_changes_the_videos(videos):
    other = actors_synth.make_video(0, ACTIONS[0], SIZE, FRAMES, seed=4)
    assert other.frames.tobytes() != videos[0].frames.tobytes()


def test_a_video_does_not_depend_on_how_many_actors_are_asked_for(videos):
    alone = actors_synth.make_video(1, "golf_swing", SIZE, FRAMES, seed=3, return_masks=True)
    in_set = next(r for r in videos if r.clip_id == "a001_golf_swing")
    assert alone.frames.tobytes() == in_set.frames.tobytes()


def test_split_of_video_cuts_in_thirds():
    assert [actors_synth.split_of_video(i, 3) for i in range(3)] == list(SPLITS)
    assert [actors_synth.split_of_video(i, 6) for i in range(6)] == ["gm", "gm", "gr", "gr", "test", "test"]
    with pytest.raises(ValueError):
        actors_synth.split_of_video(3, 3)


def test_splits_are_subject_disjoint_and_each_holds_every_action(videos):
    subjects = {s: {r.subject for r in videos if r.split == s} for s in SPLITS}
    assert all(subjects.values())
    for a, b in itertools.combinations(SPLITS, 2):
        assert not subjects[a] & subjects[b]
    for split in SPLITS:
        assert {r.label for r in videos if r.split == split} == set(ACTIONS)


def test_visible_joints_lie_on_the_drawn_body(videos):
    for rec in videos:
        joints, visible, body = rec.gt["joints"], rec.gt["visibility"] > 0, rec.gt["body_mask"] > 0
        t, j = np.nonzero(visible)
        col = np.floor(joints[t, j, 0] + 0.5).astype(int)
        row = np.floor(joints[t, j, 1] + 0.5).astype(int)
        assert body[t, row, col].all(), rec.clip_id
        # The drawn body pixel nearest each visible joint is within 2 px of it.
        ys, xs = np.mgrid[0:SIZE, 0:SIZE]
        for ti, ji in zip(t[::7], j[::7]):
            d = np.hypot(xs - joints[ti, ji, 0], ys - joints[ti, ji, 1])[body[ti]]
            assert d.min() <= 2.0


def test_the_body_is_drawn_over_the_background_in_the_frames():
    """Same video with and without its figure: pixels differ exactly where the body mask is."""
    rec = actors_synth.make_video(2, "jumping_jacks", SIZE, 4, seed=5, props=False, return_masks=True)
    body = rec.gt["body_mask"] > 0
    # Frames differ between time steps only where the figure (or its shadow) moved.
    moved = np.abs(rec.frames[0].astype(int) - rec.frames[2].astype(int)).sum(-1) > 0
    assert (moved & ~(body[0] | body[2])).mean() < 0.05
    # A visible joint's pixel is not the background colour seen there in a frame without
    # the figure on it (the figure moves, so some frame shows the background at that pixel).
    diffs = []
    for t in range(4):
        for j in np.nonzero(rec.gt["visibility"][t])[0]:
            x, y = np.floor(rec.gt["joints"][t, j] + 0.5).astype(int)
            bare = [u for u in range(4) if not body[u, y, x]]
            if bare:
                diffs.append(np.abs(rec.frames[t, y, x].astype(int) - rec.frames[bare[0], y, x].astype(int)).sum())
    assert diffs and np.median(diffs) > 30


def test_the_person_fills_most_of_the_frame_height(videos):
    for rec in videos:
        rows = np.nonzero(rec.gt["body_mask"].any(axis=(0, 2)))[0]
        assert rows.max() - rows.min() + 1 >= 0.7 * SIZE, rec.clip_id


def test_side_views_hide_far_joints_and_front_views_do_not(unmirrored):
    hidden = {a: np.mean([1 - r.gt["visibility"].mean() for r in unmirrored if r.label == a]) for a in ACTIONS}
    assert hidden["baseball_pitch"] > 0.1 and hidden["tennis_serve"] > 0.1
    assert hidden["jumping_jacks"] < 0.05


def _features(rec) -> np.ndarray:
    """Per-video summary of the motion, free of framing: joints relative to the mean hip
    centre in units of the trunk's length, then each joint's mean and spread over time."""
    joints = rec.gt["joints"].astype(np.float64)
    hips, shoulders = joints[:, 7:9].mean(axis=1), joints[:, 1:3].mean(axis=1)
    body = (joints - hips.mean(axis=0)) / np.linalg.norm(shoulders - hips, axis=-1).mean()
    return np.concatenate([body.mean(axis=0).ravel(), body.std(axis=0).ravel()])


def test_all_eight_actions_have_distinct_motions(unmirrored):
    assert {r.label for r in unmirrored} == set(ACTIONS)
    mean_traj = {a: np.mean([r.gt["joints"] / SIZE for r in unmirrored if r.label == a], axis=0)
                 for a in ACTIONS}
    for a, b in itertools.combinations(ACTIONS, 2):
        rms = np.sqrt(((mean_traj[a] - mean_traj[b]) ** 2).sum(-1).mean())
        assert rms > 0.04, (a, b, rms)
    # Nearest centroid, leaving each video out: the actions are told apart by their motion.
    feats = np.stack([_features(r) for r in unmirrored])
    labels = np.array([r.label for r in unmirrored])
    correct = 0
    for i in range(len(unmirrored)):
        keep = np.arange(len(unmirrored)) != i
        centroids = {a: feats[keep & (labels == a)].mean(axis=0) for a in ACTIONS}
        guess = min(ACTIONS, key=lambda a: np.linalg.norm(feats[i] - centroids[a]))
        correct += guess == labels[i]
    assert correct / len(unmirrored) >= 0.9


def test_actors_look_different(videos):
    first = [r.frames[0].reshape(-1, 3).mean(axis=0) for r in videos if r.label == "golf_swing"]
    assert np.ptp(np.stack(first), axis=0).max() > 10


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        actors_synth.make_video(0, "golf_swing", 8, 4, seed=0)
    with pytest.raises(ValueError):
        actors_synth.make_video(0, "bowling", 32, 4, seed=0)
    with pytest.raises(ValueError):
        next(actors_synth.iter_videos(32, 0, 4, seed=0))
