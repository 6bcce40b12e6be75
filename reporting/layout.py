"""The tables' layout: which rows (methods) and columns (metrics) each of Tables 1, 3 and 4 has,
and how datasets are named in titles (a stand-in always says what it stands for).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


PUBLISHED = Path("reports/published.yaml")
TABLES_DIR = Path("reports/tables")
FIGURES_DIR = Path("reports/figures/report")   # its own folder: reports/figures holds other stages' outs
DECIMALS = 3   # the paper's precision in Tables 1, 3 and 4
NOT_RUN = "not run"

# How each dataset is named in titles and headers: a stand-in always says what it stands for.
DATASET_TITLES = {
    "faces-synth": "faces-synth (synthetic stand-in for MUG)",
    "mug": "MUG",
    "actors-synth": "actors-synth (synthetic stand-in for Penn Action)",
    "penn": "Penn Action",
}
PAPER_DATASET = {"faces": "MUG", "actors": "Penn Action"}


def no_dataset(task: str) -> str:
    """What a table says where report.<task>_dataset is null (a graph with one kind of dataset)."""
    return f"no {task} dataset in this graph (report.{task}_dataset: null)"


# ---------------------------------------------------------------------------------------------
# The tables' layout: rows are methods, columns are metrics of the faces or the actors dataset.

@dataclass(frozen=True)
class Row:
    label: str              # our row label
    method: str             # the method name in evaluate-<dataset>-<method>-seed<s>.json
    paper_row: str          # the row in reports/published.yaml
    reference: bool = False  # real videos, not a method: left out of the ordering claims
    source: str = ""         # for a row no method produces yet: what would
    floor: bool = False      # the copy-input floor (not in the paper): no published value, left out
                             # of the paper's orderings and claims; claims.md compares every method with it


@dataclass(frozen=True)
class Column:
    label: str    # the paper's column label
    metric: str   # the key in the evaluate JSON
    task: str     # "faces" or "actors": which dataset (report.faces_dataset / actors_dataset)
    direction: str = ""   # only for a column not in the paper (published.yaml gives the paper's)

    @property
    def in_paper(self) -> bool:
        return not self.direction


@dataclass(frozen=True)
class TableSpec:
    number: int
    subject: str
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    note: str = ""
    footer: str = ""   # printed under the rows


ACD = (Column("ACD-I", "acd_i", "faces"), Column("ACD-C", "acd_c", "faces"))
# Not in the paper: on faces-synth the true retargeted video exists (MUG has none: "-"), so every
# method, and the floor, also gets a pixel score against it.
FACES_TRUTH = (Column("MSE (true video)", "mse", "faces", direction="lower"),
               Column("PSNR (true video)", "psnr", "faces", direction="higher"))
FLOOR_METHOD = "copy-input"
FLOOR = Row("Copy the input frame", FLOOR_METHOD, "", floor=True)
FACES_TRUTH_NOTE = ("MSE (true video), PSNR (true video): against the true retargeted video, which only "
                    "faces-synth has (\"-\" on MUG); not in the paper.")
FLOOR_NOTE = "Copy the input frame: every output frame is the input frame (the floor; not in the paper)."
ACD_FLOOR_NOTE = (f"{FLOOR_NOTE} Its ACD-I and ACD-C are 0 by construction: ACD alone rewards a still "
                  "video, which is why the paper has the Reference row.")
TABLES = (
    TableSpec(1, "video generation quality (ACD), facial expression retargeting", (
        Row("MCNet", "mcnet", "MCNet [38]"),
        Row("Villegas et al.", "villegas17", "Villegas et al. [39]"),
        Row("MoCoGAN", "mocogan", "MoCoGAN [37]"),
        Row("FRGAN", "frgan", "Ours"),
        FLOOR,
        Row("Reference", "reference", "Reference", reference=True,
            source="ACD of the real training videos: the `reference` stage "
                   "(python -m pipelines.reference) writes it"),
    ), ACD + FACES_TRUTH, note=f"Reference: ACD of the real training videos. {FACES_TRUTH_NOTE}",
        footer=ACD_FLOOR_NOTE),
    TableSpec(3, "MSE, human pose forecasting", (
        Row("VGAN", "vgan", "VGAN [40]"),
        Row("Mathieu et al.", "mathieu", "Mathieu et al. [17]"),
        Row("Villegas et al.", "villegas17", "Villegas et al. [39]"),
        Row("FRGAN", "frgan", "Ours"),
        FLOOR,
    ), (Column("MSE", "mse", "actors"), Column("MSE (GT)", "mse_gt", "actors")),
        note="MSE (GT): conditions from ground-truth poses instead of the pose LSTM's.", footer=FLOOR_NOTE),
    TableSpec(4, "ablation study", (
        Row("G_M without dense, no G_R", "frgan-no-dense", "G_M without dense, no G_R"),
        Row("G_M (dense) only", "frgan-gm-only", "G_M (dense) only"),
        Row("G_M (dense) + G_R", "frgan", "G_M (dense) + G_R"),
        FLOOR,
    ), ACD + (Column("MSE", "mse_gt", "actors"),) + FACES_TRUTH,
        note=f"MSE with conditions from ground-truth poses (`mse_gt`), as the paper's section 4.4. "
             f"{FACES_TRUTH_NOTE}", footer=ACD_FLOOR_NOTE),
)


# ---------------------------------------------------------------------------------------------
