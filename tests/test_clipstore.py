"""The clip store: round trip, deterministic bytes, atomic writes, clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from frgan.data.clipstore import ClipStore, write_clip_store
from frgan.data.errors import DatasetError
from frgan.data.records import VideoRecord


def _records(n=6, t=5, size=8, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield VideoRecord(
            clip_id=f"c{i}", subject=f"s{i // 2}", label=["a", "b"][i % 2], split=["gm", "gr", "test"][i // 2],
            frames=rng.integers(0, 256, (t + i, size, size, 3), dtype=np.uint8),
            gt={"joints": rng.normal(size=(t + i, 13, 2)).astype(np.float32)})


def test_round_trip(tmp_path):
    originals = list(_records())
    meta = write_clip_store(iter(originals), tmp_path / "store", {"dataset": "toy"})
    store = ClipStore(tmp_path / "store")
    assert len(store) == 6 and meta["n_frames"] == sum(len(r.frames) for r in originals)
    assert meta["clips_per_split"] == {"gm": 2, "gr": 2, "test": 2}
    for rec in originals:
        np.testing.assert_array_equal(store.video(rec.clip_id), rec.frames)
        np.testing.assert_array_equal(store.gt("joints", rec.clip_id), rec.gt["joints"])
    assert list(store.split("test").clip_id) == ["c4", "c5"]
    assert isinstance(store.frames, np.memmap)


def test_same_records_same_bytes(tmp_path):
    write_clip_store(_records(), tmp_path / "a", {"dataset": "toy"})
    write_clip_store(_records(), tmp_path / "b", {"dataset": "toy"})
    for name in ("frames.u8", "index.csv", "gt/joints.npy", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    other = write_clip_store(_records(seed=1), tmp_path / "c", {"dataset": "toy"})
    assert other["fingerprint"] != ClipStore(tmp_path / "a").fingerprint


def test_failure_midway_leaves_no_partial_store_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "store"
    write_clip_store(_records(), target, {"dataset": "toy"})
    before = (target / "frames.u8").read_bytes()

    def broken():
        yield from list(_records())[:3]
        raise DatasetError("frame 7.jpg: unreadable")

    with pytest.raises(DatasetError, match="unreadable"):
        write_clip_store(broken(), target, {"dataset": "toy"})
    assert (target / "frames.u8").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]   # no temporary left


def test_inconsistent_records_are_rejected(tmp_path):
    recs = list(_records())
    recs[3].frames = recs[3].frames[:, :4]
    with pytest.raises(DatasetError, match=r"clip c3: frames \(4, 8, 3\), expected \(8, 8, 3\)"):
        write_clip_store(iter(recs), tmp_path / "s", {"dataset": "toy"})
    with pytest.raises(DatasetError, match="no videos found"):
        write_clip_store(iter([]), tmp_path / "s", {"dataset": "toy"})
    with pytest.raises(ValueError, match="split 'train'"):
        VideoRecord("x", "s", "l", "train", np.zeros((1, 2, 2, 3), np.uint8))


def test_missing_or_truncated_store_names_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"meta.json: missing"):
        ClipStore(tmp_path / "nothing")
    write_clip_store(_records(), tmp_path / "s", {"dataset": "toy"})
    with open(tmp_path / "s" / "frames.u8", "r+b") as f:
        f.truncate(100)
    with pytest.raises(DatasetError, match=r"frames.u8: 100 bytes, expected"):
        ClipStore(tmp_path / "s")
