"""Every method is one generator behind one interface, registered by name.

A method trains on a task's training splits and generates the test videos from what the task
gives it (the input frame and the condition sequence). FRGAN's variants are configurations of
one implementation, not copied modules; the baselines register here the same way.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

import numpy as np
import pandas as pd
import torch

from frgan.config import Params, ParamsError
from frgan.data.clipstore import TRAIN_SPLITS
from frgan.losses import LossWeights
from frgan.task import Task
from frgan.train.loop import Log



# ---------------------------------------------------------------------------------------------
# The training budget: every method on the same footing. Every method trains on the
# clips of TRAIN_SPLITS (gm + gr) with gm_steps + gr_steps generator steps at the profile's
# batch: FRGAN as the paper's two stages (G_M on gm for gm_steps, then G_R on gr for gr_steps),
# every one-network method on the union for the sum.

@dataclass(frozen=True)
class Budget:
    """What one training run spent. All zeros: a method with nothing to train.

    clips: distinct training clips its samplers draw from; generator_steps: generator training
    steps (iterations; a margin rule may skip some updates, see baselines.common.GanBalance);
    samples_seen: generator_steps x batch (videos, windows or pairs: one per batch row);
    parameters: numel of the generator(s) that make the test videos."""
    clips: int = 0
    generator_steps: int = 0
    samples_seen: int = 0
    parameters: int = 0


def one_network_steps(params: Params) -> int:
    """The generator steps of a one-network method: FRGAN's G_M steps + its G_R steps."""
    return params.size.gm_steps + params.size.gr_steps


def distinct_clips(*tables: pd.DataFrame) -> int:
    """The number of distinct clip ids over clip tables (`Task.clips(...)` results)."""
    return len(set().union(*(set(t.clip_id) for t in tables)))


def parameter_count(*modules: torch.nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def make_budget(clips: int, steps: int, batch: int, *generators: torch.nn.Module) -> Budget:
    """The budget of `steps` generator steps at `batch` over `clips` clips; parameters of `generators`."""
    return Budget(clips=clips, generator_steps=steps, samples_seen=steps * batch,
                  parameters=parameter_count(*generators))


class Method:
    """The interface: `name`, a one-line `summary`, `train` and `generate`."""

    name: str
    summary: str
    # What frgan.load (frgan/api.py) needs to make one video without a Task:
    loadable: ClassVar[bool] = True         # False: its videos need the whole test set at once
    takes_label: ClassVar[bool] = False     # one network per class: generate(..., label=)
    reads_input_condition: ClassVar[bool] = False   # its motion is relative to the input frame's condition

    def train(self, task: Task, params: Params, out: Path, checkpoints: Path, log: Optional[Log]) -> Budget:
        """Train into `out` (checkpoints in `checkpoints`); return what it spent. The default is a
        method with nothing to train (e.g. one that copies its input): the zero budget."""
        return Budget()

    def generate(self, task: Task, params: Params, trained: Path, cond_key: str = "cond") -> np.ndarray:
        """(N, T, H, W, 3) uint8 test videos; cond_key 'cond_gt' uses ground-truth conditions."""
        raise NotImplementedError

    def check_knobs(self, knobs: Any) -> dict[str, Any]:
        """`train.baselines.<name>` checked against this method's knobs (ParamsError when wrong).
        The default: a method with no knobs there (FRGAN's variants take theirs from `train`)."""
        raise ParamsError(f"train.baselines.{self.name}: expected a baseline with knobs "
                          f"({self.name} takes its training knobs from the train section)")


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is registered twice")
    METHODS[method.name] = method
    return method


def registered() -> dict[str, Method]:
    """Every method by name: FRGAN's variants and copy-input (this module) and the baselines,
    which register when the `baselines` package is imported (here, so any caller sees them)."""
    import baselines  # noqa: F401  (each baseline module registers itself)
    return METHODS


def get_method(name: str) -> Method:
    methods = registered()
    if name not in methods:
        raise KeyError(f"method {name!r}: expected one of {sorted(methods)}")
    return methods[name]


# ---------------------------------------------------------------------------------------------
# FRGAN and its ablations (paper 4.4, Table 4; eq. 1 vs eq. 2 for the residual claim).

@dataclass(frozen=True)
class FrganVariant(Method):
    reads_input_condition: ClassVar[bool] = True   # eq. 2's residual: conditions vs the input's
    name: str
    summary: str
    dense: bool
    residual: Literal["mask", "diff", "none"]
    refine: bool

    def config(self, task: Task, params: Params):
        from frgan.train.accel import Acceleration
        from frgan.train.frgan import FrganConfig
        size, train = params.size, params.train
        if self.refine:   # paper 4.1: G_M on split gm for gm_steps, then G_R on split gr for gr_steps
            gm_splits, gm_steps, gr_steps = ("gm",), size.gm_steps, size.gr_steps
        else:             # one network: both training splits, the whole budget (no G_R steps)
            gm_splits, gm_steps, gr_steps = TRAIN_SPLITS, one_network_steps(params), 0
        return FrganConfig(
            dense=self.dense, residual=self.residual, refine=self.refine, width=size.width,
            batch=size.batch, gm_steps=gm_steps, gr_steps=gr_steps, gm_splits=gm_splits,
            clip_len=size.gr_clip_actors if task.kind == "actors" else size.gr_clip_faces,
            lr=train.lr, betas=tuple(train.betas), weights=LossWeights(**train.loss_weights.model_dump()),
            gp_weight=train.gp_weight, seed=params.seed, device=params.device,
            vgg16_path=str(train.feature_vgg16_path) if train.feature_vgg16_path else None,
            accel=Acceleration(precision=train.precision, compile=train.compile,
                               channels_last=train.channels_last, prefetch=train.prefetch))

    def budget(self, task: Task, cfg, gm: torch.nn.Module, gr: Optional[torch.nn.Module]) -> Budget:
        """The clips G_M's pairs (2+ frames) and G_R's windows (clip_len + 1 frames: an anchor
        frame and a window after it, as `Task.sample_anchored_windows` draws them) come from."""
        tables = [task.clips(cfg.gm_splits, min_length=2)]
        if gr is not None:
            tables.append(task.clips("gr", min_length=cfg.clip_len + 1))
        steps = cfg.gm_steps + (cfg.gr_steps if gr is not None else 0)
        return make_budget(distinct_clips(*tables), steps, cfg.batch, *([gm] if gr is None else [gm, gr]))

    def train(self, task, params, out, checkpoints, log) -> Budget:
        from frgan.train import frgan as fr, parts
        cfg = self.config(task, params)
        every = params.train.checkpoint_every
        gm = fr.train_gm(task, cfg, checkpoints, every, log, params.train.log_every)
        parts.save_weights(out / "gm.pt", self.name, _config(cfg), task, {"gm": gm})
        from PIL import Image
        Image.fromarray(fr.sample_grid(task, cfg, gm)).save(out / "samples-gm.png")
        gr = None
        if self.refine:
            gr = fr.train_gr(task, cfg, gm, checkpoints, every, log, params.train.log_every)
            parts.save_weights(out / "gr.pt", self.name, _config(cfg), task, {"gr": gr})
        return self.budget(task, cfg, gm, gr)

    def generate(self, task, params, trained, cond_key="cond") -> np.ndarray:
        from frgan.train import frgan as fr, parts
        cfg = self.config(task, params)
        gm = parts.load_state(trained / "gm.pt", "gm", fr.build_gm(task, cfg))
        gr = parts.load_state(trained / "gr.pt", "gr", fr.build_gr(task, cfg)) if self.refine else None
        return fr.generate(task, cfg, gm, gr, cond_key)


def _config(cfg) -> dict:
    return {**asdict(cfg), "weights": asdict(cfg.weights)}


register(FrganVariant("frgan", "G_M (dense, residual mask) + G_R: the full model",
                      dense=True, residual="mask", refine=True))
register(FrganVariant("frgan-gm-only", "G_M (dense) without G_R (Table 4, row 2)",
                      dense=True, residual="mask", refine=False))
register(FrganVariant("frgan-no-dense", "G_M without dense connections, no G_R (Table 4, row 1)",
                      dense=False, residual="mask", refine=False))
register(FrganVariant("frgan-diff-map", "G_M (dense) with the eq. 1 difference map instead of eq. 2",
                      dense=True, residual="diff", refine=False))


# ---------------------------------------------------------------------------------------------
# The floor: copy the input frame into every output frame. Not in the paper; every
# method should beat it in MSE, and its ACD-I and ACD-C are 0 by construction (a still video has
# the input's identity in every frame), which is why the paper's Table 1 has a Reference row.

@dataclass(frozen=True)
class CopyInput(Method):
    name: str = "copy-input"
    summary: str = "every output frame is the input frame: the floor (no training, not in the paper)"

    def train(self, task, params, out, checkpoints, log) -> Budget:
        import json
        # Nothing to learn: the model folder only names the method (the train stage's DVC out
        # must exist), and the checkpoints folder (a declared persist out) is created empty.
        checkpoints.mkdir(parents=True, exist_ok=True)
        (out / "method.json").write_text(json.dumps({"method": self.name, "trained": False}) + "\n")
        return Budget()   # all zeros: no clips, no steps, no parameters

    def generate(self, task, params, trained, cond_key="cond") -> np.ndarray:
        from frgan.task import to_uint8_frames
        # cond_key is ignored: the output does not depend on the conditions (videos_gt == videos)
        items = task.test_items()
        frames = to_uint8_frames(items.input)                      # (N, H, W, 3)
        return np.repeat(frames[:, None], items.n_frames, axis=1)  # (N, T, H, W, 3)


register(CopyInput())
