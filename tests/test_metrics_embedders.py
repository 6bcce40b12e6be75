"""Face embedders: registry, dlib identity separation (detected and fallback paths), facenet."""
import os
import subprocess
import sys

import numpy as np
import pytest

from metrics.acd import acd_c
from metrics.embedders import (
    Embedder,
    MissingWeightsError,
    create_embedder,
    is_valid_embedder,
    list_embedders,
    register_embedder,
)
from metrics.embedders.synthetic import EXAMPLE_IDENTITIES, identity_separation, render_face, render_identities


def test_importing_metrics_loads_no_heavy_or_project_package():
    code = (
        "import sys, metrics; "
        "loaded = [m for m in ('torch', 'dlib', 'facenet_pytorch', 'frgan', 'baselines', 'pipelines') "
        "if m in sys.modules]; "
        "print(','.join(loaded))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_registry():
    assert {"dlib", "facenet"} <= set(list_embedders())
    assert is_valid_embedder("dlib") and not is_valid_embedder("openface")
    with pytest.raises(ValueError, match="unknown embedder"):
        create_embedder("openface")
    with pytest.raises(TypeError):
        register_embedder("not-an-embedder")(object)


def test_a_registered_embedder_gets_shapes_and_unit_length_from_the_base_class(monkeypatch):
    import metrics.embedders as embedders

    monkeypatch.setattr(embedders, "_EMBEDDERS", dict(embedders._EMBEDDERS))  # restored afterwards

    @register_embedder("test-mean-colour")
    class MeanColour(Embedder):
        dim = 3

        def _embed_batch(self, frames):
            return frames.reshape(len(frames), -1, 3).mean(axis=1) + 1.0, np.zeros(len(frames), bool)

    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
    embedded = create_embedder("test-mean-colour").embed(frames)
    assert embedded.vectors.shape == (2, 3, 3) and embedded.fell_back.shape == (2, 3)
    np.testing.assert_allclose(np.linalg.norm(embedded.vectors, axis=-1), 1.0)


# ---------------------------------------------------------------- dlib

@pytest.fixture(scope="module")
def dlib_embedder():
    pytest.importorskip("dlib")
    return create_embedder("dlib")


def test_dlib_same_identity_is_closer_than_different_identities(dlib_embedder):
    result = identity_separation(dlib_embedder, EXAMPLE_IDENTITIES, size=64)
    assert result["n_fell_back"] == 0  # these renders are detected by dlib's HOG detector
    assert result["same"].max() < result["different"].min()
    assert result["same"].mean() < 0.5 * result["different"].mean()


def test_dlib_whole_frame_fallback_separates_identities_and_is_counted(dlib_embedder):
    fallback_only = create_embedder("dlib", detect=False)
    result = identity_separation(fallback_only, EXAMPLE_IDENTITIES, size=64)
    assert result["n_fell_back"] == result["n_frames"] == fallback_only.frames_fell_back
    assert result["same"].max() < result["different"].min()


def test_dlib_frame_without_face_falls_back_instead_of_failing(dlib_embedder):
    blank = np.full((1, 2, 64, 64, 3), 120, dtype=np.uint8)
    before = dlib_embedder.frames_fell_back
    embedded = dlib_embedder.embed(blank)
    assert embedded.fell_back.all() and dlib_embedder.frames_fell_back == before + 2
    assert embedded.vectors.shape == (1, 2, 128)
    np.testing.assert_allclose(np.linalg.norm(embedded.vectors, axis=-1), 1.0)


def test_dlib_accepts_float_frames_in_unit_range(dlib_embedder):
    frame = render_face(EXAMPLE_IDENTITIES[0], 64)
    from_uint8 = dlib_embedder.embed(frame[None]).vectors
    from_float = dlib_embedder.embed(frame[None] / 255.0).vectors
    np.testing.assert_allclose(from_float, from_uint8, atol=1e-6)


def test_dlib_on_faces_synth_videos(dlib_embedder):
    """Frames of one subject's videos sit closer together than frames of two subjects."""
    faces_synth = pytest.importorskip("frgan.data.faces_synth")
    videos = list(faces_synth.iter_videos(64, 2, 3, 0, expressions=("happiness", "surprise")))
    embedded = dlib_embedder.embed(np.stack([video.frames for video in videos]))
    subjects = np.array([video.subject for video in videos])
    by_subject = [embedded.vectors[subjects == name].reshape(-1, 128) for name in np.unique(subjects)]
    within = acd_c(np.stack(by_subject)).mean()
    between = np.linalg.norm(by_subject[0][:, None] - by_subject[1][None], axis=-1).mean()
    assert within < 0.75 * between


# ---------------------------------------------------------------- dlib worker processes

@pytest.fixture(scope="module")
def dlib_by_workers():
    pytest.importorskip("dlib")
    return {workers: create_embedder("dlib", workers=workers) for workers in (1, 2)}


@pytest.fixture(scope="module")
def mixed_faces():
    """(2, 7, 64, 64, 3): the example identities at four shifts (detected) and two blanks (fall
    back), one blank in each half so that both workers' chunks hold both kinds."""
    faces = render_identities(EXAMPLE_IDENTITIES, size=64).reshape(-1, 64, 64, 3)
    blank = np.full((1, 64, 64, 3), 120, dtype=np.uint8)
    return np.concatenate([faces[:6], blank, faces[6:], blank]).reshape(2, 7, 64, 64, 3)


# Worker processes are forked; elsewhere the embedder stays serial (and a test's os._exit would
# end pytest itself).
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork workers: Linux only")


def _spy_on_workers(monkeypatch) -> list:
    """Record the pieces of every call that goes to worker processes (with their worker count)."""
    from metrics.embedders.dlib_resnet import DlibResNetEmbedder

    calls, original = [], DlibResNetEmbedder._embed_in_workers

    def spy(self, frames, workers, pieces, bar):
        calls.append((workers, pieces))
        return original(self, frames, workers, pieces, bar)

    monkeypatch.setattr(DlibResNetEmbedder, "_embed_in_workers", spy)
    return calls


@linux_only
def test_dlib_workers_give_bit_identical_embeddings(dlib_by_workers, mixed_faces, monkeypatch):
    serial, parallel = dlib_by_workers[1], dlib_by_workers[2]
    before = {w: (e.frames_embedded, e.frames_fell_back) for w, e in dlib_by_workers.items()}
    expected = serial.embed(mixed_faces)
    calls = _spy_on_workers(monkeypatch)
    got = parallel.embed(mixed_faces)
    assert calls == [(2, [(0, 7), (7, 14)])]  # really split over two processes
    assert np.array_equal(got.vectors, expected.vectors)  # exactly, not within a tolerance
    assert np.array_equal(got.fell_back, expected.fell_back) and got.n_fell_back == 2
    added = {w: (e.frames_embedded - before[w][0], e.frames_fell_back - before[w][1])
             for w, e in dlib_by_workers.items()}
    assert added[1] == added[2] == (14, 2)


def test_dlib_workers_leave_small_inputs_serial(dlib_by_workers, mixed_faces, monkeypatch):
    from metrics.embedders.dlib_resnet import chunk_bounds

    assert chunk_bounds(3, 2) == [(0, 3)] and chunk_bounds(7, 2) == [(0, 3), (3, 7)]
    assert chunk_bounds(10, 8) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    calls = _spy_on_workers(monkeypatch)
    three = mixed_faces[0, :3]
    got = dlib_by_workers[2].embed(three)
    assert calls == []
    assert np.array_equal(got.vectors, dlib_by_workers[1].embed(three).vectors)


@linux_only
def test_dlib_pieces_are_whole_resnet_batches_and_change_no_bit(mixed_faces, monkeypatch):
    """The progress bar's pieces: each worker's range cut into whole ResNet batches (of at least
    16 frames), shared by the workers; the vectors are those of one serial pass."""
    pytest.importorskip("dlib")
    embedder = create_embedder("dlib", workers=2, batch_size=4)
    assert embedder._pieces([(0, 20), (20, 40)]) == [(0, 16), (16, 20), (20, 36), (36, 40)]
    frames = np.concatenate([mixed_faces.reshape(-1, 64, 64, 3)] * 3)          # 42 frames
    calls = _spy_on_workers(monkeypatch)
    got = embedder.embed(frames)
    assert calls == [(2, [(0, 16), (16, 21), (21, 37), (37, 42)])]
    whole, _ = embedder._embed_serial(frames)                                  # one pass, no pieces
    assert np.array_equal(got.vectors, whole / np.linalg.norm(whole, axis=1, keepdims=True))


@linux_only
def test_dlib_worker_errors_reach_the_caller(dlib_by_workers, mixed_faces, monkeypatch):
    """A worker's exception keeps its type and message; a worker that dies raises, not hangs."""
    from concurrent.futures.process import BrokenProcessPool

    from metrics.embedders.dlib_resnet import DlibResNetEmbedder

    def no_chip(self, frame):
        raise ValueError("no chip for this frame")

    monkeypatch.setattr(DlibResNetEmbedder, "face_chip", no_chip)   # the forked workers inherit it
    with pytest.raises(ValueError, match="^no chip for this frame$"):
        dlib_by_workers[2].embed(mixed_faces)

    monkeypatch.setattr(DlibResNetEmbedder, "face_chip", lambda self, frame: os._exit(3))
    with pytest.raises(BrokenProcessPool):
        dlib_by_workers[2].embed(mixed_faces)


def test_dlib_worker_exception_of_a_non_builtin_class_is_sent_as_its_message():
    from metrics.embedders.dlib_resnet import _sendable

    class NeedsTwoArguments(Exception):
        def __init__(self, what, why):
            super().__init__(f"{what}: {why}")

    plain = ValueError("bad frame")
    assert _sendable(plain) is plain
    sent = _sendable(NeedsTwoArguments("frame 3", "no face"))
    assert type(sent) is RuntimeError and str(sent) == "NeedsTwoArguments: frame 3: no face"


# ---------------------------------------------------------------- facenet

def test_facenet_missing_weights_error_names_the_file(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "weights.pt"
    with pytest.raises(MissingWeightsError) as error:
        create_embedder("facenet", weights_path=missing)
    message = str(error.value)
    assert str(missing) in message and "download" in message and "\n" not in message

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingWeightsError, match=r"torch/checkpoints/20180402-114759-vggface2\.pt"):
        create_embedder("facenet")


def test_facenet_random_init_runs_end_to_end():
    pytest.importorskip("facenet_pytorch")
    with pytest.warns(UserWarning, match="random weights"):
        embedder = create_embedder("facenet", allow_random_init=True)
    frames = np.stack([render_face(EXAMPLE_IDENTITIES[0], 64), np.full((64, 64, 3), 120, np.uint8)])
    embedded = embedder.embed(frames[None])
    assert embedded.vectors.shape == (1, 2, 512)
    assert list(embedded.fell_back[0]) == [False, True]  # MTCNN finds the face, not the blank
    np.testing.assert_allclose(np.linalg.norm(embedded.vectors, axis=-1), 1.0, atol=1e-9)


@pytest.mark.parametrize("where", ["frames", "embeddings"])
def test_nan_frames_and_nan_embeddings_are_refused(monkeypatch, where):
    """Issue 17, item 6: a NaN float frame used to become black (uint8 0) and be embedded; a NaN
    raw embedding became a NaN vector. Both are refused, naming what held them."""
    import metrics.embedders as embedders

    monkeypatch.setattr(embedders, "_EMBEDDERS", dict(embedders._EMBEDDERS))  # restored afterwards

    @register_embedder("test-nan")
    class Constant(Embedder):
        dim = 3

        def _embed_batch(self, frames):
            vectors = np.ones((len(frames), 3))
            if where == "embeddings":
                vectors[0, 1] = np.nan
            return vectors, np.zeros(len(frames), bool)

    frames = np.random.default_rng(0).random((1, 2, 8, 8, 3))
    if where == "frames":
        frames[0, 1, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="^frames: 1 NaN" if where == "frames" else "^test-nan embeddings: 1 NaN"):
        create_embedder("test-nan").embed(frames)


def test_distinct_frames_are_each_frame_once_in_first_seen_order():
    from metrics.scoring import distinct_frames
    rng = np.random.default_rng(0)
    a, b, c = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    frames = np.stack([b, a, b, c, a, b])
    distinct, inverse = distinct_frames(frames)
    assert np.array_equal(distinct, np.stack([b, a, c]))
    assert inverse.tolist() == [0, 1, 0, 2, 1, 0]
    assert np.array_equal(distinct[inverse], frames)
    one_pixel_off = frames.copy()
    one_pixel_off[3, 0, 0, 0] ^= 1
    assert len(distinct_frames(one_pixel_off)[0]) == 3 and len(distinct_frames(np.stack([a, c, c ^ 1]))[0]) == 3


def test_acd_embeds_each_distinct_frame_once_and_scores_as_embedding_all(monkeypatch):
    """Copy-input's faces videos repeat their input frame: ACD embeds each distinct frame once,
    with the scores and the fallback count of embedding every frame."""
    import metrics.embedders as embedders
    from metrics.acd import acd_c, identity_distances
    from metrics.scoring import _acd_frames
    monkeypatch.setattr(embedders, "_EMBEDDERS", dict(embedders._EMBEDDERS))
    seen = []

    @register_embedder("test-colour")
    class Colour(Embedder):
        dim = 3

        def _embed_batch(self, frames):
            seen.append(len(frames))
            means = frames.reshape(len(frames), -1, 3).mean(axis=1) + 1.0
            return means, means[:, 0] > 128   # "fell back": a red-ish frame

    rng = np.random.default_rng(1)
    inputs = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    copies = np.repeat(inputs[:, None], 5, axis=1)                       # (4, 5, ...): copy-input
    videos = np.concatenate([copies[:, :3], rng.integers(0, 256, (4, 2, 8, 8, 3), dtype=np.uint8)], axis=1)
    distances, per_video_c, name, fell_back = _acd_frames(videos, inputs, "test-colour")
    assert seen == [4 + 8] and name == "test-colour"                      # 4 inputs + 8 new frames
    every = create_embedder("test-colour")
    e_gen, e_in = every.embed(videos), every.embed(inputs[:, None])
    assert np.array_equal(distances, identity_distances(e_gen.vectors, e_in.vectors[:, 0]))
    assert np.array_equal(per_video_c, acd_c(e_gen.vectors))
    assert fell_back == e_gen.n_fell_back + e_in.n_fell_back
