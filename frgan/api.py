"""Trained models a researcher can use: `frgan.load(folder).generate(image, conditions)`.

    model = frgan.load("models/actors-synth/frgan/seed-0")
    video = model.generate(image, conditions, input_condition)   # uint8 (T, H, W, 3)

`load_model` reads a train stage's weight files (`frgan.train.parts.save_weights`: the config
and the task's shape are in every file) and rebuilds the networks without a clip store or a
Task. `generate` makes the video the method's own `generate` makes for a test item with the
same input frame and conditions (the same code path: `coarse_clip`, `refine_long_clip`, a
baseline's `video`), one item at a time.

Inputs, as the suite uses them (frgan/task.py):
- image: uint8 (S, S, 3), S the model's size;
- conditions: the maps of the T frames to generate, (T, C, S, S) float in [0, 1] (uint8 maps are
  divided by 255): actors 13 joint heatmaps, faces RGB-encoded normal maps (C = 3). For actors
  also joint coordinates (T, J, 2) as (x, y) pixels, drawn as heatmaps with the suite's
  `joint_heatmaps` and sigma (a NaN joint is invisible: its map is zero);
- input_condition: the input frame's own map (C, S, S) or joints (J, 2). FRGAN's variants and
  villegas17 need it (their motion is the change from it); the others ignore it;
- label: the class, for vgan (one network per class). mocogan is not supported: its videos
  depend on motion noise drawn for the whole test set (NotImplementedError).

The method and the heatmaps' sigma (pixels) come from the weight files (copy-input, which has
none: its method.json); `load_model(..., sigma_px=...)` overrides the sigma.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from frgan.data.errors import DatasetError

WEIGHT_FILES = ("gm.pt", "gr.pt", "generator.pt", "vgan.pt", "mocogan.pt")


class ModelError(DatasetError):
    """A model folder or an input that cannot be used: one line naming it and what was expected."""


@dataclass(frozen=True)
class Shape:
    """What the networks' builders read of a Task: kind, image size, condition channels."""
    kind: str
    size: int
    channels: int


def _read(path: Path) -> dict[str, Any]:
    from frgan.train import parts
    try:
        payload = parts.load_weights(path)
    except (RuntimeError, EOFError, OSError) as exc:   # torn or not a torch file
        raise ModelError(f"{path}: not a readable weight file ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or not {"method", "config", "task", "states"} <= set(payload):
        raise ModelError(f"{path}: not a weight file of this suite (expected method, config, task and states)")
    return payload


def _method_name(folder: Path, payloads: dict[str, dict]) -> str:
    for payload in payloads.values():
        return str(payload["method"])
    if (folder / "method.json").is_file():   # copy-input: no weights
        return json.loads((folder / "method.json").read_text())["method"]
    raise ModelError(f"{folder}: no weight file of this suite ({', '.join(WEIGHT_FILES)}) and no method.json")


def _tupled(saved: dict, config_class: type, device: str) -> Any:
    """A config dataclass from its saved dict: lists back to tuples, the device replaced."""
    names = {f.name for f in dataclasses.fields(config_class)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in names}
    return config_class(**{**values, **({"device": device} if "device" in names else {})})


class Model:
    """A trained method, ready to make videos; see the module docstring."""

    def __init__(self, folder: Path, method: str, shape: Shape, sigma_px: float, device: str):
        self.folder, self.method, self.shape = folder, method, shape
        self.sigma_px, self.device = sigma_px, torch.device(device)
        self._video = None      # (first (1,3,S,S), first_cond (1,C,S,S) or None, cond (1,C,T,S,S), label)
        self.needs_input_condition = False
        self.labels: tuple[str, ...] = ()

    def __repr__(self) -> str:
        s = self.shape
        return f"Model({self.method!r}, {s.kind}, {s.size}x{s.size}, {s.channels} condition channels)"

    # -- inputs -----------------------------------------------------------------------------------

    def _maps(self, x: Any, what: str, frames: bool) -> torch.Tensor:
        """(T, C, S, S) maps (frames) or (C, S, S) from maps or, for actors, joints."""
        s, c = self.shape.size, self.shape.channels
        x = np.asarray(x)
        if self.shape.kind == "actors" and x.ndim == 2 + frames and x.shape[-1] == 2:
            from frgan.conditions.heatmaps import joint_heatmaps
            joints = x.astype(np.float32)
            visible = ~np.isnan(joints).any(-1)
            return joint_heatmaps(np.nan_to_num(joints), visible, s, self.sigma_px)
        shape = ("T, " if frames else "") + f"{c}, {s}, {s}"
        joints = f" or joints ({'T, ' if frames else ''}J, 2)" if self.shape.kind == "actors" else ""
        if x.ndim != 3 + frames or x.shape[-3:] != (c, s, s) or (frames and x.shape[0] < 1):
            raise ModelError(f"{what}: expected maps ({shape}){joints}, got shape {x.shape}")
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / 255.0
        if not np.issubdtype(x.dtype, np.floating):
            raise ModelError(f"{what}: expected float maps in [0, 1] (or uint8), got {x.dtype}")
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise ModelError(f"{what}: expected finite maps in [0, 1], got values in [{x.min():.3g}, {x.max():.3g}]")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def _image(self, image: Any) -> torch.Tensor:
        from frgan.task import to_model_frames
        s = self.shape.size
        image = np.array(image)   # a copy: a read-only array (PIL's) cannot back a tensor
        if image.dtype != np.uint8 or image.shape != (s, s, 3):
            raise ModelError(f"image: expected uint8 ({s}, {s}, 3), got {image.dtype} {image.shape}")
        return to_model_frames(image[None])

    # -- generation -------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, image: Any, conditions: Any, input_condition: Any = None,
                 label: Optional[str] = None) -> np.ndarray:
        """uint8 (T, S, S, 3): the frames after `image` for the T conditions (module docstring)."""
        from frgan.task import to_uint8_frames
        first = self._image(image).to(self.device)
        cond = self._maps(conditions, "conditions", frames=True).to(self.device)
        if input_condition is None and self.needs_input_condition:
            raise ModelError(f"input_condition: {self.method} needs the input frame's condition "
                             f"({self.shape.channels}, {self.shape.size}, {self.shape.size})"
                             + (" or joints (J, 2)" if self.shape.kind == "actors" else ""))
        first_cond = (None if input_condition is None else
                      self._maps(input_condition, "input_condition", frames=False)[None].to(self.device))
        if self.labels and label not in self.labels:
            raise ModelError(f"label: {self.method} needs one of {list(self.labels)}, got {label!r}")
        clip = self._video(first, first_cond, cond[None].transpose(1, 2), label)
        return to_uint8_frames(clip.transpose(1, 2))[0]


def load_model(folder: str | Path, device: str = "cpu", sigma_px: Optional[float] = None) -> Model:
    """The trained model in `folder` (models/<dataset>/<method>/seed-<s>), on `device`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: not a model folder (expected models/<dataset>/<method>/seed-<s>)")
    payloads = {name: _read(folder / name) for name in WEIGHT_FILES if (folder / name).is_file()}
    method = _method_name(folder, payloads)
    if method == "copy-input":
        return _copy_input(folder, payloads, sigma_px, device)
    if not payloads:
        raise ModelError(f"{folder}: no weight file ({', '.join(WEIGHT_FILES)}); run its train stage first")
    task = next(iter(payloads.values()))["task"]
    shape = Shape(str(task["kind"]), int(task["size"]), int(task["channels"]))
    sigma = sigma_px if sigma_px is not None else task["sigma_px"]
    model = Model(folder, method, shape, float(sigma), device)
    spec = _registered(folder, method)
    if not spec.loadable:
        raise NotImplementedError(f"{method}: its videos depend on what is drawn for the whole test set; "
                                  f"frgan.load supports {', '.join(loadable_methods())}; use "
                                  f"`python -m pipelines.generate` for {method}")
    from frgan.methods import FrganVariant
    build = _frgan if isinstance(spec, FrganVariant) else _vgan if spec.takes_label else _one_generator
    build(model, folder, payloads)
    model.needs_input_condition = spec.reads_input_condition
    return model


def _registered(folder: Path, method: str):
    from frgan.methods import get_method
    try:
        return get_method(method)
    except KeyError as exc:
        raise ModelError(f"{folder}: weights of {exc.args[0]}") from None


def loadable_methods() -> list[str]:
    """The registered methods frgan.load can rebuild (every one but those that need a whole test set)."""
    from frgan.methods import registered
    return sorted(name for name, method in registered().items() if method.loadable)


def _needs(folder: Path, payloads: dict, file: str) -> dict:
    if file not in payloads:
        raise ModelError(f"{folder / file}: missing; run the train stage of this method first")
    return payloads[file]


def _frgan(model: Model, folder: Path, payloads: dict) -> None:
    from frgan.losses import LossWeights
    from frgan.train import frgan as fr
    from frgan.train.accel import Acceleration
    saved = dict(_needs(folder, payloads, "gm.pt")["config"])
    saved["weights"] = LossWeights(**saved["weights"])
    saved["accel"] = Acceleration(**saved.get("accel", {}))
    cfg = _tupled(saved, fr.FrganConfig, str(model.device))
    gm = fr.build_gm(model.shape, cfg)
    gm.load_state_dict(payloads["gm.pt"]["states"]["gm"])
    gm = gm.to(model.device).eval()
    gr = None
    if cfg.refine:
        gr = fr.build_gr(model.shape, cfg)
        gr.load_state_dict(_needs(folder, payloads, "gr.pt")["states"]["gr"])
        gr = gr.to(model.device).eval()

    def video(first, first_cond, cond, label):
        clip = fr.coarse_clip(gm, first, first_cond, cond)
        return clip if gr is None else fr.refine_long_clip(gr, clip, cond, cfg.clip_len)
    model._video = video


def _one_generator(model: Model, folder: Path, payloads: dict) -> None:
    from frgan.methods import get_method
    method = get_method(model.method)
    payload = _needs(folder, payloads, "generator.pt")
    cfg = _tupled(payload["config"], method.config_class, str(model.device))
    gen = method.build(model.shape, cfg)
    gen.load_state_dict(payload["states"]["generator"])
    gen = gen.to(model.device).eval()
    model._video = lambda first, first_cond, cond, label: method.video(gen, first, first_cond, cond)


def _vgan(model: Model, folder: Path, payloads: dict) -> None:
    from baselines import vgan
    payload = _needs(folder, payloads, "vgan.pt")
    cfg = _tupled(payload["config"], vgan.VganConfig, str(model.device))
    networks = {}
    for label, state in payload["states"].items():
        networks[label] = vgan.VganGenerator(model.shape.size, cfg.frames, width=cfg.width)
        networks[label].load_state_dict(state)
        networks[label] = networks[label].to(model.device).eval()
    model.labels = tuple(networks)
    model._video = lambda first, first_cond, cond, label: vgan.rollout(networks[label], first, cond.shape[2])


def _copy_input(folder: Path, payloads: dict, sigma_px: Optional[float], device: str) -> Model:
    """The floor: every frame is the input frame. Its folder holds no shape: taken from the inputs."""
    model = Model(folder, "copy-input", Shape("any", 0, 0), sigma_px or 0.0, device)

    def generate(image, conditions, input_condition=None, label=None) -> np.ndarray:
        image, n = np.asarray(image), len(np.asarray(conditions))
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ModelError(f"image: expected uint8 (S, S, 3), got {image.dtype} {image.shape}")
        return np.repeat(image[None], n, axis=0)
    model.generate = generate
    return model


def example_input(task, method: str) -> Optional[dict[str, np.ndarray]]:
    """The first test item of `task` as `generate`'s keyword arguments (the MLflow model's input
    example), or None for a method frgan.load does not support (Method.loadable)."""
    from frgan.methods import get_method
    from frgan.task import to_uint8_frames
    spec = get_method(method)
    if not spec.loadable:
        return None
    items = task.test_items(first=1)
    example = {"image": to_uint8_frames(items.input)[0], "conditions": items.cond[0].numpy(),
               "input_condition": items.input_cond[0].numpy()}
    if spec.takes_label:
        example["label"] = np.asarray([str(items.index.label.iloc[0])])
    return example
