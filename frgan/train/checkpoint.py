"""Checkpoints: written atomically, verified, and resumed from; a torn file is never loaded.

A checkpoint holds every model's and optimiser's state and the step it was taken after. The
training loop draws all randomness from (seed, step) (see `frgan.train.seeding`), so the state
dicts and the step are all a resumed run needs to continue bit-for-bit on the CPU.
"""
from __future__ import annotations

import functools
import logging
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from frgan.io import atomic_file, sweep_stale

log = logging.getLogger(__name__)
NAME = re.compile(r"^step-(\d{8})\.pt$")
FORMAT = 1   # bump when the layout of the saved dict changes


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 (16 hex) of the training code (every .py under frgan/ and baselines/): a checkpoint
    written by other code is never resumed from, even when the settings are unchanged."""
    import hashlib
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for path in sorted([*root.joinpath("frgan").rglob("*.py"), *root.joinpath("baselines").rglob("*.py")]):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class CheckpointError(RuntimeError):
    """A checkpoint folder holds nothing loadable that matches the models being trained."""


class UnsafeFileError(CheckpointError):
    """A weights file holds more than tensors and plain containers (e.g. a crafted pickle)."""


def load_weights(path: str | Path) -> Any:
    """torch.load(path) restricted to tensors and plain containers (weights_only=True).

    A file whose pickle names any other global (a crafted pickle would call os.system, say) is
    refused before anything in it runs: UnsafeFileError naming the file, one line.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise refused(path, exc) from None


def refused(path: str | Path | None, exc: pickle.UnpicklingError) -> UnsafeFileError:
    """The one-line error for a file torch.load(weights_only=True) would not unpickle."""
    reason = next((line.strip() for line in str(exc).splitlines() if "nsupported" in line),
                  "not a tensors-only file")
    return UnsafeFileError(f"{path or 'a weights file'}: refused to load ({reason.rstrip('.')}); expected "
                           "weights saved by this suite (torch.load weights_only=True)")


class Checkpoints:
    """The checkpoints of one training run, in `folder`, the newest `keep` kept.

    `fingerprint` names the configuration (params hash, data fingerprint); the training code's
    own hash is added to it. Checkpoints of another configuration or other code left in the
    folder are discarded, never resumed from.
    """

    def __init__(self, folder: str | Path, keep: int = 2, fingerprint: str = ""):
        self.folder = Path(folder)
        self.keep = keep
        self.fingerprint = f"{fingerprint}+code:{code_fingerprint()}"

    def _all(self) -> list[tuple[int, Path]]:
        if not self.folder.is_dir():
            return []
        for path in list(self.folder.iterdir()):   # temp files of writers killed mid-save
            if path.name.startswith(".step-") and ".tmp-" in path.name:
                sweep_stale(self.folder / path.name[1:].split(".tmp-")[0])
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := NAME.match(p.name))]
        return sorted(found)

    def save(self, step: int, modules: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
        """Save the state of every model/optimiser in `modules` after `step` steps."""
        target = self.folder / f"step-{step:08d}.pt"
        payload = {"format": FORMAT, "step": step, "extra": extra or {}, "fingerprint": self.fingerprint,
                   "state": {name: m.state_dict() for name, m in modules.items()}}
        with atomic_file(target) as tmp:
            torch.save(payload, tmp)
        for _, old in self._all()[:-self.keep]:
            old.unlink(missing_ok=True)
        return target

    def load_latest(self, modules: dict[str, Any]) -> int:
        """Restore the newest readable checkpoint into `modules`; return its step (0 if none).

        A file that cannot be read (e.g. cut short by a kill during a copy) is skipped with a
        warning and the one before it is used.
        """
        for step, path in reversed(self._all()):
            try:
                payload = load_weights(path)
            except UnsafeFileError as exc:   # never unpickled: nothing in it has run
                log.warning("refusing checkpoint %s", exc)
                continue
            except Exception as exc:  # torn or foreign file: never load it
                log.warning("skipping unreadable checkpoint %s (%s)", path, type(exc).__name__)
                continue
            if not isinstance(payload, dict):
                log.warning("skipping checkpoint %s: not a checkpoint of this suite", path)
                continue
            if payload.get("fingerprint", "") != self.fingerprint:
                log.warning("discarding %s: made by another configuration", path)
                path.unlink(missing_ok=True)
                continue
            missing = sorted(set(modules) - set(payload.get("state", {})))
            if payload.get("format") != FORMAT or missing:
                raise CheckpointError(f"{path}: expected a checkpoint of {sorted(modules)} (format "
                                      f"{FORMAT}); it lacks {missing or 'the format tag'}")
            for name, module in modules.items():
                module.load_state_dict(payload["state"][name])
            return int(payload["step"])
        return 0

    def latest_path(self) -> Path | None:
        found = self._all()
        return found[-1][1] if found else None
