"""mosslib.apps.book: the notebook runner (order, parameters, stamps, failures) and the book's notebooks.

The last test executes every notebook of notebooks/ with papermill in the smoke profile (tiny
embedded data, a few training steps) and checks that the tables and figures appear.
"""
import json
import re
from pathlib import Path

import pytest

from mosslib.apps import book, bookruns
from mosslib.measure import paper, places, tables

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"

HEADER = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---
"""
PARAMS_CELL = """# %% tags=["parameters"]
profile = "quick"
data_root = ""
results_dir = "results"
figures_dir = "figures"
runs_dir = "runs"
"""


def write_nb(folder: Path, name: str, body: str, params: str = PARAMS_CELL) -> Path:
    path = folder / name
    path.write_text(HEADER + "\n" + params + "\n# %%\n" + body + "\n")
    return path


# -- parameters -------------------------------------------------------------------------------
def test_notebook_parameters_and_misspelt_names(tmp_path):
    path = write_nb(tmp_path, "00_a.py", "x = 1")
    nb = book.read_notebook(path)
    params = book.notebook_parameters(nb, path)
    assert list(params) == list(book.PARAMETERS) and params["profile"] == "'quick'"
    good = book.book_parameters("smoke", "", str(tmp_path / "r"), str(tmp_path / "f"), str(tmp_path / "runs"))
    book.check_parameters(nb, good, path)
    with pytest.raises(book.BookError, match=r"\['profle'\] are not in its parameters cell"):
        book.check_parameters(nb, {**good, "profle": "smoke"}, path)
    # seeds and cache_dir (optional) go only to notebooks that declare them
    assert "seeds" not in book.parameters_for(nb, {**good, "seeds": 2}, path)
    path2 = write_nb(tmp_path, "02_c.py", "x = 1", params=PARAMS_CELL + 'cache_dir = "build"\nseeds = 1\n')
    full = book.book_parameters("smoke", seeds=3, cache_dir=str(tmp_path / "b"))
    got = book.parameters_for(book.read_notebook(path2), full, path2)
    assert got["cache_dir"] == str(tmp_path / "b") and got["seeds"] == 3
    with pytest.raises(book.BookError, match="profle"):
        book.parameters_for(nb, {**good, "profle": "smoke"}, path)
    bare = tmp_path / "01_b.py"
    bare.write_text(HEADER + "\n# %%\nx = 1\n")
    with pytest.raises(book.BookError, match="no cell tagged 'parameters'"):
        book.notebook_parameters(book.read_notebook(bare), bare)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_every_notebook_declares_the_book_parameters(path, tmp_path):
    """Every name the book passes is a parameter of the notebook (papermill's own inspection agrees
    with the book's); a notebook may add parameters of its own, with defaults."""
    import jupytext
    import papermill as pm

    ipynb = tmp_path / (path.stem + ".ipynb")
    jupytext.write(book.read_notebook(path), ipynb)
    declared = set(pm.inspect_notebook(str(ipynb)))
    assert set(book.PARAMETERS) <= declared, f"{path.name} lacks {set(book.PARAMETERS) - declared}"
    assert set(book.notebook_parameters(book.read_notebook(path), path)) == declared


def test_find_notebooks_in_order(tmp_path):
    for name in ("02_c.py", "00_a.py", "01_b.py", "notes.py", "1_bad.py"):
        (tmp_path / name).write_text("# %%\n")
    assert [p.name for p in book.find_notebooks(tmp_path)] == ["00_a.py", "01_b.py", "02_c.py"]
    with pytest.raises(book.BookError, match="no notebooks folder"):
        book.find_notebooks(tmp_path / "missing")


def test_stamp_changes_with_text_parameters_and_read_files(tmp_path):
    reads = tmp_path / "timing.csv"
    path = write_nb(tmp_path, "00_a.py", "x = 1")
    path.write_text(path.read_text().replace("#     name: python3\n",
                                             "#     name: python3\n#   mosslib:\n#     reads:\n#     - '{results_dir}/t.csv'\n"))
    nb = book.read_notebook(path)
    params = book.book_parameters("smoke", results_dir=str(tmp_path))
    assert [str(p) for p in book._reads(nb, params)] == [str(tmp_path / "t.csv")]
    s0 = book.notebook_stamp(path, nb, params, "d")
    assert book.notebook_stamp(path, nb, {**params, "profile": "quick"}, "d") != s0
    assert book.notebook_stamp(path, nb, params, "other mosslib") != s0
    (tmp_path / "t.csv").write_text("arch,ms\n")
    assert book.notebook_stamp(path, nb, params, "d") != s0
    path.write_text(path.read_text() + "\n# %%\ny = 2\n")
    assert book.notebook_stamp(path, book.read_notebook(path), params, "d") != s0
    assert not reads.exists()


# -- running ----------------------------------------------------------------------------------
WRITES = """
from pathlib import Path
out = Path(results_dir) / profile
out.mkdir(parents=True, exist_ok=True)
(out / "{name}.txt").write_text(profile + "|" + data_root)
print("hello from {name}")
"""


def test_run_book_order_outputs_skip_and_failure(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_nb(nbs, "00_first.py", WRITES.format(name="first"))
    write_nb(nbs, "01_second.py", WRITES.format(name="second"))
    kw = dict(notebooks=nbs, build_dir=tmp_path / "build", results_dir=str(tmp_path / "results"),
              figures_dir=str(tmp_path / "figures"), runs_dir=str(tmp_path / "runs"), progress=False)
    assert book.run_book("smoke", **kw) == 0
    out = capsys.readouterr().out
    assert out.index("[book] 1/2 00_first") < out.index("[book] 2/2 01_second")
    assert (tmp_path / "build" / "smoke" / "01_second.ipynb").is_file()
    assert (tmp_path / "results" / "smoke" / "second.txt").read_text() == "smoke|"
    stamp = json.loads((tmp_path / "build" / "smoke" / "00_first.stamp.json").read_text())
    assert stamp["outputs"] == [str(tmp_path / "results" / "smoke" / "first.txt")]

    # unchanged: both skipped; a deleted output or a changed notebook re-runs only that one
    assert book.run_book("smoke", **kw) == 0
    assert capsys.readouterr().out.count("up to date") == 2
    (tmp_path / "results" / "smoke" / "first.txt").unlink()
    write_nb(nbs, "01_second.py", WRITES.format(name="second") + "\nz = 3")
    assert book.run_book("smoke", **kw) == 0
    out = capsys.readouterr().out
    assert "00_first ..." in out and "01_second ..." in out and "up to date" not in out

    # a failing notebook: exit 1, named; the later ones are not run unless --keep-going
    write_nb(nbs, "01_second.py", "raise RuntimeError('boom in second')")
    write_nb(nbs, "02_third.py", WRITES.format(name="third"))
    assert book.run_book("smoke", force=True, **kw) == 1
    captured = capsys.readouterr()
    assert "01_second FAILED" in captured.out and "boom in second" in captured.out
    assert "not run: 02_third" in captured.out and "02_third ..." not in captured.out
    assert "notebook(s) failed: 01_second" in captured.err
    assert not (tmp_path / "build" / "smoke" / "01_second.stamp.json").exists()

    # a misspelt parameter in a notebook is an error before anything runs
    write_nb(nbs, "00_first.py", "x = 1", params=PARAMS_CELL.replace("runs_dir", "run_dir"))
    assert book.run_book("smoke", **kw) == 2
    assert "runs_dir" in capsys.readouterr().err
    assert book.run_book("nope", **kw) == 2


def test_cli_help_and_dry_run(tmp_path, capsys):
    from mosslib.apps.cli import main

    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_nb(nbs, "00_first.py", "x = 1")
    rc = main(["book", "--profile", "smoke", "--notebooks", str(nbs), "--build", str(tmp_path / "b"),
               "--results", str(tmp_path / "r"), "--figures", str(tmp_path / "f"), "--dry-run", "--only", "00"])
    assert rc == 0 and "would run" in capsys.readouterr().out
    assert main(["book", "--notebooks", str(nbs), "--only", "07", "--dry-run"]) == 2


def test_limited_setups_and_overrides(tmp_path):
    ov = bookruns.limited_overrides("quick", 20, True, "synthetic")
    assert ov["data.label_fraction"] == "0.2" and ov["data.unlabeled"] == "" and ov["optim.steps"] == "150"
    assert "data.unlabeled" not in bookruns.limited_overrides("smoke", 20, False, "synthetic")
    assert "optim.steps" not in bookruns.limited_overrides("smoke", 20, False, "synthetic")
    # Rain100L with train/test splits beside DDN-SIRR: it stands in for Rain200H / Rain800
    from PIL import Image
    import numpy as np

    for split in ("train", "test"):
        for sub in ("rain", "norain"):
            d = tmp_path / "Rain100L" / split / sub
            d.mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "norain-1.png")
    (s,) = bookruns.limited_setups("quick", str(tmp_path))
    assert s.name == "Rain100L" and s.test == tmp_path / "Rain100L" and s.paper_dataset is None


@pytest.mark.realdata
def test_limited_setups_on_the_shared_data(shared_data):
    (s,) = bookruns.limited_setups("quick", str(shared_data))
    assert s.name == "Rain100L" and s.test == shared_data / "Rain100L" and "stands in" in s.note


def test_limited_setups_embedded_uses_the_configurations_test_set():
    (s,) = bookruns.limited_setups("smoke", "")
    assert s.labeled == "synthetic" and s.test is None and "sirr_like" in s.note


def test_timing_results_uses_an_existing_file(tmp_path):
    (tmp_path / "timing.csv").write_text("arch,ms\nmoedn,1.0\n")
    assert bookruns.timing_results("smoke", tmp_path) == tmp_path / "timing.csv"


# -- the book itself, smoke profile -------------------------------------------------------------
EXPECTED_TABLES = ("table1", "table2-3_synthetic", "fig8_timing", "table4")
EXPECTED_FIGURES = ("overview_test_pairs", "fig4_test", "fig5_real", "table2-3_synthetic_psnr_vs_labels",
                    "fig8_timing", "table4_ablation")


@pytest.mark.slow
def test_the_book_runs_in_the_smoke_profile(tmp_path, capsys, monkeypatch):
    import importlib.util

    digest = book.source_digest()
    monkeypatch.setattr(book, "source_digest", lambda: digest)  # other edits to mosslib meanwhile do not count

    results = tmp_path / "results"
    if importlib.util.find_spec("mosslib.apps.bench") is None:  # no benchmark in this checkout: stand in
        (results / "smoke").mkdir(parents=True)
        (results / "smoke" / "timing.csv").write_text("arch,ms,device\nmoedn,12.5,cpu\nddn,6.0,cpu\n")
    rc = book.run_book("smoke", data_root="", notebooks=NOTEBOOKS, build_dir=tmp_path / "build",
                       results_dir=str(results), figures_dir=str(tmp_path / "figures"), runs_dir=str(tmp_path / "runs"),
                       keep_going=True, progress=False)
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    names = [p.stem for p in book.find_notebooks(NOTEBOOKS)]
    for name in names:
        assert (tmp_path / "build" / "smoke" / f"{name}.ipynb").is_file(), name
    for name in EXPECTED_TABLES:
        for ext in ("csv", "md"):
            assert (results / "smoke" / f"{name}.{ext}").is_file(), f"{name}.{ext} missing"
        head, frame = tables.read_table(results / "smoke" / f"{name}.csv")
        assert head["profile"] == "smoke" and len(frame) > 0
    for name in EXPECTED_FIGURES:
        png = tmp_path / "figures" / "smoke" / f"{name}.png"
        assert png.is_file() and png.stat().st_size > 1000, name
    _, t1 = tables.read_table(results / "smoke" / "table1.csv")
    assert set(t1["source"]) == {"reported", "this book (smoke)"}
    assert "(reported)" in (results / "smoke" / "table4.md").read_text()
    # the runs are shared: Table 1's two runs are among Table 4's six, and in smoke Tables 2-3's 100 %
    # supervised run is Table 4's no_selftrain; the rerun skips everything
    done = [d for d in (tmp_path / "runs" / "smoke").iterdir() if (d / "done.json").is_file()]
    ours = [d for d in done if d.name.split("-")[0] in paper.TABLE4_ORDER]  # 01, 02 and 04's runs
    assert len(ours) == 6 + 8, sorted(d.name for d in done)
    rc = book.run_book("smoke", data_root="", notebooks=NOTEBOOKS, build_dir=tmp_path / "build",
                       results_dir=str(results), figures_dir=str(tmp_path / "figures"), runs_dir=str(tmp_path / "runs"),
                       progress=False)
    out = capsys.readouterr().out
    assert rc == 0 and out.count("up to date") == len(names), out


def test_table4_configs_per_profile():
    from mosslib.apps import book
    from mosslib.measure import paper
    from mosslib.method.runs import run_dir
    from mosslib.method.profiles import make_config

    assert bookruns.table4_configs("quick") == tuple(paper.TABLE4_ORDER)
    assert bookruns.table4_configs("cpu") == tuple(paper.TABLE4_ORDER)  # all six, committed in results/cpu
    assert bookruns.table4_configs("cpu")[-1] == "full"
    assert all(bookruns.LIMITED_STEPS[p] is None or bookruns.LIMITED_STEPS[p][1] < bookruns.LIMITED_STEPS[p][0]
               for p in ("quick", "cpu"))
    assert bookruns.table4_overrides("quick") == {}  # quick: Table 4's full and supervised runs are Table 1's
    ov = bookruns.table4_overrides("cpu")
    assert ov["optim.steps"] == str(bookruns.LIMITED_STEPS["cpu"][0])
    # cpu: Table 4's supervised run is Tables 2-3's 100 % run on Rain100L (one cached run, not two)
    same = [run_dir(make_config("cpu", "no_selftrain", data_root="/data", overrides=o))
            for o in (ov, bookruns.limited_overrides("cpu", 100, False, "Rain100L"))]
    assert same[0] == same[1]
    order = bookruns.table4_training_order(paper.TABLE4_ORDER)
    assert sorted(order) == sorted(paper.TABLE4_ORDER) and order[:2] == ("full", "no_memory")
    assert order.index("no_memory") < order.index("basic")


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_folder_parameters_resolve_against_the_checkout(path):
    """Under ``make lab`` the kernel's working directory is notebooks/: a folder parameter used as
    is (``Path(results_dir)``, ``runs_dir=runs_dir``) would write into notebooks/runs/. Every use
    of one goes through ``places.book_dirs`` / ``places.resolve_path``, as in 00-04."""
    text = path.read_text()
    body = text.split('# %% tags=["parameters"]', 1)[1].split("\n# %%", 1)[1]  # after the parameters cell
    for name in ("results_dir", "figures_dir", "runs_dir", "cache_dir", "run_dir"):
        for line in body.splitlines():
            code = line.split("#", 1)[0]
            if re.search(rf"(?<![\w.]){name}\b(?!\s*=[^=])", code):
                assert "book_dirs(" in code or "resolve_path(" in code, f"{path.name}: {line.strip()}"


def test_resolve_path_starts_at_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the checkout, as under make lab (notebooks/)
    assert places.resolve_path("runs") == places.repo_root() / "runs"
    assert places.resolve_path(tmp_path / "x") == tmp_path / "x"
    dirs = places.book_dirs("smoke", str(tmp_path / "r"), str(tmp_path / "f"), str(tmp_path / "runs"))
    assert dirs.results == tmp_path / "r" / "smoke" and dirs.runs.is_dir()


def test_progress_bars_go_to_the_terminal_not_into_the_notebook(tmp_path, capsys):
    """Training bars under the book are copied to the runner's terminal; the executed notebook
    keeps none of them (they made 01_ddn_sirr.ipynb 2.5 MB)."""
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_nb(nbs, "00_bars.py", "import tqdm.auto\nfrom mosslib.apps import bookruns as book\n"
                                "with book._console_progress():\n"
                                "    for _ in tqdm.auto.tqdm(range(300), desc='probe' + '-bar', mininterval=0):\n"
                                "        pass\nprint('cell done')")
    kw = dict(notebooks=nbs, build_dir=tmp_path / "build", results_dir=str(tmp_path / "results"),
              figures_dir=str(tmp_path / "figures"), runs_dir=str(tmp_path / "runs"), progress=False)
    assert book.run_book("smoke", **kw) == 0
    captured = capsys.readouterr()
    executed = (tmp_path / "build" / "smoke" / "00_bars.ipynb").read_text()
    assert "cell done" in executed and "probe-bar" not in executed and "300/300" not in executed
    assert "probe-bar" in captured.err and "300/300" in captured.err


def test_make_has_a_documented_way_to_free_the_runs():
    """``make clean`` keeps runs/ (the cached training, GBs after a book); ``make clean-runs``
    removes it, and the Makefile's header says so."""
    import shutil
    import subprocess

    makefile = (ROOT / "Makefile").read_text()
    assert "make clean-runs" in makefile.split("\n\n", 1)[0]  # in the header's list of targets
    if shutil.which("make") is None:
        pytest.skip("no make here")
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "clean-runs"], capture_output=True, text=True, check=True)
    assert "rm -rf runs" in dry.stdout
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "clean"], capture_output=True, text=True, check=True)
    assert "runs" not in dry.stdout.replace("results", "")


def test_dry_run_lists_each_notebooks_runs_and_where_they_stand(tmp_path, capsys):
    from mosslib.apps.cli import main
    from mosslib.method.archive import archive_run
    from mosslib.method.profiles import make_config
    from mosslib.method.runs import run_dir
    from mosslib.model.config import to_dict

    notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    args = ["book", "--profile", "smoke", "--notebooks", str(notebooks), "--build", str(tmp_path / "b"),
            "--results", str(tmp_path / "r"), "--figures", str(tmp_path / "f"), "--runs", str(tmp_path / "runs"),
            "--dry-run", "--only", "01", "04", "--seeds", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "supervised (D_C), seed 1: to train" in out and "4 of 4 runs to train" in out
    assert "Ours, seed 0: to train" in out and "12 of 12 runs to train" in out
    # a run finished in runs/, and another one only in the archive of results/smoke/runs
    specs = bookruns.table1_specs("smoke", [0, 1])
    cfgs = [make_config("smoke", s.config, data_root="", overrides=dict(s.overrides), seed=s.seed) for s in specs[:2]]
    for cfg, where in zip(cfgs, (tmp_path / "runs", tmp_path / "elsewhere")):
        folder = run_dir(cfg, where)
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(to_dict(cfg)))
        (folder / "done.json").write_text("{}")
    archive_run(run_dir(cfgs[1], tmp_path / "elsewhere"), tmp_path / "r" / "smoke" / "runs")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "supervised (D_C), seed 0: finished" in out and "MOSS (D_C + D_U), seed 0: archived" in out
    assert "2 of 4 runs to train" in out
    assert [s.seed for s in bookruns.table4_specs("smoke", [0, 1])][:7] == [0] * 6 + [1]  # seed by seed
