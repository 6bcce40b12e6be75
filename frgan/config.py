"""The typed schema of params.yaml.

Every stage reads params.yaml through `load_params`. An unknown key, a wrong type or an
out-of-range value raises `ParamsError` with one line naming the key path, the value and what
was expected; `pipelines` turn it into exit code 2 before any work starts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DATASET_NAMES = ("faces-synth", "actors-synth", "mug", "penn")
ACTOR_DATASETS = ("actors-synth", "penn")  # joint heatmaps + pose LSTM, MSE/PSNR (Table 3)
Precision = Literal["fp32", "bf16"]   # train.precision; frgan/train/accel.py applies it


class ParamsError(ValueError):
    """params.yaml is missing, unreadable or breaks the schema; the message is one line."""


def _listed(names: list) -> str:
    """A list as params.yaml spells it: [a, b]."""
    return "[" + ", ".join(str(n) for n in names) + "]"


def _require_distinct(key: str, values: list) -> None:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{key} = {_listed(values)}: expected distinct names ({', '.join(repeated)} "
                         "listed more than once)")


class _Strict(BaseModel):
    # extra="forbid": a misspelt key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------------------------------------
# Profiles: every size knob a profile selects.

# A baseline's knobs: method name -> {field of its config dataclass: value}; the names and fields
# are checked where the registry and the config classes are known (pipelines._stage, baselines.common).
BaselineKnobs = dict[str, dict[str, Any]]


class ProfileTrain(_Strict):
    """The `train` keys a profile may set (merged over the train section when it is active)."""
    lr: Optional[float] = Field(default=None, gt=0.0)
    betas: Optional[tuple[float, float]] = None
    loss_weights: Optional[dict[Literal["rec", "mask", "adv", "feat"], float]] = None
    gp_weight: Optional[float] = Field(default=None, ge=0.0)
    baselines: Optional[BaselineKnobs] = None   # merged over train.baselines, method by method


class Profile(_Strict):
    faces_size: int = Field(ge=16, le=512)
    actors_size: int = Field(ge=16, le=512)
    faces_subjects: int = Field(ge=3)         # >= 3: one subject per split at least
    faces_frames: int = Field(ge=4)
    actors_per_action: int = Field(ge=3)      # >= 3: one video per split at least
    actors_frames: int = Field(ge=4)
    real_max_videos: Optional[int] = Field(default=None, ge=3)   # >= 3: one (gm, gr, test) triple at least
    pose_observe: int = Field(ge=1)           # poses the LSTM observes (paper 4.1: 10)
    pose_predict: int = Field(ge=1)           # poses predicted = frames generated (paper: 32)
    pose_lstm_hidden: int = Field(ge=4)       # LSTM units (Villegas et al. 2017: 1024)
    pose_lstm_steps: int = Field(ge=1)        # LSTM training steps (Villegas et al.: 37,500)
    width: int = Field(ge=4)                  # base channels of every network (authors: 64)
    batch: int = Field(ge=1)                  # paper 4.1: 32
    gm_steps: int = Field(ge=1)               # G_M training steps (stage 1)
    gr_steps: int = Field(ge=1)               # G_R training steps (stage 2)
    gr_clip_faces: int = Field(ge=4)          # G_R clip length on faces (paper 4.1: 32)
    gr_clip_actors: int = Field(ge=4)         # G_R clip length on actors (paper 4.1: 16)
    # FRGAN's training knobs this profile sets over the `train` section (keys left out keep
    # train's): what the paper leaves open differs with size (the `cpu` profile's loss balance).
    train: Optional[ProfileTrain] = None

    @model_validator(mode="after")
    def _actor_videos_cover_the_protocol(self) -> "Profile":
        if self.pose_observe + self.pose_predict > self.actors_frames:
            raise ValueError(
                f"pose_observe + pose_predict = {self.pose_observe + self.pose_predict}: expected at "
                f"most actors_frames = {self.actors_frames} (a test video must hold both)")
        return self

    @model_validator(mode="after")
    def _synthetic_videos_hold_a_gr_window(self) -> "Profile":
        # G_R trains on windows of gr_clip_* frames after an input frame (frgan/methods.py): a
        # generated video of *_frames frames must hold one, or the gr split has no usable clip.
        for kind in ("faces", "actors"):
            clip, frames = getattr(self, f"gr_clip_{kind}"), getattr(self, f"{kind}_frames")
            if clip >= frames:
                raise ValueError(f"gr_clip_{kind} = {clip}: expected less than {kind}_frames = {frames} "
                                 "(a G_R window is gr_clip frames after an input frame)")
        return self


# ---------------------------------------------------------------------------------------------
# Dataset sources.

class FacesSynth(_Strict):
    pose_jitter_deg: float = Field(default=3.0, ge=0.0, le=30.0)
    takes_per_expression: int = Field(default=1, ge=1)


class ActorsSynth(_Strict):
    pass


class Mug(_Strict):
    root: Optional[Path] = None
    split: Literal["authors", "even"] = "authors"
    crop_shift: Literal["authors", "roi-height"] = "authors"
    detect_max_side: Optional[int] = Field(default=None, ge=64)


class Penn(_Strict):
    root: Optional[Path] = None


class Datasets(_Strict):
    faces_synth: FacesSynth = Field(default_factory=FacesSynth, alias="faces-synth")
    actors_synth: ActorsSynth = Field(default_factory=ActorsSynth, alias="actors-synth")
    mug: Mug = Field(default_factory=Mug)
    penn: Penn = Field(default_factory=Penn)


# ---------------------------------------------------------------------------------------------
# Stage sections.

class Prepare(_Strict):
    datasets: list[Literal["faces-synth", "actors-synth", "mug", "penn"]] = Field(min_length=1)
    sheet_per_class: int = Field(default=3, ge=1, le=16)

    @model_validator(mode="after")
    def _datasets_are_distinct(self) -> "Prepare":
        _require_distinct("prepare.datasets", self.datasets)   # DVC would generate one stage twice
        return self


class Conditions(_Strict):
    heatmap_sigma: float = Field(default=0.03, gt=0.0, le=0.5)   # joint Gaussian sigma, fraction of the crop side
    pose_lstm_batch: int = Field(default=256, ge=1)              # Villegas et al. 2017: 256
    # Faces (paper 3.1, 4.1): the 3DMM fitted to real MUG's landmarks (faces-synth always uses
    # the procedural model its ground truth is made of). Paper: the Basel Face Model.
    face_model: Literal["procedural", "sfm", "bfm"] = "procedural"
    face_model_path: Optional[Path] = None        # sfm: folder of the SFM files; bfm: 01_MorphableModel.mat
    face_expression_path: Optional[Path] = None   # bfm: .mat with the expression basis w_exp (none: no expressions)
    face_landmarks_path: Optional[Path] = None    # bfm: 68 landmark vertex ids (none: the .mat's keypoints)
    fit_alpha_weight: float = Field(default=1e-3, ge=0.0)   # Tikhonov weight on the identity alpha
    fit_beta_weight: float = Field(default=1e-3, ge=0.0)    # Tikhonov weight on each frame's beta
    fit_iterations: int = Field(default=50, ge=1)            # Levenberg-Marquardt iterations at most

    @model_validator(mode="after")
    def _real_face_model_has_a_path(self) -> "Conditions":
        if self.face_model != "procedural" and self.face_model_path is None:
            raise ValueError(f"conditions.face_model = {self.face_model!r}: expected "
                             "conditions.face_model_path to name the model's files")
        return self


class Weights(_Strict):
    rec: float = Field(default=3.0, ge=0.0)    # L_rec, eq. 5
    mask: float = Field(default=0.05, ge=0.0)  # L_r, eq. 6
    adv: float = Field(default=1.0, ge=0.0)    # L_gen, eqs. 7, 12
    feat: float = Field(default=0.0, ge=0.0)   # L_feat, eq. 15 (needs user-given extractors)


def _with_profile_train(raw: Any) -> Any:
    """params.yaml as read, with the active profile's `train` block merged over `train`
    (loss_weights key by key), so `Params.train` holds the knobs a run trains with."""
    if not isinstance(raw, dict):
        return raw
    profiles, train = raw.get("profiles"), raw.get("train")
    active = profiles.get(raw.get("profile")) if isinstance(profiles, dict) else None
    overrides = active.get("train") if isinstance(active, dict) else None
    if not isinstance(overrides, dict) or not isinstance(train, dict):
        return raw
    by_key = ("loss_weights", "baselines")    # merged key by key, not replaced
    merged = {**train, **{k: v for k, v in overrides.items() if k not in by_key and v is not None}}
    if isinstance(overrides.get("loss_weights"), dict):
        merged["loss_weights"] = {**(train.get("loss_weights") or {}), **overrides["loss_weights"]}
    if isinstance(overrides.get("baselines"), dict) and isinstance(train.get("baselines") or {}, dict):
        merged["baselines"] = _merge_knobs(train.get("baselines") or {}, overrides["baselines"])
    return {**raw, "train": merged}


def _merge_knobs(base: dict, over: dict) -> dict:
    """train.baselines with a profile's over it: per method, knob by knob."""
    merged = dict(base)
    for method, knobs in over.items():
        old = merged.get(method)
        merged[method] = {**old, **knobs} if isinstance(old, dict) and isinstance(knobs, dict) else knobs
    return merged


class Train(_Strict):
    methods: list[str] = Field(min_length=1)
    lr: float = Field(default=1e-4, gt=0.0)
    betas: tuple[float, float] = (0.0, 0.9)
    loss_weights: Weights = Field(default_factory=Weights)
    gp_weight: float = Field(default=10.0, ge=0.0)
    checkpoint_every: int = Field(default=100, ge=1)
    log_every: int = Field(default=10, ge=1)
    # Pictures of the model per training stage (G_M, G_R, a baseline's network), evenly spaced,
    # the last at the end; MLflow samples/*.png (frgan/train/samples.py). Moves no number.
    pictures: int = Field(default=5, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Data-parallel processes per train stage: > 1 re-executes the stage under torchrun
    # (frgan/train/distributed.py); the global batch stays the profile's batch.
    processes: int = Field(default=1, ge=1)
    # Speed switches of FRGAN's G_M / G_R training (frgan/train/accel.py); fp32 eager, no
    # prefetch is the default and what the committed numbers were made with. The baselines
    # train fp32 eager whatever these say; generation always runs fp32 eager.
    precision: Precision = "fp32"                 # bf16: autocast forward passes and losses
    compile: bool = False                         # torch.compile the generators (critics stay eager)
    channels_last: bool = False                   # NHWC / NDHWC weights and batches
    prefetch: int = Field(default=0, ge=0, le=8)  # batches a thread prepares ahead; same numbers with any
    # Training seeds: each one is a `seed` item of dvc.yaml's train/generate/evaluate matrix. A
    # run with seed s trains from the master seed + s, so [0] is the single-seed graph.
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    feature_vgg16_path: Optional[Path] = None   # eq. 15: a torchvision VGG16 state dict (user file)
    # The baselines' own knobs (method -> {config field: value}) over their modules' defaults,
    # which are their authors' values; the footing every method shares (width, batch, steps,
    # seed, device, splits) is not among them (baselines.common.with_knobs).
    baselines: BaselineKnobs = Field(default_factory=dict)

    @model_validator(mode="after")
    def _methods_are_distinct(self) -> "Train":
        _require_distinct("train.methods", self.methods)   # DVC would generate one stage twice
        return self

    @model_validator(mode="after")
    def _seeds_are_distinct(self) -> "Train":
        if any(s < 0 for s in self.seeds) or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"train.seeds = {self.seeds}: expected distinct integers >= 0")
        return self

    @model_validator(mode="after")
    def _feature_loss_has_weights(self) -> "Train":
        if self.loss_weights.feat > 0 and self.feature_vgg16_path is None:
            raise ValueError(f"train.loss_weights.feat = {self.loss_weights.feat}: expected "
                             "train.feature_vgg16_path to name a VGG16 state dict (nothing is downloaded)")
        return self
    # Method names are checked against the registry by pipelines._stage (the registry is filled
    # by frgan.methods and the baselines package, which this module must not import).


class Evaluate(_Strict):
    embedder: Literal["dlib", "facenet"] = "dlib"   # face embedding for ACD (OpenFace is not on PyPI)


class Report(_Strict):
    # Which dataset's evaluate results fill which table (a title always names the dataset).
    # null: the graph has no dataset of that kind (a one-dataset graph); those tables say so.
    faces_dataset: Optional[Literal["faces-synth", "mug"]] = "faces-synth"      # Table 1; Table 4's ACD columns
    actors_dataset: Optional[Literal["actors-synth", "penn"]] = "actors-synth"  # Table 3; Table 4's MSE column
    # The faces datasets whose real training videos get a Reference row (the `reference` stage's
    # DVC matrix: a list, so that [] yields no stage in a graph without faces). Must hold
    # faces_dataset: Table 1 shows its row.
    reference_datasets: list[Literal["faces-synth", "mug"]] = Field(default_factory=lambda: ["faces-synth"])
    # Regression gate (`python -m pipelines.check`), smoke profile: a number fails when
    # |new - old| > abs_tolerance + rel_tolerance * |old| (old: reports/expected/smoke.json).
    rel_tolerance: float = Field(default=0.05, ge=0.0)
    abs_tolerance: float = Field(default=1e-4, ge=0.0)
    # Published-number gate (`python -m pipelines.check`), real datasets only: a reproduced mean
    # passes when the published value lies in its 95% interval or within this relative distance.
    published_rel_tolerance: float = Field(default=0.10, ge=0.0)

    @model_validator(mode="after")
    def _reference_datasets_are_distinct(self) -> "Report":
        _require_distinct("report.reference_datasets", self.reference_datasets)
        return self


class Study(_Strict):
    # The user study of Table 2 (paper 4.2): `python -m pipelines.study build|serve|tally`.
    dataset: Optional[Literal["faces-synth", "mug"]] = None   # generated videos drawn from; None: report.faces_dataset
    competitors: list[str] = Field(default_factory=lambda: ["mcnet", "villegas17", "mocogan"], min_length=1)
    videos_per_expression: int = Field(default=10, ge=1)   # per method and expression (paper 4.2: 10)
    questions: int = Field(default=54, ge=1)               # FRGAN-vs-competitor pairs (paper 4.2: 54)
    raters_per_question: int = Field(default=3, ge=1)      # answers wanted per question (paper 4.2: 3)
    seed: Optional[int] = Field(default=None, ge=0)        # the draw's seed; None: the master seed
    fps: float = Field(default=8.0, gt=0.0, le=60.0)       # GIF playback rate
    display_px: int = Field(default=256, ge=64, le=1024)   # side each video is shown at in the page
    folder: Path = Path("data/study")                      # the study folder build writes and serve reads

    @model_validator(mode="after")
    def _competitors_are_others(self) -> "Study":
        if "frgan" in self.competitors or len(set(self.competitors)) != len(self.competitors):
            raise ValueError(f"study.competitors = {self.competitors}: expected distinct methods other "
                             "than frgan (FRGAN is one side of every question)")
        return self


class Params(_Strict):
    profile: str
    seed: int = Field(ge=0)
    profiles: dict[str, Profile]
    datasets: Datasets = Field(default_factory=Datasets)
    prepare: Prepare
    conditions: Conditions
    train: Train
    evaluate: Evaluate = Field(default_factory=Evaluate)
    report: Report = Field(default_factory=Report)
    study: Study = Field(default_factory=Study)

    @model_validator(mode="before")
    @classmethod
    def _active_profile_trains(cls, raw: Any) -> Any:
        return _with_profile_train(raw)

    @model_validator(mode="after")
    def _profile_is_defined(self) -> "Params":
        if self.profile not in self.profiles:
            raise ValueError(
                f"profile = {self.profile!r}: expected one of {sorted(self.profiles)} "
                "(the keys of `profiles`)")
        return self

    @model_validator(mode="after")
    def _named_datasets_are_prepared(self) -> "Params":
        # Keys that name a dataset the graph must have prepared: refused here, before any stage
        # runs, rather than by a stage half-way through `dvc repro` (No such file or directory).
        prepared = self.prepare.datasets
        for key in ("report.faces_dataset", "report.actors_dataset", "study.dataset"):
            name = getattr(getattr(self, key.split(".")[0]), key.split(".")[1])
            if name is not None and name not in prepared:
                raise ValueError(f"{key} = {name} is not in prepare.datasets {_listed(prepared)}: "
                                 f"add it there or set {key}: null")
        for name in self.report.reference_datasets:
            if name not in prepared:
                raise ValueError(f"report.reference_datasets = {_listed(self.report.reference_datasets)}: "
                                 f"{name} is not in prepare.datasets {_listed(prepared)}: add it there or "
                                 "remove it from report.reference_datasets")
        faces = self.report.faces_dataset
        if faces is not None and faces not in self.report.reference_datasets:
            raise ValueError(f"report.faces_dataset = {faces} is not in report.reference_datasets "
                             f"{_listed(self.report.reference_datasets)}: add it there (Table 1's Reference "
                             "row) or set report.faces_dataset: null")
        return self

    @property
    def device(self) -> str:
        """train.device with "auto" resolved: cuda when available, else cpu."""
        if self.train.device != "auto":
            return self.train.device
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def size(self) -> Profile:
        """The knobs of the active profile."""
        return self.profiles[self.profile]


# ---------------------------------------------------------------------------------------------
# Loading and error messages.

def _describe(error: dict[str, Any]) -> str:
    """One pydantic error as 'key.path = value: expected ...'."""
    path = ".".join(str(p) for p in error["loc"])
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key (not in the schema of frgan/config.py)"
    if kind == "missing":
        return f"{path}: missing required key"
    if kind == "value_error":  # our own validators say key, value and expectation
        message = message.removeprefix("Value error, ")
        # A nested model's validator knows its keys but not where it sits (profiles.<name>.).
        return message if not path or message.startswith(path) else f"{path}.{message}"
    expected = message.removeprefix("Input should be ")
    if expected.startswith(("greater", "less")):
        expected = "a value " + expected
    return f"{path} = {error.get('input')!r}: expected {expected}"


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        raise ParamsError(f"{source}: {_describe(first)}{suffix}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: file not found (expected the suite's params.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None)   # e.g. a python/object tag: safe_load builds no objects
        raise ParamsError(f"{path}: not valid YAML{where}" + (f" ({problem})" if problem else "")) from None
    return parse_params(raw, str(path))
