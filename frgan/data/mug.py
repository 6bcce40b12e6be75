"""The real MUG Facial Expression Database -> VideoRecords (paper section 4.1).

Layout read (the authors' own): <root>/<subject>/<expression>/<take>/img_NNNN.jpg, subjects
named by three digits ("001"). Only the six expressions are used; neutral and any other folder
are left out.

Splits:
    authors  the subject lists of the official release (REFERENCE-NOTES): train -> "gm",
             val -> "gr", test -> "test". Subjects on none of the lists are skipped and reported.
    even     the paper's "evenly split ... according to the subjects": all subjects sorted by id
             and cut into three consecutive groups whose sizes differ by at most one.
A capped read (`max_takes`, the profile's real_max_videos) keeps whole (gm, gr, test) triples
per expression (frgan.data.subsets), and any test take of an expression with no gm or no gr take
is dropped with one logged line: every tested expression has training takes for G_M and G_R.

Crop, fixed for a whole take from its first frame (the authors' preprocessing):
    1. the 68 landmarks' box, made square (side = its longer side, same centre);
    2. grown to a square whose side is that square's diagonal: the ROI;
    3. the output square: side 0.95 x ROI side, centred on the ROI centre, then moved up by
       0.04 x (y_min + y_max) of the ROI.
    Our reading of step 3: the authors' code literally subtracts 0.04 x (y_min + y_max), i.e.
    0.08 x the ROI centre's *absolute* y, so the shift grows with where the face sits in the frame
    rather than with the face's size. That is most likely a slip for the ROI height, but it is
    what made the authors' crops, so it is the default (`crop_shift="authors"`);
    `crop_shift="roi-height"` moves up by 0.04 x (y_max - y_min) instead. For a face near the
    middle of an 896 px frame the two differ by roughly 3% of the crop side.
    Box corners are rounded to whole pixels (as the authors' crop does); where the square leaves
    the frame it is padded with zeros (the authors') or edge pixels (`pad="edge"`); then it is
    resized with PIL's bilinear filter, which widens with the shrink factor (area-like, no
    aliasing), unlike the authors' OpenCV INTER_LINEAR.

Ground truth: gt["landmarks"] (T, 68, 2) float32, detected on every full frame and mapped into
output-pixel coordinates (pixel centres aligned: u = (x - x0 + 0.5) * size / side - 0.5). A later
frame without a face reuses the previous frame's landmarks and is counted in the log; a first
frame without a face is an error naming the file, as in the authors' code.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal, Optional

import numpy as np
from PIL import Image

from frgan.data.errors import DatasetError
from frgan.data.records import SPLITS, VideoRecord
from frgan.data.subsets import cells_of, drop_untrainable_tests, stratified_cap

log = logging.getLogger(__name__)

EXPRESSIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
LAYOUT = "<root>/<subject>/<expression>/<take>/img_NNNN.jpg"

# The official release's subject lists (REFERENCE-NOTES), keyed by the suite's split names.
AUTHORS_SUBJECTS: dict[str, tuple[str, ...]] = {
    "gm": ("001", "007", "008", "014", "020", "021", "030", "033", "037", "040", "044", "048",
           "060", "063", "066", "072", "075", "078", "083"),
    "gr": ("006", "010", "013", "017", "027", "031", "032", "034", "038", "042", "045", "052",
           "061", "064", "070", "073", "076", "079", "084"),
    "test": ("028", "036", "039", "043", "046", "055", "062", "065", "071", "074", "077", "082"),
}

SUBJECT_NAME = re.compile(r"^\d{3}$")
FRAME_NAME = re.compile(r"^img_(\d+)\.jpg$")

Landmarker = Callable[[np.ndarray], Optional[np.ndarray]]
SplitMode = Literal["authors", "even"]
CropShift = Literal["authors", "roi-height"]
Pad = Literal["zeros", "edge"]
_PAD_MODES = {"zeros": "constant", "edge": "edge"}  # our names -> numpy.pad's


@dataclass(frozen=True)
class Take:
    """One take folder of one subject and expression, with the split its subject belongs to."""

    subject: str
    expression: str
    name: str
    path: Path
    split: str

    @property
    def clip_id(self) -> str:
        return f"{self.subject}_{self.expression}_{self.name}"


@dataclass(frozen=True)
class TakePlan:
    """The takes a read will yield, the subject folders the split leaves out, and the test takes
    it drops."""

    takes: list[Take]
    skipped_subjects: list[str]
    dropped_tests: Optional[str] = None   # the line naming test takes dropped for want of training takes


# ---------------------------------------------------------------------------------------------
# Layout and splits.

def subject_ids(root: str | Path) -> list[str]:
    """Sorted subject folder names; DatasetError when the root is missing or holds none."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"MUG root {root} does not exist or is not a folder; expected {LAYOUT}")
    subjects = sorted(p.name for p in root.iterdir() if p.is_dir() and SUBJECT_NAME.match(p.name))
    if not subjects:
        raise DatasetError(f"MUG root {root} has no subject folders; expected three-digit folders "
                           f"like 001 in {LAYOUT}")
    return subjects


def take_folders(root: str | Path, subject: str) -> list[tuple[str, Path]]:
    """(expression, take folder) of one subject's six expressions, sorted; neutral is left out."""
    found = []
    for expression in EXPRESSIONS:
        folder = Path(root) / subject / expression
        if folder.is_dir():
            found += [(expression, p) for p in sorted(folder.iterdir()) if p.is_dir()]
    return found


def subjects_with_takes(root: str | Path) -> list[str]:
    """Subjects with at least one take of the six expressions; DatasetError when none has one."""
    subjects = [s for s in subject_ids(root) if take_folders(root, s)]
    if not subjects:
        raise DatasetError(f"MUG root {root} has no takes of the six expressions; expected {LAYOUT} "
                           f"with <expression> one of {', '.join(EXPRESSIONS)}")
    return subjects


def frame_paths(take_dir: Path) -> list[Path]:
    """The take's img_NNNN.jpg files in frame-number order; DatasetError when there are none."""
    numbered = [(int(m.group(1)), p) for p in take_dir.iterdir() if (m := FRAME_NAME.match(p.name))]
    if not numbered:
        raise DatasetError(f"MUG take {take_dir} has no frames; expected img_NNNN.jpg files")
    return [p for _, p in sorted(numbered)]


def check_layout(root: str | Path) -> None:
    """Fail fast, before any image is decoded: root, subject folders, frames in every take."""
    for subject in subjects_with_takes(root):
        for _, take_dir in take_folders(root, subject):
            frame_paths(take_dir)


def assign_splits(subjects: list[str], mode: SplitMode = "authors") -> dict[str, str]:
    """subject -> split for the subjects the mode places; the others are absent."""
    if mode == "authors":
        placed = {s: split for split, ids in AUTHORS_SUBJECTS.items() for s in ids}
        return {s: placed[s] for s in subjects if s in placed}
    if mode == "even":
        groups = np.array_split(np.array(sorted(subjects), dtype=object), len(SPLITS))
        return {s: split for split, group in zip(SPLITS, groups) for s in group}
    raise ValueError(f"MUG split {mode!r}, expected 'authors' or 'even'")


def list_takes(root: str | Path, split: SplitMode = "authors",
               max_takes: Optional[int] = None) -> TakePlan:
    """Every take the read will yield, in the order it yields them."""
    all_subjects = subjects_with_takes(root)
    split_of = assign_splits(all_subjects, split)
    takes = [Take(s, expression, folder.name, folder, split_of[s])
             for s in all_subjects if s in split_of
             for expression, folder in take_folders(root, s)]
    if max_takes is not None:
        takes = _capped(takes, max_takes)
    takes, dropped = drop_untrainable_tests(takes, lambda t: t.expression, lambda t: t.split, "MUG")
    if not takes:
        raise DatasetError(f"MUG root {root}: none of its subjects ({' '.join(all_subjects)}) is on "
                           f"the {split!r} split's lists; expected the subject ids of REFERENCE-NOTES "
                           f"(or split: even)")
    skipped = [s for s in all_subjects if s not in split_of]
    return TakePlan(takes, skipped, dropped)


def _capped(takes: list[Take], max_takes: int) -> list[Take]:
    """At most max_takes takes: expression by expression, one (gm, gr, test) triple per round
    (frgan.data.subsets.stratified_cap), so every expression kept has training takes in gm and gr
    beside its test takes; within a cell the takes alternate over subjects, each expression
    starting at a different subject (a plain prefix would give a dozen takes all of subject 001).
    """
    cells = {key: _round_robin(cell, EXPRESSIONS.index(key[0]))
             for key, cell in cells_of(takes, lambda t: (t.expression, t.split)).items()}
    chosen = set(stratified_cap(cells, EXPRESSIONS, max_takes))
    return [t for t in takes if t in chosen]   # the read order stays subject by subject


def _round_robin(takes: list[Take], start: int) -> list[Take]:
    """One cell's takes: first takes of every subject, then second takes, ...; subjects from
    position `start` (mod their number) on."""
    subjects = sorted({t.subject for t in takes})
    subjects = subjects[start % len(subjects):] + subjects[:start % len(subjects)]
    queues = [sorted((t for t in takes if t.subject == s), key=lambda t: t.name) for s in subjects]
    interleaved = []
    for rank in range(max((len(q) for q in queues), default=0)):
        interleaved += [q[rank] for q in queues if rank < len(q)]
    return interleaved


# ---------------------------------------------------------------------------------------------
# Crop.

def crop_box(landmarks: np.ndarray, shift: CropShift = "authors") -> tuple[int, int, int]:
    """(x0, y0, side) in whole pixels of the square output crop from one frame's 68 landmarks."""
    pts = np.asarray(landmarks, dtype=np.float64)
    x_min, y_min = pts.min(axis=0)
    x_max, y_max = pts.max(axis=0)
    cx, cy = (x_min + x_max) / 2, (y_min + y_max) / 2
    roi_side = max(x_max - x_min, y_max - y_min) * np.sqrt(2.0)  # diagonal of the squared box
    roi_y_min, roi_y_max = cy - roi_side / 2, cy + roi_side / 2
    if shift == "authors":
        cy -= 0.04 * (roi_y_min + roi_y_max)
    elif shift == "roi-height":
        cy -= 0.04 * (roi_y_max - roi_y_min)
    else:
        raise ValueError(f"MUG crop_shift {shift!r}, expected 'authors' or 'roi-height'")
    side = 0.95 * roi_side
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    return x0, y0, max(1, round(cx + side / 2) - x0)


def crop_and_resize(image: np.ndarray, box: tuple[int, int, int], image_size: int,
                    pad: Pad = "zeros") -> np.ndarray:
    """The square box cut from the image (padded where it leaves it), resized to image_size."""
    x0, y0, side = box
    h, w = image.shape[:2]
    before_y, before_x = max(0, -y0), max(0, -x0)
    after_y, after_x = max(0, y0 + side - h), max(0, x0 + side - w)
    if before_y or before_x or after_y or after_x:
        image = np.pad(image, ((before_y, after_y), (before_x, after_x), (0, 0)), mode=_PAD_MODES[pad])
        x0, y0 = x0 + before_x, y0 + before_y
    square = image[y0:y0 + side, x0:x0 + side]
    resized = Image.fromarray(square).resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def to_crop_coords(points: np.ndarray, box: tuple[int, int, int], image_size: int) -> np.ndarray:
    """Frame pixel (x, y) -> output pixel (x, y), pixel centres aligned as PIL's resize does."""
    x0, y0, side = box
    scale = image_size / side
    return ((points - np.array([x0, y0]) + 0.5) * scale - 0.5).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Reading.

def load_frame(path: Path) -> np.ndarray:
    """One JPEG as (H, W, 3) uint8 RGB; DatasetError naming the file when it cannot be decoded."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as err:  # PIL's ways of saying "not a JPEG"
        raise DatasetError(f"MUG frame {path} cannot be read ({err}); expected a JPEG image") from None


def _landmarks_of(landmarker: Landmarker, image: np.ndarray) -> Optional[np.ndarray]:
    found = landmarker(image)
    if found is None:
        return None
    found = np.asarray(found, dtype=np.float32)
    if found.shape != (68, 2):
        raise ValueError(f"landmarker returned {found.shape}, expected (68, 2) or None")
    return found


def read_take(take: Take, image_size: int, landmarker: Landmarker, crop_shift: CropShift = "authors",
              pad: Pad = "zeros") -> tuple[VideoRecord, int]:
    """One take -> (its VideoRecord, how many frames reused the previous frame's landmarks)."""
    paths = frame_paths(take.path)
    frames, landmarks, box, reused, previous = [], [], None, 0, None
    for path in paths:
        image = load_frame(path)
        found = _landmarks_of(landmarker, image)
        if found is None:
            if previous is None:
                raise DatasetError(f"MUG frame {path}: no face detected in the take's first frame; "
                                   f"expected a frontal face (it fixes the take's crop)")
            found, reused = previous, reused + 1
        if box is None:
            box = crop_box(found, crop_shift)
        frames.append(crop_and_resize(image, box, image_size, pad))
        landmarks.append(to_crop_coords(found, box, image_size))
        previous = found
    record = VideoRecord(clip_id=take.clip_id, subject=take.subject, label=take.expression,
                         split=take.split, frames=np.stack(frames),
                         gt={"landmarks": np.stack(landmarks)})
    return record, reused


def iter_videos(root: str | Path, image_size: int, split: SplitMode = "authors",
                landmarker: Optional[Landmarker] = None, max_takes: Optional[int] = None, *,
                crop_shift: CropShift = "authors", pad: Pad = "zeros",
                progress: Optional[Callable[[int, int], None]] = None) -> Iterator[VideoRecord]:
    """One VideoRecord per take of the six expressions, split by subject.

    The layout is listed and the landmarker loaded now, so those errors surface at the call;
    frames are decoded lazily as the iterator is consumed.
    landmarker: image -> (68, 2) or None; defaults to dlib's (DlibLandmarker).
    progress: called as progress(takes_done, takes_total) after each take.
    """
    if crop_shift not in ("authors", "roi-height") or pad not in _PAD_MODES:
        raise ValueError(f"MUG crop_shift {crop_shift!r} / pad {pad!r}, expected 'authors' or "
                         f"'roi-height' / 'zeros' or 'edge'")
    plan = list_takes(root, split, max_takes)
    if plan.skipped_subjects:
        log.warning("MUG: %d subject folder(s) are on none of the %s split's lists and are skipped: %s",
                    len(plan.skipped_subjects), split, " ".join(plan.skipped_subjects))
    if plan.dropped_tests:
        log.warning(plan.dropped_tests)
    if landmarker is None:
        from frgan.conditions.landmarks import DlibLandmarker
        landmarker = DlibLandmarker()
    return _read_takes(plan.takes, image_size, landmarker, crop_shift, pad, progress)


def _read_takes(takes: list[Take], image_size: int, landmarker: Landmarker, crop_shift: CropShift,
                pad: Pad, progress: Optional[Callable[[int, int], None]]) -> Iterator[VideoRecord]:
    reused_total = 0
    for done, take in enumerate(takes, start=1):
        record, reused = read_take(take, image_size, landmarker, crop_shift, pad)
        if reused:
            log.info("MUG %s: %d frame(s) without a face reuse the previous frame's landmarks",
                     take.clip_id, reused)
        reused_total += reused
        if progress is not None:
            progress(done, len(takes))
        yield record
    log.info("MUG: %d takes read; %d frame(s) in all without a face reused the previous landmarks",
             len(takes), reused_total)
