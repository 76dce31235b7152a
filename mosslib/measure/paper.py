"""The MOSS paper's reported numbers (Huang, Yu, He, CVPR 2021, Tables 1-4) as data.

Every number here is typed in from the paper's tables (``shared/paper/MOSS-CVPR2021.md``) and is
the only hard-coded result of the book; notebooks show them beside their own numbers, marked
"(reported)". The paper computes PSNR and SSIM on RGB with scikit-image (section 4.1), the
book's ``"rgb"`` convention. Gains are stored as printed and checked against the differences in
the tests. Fig. 8 (running time) and Fig. 6 (user study) give no numbers in the text.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CITATION",
    "CONVENTION",
    "REPORTED",
    "Table1Entry",
    "TABLE1",
    "TABLE1_INPUT",
    "LimitedRow",
    "TABLE2",
    "TABLE3",
    "LIMITED",
    "LIMITED_FRACTIONS",
    "TABLE4",
    "TABLE4_LABELS",
    "TABLE4_ORDER",
    "TEST_SETS",
    "FIG8",
    "table1_entry",
    "limited_row",
]

CITATION = "Huang, Yu, He: Memory Oriented Transfer Learning for Semi-Supervised Image Deraining, CVPR 2021"
CONVENTION = "rgb"  # section 4.1: PSNR/SSIM on RGB with scikit-image
REPORTED = "(reported)"  # the mark every paper number carries in the book's tables

# Test-set sizes named in section 4.1 (per evaluation group).
TEST_SETS: dict[str, dict[str, int]] = {
    "DDN-SIRR": {"dense": 10, "sparse": 10},
    "Rain200H": {"all": 200},
    "Rain800": {"all": 100},
}


@dataclass(frozen=True)
class Table1Entry:
    """One method of Table 1 (PSNR, DDN-SIRR synthetic test set): D_C, D_C + D_U and gain."""

    method: str
    venue: str
    kind: str  # "supervised" | "semi-supervised"
    dense: tuple[float | None, float | None, float | None]  # (D_C, D_C + D_U, gain); None: not run
    sparse: tuple[float | None, float | None, float | None]


# Table 1, "Input" column: the rainy test images scored against their ground truth.
TABLE1_INPUT: dict[str, float] = {"dense": 17.95, "sparse": 24.14}

TABLE1: tuple[Table1Entry, ...] = (
    Table1Entry("JORDER", "CVPR '17", "supervised", (18.75, None, None), (24.22, None, None)),
    Table1Entry("DDN", "CVPR '17", "supervised", (19.90, None, None), (26.88, None, None)),
    Table1Entry("DID-MDN", "CVPR '18", "supervised", (18.60, None, None), (25.66, None, None)),
    Table1Entry("UMRL", "CVPR '19", "supervised", (20.11, None, None), (26.94, None, None)),
    Table1Entry("PReNet", "CVPR '19", "supervised", (20.65, None, None), (26.40, None, None)),
    Table1Entry("MSPFN", "CVPR '20", "supervised", (19.54, None, None), (26.47, None, None)),
    Table1Entry("DRD", "CVPR '20", "supervised", (20.34, None, None), (26.04, None, None)),
    Table1Entry("SIRR", "CVPR '19", "semi-supervised", (20.01, 21.60, 1.59), (26.90, 26.98, 0.08)),
    Table1Entry("Syn2Real", "CVPR '20", "semi-supervised", (20.24, 22.36, 2.12), (26.15, 27.26, 1.11)),
    Table1Entry("MOSS", "CVPR '21", "semi-supervised", (20.29, 22.91, 2.62), (25.90, 27.78, 1.88)),
)


@dataclass(frozen=True)
class LimitedRow:
    """One row of Table 2 or 3: PSNR and SSIM as (D_L, D_L + D_U, gain); None where "-"."""

    percent: int
    psnr: tuple[float, float | None, float | None]
    ssim: tuple[float, float | None, float | None]


LIMITED_FRACTIONS: tuple[int, ...] = (10, 20, 40, 60, 100)

# Table 2: limited labeled data from Rain200H.
TABLE2: dict[str, tuple[LimitedRow, ...]] = {
    "Syn2Real": (
        LimitedRow(10, (22.92, 23.64, 0.72), (0.742, 0.767, 0.025)),
        LimitedRow(20, (23.22, 24.00, 0.78), (0.755, 0.776, 0.021)),
        LimitedRow(40, (23.84, 24.75, 0.91), (0.772, 0.794, 0.022)),
        LimitedRow(60, (24.32, 25.26, 0.94), (0.782, 0.808, 0.026)),
        LimitedRow(100, (25.27, None, None), (0.810, None, None)),
    ),
    "MOSS": (
        LimitedRow(10, (25.76, 26.06, 0.30), (0.835, 0.841, 0.006)),
        LimitedRow(20, (26.40, 26.87, 0.47), (0.848, 0.858, 0.010)),
        LimitedRow(40, (26.76, 26.97, 0.21), (0.854, 0.859, 0.005)),
        LimitedRow(60, (26.91, 26.99, 0.08), (0.859, 0.861, 0.002)),
        LimitedRow(100, (26.99, None, None), (0.860, None, None)),
    ),
}

# Table 3: limited labeled data from Rain800.
TABLE3: dict[str, tuple[LimitedRow, ...]] = {
    "Syn2Real": (
        LimitedRow(10, (21.31, 22.02, 0.71), (0.729, 0.750, 0.021)),
        LimitedRow(20, (22.28, 22.95, 0.67), (0.752, 0.768, 0.016)),
        LimitedRow(40, (22.61, 23.60, 0.99), (0.761, 0.788, 0.027)),
        LimitedRow(60, (22.96, 23.70, 0.74), (0.775, 0.795, 0.020)),
        LimitedRow(100, (23.74, None, None), (0.799, None, None)),
    ),
    "MOSS": (
        LimitedRow(10, (23.28, 23.79, 0.51), (0.785, 0.820, 0.035)),
        LimitedRow(20, (23.96, 24.68, 0.72), (0.810, 0.840, 0.030)),
        LimitedRow(40, (24.50, 25.53, 1.03), (0.814, 0.852, 0.038)),
        LimitedRow(60, (25.39, 25.66, 0.27), (0.844, 0.855, 0.011)),
        LimitedRow(100, (26.36, None, None), (0.848, None, None)),
    ),
}

# data set -> (table number, table)
LIMITED: dict[str, tuple[int, dict[str, tuple[LimitedRow, ...]]]] = {"Rain200H": (2, TABLE2), "Rain800": (3, TABLE3)}

# Table 4: ablation study on DDN-SIRR, {configuration: {group: (PSNR, SSIM)}}; the keys are the
# ablation names of mosslib.method.profiles.ABLATIONS.
TABLE4: dict[str, dict[str, tuple[float, float]]] = {
    "basic": {"dense": (19.99, 0.835), "sparse": (25.74, 0.881)},
    "no_memory": {"dense": (22.21, 0.870), "sparse": (26.82, 0.906)},
    "no_selftrain": {"dense": (20.99, 0.860), "sparse": (25.83, 0.890)},
    "no_tv": {"dense": (22.68, 0.876), "sparse": (27.58, 0.908)},
    "no_skip": {"dense": (22.00, 0.858), "sparse": (26.80, 0.900)},
    "full": {"dense": (22.91, 0.883), "sparse": (27.78, 0.912)},
}
TABLE4_ORDER: tuple[str, ...] = ("basic", "no_memory", "no_selftrain", "no_tv", "no_skip", "full")
TABLE4_LABELS: dict[str, str] = {
    "basic": "Basic",
    "no_memory": "w/o Memory",
    "no_selftrain": "w/o Self-Training",
    "no_tv": "w/o TV",
    "no_skip": "w/o Skip-Connect",
    "full": "Ours",
}

# Fig. 8 prints its bars only in the figure; the text states the ranking and the device.
FIG8: dict[str, str] = {
    "device": "one NVIDIA TITAN RTX GPU",
    "input": "256x256 image",
    "statement": "MOSS is the second fastest of the compared models, a little behind DID-MDN (section 4.5)",
}


def table1_entry(method: str) -> Table1Entry:
    """The Table 1 entry of ``method`` (e.g. "MOSS", "PReNet"); KeyError names the known ones."""
    for entry in TABLE1:
        if entry.method == method:
            return entry
    raise KeyError(f"Table 1 has no method {method!r}; it has {[e.method for e in TABLE1]}")


def limited_row(dataset: str, method: str, percent: int) -> LimitedRow:
    """The Table 2 (Rain200H) or Table 3 (Rain800) row of ``method`` at ``percent`` labels."""
    if dataset not in LIMITED:
        raise KeyError(f"the paper reports limited labels for {sorted(LIMITED)}, not {dataset!r}")
    rows = LIMITED[dataset][1][method]
    for row in rows:
        if row.percent == percent:
            return row
    raise KeyError(f"Table {LIMITED[dataset][0]} has no {percent} % row; it has {LIMITED_FRACTIONS}")
