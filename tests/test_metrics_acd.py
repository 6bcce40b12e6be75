"""ACD-I / ACD-C against plain per-frame loops."""
import itertools

import numpy as np
import pytest

from metrics.acd import acd_c, acd_i, identity_distances, l2_normalise


def loop_acd_i(emb_generated, emb_input):
    return np.array([
        np.mean([np.linalg.norm(frame - emb_input[v]) for frame in emb_generated[v]])
        for v in range(len(emb_generated))
    ])


def loop_acd_c(emb):
    return np.array([
        np.mean([np.linalg.norm(video[t] - video[s]) for t, s in itertools.combinations(range(len(video)), 2)])
        for video in emb
    ])


@pytest.fixture
def embeddings():
    rng = np.random.default_rng(7)
    return l2_normalise(rng.normal(size=(6, 9, 128))), l2_normalise(rng.normal(size=(6, 128)))


def test_acd_i_equals_loop(embeddings):
    generated, inputs = embeddings
    np.testing.assert_allclose(acd_i(generated, inputs), loop_acd_i(generated, inputs), atol=1e-12)


def test_acd_c_equals_loop(embeddings):
    generated, _ = embeddings
    np.testing.assert_allclose(acd_c(generated), loop_acd_c(generated), atol=1e-12)


def test_acd_c_chunking_does_not_change_the_result(embeddings, monkeypatch):
    import metrics.acd as acd_module

    generated, _ = embeddings
    monkeypatch.setattr(acd_module, "_PAIR_ELEMENTS_PER_CHUNK", 1)  # one video per chunk
    np.testing.assert_allclose(acd_c(generated), loop_acd_c(generated), atol=1e-12)


def test_static_video_has_zero_distances():
    frame = l2_normalise(np.random.default_rng(0).normal(size=(1, 1, 64)))
    video = np.repeat(frame, 5, axis=1)
    assert acd_c(video)[0] == 0.0
    assert acd_i(video, frame[:, 0])[0] == 0.0


def test_unit_vectors_and_shape_errors(embeddings):
    generated, inputs = embeddings
    np.testing.assert_allclose(np.linalg.norm(generated, axis=-1), 1.0)
    assert identity_distances(generated, inputs).shape == (6, 9)
    with pytest.raises(ValueError, match="at least 2 frames"):
        acd_c(generated[:, :1])
    with pytest.raises(ValueError):
        acd_i(generated, inputs[:3])


# ------------------------------------------------------------------ NaN and infinity (issue 17, item 6)

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("entry, which", [
    ("identity_distances", "emb_generated"), ("identity_distances", "emb_input"),
    ("acd_i", "emb_generated"), ("acd_i", "emb_input"), ("acd_c", "emb"),
    ("l2_normalise", "embeddings")])
def test_nan_and_inf_embeddings_are_refused_with_the_array_named(embeddings, entry, which, bad):
    generated, inputs = embeddings[0].copy(), embeddings[1].copy()
    (inputs if which == "emb_input" else generated)[2, -1] = bad
    call = {"identity_distances": lambda: identity_distances(generated, inputs),
            "acd_i": lambda: acd_i(generated, inputs), "acd_c": lambda: acd_c(generated),
            "l2_normalise": lambda: l2_normalise(generated)}[entry]
    with pytest.raises(ValueError, match=rf"^{which}: \d+ NaN and \d+ infinite values"):
        call()
