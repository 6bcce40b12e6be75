"""The training parts every method's step uses (FRGAN's stages and each baseline): Adam over one
network or several, freezing a critic while its generator steps, the gradient norm that runs
log, the one optimiser step (zero, backward, average over processes, step), the fingerprint
that names a training configuration for its checkpoints, test videos made batch by batch, and
the one weight-file format."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from frgan.data.errors import DatasetError
from frgan.io import atomic_file
from frgan.task import Task, to_uint8_frames
from frgan.train import distributed as dist
from frgan.train import optim

Modules = nn.Module | Sequence[nn.Module]


def _listed(modules: Modules) -> list[nn.Module]:
    return [modules] if isinstance(modules, nn.Module) else list(modules)


def adam(modules: Modules, lr: float, betas: Sequence[float]) -> Any:
    """Adam over the parameters of one network or several (in order: their checkpoints' order);
    on the CPU frgan.train.optim's, torch.optim's arithmetic without importing torch's compiler."""
    return optim.adam([p for m in _listed(modules) for p in m.parameters()], lr, betas)


def requires_grad(modules: Modules, flag: bool) -> None:
    """Freeze (False) or unfreeze (True) every parameter: a critic is frozen while G steps."""
    for module in _listed(modules):
        for p in module.parameters():
            p.requires_grad_(flag)


def grad_norm(modules: Modules) -> float:
    """The L2 norm of all gradients of one network or several (0.0 when none)."""
    norms = [p.grad.detach().norm() for m in _listed(modules) for p in m.parameters() if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


def optimizer_step(optimizer: Any, loss: torch.Tensor, modules: Modules,
                   enabled: bool = True) -> float:
    """Backpropagate `loss` into `modules` and step when `enabled` (a GAN balance rule may hold
    a network still); return their gradient norm. Several processes: the gradients are averaged
    over them first (frgan.train.distributed)."""
    optimizer.zero_grad()   # set_to_none, as torch.optim's default
    if not enabled:
        return 0.0
    loss.backward()
    dist.average_gradients(*_listed(modules))
    norm = grad_norm(modules)
    optimizer.step()
    return norm


def fingerprint(cfg: Any, data: str, skip: Sequence[str] = (), **extra: Any) -> str:
    """Names a training configuration (a dataclass, less the fields in `skip`: those that cannot
    change a number) with its data and `extra` keys: checkpoints of another one are never resumed."""
    from frgan.tracking import params_hash
    settings = {k: v for k, v in asdict(cfg).items() if k not in skip}
    return params_hash({**settings, "data": data, **extra})


@torch.no_grad()
def test_videos(n_items: int, make: Callable[[slice], torch.Tensor], batch: int = 8) -> np.ndarray:
    """(N, T, H, W, 3) uint8 test videos, `batch` items at a time: `make(items)` returns the
    clips (B, 3, T, H, W) in [-1, 1] of the items in that slice. Progress on a terminal only."""
    from tqdm.auto import tqdm
    chunks = []
    with tqdm(total=n_items, desc="test videos", unit="video", disable=None) as bar:
        for lo in range(0, n_items, batch):
            chunks.append(to_uint8_frames(make(slice(lo, lo + batch)).transpose(1, 2)))
            bar.update(len(chunks[-1]))
    return np.concatenate(chunks)


# ---------------------------------------------------------------------------------------------
# Weight files: one format for every method. The config and the task's shape (kind, image size,
# condition channels) are what a reader needs to rebuild the networks before loading the states.

def save_weights(path: Path, method: str, config: dict[str, Any], task: Task, states: dict[str, nn.Module]) -> None:
    """`path`: {"method", "config", "task": {kind, size, channels, sigma_px}, "states": {name: state
    dict}}: what frgan.load needs to rebuild the networks without a clip store."""
    shape = {"kind": task.kind, "size": int(task.size), "channels": int(task.channels),
             "sigma_px": float(task.sigma_px)}   # the heatmaps' width in pixels (actors' conditions)
    with atomic_file(path) as tmp:
        torch.save({"method": method, "config": config, "task": shape,
                    "states": {name: module.state_dict() for name, module in states.items()}}, tmp)


def load_weights(path: Path) -> dict[str, Any]:
    """A weight file written by save_weights, read tensors-only (a crafted pickle is refused)."""
    from frgan.train.checkpoint import load_weights as load_tensors_only
    if not Path(path).is_file():
        raise DatasetError(f"{path}: missing; run the train stage of this method first")
    return load_tensors_only(path)


def load_state(path: Path, name: str, module: nn.Module) -> nn.Module:
    """`module` with the state `name` of the weight file `path`, in eval mode."""
    module.load_state_dict(load_weights(path)["states"][name])
    return module.eval()
