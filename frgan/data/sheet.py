"""Contact sheets: a PNG of sample frames per class, to look at what a dataset contains."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from frgan.data.clipstore import ClipStore

TILE = 64          # each frame is shown at least this large (nearest-neighbour upscaling)
LABEL_WIDTH = 120  # px reserved on the left for the class name
TIMES = 4          # frames shown per video: evenly spaced from the first to the last


def _tile(frame: np.ndarray) -> np.ndarray:
    scale = max(1, int(np.ceil(TILE / frame.shape[0])))
    return frame.repeat(scale, axis=0).repeat(scale, axis=1)


def contact_sheet(store: ClipStore, per_class: int) -> Image.Image:
    """Rows: classes. Columns: `per_class` videos x `TIMES` frames each, videos from all splits."""
    rows = []
    labels = store.meta["labels"]
    for label in labels:
        clips = store.index[store.index.label == label].head(per_class)
        tiles = []
        for row in clips.itertuples():
            video = store.video(row.Index)
            for t in np.linspace(0, len(video) - 1, TIMES).round().astype(int):
                tiles.append(_tile(np.asarray(video[t])))
        blank = np.zeros_like(tiles[0])
        tiles += [blank] * (per_class * TIMES - len(tiles))   # a class with fewer videos
        rows.append(np.concatenate(tiles, axis=1))
    grid = np.concatenate(rows, axis=0)
    tile_h = grid.shape[0] // len(labels)
    sheet = Image.new("RGB", (grid.shape[1] + LABEL_WIDTH, grid.shape[0]), "white")
    sheet.paste(Image.fromarray(grid), (LABEL_WIDTH, 0))
    draw = ImageDraw.Draw(sheet)
    for i, label in enumerate(labels):
        draw.text((4, i * tile_h + tile_h // 2 - 6), label, fill="black")
    return sheet


def write_contact_sheet(store: ClipStore, per_class: int, path: str | Path) -> None:
    from frgan.io import atomic_file
    with atomic_file(path) as tmp:
        contact_sheet(store, per_class).save(tmp, format="PNG")
