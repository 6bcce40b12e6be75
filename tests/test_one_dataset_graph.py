"""A graph on one dataset (issue 17): `prepare.datasets: [actors-synth]` with
`report.faces_dataset: null` and `report.reference_datasets: []` runs `dvc repro` through to the
report; no reference stage is generated, and the faces tables say there is no faces dataset.
(Before: the reference stage still named data/prepared/faces-synth and the repro stopped.)"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from frgan.config import load_params
from frgan.data.errors import DatasetError
from tests.test_dvc_integration import TINY, _dvc, _git, _ran, copy_project

pytestmark = pytest.mark.slow

METHOD = "mathieu"   # one cheap Table 3 method: the test checks the graph, not the numbers


@pytest.fixture(scope="module")
def actors_only(tmp_path_factory) -> Path:
    root = copy_project(tmp_path_factory.mktemp("one-dataset"))
    # The committed results of the two-dataset graph are not this graph's: without them every
    # number in the report comes from this repro.
    for folder, pattern in (("metrics", "evaluate-*.json"), ("metrics", "train-*.json"), ("plots", "evaluate-*"),
                            ("videos", "evaluate-*")):
        for path in (root / "reports" / folder).glob(pattern):
            path.unlink()
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["profiles"]["smoke"].update(TINY)
    params["prepare"]["datasets"] = ["actors-synth"]
    params["train"].update(methods=[METHOD], seeds=[0], device="cpu")
    params["report"].update(faces_dataset=None, reference_datasets=[])
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "copy")
    return root


def test_repro_of_an_actors_only_graph_runs_to_the_report(actors_only):
    listed = _dvc(actors_only, "stage", "list").stdout
    assert "reference" not in listed and "faces-synth" not in listed    # [] -> no reference stage
    ran = _ran(_dvc(actors_only, "repro"))
    assert "report" in ran and f"evaluate@actors-synth-{METHOD}-0" in ran
    assert not any("faces" in name or name.startswith("reference") for name in ran), ran
    tables = actors_only / "reports" / "tables"
    table3 = (tables / "table3.md").read_text()
    mathieu = next(line for line in table3.splitlines() if line.startswith("| Mathieu et al. |"))
    assert "not run" not in mathieu                                      # a number, from this graph
    assert "| VGAN | not run |" in table3                                # not in train.methods
    table1 = (tables / "table1.md").read_text()
    assert "Nothing to show: no faces dataset in this graph (report.faces_dataset: null)." in table1
    assert "| MCNet |" not in table1
    table4 = (tables / "table4.md").read_text()
    assert "ACD-I/ACD-C/MSE (true video)/PSNR (true video): no faces dataset in this graph" in table4.splitlines()[0]
    assert "| G_M (dense) + G_R | - | - | not run |" in table4          # frgan is not in train.methods
    figures = {p.name for p in (actors_only / "reports" / "figures" / "report").iterdir()}
    assert "acd-faces.png" not in figures and "psnr-per-class.png" in figures
    assert not (actors_only / "data" / "prepared" / "faces-synth").exists()


def test_the_study_needs_a_faces_dataset_and_says_so(actors_only):
    from reporting import study
    with pytest.raises(DatasetError, match="study.dataset and report.faces_dataset are both null"):
        study.build(load_params(actors_only / "params.yaml"), actors_only / "study")
