"""Data-parallel training over several processes (torchrun): the one module that knows about it.

Launch: `torchrun --nproc_per_node N -m pipelines.train ...`, or set `train.processes: N` in
params.yaml and run the stage as usual (it re-executes itself under torchrun, see
`relaunch_under_torchrun`). The world comes from torchrun's environment (WORLD_SIZE, RANK,
LOCAL_RANK); backend NCCL on GPUs (one GPU per process, cuda:LOCAL_RANK), gloo on the CPU.
Without a process group of more than one process every function here is the identity or a
no-op, so the single-process path is the code it always was, bit for bit.

How a training step is split (every method, through the shared training path):
- Every rank draws the same *global* batch from (seed, step) (`frgan.train.seeding`) and keeps
  its shard, a contiguous block of batch / world rows (`shard`). The global batch stays the
  profile's `batch`; it must be divisible by the number of processes (`check_batch`).
- Every per-sample random draw of a step (the WGAN-GP's eps, frame picks, motion noise) is
  drawn for the global batch and sharded the same way, so each row sees the numbers it sees in
  a one-process run.
- Every loss is a mean over its shard, and shards are equal, so the average of the ranks'
  gradients is the gradient of the global batch's mean: what one process computes.
- BatchNorm (in the generators and the DCGAN discriminators) normalises with the statistics of
  the global batch (`GlobalBatchNorm`, differentiable all-reduces; torch's SyncBatchNorm runs
  on GPUs only). The critics of FRGAN have no BatchNorm (WGAN-GP's penalty is per sample).
- Gradients are all-reduced and averaged after each backward (`average_gradients`), and
  parameters and buffers are broadcast from rank 0 before training (`prepare`). That is the
  arithmetic of DistributedDataParallel, done explicitly instead of by wrapping the modules:
  DDP's reducer does not support `torch.autograd.grad` (its docs; the WGAN-GP penalty needs it,
  pytorch/pytorch#47562: wrong gradients), expects exactly one backward per forward, and fails
  when a module's `requires_grad` is toggled between the critic and generator updates or an
  update is skipped (the margin rule of Villegas et al.'s loops) — all of which these GAN
  steps do. (StyleGAN2-ADA's trainer syncs gradients by hand for the same reasons.)
- Loss values are averaged over ranks before logging (`mean_values`), so the margin rule sees
  the global batch's losses, and a NaN on any rank stops every rank at the same step.
- Only rank 0 writes checkpoints, models, samples and MLflow runs (`is_main`); checkpoints hold
  plain state dicts, so a run resumes from them under any number of processes.
"""
from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")
TIMEOUT = timedelta(minutes=30)   # a rank that waits longer for the others is stuck: fail


class DistributedError(RuntimeError):
    """Multi-process training cannot run as asked; the message says why."""


# ---------------------------------------------------------------------------------------------
# The world.

def launched_by_torchrun() -> bool:
    """True inside a process that torchrun (or another launcher setting WORLD_SIZE) started."""
    return "WORLD_SIZE" in os.environ


def env_world() -> tuple[int, int, int]:
    """(world size, rank, local rank) from torchrun's environment; (1, 0, 0) without it."""
    return (int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")),
            int(os.environ.get("LOCAL_RANK", "0")))


def active() -> bool:
    """A process group of more than one process is initialised: steps are split over ranks."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank: the process group's, else torchrun's RANK (so a rank > 0 never
    writes even before `init`), else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return env_world()[1]


def is_main() -> bool:
    """Rank 0: the only process that writes checkpoints, models, samples and MLflow runs."""
    return rank() == 0


def init(device: str) -> None:
    """Join torchrun's process group (NCCL for cuda, gloo for cpu); a no-op for one process.

    On GPUs each process uses the GPU numbered by its LOCAL_RANK (set as the current device,
    so `torch.device("cuda")` is that GPU everywhere else in the code)."""
    world, _, local_rank = env_world()
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return
    if not dist.is_available():
        raise DistributedError("torch.distributed is not available in this PyTorch build")
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available() or local_rank >= torch.cuda.device_count():
            raise DistributedError(
                f"{world} processes on cuda need a GPU each: local rank {local_rank} has none "
                f"({torch.cuda.device_count()} visible); lower train.processes")
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, timeout=TIMEOUT)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def relaunch_under_torchrun(processes: int, module: str) -> None:
    """Replace this process by `torchrun --standalone --nproc_per_node <processes> -m <module>`
    with the same arguments (exec: a kill of the stage reaches torchrun, which stops its
    workers; the exit code is torchrun's). Same Python, so the same virtual environment."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={processes}", "-m", module, *sys.argv[1:]]
    print(f"{module}: {processes} processes: " + " ".join(command[1:]), flush=True)
    sys.stderr.flush()
    os.execv(sys.executable, command)


# ---------------------------------------------------------------------------------------------
# Splitting a step.

def check_batch(batch: int, who: str) -> None:
    """The global batch is split evenly over the processes: fail clearly when it cannot be."""
    if batch % size():
        raise DistributedError(f"{who}: batch {batch} cannot be split evenly over {size()} processes "
                               "(the global batch stays the profile's batch); choose a batch "
                               "divisible by train.processes")


def shard(x: T) -> T:
    """This rank's rows of a global batch (tensor, array or sequence): the contiguous block
    [rank * n / world, (rank + 1) * n / world). The identity for one process."""
    if not active():
        return x
    n = x.shape[0] if hasattr(x, "shape") else len(x)
    world, me = size(), rank()
    if n % world:
        raise DistributedError(f"a batch of {n} rows cannot be split evenly over {world} processes")
    k = n // world
    return x[me * k:(me + 1) * k]


def _reduce_device() -> torch.device:
    """Where collectives on small host values run: the current GPU under NCCL, else the CPU."""
    if active() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean_values(values: dict[str, float]) -> dict[str, float]:
    """Each value averaged over the ranks (the global batch's loss when each is a shard mean)."""
    if not active() or not values:
        return values
    keys = list(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_reduce_device())
    dist.all_reduce(t)
    t /= size()
    return dict(zip(keys, t.tolist()))


def mean_of(*values: float) -> tuple[float, ...]:
    """`mean_values` for positional floats."""
    averaged = mean_values({str(i): v for i, v in enumerate(values)})
    return tuple(averaged[str(i)] for i in range(len(values)))


def average_gradients(*modules: nn.Module) -> None:
    """All-reduce and average the gradients of `modules` over the ranks (call after backward,
    before the optimiser step): DDP's gradient averaging. Every rank runs the same code, so
    the same parameters have gradients everywhere."""
    if not active():
        return
    grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for g in grads:
        groups.setdefault((g.dtype, g.device), []).append(g)
    for group in groups.values():
        flat = torch.cat([g.reshape(-1) for g in group])
        dist.all_reduce(flat)
        flat /= size()
        offset = 0
        for g in group:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()


# ---------------------------------------------------------------------------------------------
# Modules.

class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch: per-channel sums and
    squared deviations are all-reduced (differentiably: torch.distributed.nn), so forward and
    backward equal one process's BatchNorm on the whole batch up to rounding. CPU (gloo) and
    GPU (NCCL). In eval mode, or with one process, it is plain BatchNorm. Its parameters and
    buffers are BatchNorm's, so state dicts (checkpoints, models) are interchangeable."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and active()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce
        self._check_input_dim(x)
        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = (1, channels) + (1,) * (x.dim() - 2)
        local_count = x.new_full((1,), x.numel() // channels)
        summed = all_reduce(torch.cat([x.sum(dims), local_count]))
        count = summed[channels].detach()
        mean = summed[:channels] / count
        centered = x - mean.view(shape)
        var = all_reduce((centered * centered).sum(dims)) / count          # biased, as BatchNorm
        y = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                          else self.momentum)
                unbiased = var.detach() * count / (count - 1).clamp(min=1)
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        return y


def _global_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with every BatchNorm replaced by a GlobalBatchNorm holding the same parameter
    and buffer tensors (optimisers built before keep working)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, _global_batchnorm(child))
    return module


def prepare(module: nn.Module) -> nn.Module:
    """Make `module` ready for data-parallel training: BatchNorm -> GlobalBatchNorm, and every
    parameter and buffer broadcast from rank 0 (as DDP does when it wraps a module). Returns
    the module unchanged for one process."""
    if not active():
        return module
    module = _global_batchnorm(module)
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, 0)
    return module


def same_on_every_rank(value: int, what: str) -> None:
    """Fail when ranks disagree on an integer (e.g. the step they resumed from)."""
    if not active():
        return
    t = torch.tensor([value, -value], dtype=torch.int64, device=_reduce_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    high, low = int(t[0]), -int(t[1])
    if high != low:
        raise DistributedError(f"ranks disagree on {what}: from {low} to {high} (every process must "
                               "see the same checkpoint folder)")


def describe() -> dict[str, Any]:
    """For MLflow: how many processes trained, and on which backend."""
    return {"processes": size(), "backend": dist.get_backend() if active() else "none"}
