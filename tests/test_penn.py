"""The Penn Action adapter on small fake Penn trees written with PIL and scipy.io.savemat."""
from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from frgan.data import penn
from frgan.data.errors import DatasetError
from frgan.data.records import SPLITS
from frgan.data.skeleton import ACTIONS

W, H = 80, 60      # fake frame size
NFRAMES = 3
SIZE = 32          # output size in these tests
HEAD = (30, 14)    # 1-based Penn coordinates of the head joint, where a white marker is drawn
OTHER_ACTIONS = ("bowl", "squat")  # Penn actions the paper drops


def fake_joints(dx: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(nframes, 13) x and y, 1-based: a figure spanning x 23.5..40, y 14..50, head at HEAD,
    all drifting right by dx plus 1 px per frame."""
    x = np.linspace(22, 40, 13)[None].repeat(NFRAMES, 0) + dx + np.arange(NFRAMES)[:, None]
    y = np.linspace(14, 50, 13)[None].repeat(NFRAMES, 0)
    x[:, 0], y[:, 0] = HEAD[0] + dx + np.arange(NFRAMES), HEAD[1]
    return x, y


def write_label(root: Path, seq: str, action: str, drop: str | None = None, dx: float = 0.0,
                nframes: int = NFRAMES) -> Path:
    x, y = fake_joints(dx)
    fields = dict(action=action, pose="front", x=x, y=y, visibility=np.ones((NFRAMES, 13), bool),
                  bbox=np.tile([20.0, 10.0, 45.0, 52.0], (NFRAMES, 1)), train=np.array([[1]]),
                  dimensions=np.array([[H, W, NFRAMES]]), nframes=np.array([[nframes]]))
    fields.pop(drop, None)
    path = root / "labels" / f"{seq}.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, fields)
    return path


def write_frames(root: Path, seq: str, dx: float = 0.0, n: int = NFRAMES) -> Path:
    folder = root / "frames" / seq
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(n):
        image = np.full((H, W, 3), 50, np.uint8)
        cx, cy = int(HEAD[0] + dx + t) - 1, HEAD[1] - 1      # 0-based pixel of the head joint
        image[cy - 2:cy + 3, cx - 2:cx + 3] = 255
        Image.fromarray(image).save(folder / f"{t + 1:06d}.jpg", quality=95)
    return folder


@pytest.fixture
def penn_root(tmp_path) -> Path:
    """3 sequences of each paper action (ids grouped by action, as in Penn) + 2 dropped ones."""
    root = tmp_path / "penn"
    seq = itertools.count(1)
    for action in ACTIONS:
        for _ in range(3):
            s = f"{next(seq):04d}"
            write_label(root, s, action)
            write_frames(root, s)
    for action in OTHER_ACTIONS:
        s = f"{next(seq):04d}"
        write_label(root, s, action, drop="x")   # dropped before its fields are checked
        write_frames(root, s)
    return root


def test_good_tree_keeps_the_eight_actions_cropped_and_split(penn_root):
    videos = list(penn.iter_videos(penn_root, SIZE, seed=0))
    assert len(videos) == 3 * len(ACTIONS)
    assert {v.label for v in videos} == set(ACTIONS)
    assert [v.clip_id for v in videos[:2]] == ["0001_baseball_pitch", "0002_baseball_pitch"]
    for v in videos:
        assert v.frames.shape == (NFRAMES, SIZE, SIZE, 3) and v.frames.dtype == np.uint8
        assert v.gt["joints"].shape == (NFRAMES, 13, 2) and v.gt["joints"].dtype == np.float32
        assert v.gt["visibility"].dtype == np.float32 and v.gt["visibility"].all()
        assert ((v.gt["joints"] >= -0.5) & (v.gt["joints"] < SIZE - 0.5)).all()
    # Thirds within each action: every split holds every action, and no sequence twice.
    for split in SPLITS:
        assert {v.label for v in videos if v.split == split} == set(ACTIONS)
    subjects = {s: {v.subject for v in videos if v.split == s} for s in SPLITS}
    for a, b in itertools.combinations(SPLITS, 2):
        assert not subjects[a] & subjects[b]
    assert [v.split for v in videos[:3]] == list(SPLITS)


def test_crop_is_the_squared_joint_box_plus_5px(penn_root):
    label = penn.read_label(penn_root / "labels" / "0001.mat")
    # 0-based joints over the video: x 22.5..41, y 13..49 -> with 5 px, x 17..46 and y 8..54
    # (ends inclusive): 30 x 47 px, squared to 47 by padding x by 8 on the left, 9 on the right.
    assert penn.crop_box(label.joints, label.visibility, W, H) == (9, 8, 56, 55)


def test_joints_follow_the_crop_onto_the_image(penn_root):
    video = next(iter(penn.iter_videos(penn_root, SIZE, seed=0)))
    left, top, side = 9, 8, 47
    x, y = fake_joints()
    expected = (np.stack([x, y], -1) - 1 - [left, top] + 0.5) * SIZE / side - 0.5
    np.testing.assert_allclose(video.gt["joints"], expected, atol=1e-4)
    # The white marker drawn at the head joint is where the head joint lands in the crop.
    for t in range(NFRAMES):
        brightness = video.frames[t].astype(float).mean(-1) - 50.0
        ys, xs = np.nonzero(brightness > 0.5 * brightness.max())
        weight = brightness[ys, xs]
        centre = np.array([xs @ weight, ys @ weight]) / weight.sum()
        assert np.hypot(*(centre - video.gt["joints"][t, 0])) <= 0.75


def test_a_box_beyond_the_image_is_clipped(tmp_path):
    root = tmp_path / "penn"
    write_label(root, "0001", "golf_swing", dx=42)   # figure at the right edge of the frame
    write_frames(root, "0001", dx=42)
    label = penn.read_label(root / "labels" / "0001.mat")
    left, top, right, bottom = penn.crop_box(label.joints, label.visibility, W, H)
    assert 0 <= left < right == W and 0 <= top < bottom <= H
    video = next(iter(penn.iter_videos(root, SIZE, seed=0)))
    assert video.frames.shape == (NFRAMES, SIZE, SIZE, 3)


def assert_every_test_class_is_trainable(videos) -> None:
    """Every label with a test video has videos in gm and in gr (G_M's and G_R's splits)."""
    by_split = {s: {v.label for v in videos if v.split == s} for s in SPLITS}
    assert by_split["test"] <= by_split["gm"] & by_split["gr"]


def test_max_videos_keeps_whole_triples_of_actions(penn_root):
    videos = list(penn.iter_videos(penn_root, SIZE, seed=0, max_videos=12))
    assert len(videos) == 12
    # 12 videos = 4 actions with one video in each split (not 8 actions with holes).
    assert {v.label for v in videos} == set(ACTIONS[:4])
    assert all(sum(v.split == s for v in videos) == 4 for s in SPLITS)
    assert_every_test_class_is_trainable(videos)
    # A subset never moves a video to another split.
    full = {v.clip_id: v.split for v in penn.iter_videos(penn_root, SIZE, seed=0)}
    assert all(full[v.clip_id] == v.split for v in videos)


def write_tree(root: Path, per_action: int) -> Path:
    seq = itertools.count(1)
    for action in ACTIONS:
        for _ in range(per_action):
            s = f"{next(seq):04d}"
            write_label(root, s, action)
            write_frames(root, s)
    return root


@pytest.mark.parametrize("per_action", [1, 2, 3])
@pytest.mark.parametrize("max_videos", [None, 5, 12, 13])
def test_every_test_action_has_training_videos(tmp_path, per_action, max_videos, caplog):
    """The failure this guards: a subset that left jump_rope in test with no gm clip stopped
    generate@penn-vgan ("no network for test labels ['jump_rope']")."""
    root = write_tree(tmp_path / "penn", per_action)
    labels = penn.read_labels(root)
    splits = penn.assign_splits(labels, seed=0)
    chosen = penn.select_subset(labels, splits, max_videos)
    assert len(chosen) <= (max_videos or len(labels))
    videos = [type("V", (), {"label": lab.action, "split": splits[lab.seq]})() for lab in chosen]
    assert_every_test_class_is_trainable(videos)
    if per_action == 3:      # room for whole triples: nothing dropped, the cap is used up
        assert len(chosen) == min(max_videos or 24, 24) and "dropped" not in caplog.text
    else:                    # 1 or 2 per action: thirds give gm (and gr), never test
        assert not any(v.split == "test" for v in videos)


def test_a_test_video_without_training_videos_is_dropped_with_one_line(tmp_path, caplog):
    root = write_tree(tmp_path / "penn", 3)
    labels = penn.read_labels(root)
    splits = penn.assign_splits(labels, seed=0)
    gm_of_jump_rope = next(lab.seq for lab in labels if lab.action == "jump_rope" and splits[lab.seq] == "gm")
    splits[gm_of_jump_rope] = "gr"          # jump_rope: no gm video left
    with caplog.at_level(logging.WARNING, logger="frgan.data.penn"):
        chosen = penn.select_subset(labels, splits, None)
    assert not any(lab.action == "jump_rope" and splits[lab.seq] == "test" for lab in chosen)
    assert len(chosen) == len(labels) - 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "Penn Action: 1 test video(s) of jump_rope dropped" in lines[0]


def test_seeded_shuffle_is_deterministic(penn_root):
    labels = penn.read_labels(penn_root)
    a = penn.assign_splits(labels, seed=1, shuffle=True)
    assert a == penn.assign_splits(labels, seed=1, shuffle=True)
    assert penn.assign_splits(labels, seed=1) == penn.assign_splits(labels, seed=2)  # unshuffled


def _message(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_missing_root_names_the_path_and_what_was_expected(tmp_path):
    with pytest.raises(DatasetError) as excinfo:
        penn.iter_videos(tmp_path / "nowhere", SIZE, seed=0)
    message = _message(excinfo)
    assert str(tmp_path / "nowhere") in message and "frames/" in message and "labels/" in message


def test_root_without_labels_says_so(tmp_path):
    (tmp_path / "frames").mkdir()
    with pytest.raises(DatasetError) as excinfo:
        penn.check_layout(tmp_path)
    assert "missing labels/" in _message(excinfo)


def test_label_missing_a_field_names_the_file_and_the_field(penn_root):
    bad = write_label(penn_root, "0005", "clean_and_jerk", drop="visibility")
    with pytest.raises(DatasetError) as excinfo:
        penn.iter_videos(penn_root, SIZE, seed=0)   # labels are checked before any frame
    message = _message(excinfo)
    assert str(bad) in message and "'visibility'" in message


def test_corrupt_jpeg_names_the_file(penn_root):
    bad = penn_root / "frames" / "0004" / "000002.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(DatasetError) as excinfo:
        list(penn.iter_videos(penn_root, SIZE, seed=0))
    assert str(bad) in _message(excinfo)


def test_frame_count_mismatch_names_the_video(penn_root):
    (penn_root / "frames" / "0007" / "000003.jpg").unlink()
    with pytest.raises(DatasetError) as excinfo:
        list(penn.iter_videos(penn_root, SIZE, seed=0))
    message = _message(excinfo)
    assert "video 0007" in message and "nframes = 3" in message


def test_wrongly_shaped_field_names_the_file(penn_root):
    bad = write_label(penn_root, "0002", "baseball_pitch", nframes=5)
    with pytest.raises(DatasetError) as excinfo:
        penn.iter_videos(penn_root, SIZE, seed=0)
    assert str(bad) in _message(excinfo)


def test_no_paper_action_at_all_is_an_error(tmp_path):
    write_label(tmp_path, "0001", "bowl")
    (tmp_path / "frames").mkdir()
    with pytest.raises(DatasetError, match="no sequence of the 8 actions"):
        penn.iter_videos(tmp_path, SIZE, seed=0)
