"""Pictures while training (frgan/train/samples.py, `train.pictures`): every method with a network
draws them at the steps asked, they reach MLflow from the train stage, and they move no weight."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from frgan.api import WEIGHT_FILES
from frgan.methods import registered
from frgan.train import parts
from frgan.train.loop import TrainingLog
# the tiny task and training sizes of the footing tests (5 G_M + 3 G_R steps, batch 2, 16 px)
from tests.test_footing import GM_STEPS, GR_STEPS, SIZE, params, task  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

METHODS = registered()
TRAINED = sorted(set(METHODS) - {"copy-input"})


def _train(name, task, params, folder, log):
    (folder / "out").mkdir(parents=True)
    METHODS[name].train(task, params, folder / "out", folder / "ckpt", log=log)
    return {f: parts.load_weights(folder / "out" / f)["states"] for f in WEIGHT_FILES if (folder / "out" / f).is_file()}


def _same_states(a: dict, b: dict) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_states(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("name", TRAINED)
def test_pictures_come_at_the_steps_asked_and_move_no_weight(name, task, params, tmp_path):
    pictures, losses = [], []
    log = TrainingLog(scalars=lambda step, values: losses.append(step),
                      write_image=lambda stage, step, image: pictures.append((stage, step, image)), pictures=2)
    with_pictures = _train(name, task, params, tmp_path / "with", log)
    without = _train(name, task, params, tmp_path / "without", None)
    assert with_pictures and _same_states(with_pictures, without), f"{name}: pictures changed the weights"
    assert losses, f"{name}: the TrainingLog's losses were not logged"
    by_stage: dict[str, list[int]] = {}
    for stage, step, image in pictures:
        by_stage.setdefault(stage, []).append(step)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, (stage, image.shape)
        assert image.shape[0] % SIZE == 0 and image.shape[1] % SIZE == 0 and image.shape[0] >= 2 * SIZE, image.shape
    assert by_stage, f"{name}: no picture"
    for stage, steps in by_stage.items():
        total = steps[-1]   # the last picture is at the stage's end
        every = max(1, total // 2)
        assert steps == sorted(set(range(every, total + 1, every)) | {total}), (stage, steps)
    if name == "frgan":
        assert set(by_stage) == {"G_M", "G_R"} and by_stage["G_M"][-1] == GM_STEPS and by_stage["G_R"][-1] == GR_STEPS


def test_no_pictures_when_none_are_asked(task, params, tmp_path):
    pictures = []
    log = TrainingLog(scalars=lambda step, values: None,
                      write_image=lambda stage, step, image: pictures.append(step), pictures=0)
    _train("mathieu", task, params, tmp_path, log)
    assert pictures == []


def test_the_train_stage_logs_its_pictures_to_mlflow(task, params, tmp_path, monkeypatch):
    import mlflow
    from frgan import tracking
    from pipelines.train import training_log
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    (tmp_path / "out").mkdir()
    with tracking.start_run("train@toy-frgan-0", params) as run:
        METHODS["frgan"].train(task, params, tmp_path / "out", tmp_path / "ckpt", log=training_log(params))
    client = mlflow.MlflowClient(uri)
    names = sorted(a.path for a in client.list_artifacts(run.info.run_id, "samples"))
    every = max(1, GM_STEPS // params.train.pictures)
    gm_steps = sorted(set(range(every, GM_STEPS + 1, every)) | {GM_STEPS})
    assert [n for n in names if "g_m-" in n] == [f"samples/g_m-step{s:06d}.png" for s in gm_steps]
    assert f"samples/g_r-step{GR_STEPS:06d}.png" in names
    assert client.get_metric_history(run.info.run_id, "gm/loss"), "the losses go to MLflow as before"
