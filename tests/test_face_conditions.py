"""Face conditions G_C: normal maps, the store fit, the retargeting test set and what Task reads."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from frgan.conditions import faces
from frgan.conditions.morphable import N_LANDMARKS, MorphableModel, procedural_face_model
from frgan.config import ParamsError, load_params, parse_params
from frgan.data import faces_synth
from frgan.data.clipstore import ClipStore, write_clip_store
from frgan.data.errors import DatasetError
from frgan.data.records import VideoRecord
from frgan.task import Task

REPO = Path(__file__).resolve().parent.parent
SIZE, SUBJECTS, FRAMES, SEED = 16, 6, 6, 3
EXPRESSIONS = ("happiness", "surprise")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def params():
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A tiny faces-synth store: 6 subjects (two per split) x 2 expressions x 6 frames, 16 px."""
    root = tmp_path_factory.mktemp("store") / "faces-synth"
    settings = dict(image_size=SIZE, n_subjects=SUBJECTS, n_frames=FRAMES, seed=SEED)
    records = faces_synth.iter_videos(**settings, expressions=EXPRESSIONS)
    extras = {"subjects": [s.to_dict() for s in faces_synth.subjects(SUBJECTS, SEED)]}
    write_clip_store(records, root, {"dataset": "faces-synth", "source": settings}, extras)
    return ClipStore(root)


def _build(store, params, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    logged = []
    summary = faces.build_face_conditions(store, params, out, log=lambda m, step: logged.append((m, step)))
    summary["_logged"] = logged
    return summary


@pytest.fixture(scope="module")
def built(store, params, tmp_path_factory):
    out = tmp_path_factory.mktemp("conditions") / "faces-synth"
    return out, _build(store, params, out)


# ---------------------------------------------------------------------------------------------
# normal maps

def _quad_model() -> MorphableModel:
    """A flat square at z = 0 facing the viewer (+z), wound counter-clockwise seen from +z."""
    mean = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    triangles = np.array([[0, 1, 2], [0, 2, 3]])
    return MorphableModel(mean, np.zeros((1, 4, 3)), np.zeros((1, 4, 3)), triangles,
                          np.zeros(N_LANDMARKS, np.int64))


def test_a_quad_facing_the_camera_is_constant_blue_on_black():
    """Normal (0, 0, 1) -> (0.5, 0.5, 1.0) * 255 rounded; still so when the quad turns, as the
    normals are in the un-rotated model frame; the background is exactly 0."""
    quad = _quad_model()
    pose = np.array([[0.0, 0.0, 0.0, 7.5, 7.5, 4.0], [0.5, 0.2, 0.3, 7.5, 7.5, 4.0]], np.float32)
    maps = faces.normal_maps(quad, np.zeros((2, 1)), np.zeros((2, 1)), pose, SIZE)
    assert maps.shape == (2, SIZE, SIZE, 3) and maps.dtype == np.uint8
    covered = maps.any(-1)
    # A 2 x 2 square at 4 px per unit centred on pixel 7.5: pixels 4..11 in each direction.
    expected = np.zeros((SIZE, SIZE), bool)
    expected[4:12, 4:12] = True
    assert np.array_equal(covered[0], expected)
    for k in range(2):
        assert (maps[k][covered[k]] == [128, 128, 255]).all()
        assert (maps[k][~covered[k]] == 0).all()
    assert covered[1].sum() < covered[0].sum()          # the turned quad covers less


def test_normal_maps_of_faces_are_faces(store, built):
    out, _ = built
    maps = np.fromfile(out / "maps.u8", np.uint8).reshape(-1, SIZE, SIZE, 3)
    assert len(maps) == store.meta["n_frames"]
    covered = maps.any(-1)
    assert (maps[:, 0, 0] == 0).all()                    # a corner is background
    assert (covered.mean((1, 2)) > 0.3).all()            # the face fills a MUG-like crop
    blue = maps[covered][:, 2]
    assert np.median(blue) > 200                         # most of a face looks at the viewer


# ---------------------------------------------------------------------------------------------
# the stage's outputs

def test_fit_errors_against_the_ground_truth(built):
    """Exact landmarks of the procedural model: the defaults' small regulariser keeps the fit
    within 0.05 px and beta within 0.1 RMS (alpha is only partly identified, see fitting)."""
    _, summary = built
    assert summary["fit_landmark_error_px"] < 0.05
    assert summary["fit_beta_rms"] < 0.1
    assert summary["fit_rotation_rms_deg"] < 1.0
    assert 0.0 <= summary["test_cond_map_mae"] < 0.05
    assert np.isfinite(summary["fit_alpha_rms"])
    assert any("fit_cost" in m for m, _ in summary["_logged"])
    assert any("fit_beta_rms" in m for m, _ in summary["_logged"])


def test_one_item_per_expression_and_test_subject(store, built):
    out, summary = built
    index = pd.read_csv(out / "test_index.csv", dtype={"clip_id": str, "subject": str})
    assert list(index.columns) == faces.TEST_INDEX_COLUMNS == [
        "item", "clip_id", "subject", "label", "input_frame", "n_targets", "reference_clip"]
    test = store.split("test")
    assert len(index) == test.label.nunique() * test.subject.nunique() == summary["test_items"]
    assert list(index.item) == list(range(len(index)))
    assert set(zip(index.label, index.subject)) == {(l, s) for l in test.label.unique() for s in test.subject.unique()}
    assert (index.n_targets == FRAMES - 1).all() and (index.input_frame == 0).all()
    clips = store.index.set_index("clip_id")
    assert (clips.loc[index.clip_id, "subject"].values == index.subject.values).all()
    assert (clips.loc[index.clip_id, "label"].values == index.label.values).all()      # same expression
    assert (clips.loc[index.reference_clip, "label"].values == index.label.values).all()
    assert (clips.loc[index.reference_clip, "split"] == "test").all()


def test_task_reads_what_the_stage_writes(store, params, built):
    out, _ = built
    task = Task("faces-synth", params, store, out)
    items = task.test_items()
    n = len(items.index)
    assert items.cond.shape == (n, FRAMES - 1, 3, SIZE, SIZE)
    assert items.truth.shape == (n, FRAMES - 1, SIZE, SIZE, 3)
    assert items.input.shape == (n, 3, SIZE, SIZE) and items.input_cond.shape == (n, 3, SIZE, SIZE)
    assert task.cond_of_rows(np.arange(4)).shape == (4, 3, SIZE, SIZE)
    assert float(items.cond.max()) <= 1.0 and float(items.cond.min()) == 0.0


def test_the_true_retargeted_video_is_the_targets_face_with_the_references_expression(store, built):
    """Where the target is the reference's own subject, the truth re-renders the reference clip's
    frames with the pose held: close to the real frames (only the head jitter differs)."""
    out, _ = built
    index = pd.read_csv(out / "test_index.csv", dtype={"clip_id": str, "subject": str})
    truth = np.fromfile(out / "test_truth.u8", np.uint8).reshape(len(index), FRAMES - 1, SIZE, SIZE, 3)
    own = index[index.clip_id == index.reference_clip].iloc[0]
    real = store.video(own.clip_id)[1:]
    assert np.abs(truth[own["item"]].astype(float) - real).mean() < 8.0
    other = index[index.clip_id != index.reference_clip].iloc[0]
    # Another subject's face differs from the input frame's subject far less than from the reference's.
    first = store.video(other.clip_id)[0].astype(float)
    reference = store.video(other.reference_clip)[1:].astype(float)
    assert np.abs(truth[other["item"]][0] - first).mean() < np.abs(reference[0] - first).mean()


def test_the_build_is_deterministic(store, params, built, tmp_path):
    out, _ = built
    _build(store, params, tmp_path / "again")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "again").iterdir())
    assert {"maps.u8", "test_cond.u8", "test_truth.u8", "test_index.csv"} <= set(names)
    for name in names:
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_the_figure_is_written(store, built, tmp_path):
    out, _ = built
    figure = tmp_path / "figures" / "conditions-faces-synth.png"
    faces.plot_face_conditions(store, out, figure)
    assert figure.stat().st_size > 5000


# ---------------------------------------------------------------------------------------------
# the retargeting plan on a MUG-like index

def _mug_like_index() -> pd.DataFrame:
    rows = [["a_happy", "a", "happiness", "test", 0, 30], ["a_sad", "a", "sadness", "test", 30, 12],
            ["b_happy", "b", "happiness", "test", 42, 20], ["b_happy2", "b", "happiness", "test", 62, 25],
            ["c_sad", "c", "sadness", "test", 87, 40], ["d_happy", "d", "happiness", "gm", 127, 5]]
    return pd.DataFrame(rows, columns=["clip_id", "subject", "label", "split", "start", "length"])


def test_plan_truncates_to_the_shortest_reference_and_falls_back_to_another_clip():
    index = _mug_like_index()
    plan = faces.retargeting_plan(index, seed=0)
    assert len(plan) == 2 * 3                                       # 2 expressions x test subjects a, b, c
    references = plan.groupby("label").reference_clip.unique()
    assert all(len(r) == 1 for r in references)
    n = min(index.set_index("clip_id").length[r[0]] for r in references) - 1
    assert (plan.n_targets == n).all()
    c_happy = plan[(plan.subject == "c") & (plan.label == "happiness")].iloc[0]
    assert c_happy.clip_id == "c_sad"                               # c has no happiness clip
    b_happy = plan[(plan.subject == "b") & (plan.label == "happiness")].iloc[0]
    assert b_happy.clip_id == "b_happy"                             # the first of its takes
    assert "d_happy" not in set(plan.clip_id) | set(plan.reference_clip)   # not a test clip
    pd.testing.assert_frame_equal(plan, faces.retargeting_plan(index, seed=0))
    drawn = {tuple(faces.retargeting_plan(index, seed=s).reference_clip) for s in range(8)}
    assert len(drawn) > 1                                           # the seed chooses the references


# ---------------------------------------------------------------------------------------------
# bad landmarks

def _store_with_landmarks(root: Path, landmarks: np.ndarray) -> ClipStore:
    n = len(landmarks)
    record = VideoRecord(clip_id="s000_anger_t0", subject="s000", label="anger", split="test",
                         frames=np.zeros((n, SIZE, SIZE, 3), np.uint8), gt={"landmarks": landmarks})
    write_clip_store([record], root, {"dataset": "mug"})
    return ClipStore(root)


def _landmarks(n_frames: int) -> np.ndarray:
    model = procedural_face_model()
    beta = np.zeros((n_frames, model.n_expr), np.float32)
    pose = np.tile(np.array([0, 0, 0, 7.5, 8.0, 6.0], np.float32), (n_frames, 1))
    return faces_synth.landmarks_px(model, np.zeros(model.n_id, np.float32), beta, pose)


def test_a_frame_without_a_face_names_the_clip_and_frame(tmp_path):
    landmarks = _landmarks(5)
    landmarks[3] = np.nan
    store = _store_with_landmarks(tmp_path / "s", landmarks)
    with pytest.raises(DatasetError, match="clip s000_anger_t0 frame 3: 0 of the model's landmarks"):
        faces.store_landmarks(store, procedural_face_model())


def test_landmarks_of_the_wrong_shape_name_the_file(tmp_path):
    store = _store_with_landmarks(tmp_path / "s", _landmarks(4)[:, :60])
    with pytest.raises(DatasetError, match=r"landmarks\.npy: shape \(4, 60, 2\), expected \(4, 68, 2\)"):
        faces.store_landmarks(store, procedural_face_model())


def test_a_store_without_landmarks_is_a_clear_error(tmp_path):
    record = VideoRecord(clip_id="c", subject="s", label="anger", split="test",
                         frames=np.zeros((3, SIZE, SIZE, 3), np.uint8), gt={"pose": np.zeros((3, 6))})
    write_clip_store([record], tmp_path / "s", {"dataset": "mug"})
    with pytest.raises(DatasetError, match="no ground truth 'landmarks'"):
        faces.store_landmarks(ClipStore(tmp_path / "s"), procedural_face_model())


# ---------------------------------------------------------------------------------------------
# the model choice

def test_a_real_face_model_needs_a_path(params):
    raw = params.model_dump(by_alias=True)
    raw["conditions"]["face_model"] = "sfm"
    with pytest.raises(ParamsError, match="conditions.face_model = 'sfm': expected conditions.face_model_path"):
        parse_params(raw)
    raw["conditions"]["face_model_path"] = "/nowhere/sfm"
    cfg = parse_params(raw).conditions
    assert faces.face_model_for("faces-synth", cfg) is procedural_face_model()   # its ground truth's model
    with pytest.raises(DatasetError, match="/nowhere/sfm/sfm_shape_3448.bin: missing"):
        faces.face_model_for("mug", cfg)
