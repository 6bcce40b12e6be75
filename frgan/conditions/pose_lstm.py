"""The actor motion-condition generator G_C: the pose LSTM of Villegas et al. 2017.

The paper (section 3.1, 4.1) follows Villegas et al. 2017 ("Learning to Generate Long-term Future
via Hierarchical Prediction") and uses their pre-trained LSTM. As summarised in
REFERENCE-NOTES.md: 13 joints -> 26-d pose normalised by the video's box to [-1, 1] and masked by
visibility; linear 32 + ReLU encoder; one LSTM layer of 1024 units; it observes 10 poses and
predicts 32 in training (64 at test) with zero inputs for future steps; tanh output;
visibility-masked MSE; RMSProp lr 1e-3, gradient-norm clip 25, batch 256, 37,500 steps.

Our Penn Action crops are already the person's box (squared), so the box here is the frame
itself: `frame_box(size)` = [0, size-1] on both axes.

Choices the sources leave open, made here (and why):
- Future steps feed zeros straight into the LSTM (after the encoder), so "no observation" is
  not the same input as an observed pose at the box centre.
- Invisible observed joints are zeroed at the input (the visibility mask); padded or invisible
  target joints carry no loss.
- The masked MSE averages over visible coordinates (not over all), so batches with many
  invisible joints are not down-weighted.
- Training windows: a sequence, uniformly; then a start, uniformly. A sequence shorter than the
  window is padded by repeating its last pose with visibility 0 on the padding (so padding is
  never a target); one with no frame after the n_obs observed ones is skipped.
- Optimiser: the sources give only "RMSProp, lr 1e-3". Assuming Villegas et al.'s TensorFlow 1
  code kept that optimiser's defaults, we take the rest from TF1's RMSPropOptimizer (decay 0.9,
  eps 1e-10, and a mean-square accumulator that starts at 1, not 0): `RMSPropTF1`. torch's
  RMSprop (accumulator at 0, alpha 0.99) makes its first updates about 10 lr per weight whatever
  the gradient's size; at 1024 units that saturated the tanh output (loss 0.10 -> 1.58 in 3
  steps) and, after 3000 steps on synthetic motion, left a held-out error 3x TF1's (H100 run,
  2026-11-25). `rmsprop="torch"` selects it. With the defaults, the full recipe on synthetic
  stick figures ran 37,500 steps in 308 s on an H100 and ended at 0.024x the constant-pose
  baseline's held-out MSE at 32 steps (0.11x at 64); on 2 CPU cores a step takes about 1.7 s.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from frgan.io import atomic_file

try:  # the shared skeleton definition, when present
    from frgan.data.skeleton import LIMBS as PENN_LIMBS, N_JOINTS as PENN_JOINTS
except ImportError:  # pragma: no cover - only before the data package has it
    PENN_JOINTS = 13
    PENN_LIMBS = ((0, 1), (0, 2), (1, 3), (3, 5), (2, 4), (4, 6),
                  (1, 7), (2, 8), (7, 9), (9, 11), (8, 10), (10, 12))

__all__ = [
    "PENN_LIMBS", "PoseLSTM", "TrainedPoseLSTM", "frame_box", "normalise", "denormalise", "masked_mse",
    "train_pose_lstm", "train_step", "RMSPropTF1", "make_rmsprop", "predict", "repeat_last_pose",
    "mean_joint_error_px",
    "save_pose_lstm", "load_pose_lstm", "plot_skeletons", "plot_horizon_error",
]

# Villegas et al. 2017 (REFERENCE-NOTES.md); paper section 4.1 confirms "observe 10, predict 32".
N_OBS = 10
N_PRED_TRAIN = 32
N_PRED_TEST = 64
HIDDEN = 1024
EMBED = 32
LR = 1e-3
CLIP_NORM = 25.0
BATCH = 256
STEPS = 37_500


# ----------------------------------------------------------------------------- coordinates

def frame_box(size: int) -> tuple[float, float, float, float]:
    """(x_min, y_min, x_max, y_max) of a size x size frame in pixel-centre coordinates."""
    return 0.0, 0.0, float(size - 1), float(size - 1)


def normalise(joints, box):
    """Pixels -> [-1, 1] per axis by the box (x_min, y_min, x_max, y_max); numpy or torch."""
    x0, y0, x1, y1 = (float(v) for v in box)
    out = joints * 1.0  # a float copy of either array type
    out[..., 0] = 2.0 * (joints[..., 0] - x0) / (x1 - x0) - 1.0
    out[..., 1] = 2.0 * (joints[..., 1] - y0) / (y1 - y0) - 1.0
    return out


def denormalise(coords, box):
    """[-1, 1] -> pixels; the inverse of `normalise`."""
    x0, y0, x1, y1 = (float(v) for v in box)
    out = coords * 1.0
    out[..., 0] = (coords[..., 0] + 1.0) * 0.5 * (x1 - x0) + x0
    out[..., 1] = (coords[..., 1] + 1.0) * 0.5 * (y1 - y0) + y0
    return out


def _tensor(x, device=None) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32, device=device)


# ----------------------------------------------------------------------------- the model

class PoseLSTM(nn.Module):
    """Encoder (linear + ReLU) -> one LSTM layer -> linear + tanh decoder to 2*n_joints coords."""

    def __init__(self, n_joints: int = PENN_JOINTS, hidden: int = HIDDEN, embed: int = EMBED):
        super().__init__()
        self.config = {"n_joints": n_joints, "hidden": hidden, "embed": embed}
        pose_dim = 2 * n_joints
        self.encoder = nn.Sequential(nn.Linear(pose_dim, embed), nn.ReLU())
        self.lstm = nn.LSTM(embed, hidden, num_layers=1, batch_first=True)
        self.decoder = nn.Linear(hidden, pose_dim)

    @property
    def n_joints(self) -> int:
        return self.config["n_joints"]

    def forward(self, observed: torch.Tensor, n_pred: int,
                visibility: torch.Tensor | None = None) -> torch.Tensor:
        """observed (N, n_obs, J, 2) in [-1, 1], visibility (N, n_obs, J) -> (N, n_pred, J, 2).

        The LSTM reads the n_obs encoded poses, then n_pred zero inputs; the outputs at those
        n_pred future steps are the predicted poses.
        """
        n, n_obs = observed.shape[:2]
        if visibility is not None:
            observed = observed * visibility.unsqueeze(-1)
        encoded = self.encoder(observed.reshape(n, n_obs, -1))
        future = encoded.new_zeros(n, n_pred, encoded.shape[-1])
        states, _ = self.lstm(torch.cat([encoded, future], dim=1))
        poses = torch.tanh(self.decoder(states[:, n_obs:]))
        return poses.reshape(n, n_pred, self.n_joints, 2)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the visible joints' coordinates (0 when none is visible)."""
    weight = visibility.unsqueeze(-1).expand_as(pred)
    return (weight * (pred - target) ** 2).sum() / weight.sum().clamp_min(1.0)


# ----------------------------------------------------------------------------- training data

class _Windows:
    """Random training windows of `length` frames from variable-length pose sequences."""

    def __init__(self, sequences, visibility, length: int, min_frames: int, device):
        if len(sequences) != len(visibility):
            raise ValueError(f"{len(sequences)} pose sequences but {len(visibility)} visibility ones")
        for i, (p, v) in enumerate(zip(sequences, visibility)):
            if tuple(p.shape[:-1]) != tuple(v.shape) or p.shape[-1] != 2:
                raise ValueError(f"sequence {i}: poses {tuple(p.shape)} vs visibility {tuple(v.shape)}")
        kept = [(_tensor(p), _tensor(v)) for p, v in zip(sequences, visibility) if len(p) >= min_frames]
        if not kept:
            raise ValueError(f"no training sequence has the {min_frames} frames one window needs")
        self.length = length
        self.frames = torch.tensor([len(p) for p, _ in kept])
        padded_to = max(length, int(self.frames.max()))
        self.poses = torch.stack([self._pad(p, padded_to) for p, _ in kept]).to(device)
        self.visibility = torch.stack([self._pad(v, padded_to, fill=0.0) for _, v in kept]).to(device)
        self.n_starts = (self.frames - length).clamp_min(0) + 1
        self.device = device

    @staticmethod
    def _pad(x: torch.Tensor, frames: int, fill: float | None = None) -> torch.Tensor:
        """Repeat the last frame up to `frames` (or fill with `fill`)."""
        extra = frames - len(x)
        if extra == 0:
            return x
        tail = x[-1:].expand(extra, *x.shape[1:]) if fill is None else x.new_full((extra, *x.shape[1:]), fill)
        return torch.cat([x, tail])

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, length, J, 2) poses and (batch, length, J) visibility."""
        seq = torch.randint(len(self.frames), (batch,), generator=generator)
        start = (torch.rand(batch, generator=generator) * self.n_starts[seq]).long()
        time = start[:, None] + torch.arange(self.length)
        seq, time = seq[:, None].to(self.device), time.to(self.device)
        return self.poses[seq, time], self.visibility[seq, time]


# ----------------------------------------------------------------------------- training

def train_step(model: PoseLSTM, optimiser, poses: torch.Tensor,
               visibility: torch.Tensor, n_obs: int, clip: float) -> tuple[float, float]:
    """One update on windows (B, n_obs + n_pred, J, 2): the first n_obs frames are observed,
    the rest are targets. Returns (loss, gradient norm before clipping)."""
    n_pred = poses.shape[1] - n_obs
    pred = model(poses[:, :n_obs], n_pred, visibility[:, :n_obs])
    loss = masked_mse(pred, poses[:, n_obs:], visibility[:, n_obs:])
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), clip)   # Villegas et al.: norm 25
    optimiser.step()
    return loss.item(), float(grad_norm)


class RMSPropTF1:
    """RMSProp as TensorFlow 1's RMSPropOptimizer computes it (no momentum, not centred):
    ms <- decay ms + (1 - decay) g^2 with ms starting at 1;  w <- w - lr g / sqrt(ms + eps).

    Not a torch.optim.Optimizer: their methods import torch._dynamo on first use, 1.5 s of the
    conditions stage (frgan/train/optim.py says why); the arithmetic is the same."""

    def __init__(self, params, lr: float = LR, decay: float = 0.9, eps: float = 1e-10):
        self.params, self.lr, self.decay, self.eps = list(params), lr, decay, eps
        self.mean_square: dict[int, torch.Tensor] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for index, param in enumerate(self.params):
            if param.grad is None:
                continue
            mean_square = self.mean_square.setdefault(index, torch.ones_like(param))
            mean_square.mul_(self.decay).addcmul_(param.grad, param.grad, value=1 - self.decay)
            param.addcdiv_(param.grad, (mean_square + self.eps).sqrt(), value=-self.lr)


def make_rmsprop(params, lr: float = LR, kind: str = "tf1"):
    """'tf1': RMSPropTF1 (the default, see the module notes); 'torch': torch.optim.RMSprop."""
    if kind == "tf1":
        return RMSPropTF1(params, lr=lr)
    if kind == "torch":
        return torch.optim.RMSprop(params, lr=lr)
    raise ValueError(f"rmsprop must be 'tf1' or 'torch', got {kind!r}")


class TrainedPoseLSTM(NamedTuple):
    model: PoseLSTM
    losses: list[float]   # the training loss at every step


def train_pose_lstm(sequences: Sequence, visibility: Sequence, n_obs: int = N_OBS,
                    n_pred: int = N_PRED_TRAIN, steps: int = STEPS, batch: int = BATCH,
                    lr: float = LR, clip: float = CLIP_NORM, seed: int = 0,
                    hidden: int = HIDDEN, embed: int = EMBED, rmsprop: str = "tf1",
                    device: str | torch.device = "cpu",
                    progress: bool = True, log: Callable[[dict, int], None] | None = None,
                    log_every: int = 100) -> TrainedPoseLSTM:
    """Train a PoseLSTM on normalised sequences with Villegas et al.'s recipe (the defaults).

    sequences: (N, T, J, 2) in [-1, 1], or a list of (T_i, J, 2); visibility: (N, T, J) or a
    list of (T_i, J). `rmsprop` picks the optimiser's flavour (`make_rmsprop`).
    `log(metrics, step)` is called every `log_every` steps (it fits `frgan.tracking.log_metrics`).
    Deterministic given `seed` on the CPU.
    """
    device = torch.device(device)
    windows = _Windows(sequences, visibility, n_obs + n_pred, n_obs + 1, device)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):   # seeded init without touching the caller's RNG
        torch.manual_seed(seed)
        model = PoseLSTM(windows.poses.shape[2], hidden, embed).to(device)
    optimiser = make_rmsprop(model.parameters(), lr, rmsprop)

    from tqdm.auto import tqdm
    losses: list[float] = []
    model.train()
    bar = tqdm(range(1, steps + 1), desc="pose LSTM", disable=not progress, unit="step")
    for step in bar:
        loss, grad_norm = train_step(model, optimiser, *windows.sample(batch, generator), n_obs, clip)
        losses.append(loss)
        if step % log_every == 0 or step == steps:
            bar.set_postfix(loss=f"{loss:.4f}")
            if log is not None:
                log({"pose_lstm/loss": loss, "pose_lstm/grad_norm": grad_norm}, step)
    model.eval()
    return TrainedPoseLSTM(model, losses)


# ----------------------------------------------------------------------------- inference

@torch.no_grad()
def predict(model: PoseLSTM, observed, n_pred: int = N_PRED_TEST, visibility=None,
            batch: int = 1024) -> torch.Tensor:
    """observed (N, n_obs, J, 2) normalised -> predicted (N, n_pred, J, 2) normalised, on CPU.

    visibility (N, n_obs, J) masks the observed joints; None means all visible.
    """
    device = next(model.parameters()).device
    observed = _tensor(observed)
    visibility = None if visibility is None else _tensor(visibility)
    was_training = model.training
    model.eval()
    chunks = []
    for lo in range(0, len(observed), batch):
        vis = None if visibility is None else visibility[lo:lo + batch].to(device)
        chunks.append(model(observed[lo:lo + batch].to(device), n_pred, vis).cpu())
    model.train(was_training)
    return torch.cat(chunks) if chunks else observed.new_zeros(0, n_pred, *observed.shape[2:])


def repeat_last_pose(observed, n_pred: int) -> torch.Tensor:
    """The constant-pose baseline: the last observed pose held for n_pred steps."""
    observed = _tensor(observed)
    return observed[:, -1:].expand(-1, n_pred, -1, -1).clone()


def mean_joint_error_px(pred, gt, visibility, size: int) -> torch.Tensor:
    """Mean Euclidean joint error in pixels at each horizon step -> (H,).

    pred, gt: (N, H, J, 2) normalised by `frame_box(size)`; visibility: (N, H, J). The mean runs
    over the visible joints of all sequences at each step (NaN at a step with none visible).
    """
    pixels_per_unit = (size - 1) / 2.0
    distance = (_tensor(pred) - _tensor(gt)).norm(dim=-1) * pixels_per_unit   # (N, H, J)
    vis = _tensor(visibility)
    return (distance * vis).sum(dim=(0, 2)) / vis.sum(dim=(0, 2))


# ----------------------------------------------------------------------------- persistence

def save_pose_lstm(model: PoseLSTM, path: str | Path, extra: dict | None = None) -> Path:
    """Write {config, state_dict, extra} atomically (temp file beside `path`, then os.replace)."""
    payload = {"config": dict(model.config),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "extra": dict(extra or {})}
    with atomic_file(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_pose_lstm(path: str | Path, device: str | torch.device = "cpu") -> PoseLSTM:
    """The PoseLSTM saved by `save_pose_lstm`, in eval mode on `device`; a file holding more than
    tensors (a crafted pickle) is refused with an UnsafeFileError naming it."""
    from frgan.train.checkpoint import load_weights
    payload = load_weights(path)
    model = PoseLSTM(**payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


# ----------------------------------------------------------------------------- plots

def _figure(rows: int, cols: int, cell: float = 2.0):
    from matplotlib.figure import Figure   # the object API renders with Agg, no pyplot state
    fig = Figure(figsize=(cell * cols, cell * rows))
    return fig, fig.subplots(rows, cols, squeeze=False)


def _save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=100, bbox_inches="tight")
    return path


def _draw_skeleton(ax, pose, vis, limbs, style: dict) -> None:
    for a, b in limbs:
        if vis[a] > 0 and vis[b] > 0:
            ax.plot([pose[a, 0], pose[b, 0]], [pose[a, 1], pose[b, 1]], **style)


def plot_skeletons(pred, gt, limbs=PENN_LIMBS, path: str | Path = "skeletons.png", visibility=None,
                   n_sequences: int = 3, steps: Sequence[int] | None = None) -> Path:
    """Ground-truth (solid) vs predicted (dashed) skeletons: rows are sequences, columns horizon
    steps. pred, gt (N, H, J, 2) in any one coordinate system (image y axis points down)."""
    pred, gt = _tensor(pred).numpy(), _tensor(gt).numpy()
    vis = (torch.ones(gt.shape[:-1]) if visibility is None else _tensor(visibility)).numpy()
    horizon = gt.shape[1]
    steps = list(steps) if steps is not None else sorted({0, horizon // 4, horizon // 2, horizon - 1})
    rows = min(n_sequences, len(gt))
    fig, axes = _figure(rows, len(steps))
    lo, hi = min(gt.min(), pred.min()), max(gt.max(), pred.max())
    for r in range(rows):
        for c, t in enumerate(steps):
            ax = axes[r, c]
            _draw_skeleton(ax, gt[r, t], vis[r, t], limbs, {"color": "tab:green", "lw": 2})
            _draw_skeleton(ax, pred[r, t], vis[r, t], limbs, {"color": "tab:red", "lw": 1.5, "ls": "--"})
            ax.set_xlim(lo, hi)
            ax.set_ylim(hi, lo)   # image coordinates: y grows downwards
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t+{t + 1}", fontsize=9)
    axes[0, 0].set_ylabel("green: GT, red: pred", fontsize=8)
    return _save_figure(fig, path)


def plot_horizon_error(errors, path: str | Path = "horizon_error.png",
                       label: str = "mean joint error (px)") -> Path:
    """A line per method of error vs horizon step; `errors` is one (H,) array or {name: (H,)}."""
    curves = errors if isinstance(errors, dict) else {"pose LSTM": errors}
    fig, axes = _figure(1, 1, cell=4.0)
    ax = axes[0, 0]
    for name, values in curves.items():
        values = _tensor(values).numpy()
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set_xlabel("horizon step")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save_figure(fig, path)

