"""The committed cpu book (``results/cpu/``) is complete, and the README quotes it as it is."""
import re
from pathlib import Path

import pandas as pd
import pytest

from mosslib.measure import paper

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "cpu"
README = (REPO / "README.md").read_text(encoding="utf-8")


def read(name):
    path = RESULTS / name
    if not path.exists():
        pytest.skip(f"{path} is not committed")
    meta = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    assert "# profile: cpu" in meta, f"{path}: not a cpu-profile table"
    return pd.read_csv(path, comment="#")


def readme_row(*cells):
    """The README Markdown table row that starts with ``cells``, as a list of its cells."""
    start = "| " + " | ".join(cells) + " |"
    rows = [line for line in README.splitlines() if line.startswith(start)]
    assert len(rows) == 1, f"README: expected one row starting {start!r}, found {len(rows)}"
    return [c.strip() for c in rows[0].strip("|").split("|")]


def test_table1_in_the_readme_is_the_committed_one():
    t = read("table1.csv")
    ours = t[t["source"].str.startswith("this book")].set_index("trained_on")
    assert {"-", "D_C", "D_C + D_U"} <= set(ours.index)
    for trained_on, label in (("-", "Input (this book)"), ("D_C", "MOSS (this book, cpu)"),
                              ("D_C + D_U", "MOSS (this book, cpu)")):
        cells = readme_row(label, trained_on)
        assert cells[2:4] == [f"{ours.loc[trained_on, 'dense_psnr']:.2f}", f"{ours.loc[trained_on, 'sparse_psnr']:.2f}"]
    gain = next(i for i in ours.index if i.startswith("gain"))
    cells = readme_row("MOSS (this book, cpu)", gain)
    for cell, split in zip(cells[2:4], ("dense", "sparse")):
        g = ours.loc[gain]
        assert cell == f"{g[split + '_psnr']:+.2f} [{g[split + '_psnr_ci_lo']:+.2f}, {g[split + '_psnr_ci_hi']:+.2f}]"


def test_table4_has_all_six_configurations_and_the_readme_quotes_them():
    t = read("table4.csv").set_index("config")
    assert list(t.index) == list(paper.TABLE4_ORDER)
    for config, row in t.iterrows():
        quoted = f"{row['label']} {row['dense_psnr']:.2f} / {row['sparse_psnr']:.2f}"
        assert quoted in " ".join(README.split()), f"README does not quote Table 4's {quoted!r}"


ABSOLUTE = re.compile(r"(?<![\w$.])/(?:work|home|root|Users|tmp|mnt)/|\.\./shared/|[A-Za-z]:\\\\")


def test_committed_results_carry_no_machine_paths():
    """Results name their data as ``$DATA_ROOT/...`` and files relative to the checkout: an
    absolute path of the machine that made them means nothing elsewhere."""
    files = [*(REPO / "results").rglob("*"), *(REPO / "docs").rglob("*"), REPO / "README.md"]
    for path in sorted(files):
        if path.is_file() and path.suffix in (".csv", ".md", ".json", ".txt", ".html"):
            hit = ABSOLUTE.search(path.read_text(encoding="utf-8"))
            assert hit is None, f"{path.relative_to(REPO)}: {hit.group(0)!r}"


def test_results_write_portable_data_paths(tmp_path):
    from mosslib.measure import tables
    from mosslib.method.profiles import make_config

    cfg = make_config("cpu", "full", data_root=str(tmp_path / "data"),
                      overrides=[f"data.unlabeled={tmp_path / 'data' / 'DDN-SIRR' / 'real_input'}"])
    text = tables.data_description(cfg)
    assert str(tmp_path) not in text and text.startswith("$DATA_ROOT: ")
    assert "D_U = $DATA_ROOT/DDN-SIRR/real_input" in text
    assert tables.portable_path(tables.repo_root() / "mosslib" / "weights" / "moss_cpu.pt") == "mosslib/weights/moss_cpu.pt"
    assert tables.portable_path(tmp_path / "data" / "DDN-SIRR", tmp_path / "data") == "$DATA_ROOT/DDN-SIRR"
    assert tables.portable_path("/elsewhere/x/model.pt") == "model.pt"
