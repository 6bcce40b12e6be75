"""Qualitative grids like the paper's Figures 6 (faces) and 8 (people): for a few test items,
the input frame, the motion condition and the real future (where one exists), then every
method's generated frames at the same time steps, one row per method.

Read by the report stage from data/generated/<dataset>/<method>/seed-<s>/ (the generate stage's
outs; the first of train.seeds)
and the task's test items (data/prepared, data/conditions). A method with no generated videos
is left out of the grid and named in the caption; a dataset not prepared gives no figure.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from frgan.config import Params
from frgan.paths import conditions_path, seed_folder, store_path
from frgan.task import load_task
from reporting.layout import DATASET_TITLES
from reporting.tables import Table

FIGURE_OF = {"faces": 6, "actors": 8}
ROW_LABELS = {"cond": "condition", "truth": "real video"}


def generated_videos(folder: Path, dataset: str, method: str, seed: int) -> Optional[np.ndarray]:
    """(N, T, H, W, 3) uint8 from the predicted conditions of training seed `seed`, or None when
    not generated."""
    run = folder / dataset / method / seed_folder(seed)
    meta_path, videos_path = run / "meta.json", run / "videos.u8"
    if not (meta_path.is_file() and videos_path.is_file()):
        return None
    shape = json.loads(meta_path.read_text())["shape"]
    return np.fromfile(videos_path, dtype=np.uint8).reshape(shape)


def condition_images(cond) -> np.ndarray:
    """Conditions (N, T, C, H, W) in [0, 1] -> (N, T, H, W, 3) uint8 to look at: face normal maps
    as they are (C = 3), joint heatmaps as their maximum over joints (C = 13)."""
    cond = cond.detach().float().clamp(0, 1).numpy()
    if cond.shape[2] == 3:
        image = cond.transpose(0, 1, 3, 4, 2)
    else:
        image = np.repeat(cond.max(axis=2)[..., None], 3, axis=-1)
    return (image * 255).round().astype(np.uint8)


def pick_items(labels: list[str], count: int) -> list[int]:
    """The first test item of each of `count` different classes (fewer classes: the first items)."""
    picked, seen = [], set()
    for i, label in enumerate(labels):
        if label not in seen:
            picked.append(i)
            seen.add(label)
        if len(picked) == count:
            return picked
    return (picked + [i for i in range(len(labels)) if i not in picked])[:count]


def plot_grid(task, method_labels: dict[str, str], generated_dir: Path, title: str, path: Path,
              seed: int, items: int = 2, columns: int = 6) -> list[str]:
    """Draw the grid to `path`; return the methods left out (no generated videos)."""
    import matplotlib.pyplot as plt
    from frgan.task import to_uint8_frames

    test = task.test_items()
    videos = {label: generated_videos(generated_dir, task.dataset, method, seed) for method, label in method_labels.items()}
    missing = [label for label, v in videos.items() if v is None]
    videos = {label: v for label, v in videos.items() if v is not None}
    inputs = to_uint8_frames(test.input)
    strips = {"cond": condition_images(test.cond)}
    if test.truth is not None:
        strips["truth"] = test.truth
    t = test.n_frames
    steps = np.linspace(0, t - 1, min(columns, t)).round().astype(int)
    chosen = pick_items(test.index.label.astype(str).tolist(), min(items, len(inputs)))
    row_names = [ROW_LABELS[k] for k in strips] + list(videos)
    n_rows, n_cols = len(chosen) * len(row_names), len(steps) + 1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.15 * n_cols + 1.2, 1.15 * n_rows + 0.8), squeeze=False)
    for block, item in enumerate(chosen):
        sources = [strips[k][item] for k in strips] + [v[item] for v in videos.values()]
        for r, (name, frames) in enumerate(zip(row_names, sources)):
            row = block * len(row_names) + r
            if r == 0:
                axes[row, 0].imshow(inputs[item])
            else:
                axes[row, 0].set_frame_on(False)   # the input is shown once per item
            for c, step in enumerate(steps, start=1):
                axes[row, c].imshow(frames[step])
            label = name if r else f"{test.index.label.iloc[item]}\n{name}"
            axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
        axes[block * len(row_names), 0].set_title("input", fontsize=8)
        for c, step in enumerate(steps, start=1):
            axes[block * len(row_names), c].set_title(f"t = {step + 1}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    caption = title + (f"\nnot generated: {', '.join(missing)}" if missing else "")
    fig.suptitle(caption, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return missing


def side_by_side_gif(task, method_labels: dict[str, str], generated_dir: Path, path: Path, seed: int,
                     items: int = 2, fps: float = 8) -> None:
    """A looping GIF of the methods side by side, after the real video (or the condition where
    there is none), one row per test item, each column named in a header."""
    from PIL import Image, ImageDraw
    from frgan.io import write_gif
    test = task.test_items()
    videos = {label: v for method, label in method_labels.items()
              if (v := generated_videos(generated_dir, task.dataset, method, seed)) is not None}
    first = ("real video", test.truth) if test.truth is not None else ("condition", condition_images(test.cond))
    columns = dict([first, *videos.items()])
    chosen = pick_items(test.index.label.astype(str).tolist(), min(items, len(test.index)))
    scale = max(1, 96 // task.size)
    body = np.concatenate([np.concatenate([v[i] for v in columns.values()], axis=2) for i in chosen], axis=1)
    body = body.repeat(scale, axis=1).repeat(scale, axis=2)
    header = Image.new("RGB", (body.shape[2], 14), "white")
    for c, name in enumerate(columns):
        ImageDraw.Draw(header).text((c * task.size * scale + 2, 2), name, fill="black")
    frames = np.concatenate([np.broadcast_to(np.asarray(header), (len(body), 14, body.shape[2], 3)), body], axis=1)
    write_gif(frames, path, fps)


GENERATED_DIR = Path("data/generated")   # the generate stage's videos, for the qualitative grids


def qualitative_figures(params: Params, tables: list[Table], folder: Path,
                        generated_dir: Path = GENERATED_DIR) -> list[Path]:
    """Figure 6 (faces, Table 1's methods) and Figure 8 (people, Table 3's methods) as grids of
    frames, and the same methods side by side in a GIF; a dataset that is not prepared here gives
    neither (said on stdout)."""
    written = []
    for table in tables:
        if table.spec.number not in (1, 3):
            continue
        task_kind = table.spec.columns[0].task
        dataset = table.datasets[task_kind]
        if dataset is None:   # report.<kind>_dataset: null
            continue
        if not (Path(store_path(dataset)).is_dir() and Path(conditions_path(dataset)).is_dir()):
            print(f"report: no qualitative grid for {dataset}: {store_path(dataset)} or "
                  f"{conditions_path(dataset)} is missing")
            continue
        # the paper's Figures 6 and 8 show methods: neither the real videos nor the floor
        labels = {row.method: row.label for row in table.spec.rows if not row.reference and not row.floor}
        path = folder / f"qualitative-{task_kind}.png"
        seed = params.train.seeds[0]
        title = (f"Figure {FIGURE_OF[task_kind]}-style samples, Table {table.spec.number}'s methods, "
                 f"on {DATASET_TITLES.get(dataset, dataset)}, profile {params.profile}, training seed {seed}")
        task = load_task(params, dataset)
        plot_grid(task, labels, generated_dir, title, path, seed)
        video = folder / f"side-by-side-{task_kind}.gif"
        side_by_side_gif(task, labels, generated_dir, video, seed)
        written += [path, video]
    return written
