"""frgan.train.optim: the suite's Adam and SGD give torch.optim's weights bit for bit (so no
committed number moved when the suite stopped using torch.optim), their state round-trips
through torch.optim's layout in both directions, and a training step never imports
torch._dynamo (the reason they exist: 1.5 s of every train stage)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from frgan.train import optim
from tests.conftest import REPO


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2), nn.Conv2d(4, 2, 3, bias=False), nn.Flatten(),
                         nn.LazyLinear(3))


def _train(net: nn.Module, opt, steps: range, seed: int = 0) -> None:
    """`steps` steps on data drawn from (seed, step); every other step leaves the last layer's
    gradient out (a frozen part: torch.optim skips a parameter without a gradient)."""
    for step in steps:
        g = torch.Generator().manual_seed(seed * 1000 + step)
        x, y = torch.randn(5, 3, 8, 8, generator=g), torch.randn(5, 3, generator=g)
        opt.zero_grad()   # torch.optim's default: set_to_none, as the suite's
        loss = ((net(x) - y) ** 2).mean() * (1 + step % 3)
        loss.backward()
        if step % 2:
            net[-1].weight.grad = None
        opt.step()


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def _pair(seed: int = 1):
    ours, theirs = _net(seed), _net(seed)
    x = torch.zeros(1, 3, 8, 8)
    ours(x), theirs(x)   # the lazy layer's shape
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


@pytest.mark.parametrize("betas", [(0.0, 0.9), (0.5, 0.999), (0.9, 0.999)])
def test_adam_gives_torch_optims_weights_bit_for_bit(betas):
    ours, theirs = _pair()
    _train(ours, optim.Adam(ours.parameters(), lr=1e-3, betas=betas), range(40))
    _train(theirs, torch.optim.Adam(theirs.parameters(), lr=1e-3, betas=betas), range(40))
    assert _same_weights(ours, theirs)
    assert not _same_weights(ours, _pair()[0])   # it trained


def test_sgd_gives_torch_optims_weights_bit_for_bit():
    ours, theirs = _pair()
    _train(ours, optim.SGD(ours.parameters(), lr=0.05), range(20))
    _train(theirs, torch.optim.SGD(theirs.parameters(), lr=0.05), range(20))
    assert _same_weights(ours, theirs)


@pytest.mark.parametrize("direction", ["torch-to-ours", "ours-to-torch"])
def test_adam_state_round_trips_through_torch_optims_layout(direction):
    """Train 10 steps, save the optimiser state, load it into the other implementation (a fresh
    copy of the network), train 10 more: the same weights as 20 steps with one optimiser."""
    make = {"ours": lambda net: optim.Adam(net.parameters(), lr=1e-3, betas=(0.0, 0.9)),
            "torch": lambda net: torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.0, 0.9))}
    first, second = direction.split("-to-")
    straight, _ = _pair()
    _train(straight, make["ours"](straight), range(20))
    resumed, copy = _pair()
    opt = make[first](resumed)
    _train(resumed, opt, range(10))
    saved = opt.state_dict()
    copy.load_state_dict(resumed.state_dict())
    opt2 = make[second](copy)
    opt2.load_state_dict(saved)
    _train(copy, opt2, range(10, 20))
    assert _same_weights(copy, straight)


def test_a_saved_state_of_another_shape_is_refused_in_one_line():
    net, other = _pair()
    saved = optim.Adam(list(net.parameters())[:2], lr=1e-3).state_dict()
    with pytest.raises(ValueError, match="groups of \\[2\\] parameters; expected one of 5"):
        optim.Adam(other.parameters(), lr=1e-3).load_state_dict(saved)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([], lr=1e-3)


def test_a_training_step_never_imports_torchs_compiler():
    code = ("import sys, torch\nfrom torch import nn\nfrom frgan.train import parts\n"
            "net = nn.Linear(3, 2)\nopt = parts.adam(net, 1e-3, (0.0, 0.9))\n"
            "parts.optimizer_step(opt, net(torch.ones(4, 3)).sum(), net)\nopt.state_dict()\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    torch_optim = code.replace("parts.adam(net, 1e-3, (0.0, 0.9))", "torch.optim.Adam(net.parameters())")
    out = subprocess.run([sys.executable, "-c", torch_optim], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"   # what the check looks for, seen with torch.optim


def test_the_suites_optimizers_on_the_cpu_torch_optims_elsewhere():
    """On a GPU torch.optim's multi-tensor kernels pay; a `meta` tensor stands in for one here."""
    cpu, other = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, device="meta"))
    assert type(optim.adam([cpu], 1e-3)) is optim.Adam and type(optim.sgd([cpu], 1e-3)) is optim.SGD
    assert type(optim.adam([other], 1e-3, (0.0, 0.9))) is torch.optim.Adam
    assert type(optim.sgd([other], 1e-3)) is torch.optim.SGD
    assert optim.adam([other], 1e-3, (0.0, 0.9)).param_groups[0]["betas"] == (0.0, 0.9)
