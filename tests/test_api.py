"""Trained models a researcher can use (issue 20): `load_model(folder).generate(...)` gives what
the method's own `generate` gives for a test item, the sampler (`python -m pipelines.sample`)
writes it as a GIF and refuses bad input in one line, the console scripts exist and `--help`
of a stage lists the registered methods."""
from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from PIL import Image

from frgan.api import ModelError, load_model
from frgan.methods import get_method, registered
from tests.conftest import REPO, params_with, run_module, tiny_actors_task

SIZE, T = 16, 6   # T = 6 target frames: G_R (clip length 4) refines two windows, the last padded


@pytest.fixture(scope="module")
def task(tmp_path_factory, one_torch_thread):
    return tiny_actors_task(tmp_path_factory.mktemp("actors"), SIZE, T)


@pytest.fixture(scope="module")
def params():
    return params_with({"width": 4, "batch": 2, "gm_steps": 3, "gr_steps": 2, "gr_clip_actors": 4}, {"device": "cpu"})


@pytest.fixture(scope="module")
def models(task, params, tmp_path_factory):
    """method -> its trained folder, laid out as the train stage does: models/<dataset>/<method>/seed-0."""
    root = tmp_path_factory.mktemp("project")

    def trained(name: str):
        out = root / "models" / "actors-synth" / name / "seed-0"
        if not out.is_dir():
            out.mkdir(parents=True)
            get_method(name).train(task, params, out, root / "checkpoints" / name, log=None)
        return out
    return trained


def _item(task, i: int):
    items = task.test_items()
    return items, task.test_frames().input[i]


FRGAN_VARIANTS = ["frgan", "frgan-gm-only", "frgan-no-dense", "frgan-diff-map"]


@pytest.mark.parametrize("name", FRGAN_VARIANTS + ["villegas17", "mathieu", "mcnet", "vgan", "copy-input"])
def test_api_gives_what_the_method_generates(name, task, params, models):
    folder = models(name)
    expected = get_method(name).generate(task, params, folder, "cond")
    model = load_model(folder)
    assert model.method == name
    items = task.test_items()
    for i in range(len(items.index)):
        label = items.index.label[i] if name == "vgan" else None
        video = model.generate(task.test_frames().input[i], items.cond[i].numpy(), items.input_cond[i].numpy(),
                               label=label)
        assert video.dtype == np.uint8 and video.shape == (T, SIZE, SIZE, 3)
        assert np.array_equal(video, expected[i]), f"{name}: item {i} differs from Method.generate"


def test_joints_are_drawn_as_the_suites_heatmaps(task, params, models):
    folder = models("frgan")
    model = load_model(folder)
    assert model.sigma_px == pytest.approx(task.sigma_px)
    expected = get_method("frgan").generate(task, params, folder, "cond")
    pred = np.load(task.conditions / "pred_joints.npy")                    # (N, T, J, 2) pixels
    items, image = _item(task, 0)
    assert np.array_equal(model.generate(image, pred[0], items.input_cond[0].numpy()), expected[0])
    # a NaN joint is invisible: its map is zero, as the store's visibility 0 makes it
    joints = pred[0, 0].copy()
    joints[3] = np.nan
    maps = model._maps(joints, "input_condition", frames=False)
    assert float(maps[3].abs().max()) == 0.0 and float(maps[2].max()) > 0.5


@pytest.mark.parametrize("name", FRGAN_VARIANTS)
def test_the_method_is_read_from_the_files_when_the_folder_says_nothing(name, models, tmp_path):
    elsewhere = tmp_path / "my-model"
    shutil.copytree(models(name), elsewhere)
    assert load_model(elsewhere).method == name   # gm.pt's config: dense, residual, refine


def test_bad_api_inputs_are_one_line_errors(task, models):
    model = load_model(models("frgan"))
    items, image = _item(task, 0)
    cond, first = items.cond[0].numpy(), items.input_cond[0].numpy()
    cases = [((image[:8], cond, first), "image: expected uint8 (16, 16, 3)"),
             ((image, cond[:, :5], first), "conditions: expected maps (T, 13, 16, 16) or joints"),
             ((image, cond * 3, first), "conditions: expected finite maps in [0, 1]"),
             ((image, cond, None), "input_condition: frgan needs the input frame's condition")]
    for args, message in cases:
        with pytest.raises(ModelError, match=re.escape(message)) as info:
            model.generate(*args)
        assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="label: vgan needs one of"):
        load_model(models("vgan")).generate(image, cond)
    with pytest.raises(NotImplementedError, match="mocogan: its videos depend on what is drawn for the whole test set"):
        load_model(models("mocogan"))
    with pytest.raises(ModelError, match="not a model folder"):
        load_model(models("frgan") / "absent")


@pytest.fixture(scope="module")
def inputs(task, tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    items, image = _item(task, 0)
    Image.fromarray(image).save(folder / "in.png")
    np.save(folder / "cond.npy", items.cond[0].numpy())
    np.save(folder / "in_cond.npy", items.input_cond[0].numpy())
    return folder


def test_sampler_writes_the_video_as_a_gif(task, models, inputs, tmp_path):
    folder = models("frgan")
    out = tmp_path / "out.gif"
    result = run_module("pipelines.sample", "--model", str(folder), "--image", str(inputs / "in.png"),
                        "--conditions", str(inputs / "cond.npy"), "--input-condition", str(inputs / "in_cond.npy"),
                        "--out", str(out), "--fps", "10", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    items, image = _item(task, 0)
    frames = load_model(folder).generate(image, items.cond[0].numpy(), items.input_cond[0].numpy())
    # Pillow's GIF writer merges identical consecutive frames (adding their durations); 16x16
    # frames have at most 256 colours, so the palette holds them exactly
    runs = [frames[0]] + [b for a, b in zip(frames[:-1], frames[1:]) if not np.array_equal(a, b)]
    with Image.open(out) as gif:
        assert gif.size == (SIZE, SIZE) and gif.n_frames == len(runs)
        total = 0
        for k in range(gif.n_frames):
            gif.seek(k)
            total += gif.info["duration"]
            assert np.array_equal(np.asarray(gif.convert("RGB")), runs[k]), f"frame {k}"
        assert total == 100 * T


def _sample(capsys, *args: str) -> tuple[int, str]:
    from pipelines.sample import cli
    with pytest.raises(SystemExit) as exit_:
        cli(list(args))
    return exit_.value.code, capsys.readouterr().err


def test_sampler_bad_inputs_exit_2_in_one_line_and_write_nothing(models, inputs, tmp_path, capsys):
    model, out = str(models("frgan")), tmp_path / "out.gif"
    np.save(tmp_path / "wrong.npy", np.zeros((T, 3, SIZE, SIZE), np.float32))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    ok = {"--model": model, "--image": str(inputs / "in.png"), "--conditions": str(inputs / "cond.npy"),
          "--input-condition": str(inputs / "in_cond.npy"), "--out": str(out)}
    cases = [({"--image": str(tmp_path / "absent.png")}, "absent.png: not found (--image)"),
             ({"--image": str(tmp_path / "broken.png")}, "broken.png: not a readable image"),
             ({"--conditions": str(tmp_path / "wrong.npy")}, "wrong.npy: expected maps (T, 13, 16, 16)"),
             ({"--conditions": str(inputs / "in.png")}, "in.png: not a .npy array"),
             ({"--model": str(tmp_path)}, "no weight file of this suite"),
             ({"--out": str(tmp_path / "out.avi")}, "out.avi: expected a .gif or .mp4"),
             ({"--input-condition": None}, "--input-condition: frgan needs the input frame's condition")]
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        cases.append(({"--out": str(tmp_path / "out.mp4")}, "needs imageio-ffmpeg"))
    for change, message in cases:
        argv = [x for key, value in {**ok, **change}.items() if value is not None for x in (key, value)]
        code, err = _sample(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and message in err, (change, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.png", "wrong.npy"]   # no output, no temp


def test_console_scripts_exist_and_answer_help(monkeypatch, capsys):
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"frgan-sample", "frgan-study", "frgan-check"}
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        entry = getattr(importlib.import_module(module), function)
        monkeypatch.setattr(sys, "argv", [name, "--help"])
        with pytest.raises(SystemExit) as exit_:
            entry()
        assert exit_.value.code == 0 and "usage:" in capsys.readouterr().out, name


def test_method_help_lists_every_registered_method():
    result = run_module("pipelines.train", "--help", cwd=REPO)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    missing = [name for name in registered() if name not in text]
    assert missing == []


def _python(code: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=True).stdout.split()


def test_parsing_a_method_stays_torch_free():
    assert _python("import sys; sys.argv = ['evaluate', '--method', 'frgan']; from pipelines import _stage; "
                   "_stage.parser('x', method=True).parse_args(); print('torch' in sys.modules)") == ["False"]


def test_frgan_load_is_the_api_and_import_frgan_stays_torch_free(models):
    torch_loaded, has_load = _python("import sys, frgan; print('torch' in sys.modules, hasattr(frgan, 'load'))")
    assert torch_loaded == "False"
    if has_load == "False":
        pytest.skip("frgan.load not in frgan/__init__.py yet: it needs an exemption in tests/test_dvc_deps.py")
    import frgan
    assert frgan.load(models("mathieu")).method == "mathieu"


@pytest.mark.parametrize("name", ["frgan", "vgan"])
def test_the_mlflow_model_predicts_what_frgan_load_generates(name, task, params, models):
    """The train stage's MLflow model (frgan/mlflow_model.py, logged as code): loaded back from
    the run, its predict on the input example is the API's video."""
    import mlflow
    from frgan import tracking
    from frgan.api import example_input
    folder = models(name)
    example = example_input(task, name)
    with tracking.start_run(f"train@actors-synth-{name}-0", params):
        tracking.log_trained_model(folder, example)
        uri = f"runs:/{mlflow.active_run().info.run_id}/model"
    model = mlflow.pyfunc.load_model(uri)
    video = model.predict(example)
    # the stated signature is the one MLflow infers from a prediction
    assert model.metadata.signature == mlflow.models.infer_signature(example, video)
    label = str(example.pop("label")[0]) if "label" in example else None
    assert np.array_equal(video, load_model(folder).generate(**example, label=label))
    assert example_input(task, "mocogan") is None   # frgan.load cannot make one MoCoGAN video alone


def test_the_train_stage_logs_its_model_from_the_helper_which_never_imports_torch(task, params, models):
    """As the train stage does (frgan.tracking.prestart): the model is logged by the tracking
    helper, with its input example and signature, as the run's logged model; MLflow's serving
    check is skipped, so the helper never loads the model and never maps libtorch (Linux's
    /proc/<pid>/maps: a shared library imported is mapped). The test above checks the logged
    model's predictions."""
    import mlflow
    from frgan import tracking
    from frgan.api import example_input
    maps = lambda pid: open(f"/proc/{pid}/maps").read()   # noqa: E731
    if not os.path.exists(f"/proc/{os.getpid()}/maps"):
        pytest.skip("no /proc/<pid>/maps here (not Linux): cannot see what the helper imported")
    assert "libtorch" in maps(os.getpid())   # what is looked for, seen where torch is imported
    example = example_input(task, "frgan")
    tracking.prestart()
    try:
        helper = tracking._helper.process.pid
        with tracking.start_run("train@actors-synth-frgan-0", params) as run:
            tracking.log_trained_model(models("frgan"), example)
        assert "libtorch" not in maps(helper)
    finally:
        tracking.close_helper()
    mlflow.set_tracking_uri(tracking.tracking_uri())   # this test's store (the helper wrote it)
    got = mlflow.MlflowClient().get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    logged = mlflow.search_logged_models(experiment_ids=[got.info.experiment_id], output_format="list",
                                         filter_string=f"source_run_id = '{run.info.run_id}'")
    assert [m.name for m in logged] == ["model"]
    info = mlflow.models.get_model_info(f"runs:/{run.info.run_id}/model")
    assert info.saved_input_example_info is not None and info.signature is not None


def test_the_first_test_items_are_those_of_the_whole_test_set(task):
    """`Task.test_items(first=k)` (the input example's one item) builds only k items, the same."""
    import torch
    every, first = task.test_items(), task.test_items(first=2)
    assert list(first.index.item) == list(every.index.item[:2])
    for name in ("input", "input_cond", "cond", "cond_gt"):
        assert torch.equal(getattr(first, name), getattr(every, name)[:2]), name
    assert np.array_equal(first.truth, every.truth[:2])
    assert task.horizon() == every.n_frames   # what VGAN's config reads instead of the test items
