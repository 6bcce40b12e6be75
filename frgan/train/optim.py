"""Adam and plain SGD for every training step of the suite on the CPU, without torch.optim
(`adam` and `sgd` pick: this module's classes on the CPU, torch.optim's on a GPU).

Why: each method of a torch.optim optimizer (its constructor's `add_param_group`, `zero_grad`,
`step`, `state_dict`) is wrapped by `torch._disable_dynamo`, whose first call imports
torch._dynamo, the compiler: 1.5 s of every train stage process (AMD EPYC, 2 cores; 18 train
stages in a smoke repro), for a compiler that no eager stage runs. (`train.compile: true`
imports it anyway, to compile the generators; the optimizer step is never compiled.) On a GPU
torch.optim is kept: there it updates all parameters in a few multi-tensor kernels (this
module's loop launches several per parameter), and 1.5 s of start-up is noise beside a run.

The arithmetic is torch.optim's on the CPU (torch 2.14.1: `_single_tensor_adam`, used there
for CPU tensors; SGD without momentum), written op for op in the same order with the same
Python scalars, so the weights are bit-identical: tests/test_optim.py compares both over many
steps, and the smoke repro's weight hashes in dvc.lock did not move. `state_dict` and
`load_state_dict` use torch.optim's layout (per-parameter state keyed by the parameter's
index; one parameter group), so a checkpoint of either loads into the other.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch


def _on_cpu(params: list[torch.Tensor]) -> bool:
    return all(p.device.type == "cpu" for p in params)


def adam(params: Iterable[torch.Tensor], lr: float, betas: Sequence[float] = (0.9, 0.999)) -> Any:
    """Adam over `params` (eps 1e-8): `Adam` below on the CPU, torch.optim.Adam elsewhere."""
    params = list(params)
    betas = (float(betas[0]), float(betas[1]))
    return Adam(params, lr=lr, betas=betas) if _on_cpu(params) else torch.optim.Adam(params, lr=lr, betas=betas)


def sgd(params: Iterable[torch.Tensor], lr: float) -> Any:
    """Plain SGD over `params`: `SGD` below on the CPU, torch.optim.SGD elsewhere."""
    params = list(params)
    return SGD(params, lr=lr) if _on_cpu(params) else torch.optim.SGD(params, lr=lr)


class _Optimizer:
    """The parameters, in order, and what every optimiser here shares."""

    def __init__(self, params: Iterable[torch.Tensor], group: dict[str, Any]) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got an empty parameter list")
        self.group = group   # torch.optim's param_groups[0], less "params"
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        """Drop every gradient (torch.optim's `zero_grad(set_to_none=True)`)."""
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, Any]:
        return {"state": dict(self.state),
                "param_groups": [{**self.group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        groups = saved.get("param_groups", [])
        if len(groups) != 1 or len(groups[0].get("params", [])) != len(self.params):
            raise ValueError(f"the saved optimizer state has groups of "
                             f"{[len(g.get('params', [])) for g in groups]} parameters; expected one of "
                             f"{len(self.params)}")
        self.group = {k: v for k, v in groups[0].items() if k != "params"}
        self.state = {}
        for index, entry in saved.get("state", {}).items():
            p = self.params[int(index)]
            # as torch.optim: the step count stays as saved, the rest follows its parameter
            self.state[int(index)] = {k: v if k == "step" else v.to(dtype=p.dtype, device=p.device)
                                      for k, v in entry.items()}


class Adam(_Optimizer):
    """Adam (Kingma and Ba 2015) with bias correction; no weight decay, no AMSGrad."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": float(lr), "betas": (float(betas[0]), float(betas[1])), "eps": float(eps),
                                  "weight_decay": 0, "amsgrad": False, "maximize": False, "foreach": None,
                                  "capturable": False, "differentiable": False, "fused": None,
                                  "decoupled_weight_decay": False})

    @torch.no_grad()
    def step(self) -> None:
        lr, (beta1, beta2), eps = self.group["lr"], self.group["betas"], self.group["eps"]
        for index, p in enumerate(self.params):
            if p.grad is None:
                continue
            state = self.state.get(index)
            if state is None:   # torch.optim's lazy start: a float32 step count, zero moments
                state = self.state[index] = {
                    "step": torch.tensor(0.0, dtype=torch.float32),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
            grad, exp_avg, exp_avg_sq = p.grad, state["exp_avg"], state["exp_avg_sq"]
            state["step"] += 1
            exp_avg.lerp_(grad, 1 - beta1)                               # m_t
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v_t
            step = state["step"].item()
            step_size = lr / (1 - beta1 ** step)
            bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)


class SGD(_Optimizer):
    """Plain stochastic gradient descent: no momentum, no weight decay."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float) -> None:
        super().__init__(params, {"lr": float(lr), "momentum": 0, "dampening": 0, "weight_decay": 0,
                                  "nesterov": False, "maximize": False, "foreach": None,
                                  "differentiable": False, "fused": None})

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-self.group["lr"])
