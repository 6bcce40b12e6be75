"""Dataset name -> the records it yields, under the active profile (the `prepare` registry).

Each source returns the records iterator, how many videos to expect (for the progress bar),
the settings that made it (stored in meta.json) and JSON extras stored beside the clips.
Generators are imported lazily: reading MUG does not need the face renderer, and so on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from frgan.config import Params
from frgan.data.errors import DatasetError
from frgan.data.records import VideoRecord


@dataclass
class Source:
    records: Iterator[VideoRecord]
    expected_videos: Optional[int]
    settings: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)


def _faces_synth(p: Params) -> Source:
    from frgan.data import faces_synth
    cfg = p.datasets.faces_synth
    settings = dict(image_size=p.size.faces_size, n_subjects=p.size.faces_subjects,
                    n_frames=p.size.faces_frames, seed=p.seed, pose_jitter_deg=cfg.pose_jitter_deg,
                    takes_per_expression=cfg.takes_per_expression)
    subjects = faces_synth.subjects(p.size.faces_subjects, p.seed)
    return Source(
        records=faces_synth.iter_videos(**settings),
        expected_videos=p.size.faces_subjects * len(faces_synth.EXPRESSIONS) * cfg.takes_per_expression,
        settings=settings,
        extras={"subjects": [s.to_dict() for s in subjects]},
    )


def _actors_synth(p: Params) -> Source:
    from frgan.data import actors_synth
    from frgan.data.skeleton import ACTIONS
    settings = dict(image_size=p.size.actors_size, actors_per_action=p.size.actors_per_action,
                    n_frames=p.size.actors_frames, seed=p.seed)
    return Source(actors_synth.iter_videos(**settings),
                  p.size.actors_per_action * len(ACTIONS), settings)


def _require_root(name: str, root) -> None:
    if root is None:
        raise DatasetError(f"params.yaml datasets.{name}.root is not set; expected the path to the "
                           f"real {name.upper()} dataset (it cannot be downloaded by the suite)")


def _mug(p: Params) -> Source:
    from frgan.data import mug
    cfg = p.datasets.mug
    _require_root("mug", cfg.root)
    mug.check_layout(cfg.root)
    from frgan.conditions.landmarks import DlibLandmarker
    settings = dict(root=str(cfg.root), image_size=p.size.faces_size, split=cfg.split,
                    max_takes=p.size.real_max_videos, crop_shift=cfg.crop_shift)
    plan = mug.list_takes(cfg.root, cfg.split, p.size.real_max_videos)
    landmarker = DlibLandmarker(detect_max_side=cfg.detect_max_side)
    return Source(mug.iter_videos(**settings, landmarker=landmarker), len(plan.takes),
                  {**settings, "detect_max_side": cfg.detect_max_side})


def _penn(p: Params) -> Source:
    from frgan.data import penn
    cfg = p.datasets.penn
    _require_root("penn", cfg.root)
    penn.check_layout(cfg.root)
    settings = dict(root=str(cfg.root), image_size=p.size.actors_size, seed=p.seed,
                    max_videos=p.size.real_max_videos)
    return Source(penn.iter_videos(**settings), p.size.real_max_videos, settings)


SOURCES: dict[str, Callable[[Params], Source]] = {
    "faces-synth": _faces_synth,
    "actors-synth": _actors_synth,
    "mug": _mug,
    "penn": _penn,
}
