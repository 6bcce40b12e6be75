"""params.yaml schema: the shipped file validates; bad files stop a stage with exit code 2 and
one line naming the key path, the value and what was expected, before any work."""
from __future__ import annotations

import copy

import pytest
import yaml

from frgan.config import ParamsError, load_params, parse_params
from tests.conftest import REPO, run_module

SHIPPED = yaml.safe_load((REPO / "params.yaml").read_text())


def test_shipped_params_validate_and_select_profile():
    params = load_params(REPO / "params.yaml")
    assert params.profile == "smoke"
    assert params.size is params.profiles["smoke"]
    for name in ("smoke", "synth", "paper"):
        assert name in params.profiles
    # the paper's crop sizes (section 4.1) at the paper profile
    assert params.profiles["paper"].faces_size == 96
    assert params.profiles["paper"].actors_size == 64


def _mutated(path: list, value=None, delete=False):
    raw = copy.deepcopy(SHIPPED)
    node = raw
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


BAD_CASES = [
    # (mutation, the message the stage must print)
    (_mutated(["profile"], "huge"),
     "params.yaml: profile = 'huge': expected one of ['cpu', 'paper', 'smoke', 'synth']"),
    (_mutated(["profiles", "smoke", "faces_size"], -3),
     "params.yaml: profiles.smoke.faces_size = -3: expected a value greater than or equal to 16"),
    (_mutated(["profiles", "smoke", "actors_frames"], "many"),
     "params.yaml: profiles.smoke.actors_frames = 'many': expected a valid integer"),
    (_mutated(["prepare", "colour"], "red"),
     "params.yaml: prepare.colour: unknown key"),
    (_mutated(["prepare", "datasets"], ["imagenet"]),
     "params.yaml: prepare.datasets.0 = 'imagenet': expected 'faces-synth', 'actors-synth', 'mug' or 'penn'"),
    (_mutated(["datasets", "mug", "split"], "random"),
     "params.yaml: datasets.mug.split = 'random': expected 'authors' or 'even'"),
    (_mutated(["seed"], delete=True),
     "params.yaml: seed: missing required key"),
    (_mutated(["seed"], 1.5),
     "params.yaml: seed = 1.5: expected a valid integer"),
    (_mutated(["train", "loss_weights", "feat"], 0.5),
     "params.yaml: train.loss_weights.feat = 0.5: expected train.feature_vgg16_path to name a VGG16 state dict"),
    (_mutated(["train", "methods"], ["frgan", "sora"]),
     "params.yaml: train.methods.1 = 'sora': expected one of ["),
    # a baseline's knobs (train.baselines): its config's defaulted fields, with their types
    (_mutated(["train", "baselines"], {"mcnet": {"lr_g": 0.1}}),
     "params.yaml: train.baselines.mcnet.lr_g: not a knob; expected one of ['betas', 'gan_weight', "),
    (_mutated(["train", "baselines"], {"mathieu": {"steps": 10}}),
     "params.yaml: train.baselines.mathieu.steps: the footing every method shares, set by the profile"),
    (_mutated(["train", "baselines"], {"mathieu": {"optimizer": "rmsprop"}}),
     "params.yaml: train.baselines.mathieu.optimizer = 'rmsprop': expected Literal['sgd', 'adam']"),
    (_mutated(["train", "baselines"], {"frgan": {"lr": 0.1}}),
     "params.yaml: train.baselines.frgan: expected a baseline with knobs (frgan takes its training knobs "),
    (_mutated(["train", "baselines"], {"sora": {"lr": 0.1}}),
     "params.yaml: train.baselines.sora: expected one of ["),
    # Keys that cannot work together (issue 17): refused before any stage runs.
    (_mutated(["prepare", "datasets"], ["actors-synth"]),
     "params.yaml: report.faces_dataset = faces-synth is not in prepare.datasets [actors-synth]: "
     "add it there or set report.faces_dataset: null"),
    (_mutated(["prepare", "datasets"], ["faces-synth"]),
     "params.yaml: report.actors_dataset = actors-synth is not in prepare.datasets [faces-synth]: "
     "add it there or set report.actors_dataset: null"),
    (_mutated(["report", "faces_dataset"], "mug"),
     "params.yaml: report.faces_dataset = mug is not in prepare.datasets [faces-synth, actors-synth]: "
     "add it there or set report.faces_dataset: null"),
    (_mutated(["report", "faces_dataset"], "actors-synth"),
     "params.yaml: report.faces_dataset = 'actors-synth': expected 'faces-synth' or 'mug'"),
    (_mutated(["report", "actors_dataset"], "faces-synth"),
     "params.yaml: report.actors_dataset = 'faces-synth': expected 'actors-synth' or 'penn'"),
    (_mutated(["study", "dataset"], "mug"),
     "params.yaml: study.dataset = mug is not in prepare.datasets [faces-synth, actors-synth]: "
     "add it there or set study.dataset: null"),
    (_mutated(["report", "reference_datasets"], []),
     "params.yaml: report.faces_dataset = faces-synth is not in report.reference_datasets []: add it there "
     "(Table 1's Reference row) or set report.faces_dataset: null"),
    (_mutated(["report", "reference_datasets"], ["faces-synth", "mug"]),
     "params.yaml: report.reference_datasets = [faces-synth, mug]: mug is not in prepare.datasets "
     "[faces-synth, actors-synth]: add it there or remove it from report.reference_datasets"),
    (_mutated(["report", "reference_datasets"], ["actors-synth"]),
     "params.yaml: report.reference_datasets.0 = 'actors-synth': expected 'faces-synth' or 'mug'"),
    (_mutated(["prepare", "datasets"], ["faces-synth", "actors-synth", "faces-synth"]),
     "params.yaml: prepare.datasets = [faces-synth, actors-synth, faces-synth]: expected distinct names "
     "(faces-synth listed more than once)"),
    (_mutated(["train", "methods"], ["frgan", "mcnet", "frgan"]),
     "params.yaml: train.methods = [frgan, mcnet, frgan]: expected distinct names (frgan listed more than once)"),
    (_mutated(["train", "seeds"], [0, 0]),
     "params.yaml: train.seeds = [0, 0]: expected distinct integers >= 0"),
    (_mutated(["profiles", "smoke", "real_max_videos"], 2),
     "params.yaml: profiles.smoke.real_max_videos = 2: expected a value greater than or equal to 3"),
    (_mutated(["profiles", "smoke", "gr_clip_faces"], 20),
     "params.yaml: profiles.smoke.gr_clip_faces = 20: expected less than faces_frames = 20 (a G_R window is gr_clip frames "
     "after an input frame)"),
    (_mutated(["profiles", "synth", "pose_predict"], 40),
     "params.yaml: profiles.synth.pose_observe + pose_predict = 50: expected at most actors_frames = 48"),
]


def _one_dataset(dataset: str, **report) -> dict:
    raw = _mutated(["prepare", "datasets"], [dataset])
    raw["report"].update(report)
    return raw


def test_a_one_dataset_graph_validates_with_the_other_kind_null():
    actors_only = parse_params(_one_dataset("actors-synth", faces_dataset=None, reference_datasets=[]))
    assert actors_only.report.faces_dataset is None and actors_only.report.reference_datasets == []
    faces_only = parse_params(_one_dataset("faces-synth", actors_dataset=None))
    assert faces_only.report.actors_dataset is None and faces_only.report.reference_datasets == ["faces-synth"]
    both_null = parse_params(_mutated(["report", "faces_dataset"], None))   # faces prepared, no Table 1
    assert both_null.report.faces_dataset is None


@pytest.mark.parametrize("raw, message", BAD_CASES, ids=[m.split(":")[1].strip() for _, m in BAD_CASES])
def test_bad_params_stop_the_stage_with_exit_2(tmp_path, raw, message):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    result = run_module("pipelines.prepare", "--dataset", "faces-synth", cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr          # one line, no traceback
    assert lines[0].startswith("error: " + message), lines[0]
    # stopped before any work: nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("profile: [smoke\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML at line \d+"):
        load_params(bad)
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "absent.yaml")
    with pytest.raises(ParamsError, match="expected a mapping"):
        parse_params(["profile"])


def test_several_errors_are_counted_in_one_line():
    raw = _mutated(["seed"], -1)
    raw["prepare"]["colour"] = "red"
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    assert "\n" not in str(info.value)
    assert str(info.value).endswith("(and 1 more error)")


# ---------------------------------------------------------------------------------------------
# A profile's `train` block: merged over the train section only while that profile is active.

def test_the_active_profiles_train_block_sets_the_train_knobs():
    inactive = load_params(REPO / "params.yaml")                     # smoke: no train block
    assert inactive.train.loss_weights.adv == SHIPPED["train"]["loss_weights"]["adv"]
    cpu = parse_params({**copy.deepcopy(SHIPPED), "profile": "cpu"})
    overrides = SHIPPED["profiles"]["cpu"]["train"]["loss_weights"]
    assert cpu.train.loss_weights.adv == overrides["adv"] != inactive.train.loss_weights.adv
    # keys the block leaves out keep the train section's values, key by key
    assert cpu.train.loss_weights.rec == SHIPPED["train"]["loss_weights"]["rec"]
    assert cpu.train.lr == SHIPPED["train"]["lr"]


def test_a_profile_train_block_refuses_keys_it_cannot_set():
    raw = _mutated(["profiles", "cpu", "train", "methods"], ["frgan"])
    with pytest.raises(ParamsError, match=r"profiles\.cpu\.train\.methods: unknown key"):
        parse_params(raw)
    raw = _mutated(["profiles", "cpu", "train", "loss_weights"], {"advx": 1.0})
    with pytest.raises(ParamsError, match=r"profiles\.cpu\.train\.loss_weights\.advx"):
        parse_params(raw)


def test_a_profile_sets_baseline_knobs_over_train_baselines_knob_by_knob():
    raw = _mutated(["train", "baselines"], {"mcnet": {"lr": 3.0e-4, "gan_weight": 0.1}})
    raw["profile"] = "cpu"
    raw["profiles"]["cpu"]["train"]["baselines"] = {"mcnet": {"margin": None}, "villegas17": {"lr": 1.0e-3}}
    knobs = parse_params(raw).train.baselines
    assert knobs == {"mcnet": {"lr": 3.0e-4, "gan_weight": 0.1, "margin": None}, "villegas17": {"lr": 1.0e-3}}
    raw["profile"] = "smoke"                      # inactive: the train section's only
    assert parse_params(raw).train.baselines == {"mcnet": {"lr": 3.0e-4, "gan_weight": 0.1}}


def test_baseline_knobs_reach_the_config_typed():
    from baselines.common import with_knobs
    from baselines.mathieu import MathieuConfig
    from baselines.villegas17 import Villegas17Config
    raw = _mutated(["train", "baselines"], {"villegas17": {"betas": [0.9, 0.99], "lr": 1, "margin": None},
                                            "mathieu": {"optimizer": "adam"}})
    params = parse_params(raw)
    footing = dict(width=8, batch=4, steps=10, seed=0, device="cpu")
    cfg = with_knobs(Villegas17Config(**footing), params, "villegas17")
    assert (cfg.betas, cfg.lr, cfg.margin, cfg.gan_weight) == ((0.9, 0.99), 1.0, None, 1.0)
    assert isinstance(cfg.lr, float)
    assert with_knobs(MathieuConfig(**footing), params, "mathieu").optimizer == "adam"
    untouched = MathieuConfig(**footing)
    assert with_knobs(untouched, parse_params(copy.deepcopy(SHIPPED)), "mathieu") == untouched
