"""Atomic outputs: a stage either leaves its complete new output or the previous one, never a
half-written file or folder (write to a temporary sibling, then rename).

Temporary siblings are named `.<name>.tmp-<pid>-<random>` (and `.<name>.old-<pid>` for the
previous folder while it is swapped out), so what a killed process left behind is known to be
dead: the next write to the same target removes it, and a previous output that was swapped
out when the kill came is put back.

An `OSError` that means the disk (or the file-size limit) is full is tagged with the output
being written (`out_path`), so the stage can name it in its one-line error.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, NoReturn

# errno values that mean "no room to write": a full disk, a quota, the process's file-size limit.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's live process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep_stale(target: str | Path) -> list[Path]:
    """Remove what a killed writer of `target` left beside it; return the paths removed.

    `.<name>.tmp-<pid>-*` of a dead pid is an unfinished write: removed. `.<name>.old-<pid>` of a
    dead pid is the previous output of a folder swap cut short: put back when `target` is
    missing (the swap had not finished), removed otherwise.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(tmp|old)-(\d+)(?:-.*)?$")
    removed = []
    for path in sorted(target.parent.iterdir()):
        m = pattern.match(path.name)
        if not m or _alive(int(m.group(2))):
            continue
        if m.group(1) == "old" and not os.path.lexists(target):
            os.replace(path, target)
            continue
        _remove(path)
        removed.append(path)
    return removed


def tag_disk_full(exc: BaseException, target: Path) -> None:
    """Name the output being written on an out-of-space error (innermost writer wins)."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL and getattr(exc, "out_path", None) is None:
        exc.out_path = target


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it replaces `target` in one rename.

    On an exception the temporary folder is removed and an existing `target` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        tag_disk_full(exc, target)
        raise
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)   # keep the previous output until the new one is in place
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` (os.replace).

    The temporary file has the target's own name, inside a temporary folder beside it: writers
    that record the file name in the file (torch.save names its zip archive after it) write the
    same bytes as they would to `target`, so reruns give byte-identical outputs. The bytes are
    flushed to disk (fsync) before the rename, so even a power cut leaves the old file or the
    complete new one under `target`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    tmp = folder / target.name
    tmp.touch(0o666)   # created with the usual permissions (less the umask), like any output
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        tag_disk_full(exc, target)
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_gif(frames, path: str | Path, fps: float, scale: int = 1) -> None:
    """An animated GIF of uint8 frames (T, H, W, 3) that loops forever (loop=0), one palette per
    frame, each pixel repeated `scale` times (tiny frames are hard to see); written atomically."""
    import numpy as np
    from PIL import Image
    frames = np.asarray(frames)
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    with atomic_file(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], loop=0,
                       duration=max(20, int(round(1000.0 / fps))), optimize=False)


def exit_without_teardown() -> NoReturn:
    """Exit 0 now, skipping the interpreter's teardown of its modules (a stage run as a program,
    once its work is done: pipelines._stage.run).

    A stage process that imported torch and MLflow spends 0.4-0.7 s at exit freeing their modules
    object by object (AMD EPYC, 2 cores: `import torch, mlflow` 2.5 s with the teardown, 1.8 s
    without), over 50 such processes in a repro. Nothing is lost: by now every out is a closed
    file (written through the atomic writers above or `with` blocks), the MLflow run has ended
    and its writes are done (the caller closed the tracking helper), no thread is left; the one
    atexit handler a stage registers, logging's, is run here, and output buffers are flushed."""
    import logging
    import sys
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
