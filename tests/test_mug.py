"""The MUG adapter on small fake MUG trees, with an injected landmarker (and once with dlib's)."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frgan.data import mug
from frgan.data.errors import DatasetError
from frgan.data.records import SPLITS

W, H = 80, 60            # fake frame size
MARKER = 12              # side of the white square the fake landmarker "detects"
RADIUS = 12              # the fake landmarks: a circle of this radius around the marker
START = (40, 30)         # marker centre in the first frame
STEP = 2                 # the marker moves right this many px per frame
SIZE = 32                # output image size in these tests
BACKGROUND = 60

# One subject of each authors' list, plus 002, which is on none of them.
SUBJECTS = {"001": "gm", "006": "gr", "028": "test", "002": None}
CIRCLE = np.stack([np.cos(a := np.linspace(0, 2 * np.pi, 68, endpoint=False)), np.sin(a)], axis=1)


def frame_with_marker(cx: int, cy: int) -> np.ndarray:
    image = np.full((H, W, 3), BACKGROUND, np.uint8)
    half = MARKER // 2
    image[cy - half:cy + half, cx - half:cx + half] = 255
    return image


def blank_frame() -> np.ndarray:
    return np.full((H, W, 3), BACKGROUND, np.uint8)


def fake_landmarker(image: np.ndarray):
    """68 points on a circle around the bright marker's centre; None when there is no marker."""
    ys, xs = np.nonzero(image.max(axis=2) > 200)
    if xs.size == 0:
        return None
    return (CIRCLE * RADIUS + [xs.mean(), ys.mean()]).astype(np.float32)


def write_take(root: Path, subject: str, expression: str, take: str = "take000",
               frames: list[np.ndarray] | None = None) -> Path:
    folder = root / subject / expression / take
    folder.mkdir(parents=True)
    if frames is None:
        frames = [frame_with_marker(START[0] + STEP * t, START[1]) for t in range(3)]
    for t, image in enumerate(frames):
        Image.fromarray(image).save(folder / f"img_{t:04d}.jpg", quality=95)
    return folder


@pytest.fixture
def mug_root(tmp_path) -> Path:
    """Four subjects, each with anger, happiness and neutral (one 3-frame take each)."""
    root = tmp_path / "MUG"
    for subject in SUBJECTS:
        for expression in ("anger", "happiness", "neutral"):
            write_take(root, subject, expression)
    return root


def read_all(root, **kwargs):
    return list(mug.iter_videos(root, SIZE, landmarker=fake_landmarker, **kwargs))


def bright_centroid(image: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(image.max(axis=2) > 160)
    return np.array([xs.mean(), ys.mean()])


# ---------------------------------------------------------------------------------------------
# Crop geometry.

def test_crop_box_follows_the_authors_formula():
    # Landmark box x 40..60, y 40..50: square side 20 centred (50, 45); ROI side 20*sqrt(2).
    points = np.array([[40, 40], [60, 50], [50, 45]], np.float32)
    roi = 20 * np.sqrt(2)
    side = 0.95 * roi
    authors_cy = 45 - 0.04 * ((45 - roi / 2) + (45 + roi / 2))    # 0.04 x (y_min + y_max) = 3.6
    height_cy = 45 - 0.04 * roi
    assert mug.crop_box(points, "authors") == (round(50 - side / 2), round(authors_cy - side / 2),
                                               round(50 + side / 2) - round(50 - side / 2))
    assert mug.crop_box(points, "roi-height")[1] == round(height_cy - side / 2)
    with pytest.raises(ValueError, match="crop_shift"):
        mug.crop_box(points, "sideways")


def test_crop_pads_with_zeros_or_edges_where_it_leaves_the_frame():
    image = np.full((10, 10, 3), 200, np.uint8)
    box = (-5, -5, 10)   # top-left quarter lies outside
    zeros = mug.crop_and_resize(image, box, 10, pad="zeros")
    edge = mug.crop_and_resize(image, box, 10, pad="edge")
    assert zeros.shape == edge.shape == (10, 10, 3)
    assert zeros[0, 0].max() == 0 and zeros[-1, -1].min() == 200
    assert (edge == 200).all()


def test_crop_coordinates_align_pixel_centres():
    box = (10, 20, 64)
    corners = np.array([[10, 20], [73, 83]], np.float32)   # first and last pixel of the box
    mapped = mug.to_crop_coords(corners, box, 32)
    np.testing.assert_allclose(mapped, [[-0.25, -0.25], [31.25, 31.25]])


# ---------------------------------------------------------------------------------------------
# Reading.

def test_records_have_the_crop_size_and_per_frame_landmarks(mug_root):
    records = read_all(mug_root)
    assert len(records) == 3 * 2   # three listed subjects x (anger, happiness); 002 and neutral out
    for rec in records:
        assert rec.frames.shape == (3, SIZE, SIZE, 3) and rec.frames.dtype == np.uint8
        assert rec.gt["landmarks"].shape == (3, 68, 2) and rec.gt["landmarks"].dtype == np.float32
        assert re.fullmatch(rf"{rec.subject}_{rec.label}_take000", rec.clip_id)


def test_landmarks_are_mapped_onto_the_face_in_the_crop(mug_root):
    rec = read_all(mug_root)[0]
    for image, points in zip(rec.frames, rec.gt["landmarks"]):
        # The landmarks' centre is the marker's centre: it must land on the marker in the crop.
        np.testing.assert_allclose(points.mean(axis=0), bright_centroid(image), atol=1.0)


def test_crop_is_fixed_by_the_first_frame(mug_root):
    rec = read_all(mug_root)[0]
    box = mug.crop_box(fake_landmarker(frame_with_marker(*START)))
    scale = SIZE / box[2]
    centres = rec.gt["landmarks"].mean(axis=1)
    # The marker moves in the frame, so it moves in the crop: the box did not follow it.
    np.testing.assert_allclose(np.diff(centres[:, 0]), STEP * scale, atol=0.05)
    np.testing.assert_allclose(np.diff(centres[:, 1]), 0, atol=0.05)


def test_neutral_and_unknown_expressions_are_left_out(mug_root):
    write_take(mug_root, "001", "contempt")
    assert {rec.label for rec in read_all(mug_root)} == {"anger", "happiness"}


def test_authors_split_maps_train_val_test_to_gm_gr_test(mug_root, caplog):
    with caplog.at_level(logging.WARNING, logger="frgan.data.mug"):
        records = read_all(mug_root)
    assert {rec.subject: rec.split for rec in records} == {"001": "gm", "006": "gr", "028": "test"}
    assert "1 subject folder(s)" in caplog.text and "002" in caplog.text
    assert mug.list_takes(mug_root).skipped_subjects == ["002"]


def test_authors_lists_match_the_reference_notes():
    sizes = {split: len(ids) for split, ids in mug.AUTHORS_SUBJECTS.items()}
    assert sizes == {"gm": 19, "gr": 19, "test": 12}
    everyone = [s for ids in mug.AUTHORS_SUBJECTS.values() for s in ids]
    assert len(set(everyone)) == len(everyone)


def test_even_split_is_disjoint_and_covers_every_subject(tmp_path):
    root = tmp_path / "MUG"
    subjects = ["002", "003", "004", "005", "009", "011", "012"]
    for subject in subjects:
        write_take(root, subject, "fear", frames=[frame_with_marker(*START)])
    groups = {split: set() for split in SPLITS}
    for rec in read_all(root, split="even"):
        groups[rec.split].add(rec.subject)
    assert set.union(*groups.values()) == set(subjects)
    assert sum(len(g) for g in groups.values()) == len(subjects)         # disjoint
    assert sorted(len(g) for g in groups.values()) == [2, 2, 3]           # even
    assert max(groups["gm"]) < min(groups["gr"]) and max(groups["gr"]) < min(groups["test"])
    assert mug.list_takes(root, "even").skipped_subjects == []


def test_max_takes_keeps_every_split(mug_root):
    records = read_all(mug_root, max_takes=4)
    assert len(records) == 4
    assert {rec.split for rec in records} == set(SPLITS)


def test_capped_takes_keep_whole_triples_per_expression_over_subjects(tmp_path):
    """12 takes of 2 subjects per split x 6 expressions: 4 expressions, each with one take in gm,
    gr and test, spread over the subjects (the listing only; no image is decoded)."""
    root = tmp_path / "MUG"
    for subject in ("001", "007", "006", "010", "028", "036"):
        for expression in mug.EXPRESSIONS:
            write_take(root, subject, expression, frames=[frame_with_marker(*START)])
    takes = mug.list_takes(root, max_takes=12).takes
    assert len(takes) == 12
    cells = {(t.expression, t.split) for t in takes}
    assert cells == {(e, s) for e in mug.EXPRESSIONS[:4] for s in SPLITS}
    assert all(len({t.subject for t in takes if t.split == s}) == 2 for s in SPLITS)


def test_a_test_expression_without_training_takes_is_dropped_with_one_line(mug_root, caplog):
    write_take(mug_root, "028", "fear")      # only the test subject shows fear
    write_take(mug_root, "001", "disgust")   # gm only: trains, never tested (kept)
    plan = mug.list_takes(mug_root)
    assert {(t.expression, t.split) for t in plan.takes} == {
        ("anger", "gm"), ("anger", "gr"), ("anger", "test"), ("happiness", "gm"), ("happiness", "gr"),
        ("happiness", "test"), ("disgust", "gm")}
    assert plan.dropped_tests.startswith("MUG: 1 test video(s) of fear dropped")
    with caplog.at_level(logging.WARNING, logger="frgan.data.mug"):
        records = read_all(mug_root)
    assert "fear" not in {rec.label for rec in records if rec.split == "test"}
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert lines == [plan.dropped_tests]     # one line per read


def test_later_frame_without_a_face_reuses_the_previous_landmarks(tmp_path, caplog):
    root = tmp_path / "MUG"
    frames = [frame_with_marker(*START), blank_frame(), frame_with_marker(START[0] + 4, START[1])]
    write_take(root, "001", "anger", frames=frames)
    with caplog.at_level(logging.INFO, logger="frgan.data.mug"):
        [rec] = read_all(root)
    np.testing.assert_array_equal(rec.gt["landmarks"][1], rec.gt["landmarks"][0])
    assert "001_anger_take000: 1 frame(s) without a face" in caplog.text


def test_progress_is_reported_per_take(mug_root):
    calls = []
    list(mug.iter_videos(mug_root, SIZE, landmarker=fake_landmarker, progress=lambda d, n: calls.append((d, n))))
    assert calls == [(i, 6) for i in range(1, 7)]


# ---------------------------------------------------------------------------------------------
# Bad input: every error is a one-line DatasetError naming the path and what was expected.

def expect_error(pattern: str, call):
    with pytest.raises(DatasetError, match=pattern) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_missing_root(tmp_path):
    root = tmp_path / "nope"
    pattern = f"{re.escape(str(root))} does not exist.*<subject>/<expression>/<take>/img_NNNN.jpg"
    expect_error(pattern, lambda: mug.check_layout(root))
    expect_error(pattern, lambda: mug.iter_videos(root, SIZE, landmarker=fake_landmarker))


def test_root_without_subject_folders(tmp_path):
    for name in ("subject1", "01", "0001"):
        (tmp_path / name).mkdir()
    expect_error(f"{re.escape(str(tmp_path))} has no subject folders; expected three-digit",
                 lambda: mug.check_layout(tmp_path))


def test_root_with_only_neutral_takes(tmp_path):
    write_take(tmp_path, "001", "neutral")
    expect_error("has no takes of the six expressions", lambda: mug.check_layout(tmp_path))


def test_authors_split_with_no_listed_subject(tmp_path):
    write_take(tmp_path, "002", "anger")
    expect_error("none of its subjects \\(002\\) is on the 'authors' split's lists",
                 lambda: read_all(tmp_path))
    assert len(read_all(tmp_path, split="even")) == 1


def test_take_without_frames(mug_root):
    take = mug_root / "006" / "fear" / "take003"
    take.mkdir(parents=True)
    (take / "frame1.jpg").write_bytes(b"")
    pattern = f"{re.escape(str(take))} has no frames; expected img_NNNN.jpg"
    expect_error(pattern, lambda: mug.check_layout(mug_root))
    expect_error(pattern, lambda: read_all(mug_root))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_frame_names_the_file(mug_root, damage):
    path = mug_root / "028" / "anger" / "take000" / "img_0001.jpg"
    data = path.read_bytes()
    path.write_bytes(b"not a jpeg at all" if damage == "garbage" else data[: len(data) // 2])
    expect_error(f"{re.escape(str(path))} cannot be read.*expected a JPEG", lambda: read_all(mug_root))


def test_first_frame_without_a_face_names_the_file(tmp_path):
    write_take(tmp_path, "001", "anger", frames=[blank_frame(), frame_with_marker(*START)])
    path = tmp_path / "001" / "anger" / "take000" / "img_0000.jpg"
    expect_error(f"{re.escape(str(path))}: no face detected in the take's first frame",
                 lambda: read_all(tmp_path))


def test_landmarker_with_the_wrong_shape_is_refused(mug_root):
    with pytest.raises(ValueError, match=r"\(5, 2\), expected \(68, 2\)"):
        list(mug.iter_videos(mug_root, SIZE, landmarker=lambda image: np.zeros((5, 2))))


def test_unknown_options_are_refused_at_the_call(mug_root):
    with pytest.raises(ValueError, match="'authors' or 'even'"):
        mug.iter_videos(mug_root, SIZE, split="random", landmarker=fake_landmarker)
    with pytest.raises(ValueError, match="pad 'mirror'"):
        mug.iter_videos(mug_root, SIZE, landmarker=fake_landmarker, pad="mirror")


# ---------------------------------------------------------------------------------------------
# The real landmarker, end to end on a photograph.

def test_dlib_path_end_to_end(tmp_path):
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the test photograph")
    photo = data.astronaut()[:256, 64:320]   # the face, 256 px square: keeps dlib quick
    write_take(tmp_path, "001", "sadness", frames=[photo, photo])
    write_take(tmp_path, "006", "surprise", frames=[np.zeros_like(photo), photo])
    # max_takes=1: the cap draws expression by expression (sadness before surprise): 001's take
    [rec] = list(mug.iter_videos(tmp_path, 48, max_takes=1))   # default landmarker: dlib's
    points = rec.gt["landmarks"]
    assert rec.frames.shape == (2, 48, 48, 3) and points.shape == (2, 68, 2)
    assert (points > 0).all() and (points < 48).all()   # the whole face lies inside the crop
    blank = tmp_path / "006" / "surprise" / "take000" / "img_0000.jpg"
    expect_error(f"{re.escape(str(blank))}: no face detected", lambda: list(mug.iter_videos(tmp_path, 48)))
