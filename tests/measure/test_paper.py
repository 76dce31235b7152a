"""mosslib.measure.paper: the reported numbers, checked by hand, by their own gains and against the paper's text."""
import os
import re
from pathlib import Path

import pytest

from mosslib.measure import paper
from mosslib.method.profiles import ABLATIONS

PAPER_MD = Path(os.environ.get("MOSS_PAPER_MD", Path(__file__).resolve().parents[3] / "shared" / "paper" / "MOSS-CVPR2021.md"))


def test_reported_gains_equal_the_reported_differences():
    for e in paper.TABLE1:
        for group in (e.dense, e.sparse):
            if group[1] is not None:
                assert group[1] - group[0] == pytest.approx(group[2], abs=0.006), e.method
    for _, table in paper.LIMITED.values():
        for rows in table.values():
            for r in rows:
                for metric, tol in ((r.psnr, 0.006), (r.ssim, 0.0006)):
                    if metric[1] is not None:
                        assert metric[1] - metric[0] == pytest.approx(metric[2], abs=tol), r


def test_shapes_and_names_match_the_book():
    assert [e.method for e in paper.TABLE1][-1] == "MOSS" and len(paper.TABLE1) == 10
    assert sum(e.kind == "supervised" for e in paper.TABLE1) == 7
    for table in (paper.TABLE2, paper.TABLE3):
        for rows in table.values():
            assert tuple(r.percent for r in rows) == paper.LIMITED_FRACTIONS
    # Table 4's configurations are the training issue's ablations, in the paper's column order
    assert set(paper.TABLE4) == set(paper.TABLE4_ORDER) == set(paper.TABLE4_LABELS)
    assert set(paper.TABLE4) <= set(ABLATIONS)
    assert paper.TABLE4_ORDER[-1] == "full"
    # Table 4's "Ours" is Table 1's MOSS with D_C + D_U
    moss = paper.table1_entry("MOSS")
    assert paper.TABLE4["full"]["dense"][0] == moss.dense[1] and paper.TABLE4["full"]["sparse"][0] == moss.sparse[1]


def test_lookups_fail_clearly():
    with pytest.raises(KeyError, match="Table 1 has no method"):
        paper.table1_entry("Restormer")
    with pytest.raises(KeyError, match="Rain100L"):
        paper.limited_row("Rain100L", "MOSS", 10)
    with pytest.raises(KeyError, match="no 30 % row"):
        paper.limited_row("Rain200H", "MOSS", 30)


# -- every number against the paper's own text (skipped without ../shared/paper) ---------------
def _numbers(line: str) -> list:
    cells = [c.strip() for c in re.sub(r"</?b>", "", line).split("\t")]
    out = []
    for c in cells:
        if c == "-":
            out.append(None)
        elif re.fullmatch(r"\d+(\.\d+)?", c):
            out.append(float(c))
    return out


@pytest.fixture(scope="module")
def paper_lines():
    if not PAPER_MD.is_file():
        pytest.skip(f"paper text not found at {PAPER_MD}")
    return PAPER_MD.read_text().splitlines()


def _section(lines, title):
    start = next(i for i, ln in enumerate(lines) if ln.startswith(title))
    return lines[start:start + 25]


def test_table1_matches_the_paper_text(paper_lines):
    sec = _section(paper_lines, "Table 1:")
    for group in ("dense", "sparse"):
        nums = _numbers(next(ln for ln in sec if ln.startswith(group.title() + "\t")))
        ours = [paper.TABLE1_INPUT[group]]
        for e in paper.TABLE1:
            vals = getattr(e, group)
            ours += [vals[0]] if e.kind == "supervised" else list(vals)
        assert nums == ours, group


@pytest.mark.parametrize("title, table", [("Table 2:", paper.TABLE2), ("Table 3:", paper.TABLE3)])
def test_limited_tables_match_the_paper_text(paper_lines, title, table):
    sec = _section(paper_lines, title)
    for pct in paper.LIMITED_FRACTIONS:
        nums = _numbers(next(ln for ln in sec if ln.startswith(f"{pct}%\t")))
        ours = []
        for method in ("Syn2Real", "MOSS"):
            r = next(r for r in table[method] if r.percent == pct)
            ours += list(r.psnr) + list(r.ssim)
        assert nums == ours, (title, pct)


def test_table4_matches_the_paper_text(paper_lines):
    sec = _section(paper_lines, "Table 4:")
    rows = [ln for ln in sec if "\tPSNR\t" in ln or "\tSSIM\t" in ln]
    assert len(rows) == 4
    expected = []
    for group in ("dense", "sparse"):
        for i in (0, 1):
            expected.append([paper.TABLE4[c][group][i] for c in paper.TABLE4_ORDER])
    assert [_numbers(r) for r in rows] == expected
