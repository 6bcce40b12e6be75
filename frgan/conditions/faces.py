"""Face conditions G_C (paper 3.1 "Facial Expression Retargeting", 4.1, 4.2).

Every video of the clip store is parameterised by a 3D morphable model: one identity alpha per
video and per frame an expression beta and a head pose, fitted to the frame's 68 landmarks
(`frgan.conditions.fitting`; faces-synth: its ground-truth landmarks and the procedural model
they come from; mug: the dlib landmarks found at prepare time and the model chosen in params).
The motion condition of a frame is the normal map of its fitted 3D face.

Normal maps (REFERENCE-NOTES, the authors' code): per-triangle (flat) normals expressed in the
canonical, un-rotated face frame (x image right, y up, z to the viewer), rasterised with a
z-buffer at the frame's fitted pose and scale, encoded RGB = (n + 1) / 2 * 255, background 0.
So a map shows where the face is, its shape and its expression, but not its head rotation
(a frontal surface is (128, 128, 255) however the head turns); the rotation only moves the
silhouette.

Retargeting test set (paper 4.2: "For each facial expression, we randomly select one video as
the reference, and retarget it to all the subjects in the testing set"): for each expression
one reference among the test split's clips of that label (drawn with params.seed); for each
test subject the condition sequence is the normal maps of (the subject's alpha + the reference's
betas), posed with the subject's first-frame pose, so the face stays where the input frame's face
is. The subject's alpha and pose come from the subject's input clip: its test clip of the same
expression when there is one (else its first test clip), whose first frame (neutral) is the
input frame. The targets are the reference's frames after its first (frame 0 is the neutral
start the input frame already shows): n_targets = the shortest reference's length - 1, the same
for every item (all faces-synth clips have one length; MUG's references are truncated).

The folder written here (data/conditions/<dataset>/):
    maps.u8           (N_frames, H, W, 3) uint8 normal maps, rows aligned with the store's frames
    fit_alpha.npy     (n_clips, n_id) fitted identity per clip (store index order)
    fit_beta.npy      (N_frames, n_expr), fit_pose.npy (N_frames, 6): yaw, pitch, roll, tx, ty, s
    fit_error_px.npy  (N_frames,) mean landmark reprojection error of the fit, px
    test_index.csv    item, clip_id, subject, label, input_frame, n_targets, reference_clip
    test_cond.u8      (items, n_targets, H, W, 3) uint8 retargeted normal maps
    test_truth.u8     faces-synth only: (items, n_targets, H, W, 3) the true retargeted video,
                      rendered from the ground truth (what real MUG cannot give)
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from frgan.conditions import render
from frgan.conditions.fitting import MIN_LANDMARKS, FitSettings, fit_videos, torch_threads
from frgan.conditions.morphable import N_LANDMARKS, MorphableModel, procedural_face_model
from frgan.config import Conditions, Params
from frgan.data.clipstore import ClipStore
from frgan.data.errors import DatasetError

SYNTHETIC = "faces-synth"
TEST_INDEX_COLUMNS = ["item", "clip_id", "subject", "label", "input_frame", "n_targets", "reference_clip"]
FIT_BATCH_FRAMES = 4096     # frames fitted at once (bounds the Jacobians' memory)
RENDER_BATCH = 64           # normal maps rendered at once

FitLog = Optional[Callable[[dict, int], None]]   # log(values, step), MLflow's order


@dataclass
class FaceFit:
    """The fit of every clip of a store: alpha per clip, the rest per frame (store row order)."""

    alpha: np.ndarray       # (n_clips, n_id)
    beta: np.ndarray        # (N, n_expr)
    pose: np.ndarray        # (N, 6)
    error_px: np.ndarray    # (N,)


# ---------------------------------------------------------------------------------------------
# model and landmarks

def face_model_for(dataset: str, conditions: Conditions) -> MorphableModel:
    """faces-synth: the procedural model (its ground truth's own); real data: params' choice."""
    if dataset == SYNTHETIC or conditions.face_model == "procedural":
        return procedural_face_model()
    from frgan.conditions import models_real
    if conditions.face_model == "sfm":
        return models_real.load_sfm(conditions.face_model_path)
    return models_real.load_bfm(conditions.face_model_path, conditions.face_expression_path,
                                conditions.face_landmarks_path)


def store_landmarks(store: ClipStore, model: MorphableModel) -> np.ndarray:
    """The store's landmarks (N, 68, 2) float64, checked: the shape, and in every frame enough of
    the model's landmarks present (NaN means none was found) to fit it."""
    try:
        landmarks = np.array(store.gt("landmarks"), dtype=np.float64)
    except KeyError:
        raise DatasetError(f"{store.root}: no ground truth 'landmarks'; face conditions need the 68 "
                           "landmarks of every frame") from None
    expected = (store.meta["n_frames"], N_LANDMARKS, 2)
    if landmarks.shape != expected:
        raise DatasetError(f"{store.root / 'gt' / 'landmarks.npy'}: shape {landmarks.shape}, expected {expected}")
    usable = np.isfinite(landmarks[:, model.landmark_ids >= 0]).all(-1).sum(1)
    for clip in store.index.itertuples():
        found = usable[clip.start: clip.start + clip.length]
        if (found < MIN_LANDMARKS).any():
            frame = int(np.argmax(found < MIN_LANDMARKS))
            raise DatasetError(f"{store.root}: clip {clip.clip_id} frame {frame}: {int(found[frame])} of the "
                               f"model's landmarks found (NaN), at least {MIN_LANDMARKS} needed; no face found?")
    return landmarks


# ---------------------------------------------------------------------------------------------
# fitting

def _clip_batches(lengths: np.ndarray, max_frames: int) -> list[tuple[int, int]]:
    """Consecutive clip ranges [first, stop) of at most max_frames frames (at least one clip)."""
    batches, first, frames = [], 0, 0
    for i, length in enumerate(lengths):
        if frames and frames + length > max_frames:
            batches.append((first, i))
            first, frames = i, 0
        frames += length
    batches.append((first, len(lengths)))
    return batches


def fit_store(store: ClipStore, model: MorphableModel, landmarks: np.ndarray, settings: FitSettings,
              log: FitLog = None) -> FaceFit:
    """Fit every clip (alpha shared within a clip), FIT_BATCH_FRAMES frames of clips at a time."""
    index = store.index
    lengths = index.length.to_numpy()
    alpha, beta, pose, error = [], [], [], []
    step = 0
    # frames/s and ETA on a terminal, quiet in logs (disable=None: tqdm's "only on a TTY")
    bar = tqdm(total=int(lengths.sum()), desc="3DMM fit", unit="frame", disable=None)
    for first, stop in _clip_batches(lengths, FIT_BATCH_FRAMES):
        rows = slice(int(index.start.iloc[first]), int(index.start.iloc[stop - 1] + lengths[stop - 1]))
        video = np.repeat(np.arange(stop - first), lengths[first:stop])

        def progress(iteration: int, cost: float, offset: int = step) -> None:
            if log is not None:
                log({"fit_cost": cost}, offset + iteration)

        fit = fit_videos(model, landmarks[rows], video, settings, on_iteration=progress)
        step += fit.iterations
        alpha.append(fit.alpha)
        beta.append(fit.beta)
        pose.append(fit.pose)
        error.append(fit.error_px)
        bar.update(int(lengths[first:stop].sum()))
    bar.close()
    return FaceFit(np.concatenate(alpha), np.concatenate(beta), np.concatenate(pose), np.concatenate(error))


def _save_fit(fit: FaceFit, out: Path) -> None:
    for name in ("alpha", "beta", "pose", "error_px"):
        np.save(out / f"fit_{name}.npy", getattr(fit, name))


# ---------------------------------------------------------------------------------------------
# normal maps

def normal_maps(model: MorphableModel, alpha: np.ndarray, beta: np.ndarray, pose: np.ndarray,
                size: int) -> np.ndarray:
    """Normal maps (B, size, size, 3) uint8 of shape(alpha, beta) (B, n_id), (B, n_expr) at
    pose (B, 6): flat normals in the un-rotated model frame, RGB = (n + 1) / 2 * 255, background 0."""
    triangles = torch.as_tensor(model.triangles)
    out = np.empty((len(pose), size, size, 3), dtype=np.uint8)
    with torch.no_grad():
        for lo in range(0, len(pose), RENDER_BATCH):
            hi = min(lo + RENDER_BATCH, len(pose))
            vertices = model.shape(torch.as_tensor(np.asarray(alpha[lo:hi], np.float32)),
                                   torch.as_tensor(np.asarray(beta[lo:hi], np.float32)))
            screen = render.project(vertices, torch.as_tensor(np.asarray(pose[lo:hi], np.float32)))
            maps = render.normal_map(screen, triangles, size, size, frame_vertices=vertices, flat=True)
            out[lo:hi] = (maps * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def _write_store_maps(store: ClipStore, model: MorphableModel, fit: FaceFit, path: Path) -> None:
    """maps.u8: every frame's map from its clip's alpha and its own beta and pose, in row order."""
    clip_of_row = np.repeat(np.arange(len(store.index)), store.index.length.to_numpy())
    size = int(store.meta["height"])
    chunk = RENDER_BATCH * 16
    with path.open("wb") as handle, tqdm(total=len(clip_of_row), desc="normal maps", unit="frame",
                                         disable=None) as bar:
        for lo in range(0, len(clip_of_row), chunk):
            rows = slice(lo, min(lo + chunk, len(clip_of_row)))
            handle.write(normal_maps(model, fit.alpha[clip_of_row[rows]], fit.beta[rows], fit.pose[rows],
                                     size).tobytes())
            bar.update(rows.stop - rows.start)


# ---------------------------------------------------------------------------------------------
# the retargeting test set (paper 4.2)

def retargeting_plan(index: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One item per (expression, test subject): its input clip and the expression's reference."""
    test = index[index.split == "test"].sort_values("clip_id")
    if test.empty:
        raise DatasetError("the store's test split has no clip: nothing to retarget")
    rng = np.random.default_rng(seed)
    labels = sorted(test.label.unique())
    references = {}
    for label in labels:                                   # one seeded draw per label, in order
        candidates = test[test.label == label]
        references[label] = candidates.iloc[int(rng.integers(len(candidates)))]
    n_targets = min(int(ref.length) for ref in references.values()) - 1
    if n_targets < 1:
        raise DatasetError("a reference clip has a single frame: no frame after the first to retarget")
    rows = []
    for label in labels:
        for subject in sorted(test.subject.unique()):
            own = test[test.subject == subject]
            same = own[own.label == label]
            input_clip = (same if len(same) else own).clip_id.iloc[0]
            rows.append([len(rows), input_clip, subject, label, 0, n_targets, references[label].clip_id])
    return pd.DataFrame(rows, columns=TEST_INDEX_COLUMNS)


@dataclass
class _ItemParams:
    """Per item: the target's identity and first-frame pose, and the reference's expressions."""

    alpha: np.ndarray   # (n, n_id)
    pose: np.ndarray    # (n, 6)
    beta: np.ndarray    # (n, T, n_expr)


def _item_params(plan: pd.DataFrame, index: pd.DataFrame, alpha_of_clip: np.ndarray,
                 beta_of_row: np.ndarray, pose_of_row: np.ndarray) -> _ItemParams:
    clip_number = {c: i for i, c in enumerate(index.clip_id)}
    target = index.iloc[[clip_number[c] for c in plan.clip_id]]
    reference = index.iloc[[clip_number[c] for c in plan.reference_clip]]
    n_targets = int(plan.n_targets.iloc[0])
    target_rows = (reference.start.to_numpy() + 1)[:, None] + np.arange(n_targets)[None]
    input_rows = target.start.to_numpy() + plan.input_frame.to_numpy()
    return _ItemParams(np.asarray(alpha_of_clip)[[clip_number[c] for c in plan.clip_id]],
                       np.asarray(pose_of_row)[input_rows], np.asarray(beta_of_row)[target_rows])


def _true_item_params(store: ClipStore, plan: pd.DataFrame) -> _ItemParams:
    """faces-synth: the items' parameters from the ground truth instead of the fit."""
    true_alpha = np.asarray(store.gt("alpha"))[store.index.start.to_numpy()]
    return _item_params(plan, store.index, true_alpha, store.gt("beta"), store.gt("pose"))


def retargeted_maps(model: MorphableModel, items: _ItemParams, size: int) -> np.ndarray:
    """(n, T, H, W, 3) normal maps of target alpha + reference betas at the target's pose."""
    n, n_targets = items.beta.shape[:2]
    alpha = np.repeat(items.alpha, n_targets, 0)
    pose = np.repeat(items.pose, n_targets, 0)
    beta = items.beta.reshape(n * n_targets, -1)
    return normal_maps(model, alpha, beta, pose, size).reshape(n, n_targets, size, size, 3)


def _synthetic_subjects(store: ClipStore) -> dict:
    from frgan.data import faces_synth
    return {d["name"]: faces_synth.Subject.from_dict(d) for d in store.extra("subjects")}


def true_retargeted_videos(store: ClipStore, plan: pd.DataFrame) -> np.ndarray:
    """faces-synth: (n, T, H, W, 3) the target subject (ground-truth alpha, appearance, first-frame
    pose) wearing the reference's ground-truth expressions, rendered as the dataset was."""
    from frgan.data import faces_synth
    model = procedural_face_model()
    subjects = _synthetic_subjects(store)
    items = _true_item_params(store, plan)
    size = int(store.meta["height"])
    supersample = 3 if size <= 48 else 2            # as faces_synth.iter_videos renders by default
    n_targets = items.beta.shape[1]
    videos = [faces_synth.render_face(model, subjects[row.subject].appearance, items.alpha[i], items.beta[i],
                                      np.repeat(items.pose[i][None], n_targets, 0), size, supersample=supersample)
              for i, row in enumerate(plan.itertuples())]
    return np.stack(videos)


# ---------------------------------------------------------------------------------------------
# fit errors against faces-synth's ground truth

def synthetic_fit_errors(store: ClipStore, fit: FaceFit) -> dict[str, float]:
    """RMS errors of the fitted coefficients and rotation against the ground truth."""
    true_alpha = np.asarray(store.gt("alpha"))[store.index.start.to_numpy()]
    rms = lambda a, b: float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))   # noqa: E731
    return {"fit_alpha_rms": rms(fit.alpha, true_alpha),
            "fit_beta_rms": rms(fit.beta, np.asarray(store.gt("beta"))),
            "fit_rotation_rms_deg": float(np.degrees(rms(fit.pose[:, :3], np.asarray(store.gt("pose"))[:, :3])))}


# ---------------------------------------------------------------------------------------------
# the stage

def build_face_conditions(store: ClipStore, params: Params, out: Path, log: FitLog = None, *,
                          threads: Optional[int] = 1) -> dict[str, float]:
    """Fit, render maps.u8, build the retargeting test set; write `out`; return summary metrics.

    threads: torch intra-op threads while building (None: the caller's setting). The work is
    many small tensors: one thread is about as fast as two on idle cores and many times faster
    on busy ones (smoke profile, 2 shared cores: 4 s against 58 s).
    """
    with torch_threads(threads):
        return _build(store, params, Path(out), log)


def _build(store: ClipStore, params: Params, out: Path, log: FitLog) -> dict[str, float]:
    dataset = store.meta.get("dataset", "")
    size = int(store.meta["height"])
    cfg = params.conditions
    model = face_model_for(dataset, cfg)
    landmarks = store_landmarks(store, model)

    started = time.perf_counter()
    settings = FitSettings(cfg.fit_alpha_weight, cfg.fit_beta_weight, cfg.fit_iterations)
    fit = fit_store(store, model, landmarks, settings, log)
    fit_seconds = time.perf_counter() - started
    _save_fit(fit, out)
    _write_store_maps(store, model, fit, out / "maps.u8")

    plan = retargeting_plan(store.index, params.seed)
    plan.to_csv(out / "test_index.csv", index=False, lineterminator="\n")
    items = _item_params(plan, store.index, fit.alpha, fit.beta, fit.pose)
    cond = retargeted_maps(model, items, size)
    (out / "test_cond.u8").write_bytes(cond.tobytes())

    summary = {"fit_landmark_error_px": float(fit.error_px.mean()),
               "fit_landmark_error_px_max": float(fit.error_px.max()),
               "test_items": len(plan), "test_frames": int(plan.n_targets.iloc[0])}
    if dataset == SYNTHETIC:
        summary.update(synthetic_fit_errors(store, fit))
        (out / "test_truth.u8").write_bytes(true_retargeted_videos(store, plan).tobytes())
        # How far the retargeted maps from fitted parameters are from those of the true ones.
        true_cond = retargeted_maps(model, _true_item_params(store, plan), size)
        summary["test_cond_map_mae"] = float(np.abs(cond.astype(np.float64) - true_cond).mean() / 255.0)
    if log is not None:
        log({**summary, "fit_frames_per_s": len(fit.beta) / max(fit_seconds, 1e-9)}, 0)
    return summary


# ---------------------------------------------------------------------------------------------
# the figure

def _pick_items(plan: pd.DataFrame, subject_of_clip: pd.Series, n: int) -> list[int]:
    """Up to n items with distinct subjects and expressions, each retargeting a reference of
    another subject onto its own (a true retargeting, not a reconstruction)."""
    chosen, subjects, labels = [], set(), set()
    for row in plan.itertuples():
        if (row.subject not in subjects and row.label not in labels
                and subject_of_clip[row.reference_clip] != row.subject):
            chosen.append(row.item)
            subjects.add(row.subject)
            labels.add(row.label)
        if len(chosen) == n:
            break
    return chosen or list(plan.item[:n])


def plot_face_conditions(store: ClipStore, folder: Path, figure: Path, n_items: int = 3,
                         n_times: int = 6) -> None:
    """For a few test items: the reference's frames, the retargeted normal maps (first column:
    the input frame's own map) and the input frame with the true retargeted frames (faces-synth)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder, figure = Path(folder), Path(figure)
    plan = pd.read_csv(folder / "test_index.csv", dtype={"clip_id": str, "subject": str, "reference_clip": str})
    n, n_targets = len(plan), int(plan.n_targets.iloc[0])
    size = int(store.meta["height"])
    cond = np.memmap(folder / "test_cond.u8", dtype=np.uint8, mode="r", shape=(n, n_targets, size, size, 3))
    maps = np.memmap(folder / "maps.u8", dtype=np.uint8, mode="r", shape=(store.meta["n_frames"], size, size, 3))
    truth_path = folder / "test_truth.u8"
    truth = (np.memmap(truth_path, dtype=np.uint8, mode="r", shape=(n, n_targets, size, size, 3))
             if truth_path.is_file() else None)
    times = np.unique(np.linspace(0, n_targets - 1, min(n_times, n_targets)).round().astype(int))
    items = _pick_items(plan, store.index.set_index("clip_id").subject, n_items)
    starts = store.index.set_index("clip_id").start

    rows_per_item = 3
    fig, axes = plt.subplots(rows_per_item * len(items), len(times) + 1, squeeze=False,
                             figsize=(1.1 * (len(times) + 1), 1.15 * rows_per_item * len(items)))
    for k, item in enumerate(items):
        row = plan.iloc[item]
        reference = store.video(row.reference_clip)
        input_row = int(starts[row.clip_id]) + int(row.input_frame)
        panels = [
            (f"reference\n{row.reference_clip}", reference[0], [reference[1 + t] for t in times]),
            (f"condition\n{row.subject}", maps[input_row], [cond[item, t] for t in times]),
            ("input / truth" if truth is not None else "input", store.frames[input_row],
             [truth[item, t] for t in times] if truth is not None else [None] * len(times)),
        ]
        for r, (label, first, rest) in enumerate(panels):
            line = axes[rows_per_item * k + r]
            for ax, image in zip(line, [first, *rest]):
                ax.set_xticks([])
                ax.set_yticks([])
                if image is None:
                    ax.axis("off")
                else:
                    ax.imshow(np.asarray(image), interpolation="nearest")
            line[0].set_ylabel(label, fontsize=6)
    for c, t in enumerate(times):
        axes[0, c + 1].set_title(f"t={t + 1}", fontsize=7)
    axes[0, 0].set_title("frame 0", fontsize=7)
    fig.suptitle(f"{store.meta.get('dataset', '')}: expression retargeting (paper 4.2)", fontsize=8)
    fig.tight_layout()
    from frgan.io import atomic_file
    with atomic_file(figure) as tmp:   # a DVC out: complete or the previous one
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
