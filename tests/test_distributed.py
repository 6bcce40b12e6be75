"""Data-parallel training (frgan/train/distributed.py) on the CPU with gloo.

- The G_M training stage (`frgan-gm-only`) as 2 processes under torchrun (`train.processes: 2`,
  the stage re-executes itself) and as 1 process, same seed and global batch: the weights agree
  within the tolerance below; rank 0 alone wrote outputs (an audit hook records every write
  each rank makes inside the project); a checkpoint of the 1-process run resumes under 2.
- Every method's training (FRGAN's G_M and G_R and the five baselines) in 2 processes and in 1,
  called through the Method interface: the losses logged at every step and the weights agree.

Tolerance. Sharded sums, all-reduced gradients and BatchNorm statistics are added in another
order than one process adds them, so float32 results differ by rounding (~1e-7 relative).
Adam (lr 1e-4) moves a weight by about lr * g / sqrt(v) per step, so a relative gradient error
e moves it by about lr * e: weights agree within WEIGHT_ATOL = 1e-6 (1% of one step) after a
few steps. Except where a gradient all but vanishes (a ReLU channel that is almost never
active, say): Adam divides it by its own size, so rounding noise becomes a step of ~lr, in a
one-process run as much as in a two-process one. So the test asks that at most
WEIGHT_FRACTION = 0.1% of the weights differ by more than 1e-6 (measured: 0.002% for the G_M
stage; 0 for FRGAN's G_M and G_R, MCNet, Mathieu, VGAN and MoCoGAN on the tiny task, 0.02%
for Villegas et al.: a few such units),
and that every loss logged at every step agrees within LOSS_ATOL + LOSS_RTOL * |value|.
Broken splits fail it by far (measured on the tiny task: BatchNorm over the shard instead of
the global batch, gradients not averaged, or the WGAN-GP eps not sharded like the rows leave
10-98% of some network's weights beyond 1e-6).
Parameters whose gradient is exactly zero whatever the loss (a bias right before BatchNorm,
which subtracts it again) are left out, with the running mean of that BatchNorm: their update
is pure rounding noise in every run. They are found by a float64 gradient
(`zero_gradient_names`), not listed by hand.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from frgan.train import distributed as dist
from tests.conftest import REPO, params_with, tiny_actors_task

WEIGHT_ATOL = 1e-6       # 1% of one Adam step (lr 1e-4)
WEIGHT_FRACTION = 1e-3   # at most 0.1% of the weights may differ by more (see the module note)
LOSS_ATOL, LOSS_RTOL = 2e-5, 1e-4
METHODS = ("frgan", "villegas17", "mcnet", "mathieu", "vgan", "mocogan")
# Villegas et al.'s analogy network is compared after its first step only. After one step its
# weights agree (measured: 0.03% beyond 1e-6, the near-zero-gradient entries of the module
# note); from the second step on, its pose encoder's weights drift apart by up to ~2 lr in both
# directions (measured on the tiny task, losses still agreeing at every step: 3.9% of the weights
# after 2 steps, 13% after 5; the same whether it draws its pairs from gm, gr or both, and the
# float64 gradient of its first batch agrees with float32 to 5e-7, so no split is broken). Adam
# with beta1 = 0 turns its second step's small pose-encoder gradients into +-lr steps. The
# broken splits this test exists for already show at the first step.
ONE_STEP = ("villegas17",)
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


# ---------------------------------------------------------------------------------------------
# One process: everything is the identity.

def test_one_process_changes_nothing():
    x = torch.arange(8.0).reshape(4, 2)
    assert dist.shard(x) is x and dist.shard([1, 2, 3]) == [1, 2, 3]
    assert dist.mean_values({"a": 1.5}) == {"a": 1.5} and dist.mean_of(1.0, 2.0) == (1.0, 2.0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    assert dist.prepare(net) is net and type(net[1]) is torch.nn.BatchNorm2d
    dist.check_batch(3, "test")   # any batch splits over one process
    assert dist.is_main() and not dist.active()


def test_a_batch_that_does_not_split_evenly_is_refused(monkeypatch):
    monkeypatch.setattr(dist, "size", lambda: 2)
    with pytest.raises(dist.DistributedError, match=r"G_M: batch 3 cannot be split evenly over 2 processes"):
        dist.check_batch(3, "G_M")
    dist.check_batch(4, "G_M")


def test_global_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    plain = torch.nn.BatchNorm2d(3)
    converted = dist._global_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)))[0]
    assert isinstance(converted, dist.GlobalBatchNorm)
    x = torch.randn(4, 3, 5, 5)
    assert torch.equal(plain(x), converted(x))
    assert torch.equal(plain.running_var, converted.running_var)
    assert converted.state_dict().keys() == plain.state_dict().keys()


# ---------------------------------------------------------------------------------------------
# Helpers.

def zero_gradient_names(module: torch.nn.Module, forward) -> set[str]:
    """State-dict names of parameters whose gradient is exactly zero whatever the loss (float64,
    a random projection of every output; e.g. a bias right before a BatchNorm, which subtracts
    it again), and the running mean of a BatchNorm right after such a bias (it averages it)."""
    import copy
    m = copy.deepcopy(module).double().train()
    outputs = forward(m, torch.float64)
    outputs = [outputs] if isinstance(outputs, torch.Tensor) else [o for o in outputs if o is not None]
    g = torch.Generator().manual_seed(0)
    sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outputs).backward()
    grads = {n: (p.grad.abs().max().item() if p.grad is not None else 0.0) for n, p in m.named_parameters()}
    scale = max(grads.values())
    zero = {n for n, v in grads.items() if v <= 1e-9 * scale}
    previous = None
    for name, sub in m.named_modules():
        if next(sub.children(), None) is not None:
            continue
        if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm) and f"{previous}.bias" in zero:
            zero.add(f"{name}.running_mean")
        previous = name
    return zero


def compare_states(one: dict, two: dict, excluded: set[str], who: str) -> tuple[float, float]:
    """(fraction of compared entries further apart than WEIGHT_ATOL, max difference); asserts
    the fraction is at most WEIGHT_FRACTION. Integer entries must be equal."""
    assert one.keys() == two.keys(), who
    diffs = []
    for name, a in one.items():
        b = two[name]
        if not a.is_floating_point():
            assert torch.equal(a, b), f"{who}: {name} differs"
        elif name not in excluded:
            diffs.append((a.double() - b.double()).abs().flatten())
    diff = torch.cat(diffs)
    fraction, worst = (diff > WEIGHT_ATOL).double().mean().item(), diff.max().item()
    assert fraction <= WEIGHT_FRACTION, (f"{who}: {fraction:.2%} of {diff.numel()} weights differ by more than "
                                         f"{WEIGHT_ATOL} (max {worst:.3g}); at most {WEIGHT_FRACTION:.1%} may")
    return fraction, worst


def check_excluded(excluded: set[str], state: dict, who: str) -> None:
    """The exclusion can only ever drop biases and running means, and few of them."""
    assert all(n.endswith((".bias", ".running_mean")) for n in excluded), (who, sorted(excluded))
    assert len(excluded) <= len(state) // 2, (who, len(excluded), len(state))


# ---------------------------------------------------------------------------------------------
# The G_M training stage under torchrun.

AUDIT_SITE = '''
import os, sys
_root, _rank = os.environ.get("FRGAN_AUDIT_ROOT"), os.environ.get("RANK")
if _root and _rank is not None:
    _log = open(os.path.join(os.environ["FRGAN_AUDIT_DIR"], f"rank{_rank}-{os.getpid()}.txt"), "a", buffering=1)
    _W = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    # event -> (index of the path, index of its dir_fd or None)
    _EVENTS = {"os.mkdir": (0, 2), "os.remove": (0, 1), "os.rmdir": (0, 1), "os.chmod": (0, 2),
               "os.truncate": (0, None), "shutil.rmtree": (0, 1), "tempfile.mkstemp": (0, None),
               "tempfile.mkdtemp": (0, None), "sqlite3.connect": (0, None), "os.rename": (1, 3),
               "os.link": (1, 3), "os.symlink": (1, 2)}

    def _audit(event, args):
        path, fd = None, None
        if event == "open":
            p, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _W)
            path = p if writes else None
        elif event in _EVENTS:
            at, fd_at = _EVENTS[event]
            path = args[at]
            fd = args[fd_at] if fd_at is not None and fd_at < len(args) else None
        if path is None or isinstance(path, int):
            return
        path = os.fsdecode(path)
        if isinstance(fd, int) and fd >= 0 and not os.path.isabs(path):   # relative to a folder fd
            path = os.path.join(os.readlink(f"/proc/self/fd/{fd}"), path)
        full = os.path.abspath(path)
        if full == _root or full.startswith(_root + os.sep):
            _log.write(f"{event} {os.path.relpath(full, _root)}\\n")
    sys.addaudithook(_audit)
'''

STAGE_METHOD = "frgan-gm-only"
STAGE_RUN = f"actors-synth/{STAGE_METHOD}/seed-0"   # under models/ and checkpoints/ (train.seeds[0])
STEPS = 4


@pytest.fixture(scope="module")
def gm_runs(tmp_path_factory):
    """The stage in 1 process, in 2 (audited), and resumed in 2 from the 1-process step-2 checkpoint."""
    from tests.tiny_project import base_layout, copy_layout, must_pass, stage, write_params
    base = base_layout(tmp_path_factory)
    # A frozen copy of the code: the checkpoints' code fingerprint must not change between the
    # runs (an edit in the working tree meanwhile would make the resume start over).
    code = tmp_path_factory.mktemp("code")
    for package in ("frgan", "baselines", "pipelines", "metrics"):
        shutil.copytree(REPO / package, code / package, ignore=shutil.ignore_patterns("__pycache__"))
    audit_site = tmp_path_factory.mktemp("audit-site")
    (audit_site / "sitecustomize.py").write_text(AUDIT_SITE)
    # frgan-gm-only is a one-network method: it trains gm_steps + gr_steps steps (issue 17's footing)
    changes = {"profiles.smoke.batch": 4, "profiles.smoke.gm_steps": STEPS - 2, "profiles.smoke.gr_steps": 2,
               "train.log_every": 1,
               "train.methods": [STAGE_METHOD]}

    def train(root: Path, processes: int, audit: Path | None = None):
        write_params(root, **changes, **{"train.processes": processes})
        env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)}
        if audit is not None:
            audit.mkdir()
            env.update(PYTHONPATH=f"{audit_site}{os.pathsep}{code}", FRGAN_AUDIT_ROOT=str(root),
                       FRGAN_AUDIT_DIR=str(audit))
        result = stage(root, "train", "--dataset", "actors-synth", "--method", STAGE_METHOD, env=env)
        must_pass(result)
        return result

    from tests.tiny_project import snapshot
    one = copy_layout(base, tmp_path_factory.mktemp("gm-1proc"))
    before_one = snapshot(one)
    train(one, 1)
    two = copy_layout(base, tmp_path_factory.mktemp("gm-2proc"))
    before_two = snapshot(two)
    audit = tmp_path_factory.mktemp("audit") / "two"
    result_two = train(two, 2, audit=audit)
    resumed = tmp_path_factory.mktemp("gm-resumed")
    shutil.copytree(one, resumed, dirs_exist_ok=True)
    ckpt = resumed / "checkpoints" / STAGE_RUN / "gm"
    (ckpt / f"step-{STEPS:08d}.pt").unlink()          # keep step 2: resume from the middle
    assert sorted(p.name for p in ckpt.glob("step-*.pt")) == ["step-00000002.pt"]
    train(resumed, 2)
    return {"one": one, "two": two, "resumed": resumed, "before_one": before_one,
            "before_two": before_two, "result_two": result_two,
            "audit": audit}


def _weights(root: Path) -> dict:
    return torch.load(root / "models" / STAGE_RUN / "gm.pt", weights_only=True)["states"]["gm"]


def _gm_zero_gradient_names(root: Path) -> set[str]:
    from frgan.config import load_params
    from frgan.data.clipstore import ClipStore
    from frgan.methods import get_method
    from frgan.task import Task
    from frgan.train import frgan as fr
    params = load_params(root / "params.yaml")
    task = Task("actors-synth", params, ClipStore(root / "data/prepared/actors-synth"),
                root / "data/conditions/actors-synth")
    gm = fr.build_gm(task, get_method(STAGE_METHOD).config(task, params))
    gm.load_state_dict(_weights(root))
    I, M, _, M2 = task.sample_pairs("gm", 4, np.random.default_rng(1))   # real training pairs

    def forward(net, dtype):
        out = net(I.to(dtype), M.to(dtype), M2.to(dtype))
        return out.output, out.mask
    return zero_gradient_names(gm, forward)


def _train_runs(root: Path):
    import mlflow
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("FRGAN-Repro")
    runs = client.search_runs([exp.experiment_id], f"tags.stage = 'train@actors-synth-{STAGE_METHOD}-0'",
                              order_by=["attributes.start_time DESC"])
    return client, runs


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one(gm_runs):
    one, two = _weights(gm_runs["one"]), _weights(gm_runs["two"])
    excluded = _gm_zero_gradient_names(gm_runs["one"])
    check_excluded(excluded, one, "G_M")
    fraction, worst = compare_states(one, two, excluded, "G_M, 2 processes vs 1")
    print(f"G_M after {STEPS} steps, 2 processes vs 1: {fraction:.3%} of weights beyond {WEIGHT_ATOL}, "
          f"max |dW| {worst:.3g}; {len(excluded)} zero-gradient entries excluded")
    assert "2 processes" in gm_runs["result_two"].stdout


@pytest.mark.slow
def test_rank_zero_alone_wrote_outputs(gm_runs):
    from tests.tiny_project import snapshot, temp_leftovers
    audit = gm_runs["audit"]
    logs = {p.name: p.read_text().splitlines() for p in audit.glob("rank*.txt")}
    rank0 = [line for name, lines in logs.items() if name.startswith("rank0-") for line in lines]
    rank1 = [line for name, lines in logs.items() if name.startswith("rank1-") for line in lines]
    assert any(name.startswith("rank1-") for name in logs), f"rank 1 did not run under the audit: {logs}"
    # the audit sees rank 0's writes (the hook works) and no write of rank 1 inside the project
    assert any(f"models/{STAGE_RUN}" in line for line in rank0), rank0
    assert any(f"checkpoints/{STAGE_RUN}/gm/" in line for line in rank0), rank0
    assert any(line.startswith("sqlite3.connect") for line in rank0), rank0
    assert rank1 == [], f"rank 1 wrote inside the project: {rank1}"
    # the same files appeared as in the 1-process run, nothing else, no temporary leftovers
    new_one = set(snapshot(gm_runs["one"])) - set(gm_runs["before_one"])
    new_two = set(snapshot(gm_runs["two"])) - set(gm_runs["before_two"])
    assert new_two == new_one and any(n.endswith("gm.pt") for n in new_two), (new_one ^ new_two)
    assert temp_leftovers(gm_runs["two"]) == []
    # one MLflow run, by rank 0, that says it had 2 processes
    _, runs = _train_runs(gm_runs["two"])
    assert len(runs) == 1 and runs[0].data.params["distributed.processes"] == "2"
    assert runs[0].data.params["distributed.backend"] == "gloo"


@pytest.mark.slow
def test_a_one_process_checkpoint_resumes_under_two(gm_runs):
    client, runs = _train_runs(gm_runs["resumed"])
    resumed_run = runs[0]
    assert resumed_run.data.params["distributed.processes"] == "2"
    steps = [m.step for m in client.get_metric_history(resumed_run.info.run_id, "gm/loss")]
    assert steps == [3, 4], f"expected a resume from step 2, logged steps {steps}"
    one, resumed = _weights(gm_runs["one"]), _weights(gm_runs["resumed"])
    excluded = _gm_zero_gradient_names(gm_runs["one"])
    fraction, worst = compare_states(one, resumed, excluded, "G_M, resumed under 2 processes vs 1")
    print(f"G_M resumed at step 2 under 2 processes vs 1 process throughout: {fraction:.3%} of weights "
          f"beyond {WEIGHT_ATOL}, max |dW| {worst:.3g}")


# ---------------------------------------------------------------------------------------------
# Every method, through the Method interface, in 2 processes and in 1.

SIZE, N_PRED = 16, 4


def _tiny_task(root: Path):
    return tiny_actors_task(root, SIZE, N_PRED)


def _tiny_params(one_step: bool = False):
    """The tiny training knobs; `one_step`: a one-network method trains a single step
    (its budget is gm_steps + gr_steps)."""
    steps = {"gm_steps": 1, "gr_steps": 0} if one_step else {"gm_steps": 3, "gr_steps": 2}
    return params_with({"width": 4, "batch": 4, **steps, "gr_clip_actors": 4},
                       {"device": "cpu", "checkpoint_every": 2, "log_every": 1})


def _worker(data: Path, out: Path) -> None:
    """Train every method on the tiny task; rank 0 writes weights and logs to `out`."""
    from frgan.methods import get_method
    torch.set_num_threads(1)
    dist.init("cpu")
    task, params = _tiny_task(data), _tiny_params()
    scratch = Path(tempfile.mkdtemp(prefix="frgan-ddp-worker-"))
    try:
        for name in METHODS:
            logs: dict[int, dict[str, float]] = {}
            target = out / name if dist.is_main() else scratch / name
            target.mkdir(parents=True, exist_ok=True)
            get_method(name).train(task, _tiny_params(one_step=True) if name in ONE_STEP else params,
                                   target, out / "checkpoints" / name,
                                   log=lambda step, values: logs.__setitem__(step, values))
            if dist.is_main():
                (target / "logs.json").write_text(json.dumps(logs))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        dist.teardown()


def _networks(name: str, folder: Path, task, params):
    """(label, state dict, module, forward(net, dtype)) of every network `name` saved in `folder`."""
    from baselines import mathieu, mcnet, mocogan, vgan, villegas17
    from baselines import video_gan as vg
    from frgan.methods import get_method
    from frgan.train import frgan as fr, parts
    g = torch.Generator().manual_seed(2)
    rand = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1
    b, s = 4, task.size
    first, cond, _, cond2 = task.sample_pairs("gm", b, np.random.default_rng(2))   # real training pairs

    def on(fn, *inputs):   # forward(net, dtype): fn on the inputs cast to dtype
        return lambda net, dtype: fn(net, *[x.to(dtype) if x.is_floating_point() else x for x in inputs])
    outputs = lambda out: (out.output, out.mask)
    gm_forward = on(lambda net, *x: outputs(net(*x)), first, cond, cond2)
    if name == "frgan":
        cfg = get_method(name).config(task, params)
        _, _, coarse, cond_clip = task.sample_windows("gr", b, cfg.clip_len, np.random.default_rng(3))
        yield ("gm", parts.load_weights(folder / "gm.pt")["states"]["gm"], fr.build_gm(task, cfg), gm_forward)
        yield ("gr", parts.load_weights(folder / "gr.pt")["states"]["gr"], fr.build_gr(task, cfg),
               on(lambda net, *x: outputs(net(*x)), coarse, cond_clip))
    elif name in ("villegas17", "mcnet", "mathieu"):
        method = get_method(name)
        cfg = method.config(task, params)
        state = parts.load_weights(folder / "generator.pt")["states"]["generator"]
        forward = {"villegas17": gm_forward, "mcnet": on(lambda net, x: net(x, 2), first),
                   "mathieu": on(lambda net, x: net(mathieu.pyramid(x)), first)}[name]
        yield (name, state, method.build(task, cfg), forward)
    elif name == "vgan":
        payload = parts.load_weights(folder / vgan.WEIGHTS)
        frames = payload["config"]["frames"]
        for label, state in payload["states"].items():
            yield (f"vgan/{label}", state, vgan.VganGenerator(s, frames, width=payload["config"]["width"]),
                   on(lambda net, x: tuple(net(x)), first))
    elif name == "mocogan":
        payload = parts.load_weights(folder / mocogan.WEIGHTS)
        cfg = mocogan._config_from(payload["config"], "cpu")
        category = vg.one_hot(torch.arange(b) % len(cfg.labels), len(cfg.labels)).double()
        h0, eps = rand(b, cfg.motion_dim), rand(b, cfg.frames, cfg.motion_dim)
        yield ("mocogan", payload["states"]["generator"], mocogan.build_generator(task, cfg),
               on(lambda net, *x: net(*x), first, category, h0, eps))


@pytest.mark.slow
def test_every_method_trains_the_same_in_two_processes(tmp_path):
    data = tmp_path / "data"
    task, params = _tiny_task(data), _tiny_params()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    runs = {}
    for label, launcher in (("one", [sys.executable]), ("two", TORCHRUN)):
        out = tmp_path / label
        result = subprocess.run([*launcher, str(Path(__file__)), "worker", str(data), str(out)], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{label}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        runs[label] = out
    report = []
    for name in METHODS:
        one_logs = json.loads((runs["one"] / name / "logs.json").read_text())
        two_logs = json.loads((runs["two"] / name / "logs.json").read_text())
        assert one_logs.keys() == two_logs.keys() and one_logs, name
        for step, values in one_logs.items():
            for key, a in values.items():
                b = two_logs[step][key]
                assert abs(a - b) <= LOSS_ATOL + LOSS_RTOL * abs(a), f"{name} step {step} {key}: {a} vs {b}"
        for label, state, module, forward in _networks(name, runs["one"] / name, task, params):
            _, two_state, _, _ = next(n for n in _networks(name, runs["two"] / name, task, params) if n[0] == label)
            module.load_state_dict(state)
            excluded = zero_gradient_names(module, forward)
            check_excluded(excluded, state, label)
            fraction, worst = compare_states(state, two_state, excluded, f"{label}, 2 processes vs 1")
            report.append(f"{label}: {fraction:.3%} beyond, max {worst:.2g} ({len(excluded)} excluded)")
    print("; ".join(report))


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    _worker(Path(sys.argv[2]), Path(sys.argv[3]))
