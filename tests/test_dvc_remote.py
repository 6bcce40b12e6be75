"""A DVC remote shared by two machines (README, "Scaling out"): one runs prepare, conditions and
train and pushes; another clones the Git repository, pulls, and generates and evaluates from the
pulled models without training again. A local folder stands in for the team's remote (S3, SSH,
...: only `dvc remote add` differs). Tiny profile, one dataset, one method that trains nothing.

Why the second machine runs `dvc repro --single-item`: train's checkpoints are a `cache: false`
persist out, neither in Git nor in the remote, so on a fresh clone DVC sees train's outs as
changed and a plain `dvc repro` would train again."""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_dvc_integration import _dvc, _git, _ran, copy_project
from tests.tiny_project import tiny_params

pytestmark = pytest.mark.slow

DATASET, METHOD = "actors-synth", "copy-input"
PUSHED = (f"data/prepared/{DATASET}", f"data/conditions/{DATASET}", f"models/{DATASET}/{METHOD}/seed-0")


def _files(root: Path, folders=PUSHED) -> dict[str, str]:
    """Relative path -> sha256 of every file under `folders`."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted((root / folder).rglob("*")) if p.is_file()}


def test_train_and_push_on_one_machine_pull_and_evaluate_on_another(tmp_path):
    trainer = copy_project(tmp_path / "trainer")
    params = tiny_params(**{"prepare.datasets": [DATASET], "train.methods": [METHOD], "train.seeds": [0],
                            "report.faces_dataset": None, "report.reference_datasets": []})
    (trainer / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = trainer / f"reports/metrics/evaluate-{DATASET}-{METHOD}-seed0.json"
    result.unlink()                                    # the committed smoke result: the evaluator writes its own
    _git(trainer, "init", "-q")
    remote = tmp_path / "remote"
    _dvc(trainer, "remote", "add", "-d", "team", str(remote))
    ran = _ran(_dvc(trainer, "repro", "train"))
    assert f"train@{DATASET}-{METHOD}-0" in ran and f"prepare@{DATASET}" in ran
    _git(trainer, "add", "-A")
    _git(trainer, "commit", "-q", "-m", "trained")     # dvc.lock and .dvc/config travel by Git
    _dvc(trainer, "push")
    trained = _files(trainer)
    assert trained and any(p.startswith("models/") for p in trained)
    assert any(remote.rglob("*")), "nothing pushed"

    evaluator = tmp_path / "evaluator"
    subprocess.run(["git", "clone", "-q", str(trainer), str(evaluator)], check=True, capture_output=True)
    assert not (evaluator / "models").exists()         # the data is not in Git
    _dvc(evaluator, "pull", "--with-deps", "train")
    assert _files(evaluator) == trained                # byte for byte what the trainer pushed
    ran = _ran(_dvc(evaluator, "repro", "--single-item", "--glob", "generate@*", "evaluate@*"))
    assert ran == {f"generate@{DATASET}-{METHOD}-0", f"evaluate@{DATASET}-{METHOD}-0"}, ran
    assert _files(evaluator) == trained                # evaluated from the pulled models, nothing retrained
    assert (evaluator / result.relative_to(trainer)).is_file()
