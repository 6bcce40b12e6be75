"""Table 1's Reference row: ACD of the real training videos (pipelines/reference.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from frgan.config import load_params
from frgan.data import faces_synth
from frgan.data.clipstore import ClipStore, write_clip_store
from frgan.data.errors import DatasetError
from frgan.task import Task
from pipelines import reference
from metrics.scoring import score_videos
from tests.conftest import REPO

SIZE, FRAMES, T = 32, 8, 5


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    videos = faces_synth.iter_videos(SIZE, 4, FRAMES, seed=3, expressions=("happiness", "surprise"))
    write_clip_store(videos, root / "store", {"dataset": "faces-synth"})
    store = ClipStore(root / "store")
    cond = root / "cond"
    cond.mkdir()
    np.zeros((store.meta["n_frames"], SIZE, SIZE, 3), np.uint8).tofile(cond / "maps.u8")
    pd.DataFrame({"item": [0], "n_targets": [T]}).to_csv(cond / "test_index.csv", index=False)
    return Task("faces-synth", load_params(REPO / "params.yaml"), store, cond)


def test_reference_videos_are_scored_like_generated_ones(task):
    """Input = a training clip's frame 0 (the test items' input_frame); scored = the T frames
    after it, as a generated test video is (its T frames follow the input)."""
    assert reference.test_length(task) == T
    items, videos, skipped = reference.reference_items(task, T)
    training = task.store.index[task.store.index.split.isin(["gm", "gr"])]
    assert skipped == 0 and len(training) and len(items.index) == len(training) == len(videos)
    assert set(items.index.clip_id) == set(training.clip_id)     # no test clip
    assert videos.shape == (len(training), T, SIZE, SIZE, 3) and videos.dtype == np.uint8
    for i, clip in enumerate(items.index.clip_id):
        whole = task.store.video(clip)
        np.testing.assert_array_equal(videos[i], whole[1:T + 1])
        np.testing.assert_array_equal(items.input[i], whole[0])


def test_clips_without_t_plus_one_frames_are_skipped_and_counted(task):
    items, videos, skipped = reference.reference_items(task, FRAMES - 1)   # every clip has T + 1
    assert skipped == 0 and len(videos) == len(items.index) > 0
    with pytest.raises(DatasetError, match=rf"no training clip \(splits gm, gr\) of {FRAMES + 1}\+ frames"):
        reference.reference_items(task, FRAMES)                            # none has T + 1
    short = task.store.index.copy()
    short.loc[short.index[0], "length"] = 3                                # one clip too short
    fake = type("ShortTask", (), {"kind": "faces", "dataset": "faces-synth",
                                  "store": type("S", (), {"root": "x", "split": lambda self, name:
                                                          short[short.split == name]})()})()
    clips, skipped = reference.reference_clips(fake, T)
    assert skipped == 1 and short.clip_id.iloc[0] not in set(clips.clip_id)


def test_reference_scores_have_the_methods_keys(task):
    items, videos, _ = reference.reference_items(task, T)
    result, frames, per_video = score_videos(task.kind, items, videos, None, "dlib", "faces-synth", "reference", seed=0)
    assert result["method"] == "reference" and result["videos"] == len(videos)
    assert result["frames_per_video"] == T
    assert "seed" not in result   # real videos: no training seed (its files keep their seedless names)
    assert list(per_video.columns[:2]) == ["video", "class"] and len(per_video) == len(videos)
    assert {"acd_i", "acd_c"} <= set(per_video.columns)
    assert per_video["acd_i"].mean() == pytest.approx(result["acd_i"]["mean"], abs=1e-6)
    assert 0.0 <= result["acd_i"]["low"] <= result["acd_i"]["mean"] <= result["acd_i"]["high"]
    assert result["acd_c"]["mean"] > 0.0
    # No frame is the input itself: the expression moves away from frame 0, so every scored
    # frame's identity distance is positive (the old row averaged in frame 0's zero).
    assert frames.identity_distance.min() > 1e-6


def test_reference_needs_a_faces_dataset(task):
    actors = type("ActorsTask", (), {"kind": "actors", "dataset": "actors-synth"})()
    with pytest.raises(DatasetError, match="expected a faces dataset"):
        reference.reference_items(actors, T)


# ---------------------------------------------------------------------------------------------
# The qualitative grids (Figures 6 and 8) the report draws from generated videos.

def test_grid_helpers():
    import torch
    from reporting import qualitative
    assert qualitative.pick_items(["a", "a", "b", "c"], 2) == [0, 2]
    assert qualitative.pick_items(["a", "a", "a"], 2) == [0, 1]
    heat = torch.zeros(1, 2, 13, 4, 4)
    heat[0, 1, 5, 2, 3] = 1.0
    image = qualitative.condition_images(heat)
    assert image.shape == (1, 2, 4, 4, 3) and image[0, 1, 2, 3].tolist() == [255, 255, 255] and image.sum() == 765
    normals = torch.full((1, 1, 3, 2, 2), 0.5)
    assert (qualitative.condition_images(normals) == 128).all()


def test_grid_of_generated_videos(tmp_path):
    import json as _json
    import torch
    from frgan.task import TestItems
    from reporting import qualitative
    n, t = 3, T
    folder = tmp_path / "generated" / "faces-synth" / "frgan" / "seed-1"   # training seed 1's videos
    folder.mkdir(parents=True)
    np.full((n, t, SIZE, SIZE, 3), 7, np.uint8).tofile(folder / "videos.u8")
    (folder / "meta.json").write_text(_json.dumps({"shape": [n, t, SIZE, SIZE, 3]}))
    videos = qualitative.generated_videos(tmp_path / "generated", "faces-synth", "frgan", 1)
    assert videos.shape == (n, t, SIZE, SIZE, 3) and (videos == 7).all()
    assert qualitative.generated_videos(tmp_path / "generated", "faces-synth", "frgan", 0) is None   # another seed
    assert qualitative.generated_videos(tmp_path / "generated", "faces-synth", "mcnet", 1) is None
    index = pd.DataFrame({"item": range(n), "label": ["anger", "anger", "fear"]})
    items = TestItems(index, torch.zeros(n, 3, SIZE, SIZE), torch.zeros(n, 3, SIZE, SIZE),
                      torch.zeros(n, t, 3, SIZE, SIZE), None, np.zeros((n, t, SIZE, SIZE, 3), np.uint8))
    stub = type("StubTask", (), {"dataset": "faces-synth", "test_items": lambda self: items})()
    path = tmp_path / "grid.png"
    missing = qualitative.plot_grid(stub, {"frgan": "FRGAN", "mcnet": "MCNet"}, tmp_path / "generated",
                                    "title", path, 1)
    assert missing == ["MCNet"]
    from PIL import Image
    with Image.open(path) as image:   # 2 items x (condition, real video, FRGAN) = 6 rows; input + 5 steps
        width, height = image.size
    assert 0.8 < (height / width) / (6 / 6) < 1.2
    # the same methods side by side in a GIF: the real video, then each generated one; a row per item
    stub.size = SIZE
    gif = tmp_path / "side.gif"
    qualitative.side_by_side_gif(stub, {"frgan": "FRGAN", "mcnet": "MCNet"}, tmp_path / "generated", gif, 1)
    scale = max(1, 96 // SIZE)
    with Image.open(gif) as image:   # columns: real video, FRGAN (MCNet has no videos); 2 items; a header
        assert image.size == (2 * SIZE * scale, 14 + 2 * SIZE * scale) and image.info["loop"] == 0
        frame = np.asarray(image.convert("RGB"))
    assert (frame[14:, SIZE * scale:] == 7).all() and (frame[14:, :SIZE * scale] == 0).all()
