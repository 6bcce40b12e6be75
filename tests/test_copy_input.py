"""The floor method copy-input (issue 17): every output frame is the input frame; nothing to
train, a zero budget; run through the real train, generate and evaluate stages."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from frgan.methods import Budget, get_method
from frgan.task import to_uint8_frames
from tests import tiny_project as tp


def test_every_output_frame_is_the_input_frame():
    inputs = torch.rand(3, 3, 8, 8) * 2 - 1                       # (N, 3, H, W) in [-1, 1]
    task = SimpleNamespace(test_items=lambda: SimpleNamespace(input=inputs, n_frames=5))
    method = get_method("copy-input")
    for cond_key in ("cond", "cond_gt"):
        videos = method.generate(task, None, None, cond_key)
        assert videos.shape == (3, 5, 8, 8, 3) and videos.dtype == np.uint8
        expected = to_uint8_frames(inputs)
        for t in range(5):
            np.testing.assert_array_equal(videos[:, t], expected)


def test_nothing_to_train_and_a_zero_budget(tmp_path):
    out, checkpoints = tmp_path / "model", tmp_path / "ckpt" / "seed-0"
    out.mkdir()
    spent = get_method("copy-input").train(None, None, out, checkpoints, log=None)
    assert spent == Budget() and spent == Budget(clips=0, generator_steps=0, samples_seen=0, parameters=0)
    assert json.loads((out / "method.json").read_text()) == {"method": "copy-input", "trained": False}
    assert checkpoints.is_dir() and not any(checkpoints.iterdir())   # the DVC out exists, empty


@pytest.mark.slow
def test_the_stages_score_the_floor(tmp_path_factory, tmp_path):
    root = tp.new_layout(tmp_path_factory, tmp_path / "layout", base=("actors-synth",))
    for module in ("train", "generate", "evaluate"):
        tp.must_pass(tp.stage(root, module, "--dataset", "actors-synth", "--method", "copy-input", "--seed", "0"))
    budget = json.loads((root / "reports/metrics/train-actors-synth-copy-input-seed0.json").read_text())
    assert {k: budget[k] for k in ("clips", "generator_steps", "samples_seen", "parameters")} == dict.fromkeys(
        ("clips", "generator_steps", "samples_seen", "parameters"), 0)
    scores = json.loads((root / "reports/metrics/evaluate-actors-synth-copy-input-seed0.json").read_text())
    assert 0 < scores["mse"]["mean"] < 1 and scores["mse_gt"] == scores["mse"]   # conditions are ignored
    videos = np.fromfile(root / "data/generated/actors-synth/copy-input/seed-0/videos.u8", dtype=np.uint8)
    meta = json.loads((root / "data/generated/actors-synth/copy-input/seed-0/meta.json").read_text())
    videos = videos.reshape(meta["shape"])
    assert (videos == videos[:, :1]).all()   # a still video
