"""The prepare stage on bad dataset paths: one-line error naming the key or path, exit 1, and
no partial clip store left behind."""
from __future__ import annotations

import yaml

from tests.conftest import REPO, run_module

SHIPPED = yaml.safe_load((REPO / "params.yaml").read_text())


def _params(tmp_path, **roots):
    raw = dict(SHIPPED)
    raw["datasets"] = {**SHIPPED["datasets"], **{k: {**SHIPPED["datasets"][k], "root": v} for k, v in roots.items()}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))


def test_unset_root_names_the_key(tmp_path):
    _params(tmp_path)
    result = run_module("pipelines.prepare", "--dataset", "mug", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: params.yaml datasets.mug.root is not set; expected the path to the real MUG dataset "
        "(it cannot be downloaded by the suite)")
    assert not (tmp_path / "data").exists()


def test_missing_root_names_the_path(tmp_path):
    missing = tmp_path / "no-such-penn"
    _params(tmp_path, penn=str(missing))
    result = run_module("pipelines.prepare", "--dataset", "penn", cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(missing) in last, last
    assert not (tmp_path / "data" / "prepared" / "penn").exists()


def test_wrong_layout_keeps_an_earlier_store(tmp_path):
    root = tmp_path / "mug"
    (root / "not-a-subject").mkdir(parents=True)
    store = tmp_path / "data" / "prepared" / "mug"
    store.mkdir(parents=True)
    (store / "frames.u8").write_bytes(b"earlier output")
    _params(tmp_path, mug=str(root))
    result = run_module("pipelines.prepare", "--dataset", "mug", cwd=tmp_path)
    assert result.returncode == 1
    assert str(root) in result.stderr.strip().splitlines()[-1]
    assert (store / "frames.u8").read_bytes() == b"earlier output"
