"""Actor conditions (paper 3.1, 4.3): the pose LSTM trained on every training clip, and the
evaluation set.

Evaluation protocol (paper 4.3, after Villegas et al. 2017): for each test video the LSTM
observes the first `n_obs` ground-truth poses and predicts the next `n_pred`; every method gets
the last observed frame as its input image and generates the `n_pred` frames that follow,
which are compared with the real ones. The conditions are joint heatmaps of the predicted
poses ("MSE"), or of the ground-truth poses ("MSE (GT)").

The folder written here (data/conditions/<dataset>/):
    pose_lstm.pt        the trained LSTM (config + weights)
    test_index.csv      item, clip_id, subject, label, input_frame, first_target, n_targets
    pred_joints.npy     (items, n_pred, 13, 2) predicted joints, px
    gt_joints.npy       (items, n_pred, 13, 2) ground-truth joints of the target frames, px
    gt_visibility.npy   (items, n_pred, 13)
    horizon_error.csv   the LSTM's and the constant-pose baseline's mean joint error per step
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch

from frgan.conditions import pose_lstm as pl
from frgan.data.clipstore import TRAIN_SPLITS, ClipStore
from frgan.data.errors import DatasetError


@dataclass(frozen=True)
class PoseSettings:
    n_obs: int          # poses observed (paper 4.1: 10)
    n_pred: int         # poses predicted and frames generated (paper 4.1, 4.3: 32)
    hidden: int         # LSTM units (Villegas et al.: 1024)
    steps: int          # training steps (Villegas et al.: 37,500)
    batch: int          # (Villegas et al.: 256)
    seed: int
    device: str = "cpu"


def _sequences(store: ClipStore,
               split: str | tuple[str, ...]) -> tuple[list[np.ndarray], list[np.ndarray], pd.DataFrame]:
    clips = store.split(split)
    joints = [np.array(store.gt("joints", r.clip_id)) for r in clips.itertuples()]
    vis = [np.array(store.gt("visibility", r.clip_id)) for r in clips.itertuples()]
    return joints, vis, clips


def build_actor_conditions(store: ClipStore, cfg: PoseSettings, out: Path,
                           log: Optional[Callable[[dict, int], None]] = None) -> dict[str, float]:
    """Train the LSTM on every training clip (splits gm + gr), predict for split 'test', write
    `out`; return summary metrics."""
    size = store.meta["height"]
    box = pl.frame_box(size)
    window = cfg.n_obs + cfg.n_pred

    # The paper's LSTM (Villegas et al. 2017) was pre-trained on Penn Action's whole training
    # set: here every training clip, both of G_M's and G_R's groups (paper 4.1); the test
    # split, whose poses the LSTM forecasts, stays unseen.
    joints, vis, _ = _sequences(store, TRAIN_SPLITS)
    trained = pl.train_pose_lstm([pl.normalise(j, box) for j in joints], vis, n_obs=cfg.n_obs,
                                 n_pred=cfg.n_pred, steps=cfg.steps, batch=cfg.batch, seed=cfg.seed,
                                 hidden=cfg.hidden, device=cfg.device, log=log)
    pl.save_pose_lstm(trained.model, out / "pose_lstm.pt",
                      extra={"n_obs": cfg.n_obs, "n_pred": cfg.n_pred, "size": size})

    joints, vis, clips = _sequences(store, "test")
    keep = [i for i, j in enumerate(joints) if len(j) >= window]
    if not keep:
        raise DatasetError(f"{store.root}: no test video has the {window} frames the protocol needs "
                           f"(observe {cfg.n_obs} + predict {cfg.n_pred}); use longer videos")
    observed = torch.as_tensor(np.stack([pl.normalise(joints[i][:cfg.n_obs], box) for i in keep]))
    observed_vis = torch.as_tensor(np.stack([vis[i][:cfg.n_obs] for i in keep]))
    gt = np.stack([joints[i][cfg.n_obs:window] for i in keep]).astype(np.float32)
    gt_vis = np.stack([vis[i][cfg.n_obs:window] for i in keep]).astype(np.float32)
    pred_norm = pl.predict(trained.model, observed, cfg.n_pred, observed_vis)
    pred = np.asarray(pl.denormalise(pred_norm, box), dtype=np.float32)

    rows = clips.iloc[keep]
    index = pd.DataFrame({"item": range(len(keep)), "clip_id": rows.clip_id.values,
                          "subject": rows.subject.values, "label": rows.label.values,
                          "input_frame": cfg.n_obs - 1, "first_target": cfg.n_obs,
                          "n_targets": cfg.n_pred})
    index.to_csv(out / "test_index.csv", index=False, lineterminator="\n")
    np.save(out / "pred_joints.npy", pred)
    np.save(out / "gt_joints.npy", gt)
    np.save(out / "gt_visibility.npy", gt_vis)

    gt_norm = torch.as_tensor(pl.normalise(gt, box))
    lstm_err = pl.mean_joint_error_px(pred_norm, gt_norm, torch.as_tensor(gt_vis), size)
    const_err = pl.mean_joint_error_px(pl.repeat_last_pose(observed, cfg.n_pred), gt_norm,
                                       torch.as_tensor(gt_vis), size)
    pd.DataFrame({"step": np.arange(1, cfg.n_pred + 1), "lstm_px": lstm_err.numpy().round(6),
                  "constant_pose_px": const_err.numpy().round(6)}).to_csv(
        out / "horizon_error.csv", index=False, lineterminator="\n")
    return {"pose_lstm_error_px": float(lstm_err.nanmean()),
            "constant_pose_error_px": float(const_err.nanmean()),
            "pose_lstm_final_loss": float(trained.losses[-1]), "test_items": len(keep)}


def plot_actor_conditions(store: ClipStore, folder: Path, figure: Path) -> None:
    """Predicted vs ground-truth skeletons for a few test items, and the error per step."""
    size = store.meta["height"]
    box = pl.frame_box(size)
    pred = pl.normalise(np.load(folder / "pred_joints.npy")[:4], box)
    gt = pl.normalise(np.load(folder / "gt_joints.npy")[:4], box)
    pl.plot_skeletons(pred, gt, path=figure, visibility=np.load(folder / "gt_visibility.npy")[:4])
    errors = pd.read_csv(folder / "horizon_error.csv")
    pl.plot_horizon_error({"pose LSTM": errors.lstm_px.values,
                           "constant pose": errors.constant_pose_px.values},
                          path=figure.with_name(figure.stem + "-error.png"))
