"""Every method is one generator behind one interface, registered by name.

A method trains on a task's training splits and generates the test videos from what the task
gives it (the input frame and the condition sequence). FRGAN's variants are configurations of
one implementation, not copied modules; the baselines (issue 7) register here the same way.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal, Optional

import numpy as np
import torch

from frgan.config import Params
from frgan.io import atomic_file
from frgan.losses import LossWeights
from frgan.task import Task

Log = Callable[[int, dict[str, float]], None]


class Method:
    """The interface: `name`, a one-line `summary`, `train` and `generate`."""

    name: str
    summary: str

    def train(self, task: Task, params: Params, out: Path, checkpoints: Path, log: Optional[Log]) -> None:
        raise NotImplementedError

    def generate(self, task: Task, params: Params, trained: Path, cond_key: str = "cond") -> np.ndarray:
        """(N, T, H, W, 3) uint8 test videos; cond_key 'cond_gt' uses ground-truth conditions."""
        raise NotImplementedError


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is registered twice")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise KeyError(f"method {name!r}: expected one of {sorted(METHODS)}")
    return METHODS[name]


# ---------------------------------------------------------------------------------------------
# FRGAN and its ablations (paper 4.4, Table 4; eq. 1 vs eq. 2 for the residual claim).

@dataclass(frozen=True)
class FrganVariant(Method):
    name: str
    summary: str
    dense: bool
    residual: Literal["mask", "diff", "none"]
    refine: bool

    def config(self, task: Task, params: Params):
        from frgan.train.frgan import FrganConfig
        size, train = params.size, params.train
        return FrganConfig(
            dense=self.dense, residual=self.residual, refine=self.refine, width=size.width,
            batch=size.batch, gm_steps=size.gm_steps, gr_steps=size.gr_steps,
            clip_len=size.gr_clip_actors if task.kind == "actors" else size.gr_clip_faces,
            lr=train.lr, betas=tuple(train.betas), weights=LossWeights(**train.loss_weights.model_dump()),
            gp_weight=train.gp_weight, seed=params.seed, device=params.device,
            vgg16_path=str(train.feature_vgg16_path) if train.feature_vgg16_path else None)

    def train(self, task, params, out, checkpoints, log) -> None:
        from frgan.train import frgan as fr
        cfg = self.config(task, params)
        every = params.train.checkpoint_every
        gm = fr.train_gm(task, cfg, checkpoints, every, log, params.train.log_every)
        _save(out / "gm.pt", gm, cfg)
        from PIL import Image
        Image.fromarray(fr.sample_grid(task, cfg, gm)).save(out / "samples-gm.png")
        if self.refine:
            gr = fr.train_gr(task, cfg, gm, checkpoints, every, log, params.train.log_every)
            _save(out / "gr.pt", gr, cfg)

    def generate(self, task, params, trained, cond_key="cond") -> np.ndarray:
        from frgan.train import frgan as fr
        cfg = self.config(task, params)
        gm = _load(trained / "gm.pt", fr.build_gm(task, cfg))
        gr = _load(trained / "gr.pt", fr.build_gr(task, cfg)) if self.refine else None
        return fr.generate(task, cfg, gm, gr, cond_key)


def _save(path: Path, module: torch.nn.Module, cfg) -> None:
    with atomic_file(path) as tmp:
        torch.save({"config": {**asdict(cfg), "weights": asdict(cfg.weights)},
                    "state": module.state_dict()}, tmp)


def _load(path: Path, module: torch.nn.Module) -> torch.nn.Module:
    from frgan.train.checkpoint import load_weights   # weights_only: a crafted pickle is refused
    payload = load_weights(path)
    module.load_state_dict(payload["state"])
    return module.eval()


register(FrganVariant("frgan", "G_M (dense, residual mask) + G_R: the full model",
                      dense=True, residual="mask", refine=True))
register(FrganVariant("frgan-gm-only", "G_M (dense) without G_R (Table 4, row 2)",
                      dense=True, residual="mask", refine=False))
register(FrganVariant("frgan-no-dense", "G_M without dense connections, no G_R (Table 4, row 1)",
                      dense=False, residual="mask", refine=False))
register(FrganVariant("frgan-diff-map", "G_M (dense) with the eq. 1 difference map instead of eq. 2",
                      dense=True, residual="diff", refine=False))
