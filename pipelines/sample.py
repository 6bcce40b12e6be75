"""sample: one video from a trained model, an input image and its conditions (not a DVC stage).

    python -m pipelines.sample --model models/actors-synth/frgan/seed-0 --image in.png \\
        --conditions cond.npy --input-condition in_cond.npy --out out.gif [--fps 8]

The command-line twin of `frgan.load(folder).generate(...)` (frgan/api.py, where the inputs are
described): --conditions is a .npy of maps (T, C, S, S) in [0, 1] or, for actors, joints
(T, J, 2) in pixels; --input-condition the input frame's map (C, S, S) or joints (J, 2), needed by
FRGAN's variants and villegas17; --label the class, for vgan. Writes a GIF (Pillow; identical
consecutive frames are merged by the GIF writer), or an MP4 when --out ends in .mp4 and
imageio-ffmpeg is installed. Bad input: one line on stderr naming the file and what was expected,
exit 2, nothing written (the output is written atomically, frgan.io).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import NoReturn, Optional

import numpy as np

from pipelines import _stage


def parser() -> argparse.ArgumentParser:
    script = os.path.basename(sys.argv[0]).startswith("frgan-")
    p = _stage._Parser(prog="frgan-sample" if script else "python -m pipelines.sample",
                       description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, type=Path, help="a model folder: models/<dataset>/<method>/seed-<s>")
    p.add_argument("--image", required=True, type=Path, help="the input frame (PNG/JPEG, the model's size)")
    p.add_argument("--conditions", required=True, type=Path, help=".npy: maps (T, C, S, S) or joints (T, J, 2)")
    p.add_argument("--input-condition", type=Path, help=".npy: the input frame's map (C, S, S) or joints (J, 2)")
    p.add_argument("--label", help="the class (vgan: one network per class)")
    p.add_argument("--out", required=True, type=Path, help="the video to write: .gif, or .mp4 (imageio-ffmpeg)")
    p.add_argument("--fps", type=float, default=8.0, help="frames per second (default: 8)")
    return p


def bad(message: str) -> NoReturn:
    _stage._fail(message, 2)


def read_image(path: Path) -> np.ndarray:
    from PIL import Image
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (OSError, ValueError) as exc:
        bad(f"{path}: not a readable image ({type(exc).__name__}); expected a PNG or JPEG of the model's size")


def read_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        bad(f"{path}: not a .npy array ({type(exc).__name__}); expected one saved with numpy.save")


def write_video(frames: np.ndarray, out: Path, fps: float) -> None:
    from frgan.io import atomic_file, write_gif
    if out.suffix.lower() == ".gif":
        write_gif(frames, out, fps)
        return
    with atomic_file(out) as tmp:
        import imageio_ffmpeg
        writer = imageio_ffmpeg.write_frames(str(tmp), (frames.shape[2], frames.shape[1]), fps=fps,
                                             macro_block_size=1)
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()


def cli(argv: Optional[list[str]] = None) -> int:
    """Write the video; 0 on success, else one line on stderr and exit 2."""
    args = parser().parse_args(argv)
    suffix = args.out.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        bad(f"{args.out}: expected a .gif or .mp4 file name")
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        bad(f"{args.out}: writing MP4 needs imageio-ffmpeg (pip install imageio-ffmpeg); use a .gif name instead")
    if not args.fps > 0:
        bad(f"--fps {args.fps}: expected a positive number")
    files = {"image": args.image, "conditions": args.conditions, "input_condition": args.input_condition}
    for what, path in [("model", args.model), *files.items()]:
        if path is not None and not path.exists():
            bad(f"{path}: not found (--{what.replace('_', '-')})")
    image, conditions = read_image(args.image), read_array(args.conditions)
    input_condition = None if args.input_condition is None else read_array(args.input_condition)
    from frgan.api import ModelError, load_model
    from frgan.data.errors import DatasetError
    from frgan.train.checkpoint import CheckpointError
    try:
        model = load_model(args.model)
    except (DatasetError, CheckpointError, NotImplementedError) as exc:
        bad(str(exc))
    try:
        frames = model.generate(image, conditions, input_condition, label=args.label)
    except ModelError as exc:   # "image: ...", "conditions: ...": name the file it came from
        what, _, rest = str(exc).partition(": ")
        where = files.get(what) or f"--{what.replace('_', '-')}"
        bad(f"{where}: {rest}")
    write_video(frames, args.out, args.fps)
    print(f"sample: {model.method}, {len(frames)} frames {frames.shape[2]}x{frames.shape[1]} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
