"""mosslib.apps.site: the static HTML book from hand-made executed notebooks and results files."""
import base64
import io
import re

import nbformat
import numpy as np
import pytest

from mosslib.apps import book
from mosslib.apps import site

from test_ledger import dense_sparse, write_table1


def png_bytes(side=40, noise=False) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (side, side, 3), dtype=np.uint8) if noise else np.full((side, side, 3), 120, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def executed(path, markdown_out: str, png: bytes | None = None, code="secret_code_line = 42"):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# A page\n\nSome text."))
    cell = nbformat.v4.new_code_cell(code)
    outs = [nbformat.v4.new_output("display_data", data={"text/markdown": markdown_out, "text/plain": "md"})]
    if png is not None:
        outs.append(nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode()}))
    outs.append(nbformat.v4.new_output("stream", name="stderr", text="progress bar 10%|#   |"))
    outs.append(nbformat.v4.new_output("execute_result", execution_count=1, data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "text/plain": "VBox(children=(Dropdown(...),))"}))
    cell.outputs = outs
    nb.cells.append(cell)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, path)
    path.with_name(f"{path.stem}.stamp.json").write_text("{}")  # the book's mark of a finished notebook


@pytest.fixture
def book_dirs(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    for stem in ("00_overview", "01_ddn_sirr", "02_limited_labels"):
        (nbs / f"{stem}.py").write_text("# %%\nx = 1\n")
    build = tmp_path / "build" / "smoke"
    build.mkdir(parents=True)
    results = tmp_path / "results"
    write_table1(results / "smoke", [dense_sparse(0.0, 0)], [dense_sparse(1.0, 0)], "smoke")
    executed(build / "00_overview.ipynb", "overview text, see [Table 1](01_ddn_sirr.ipynb), [Tables 2-3](02_limited_labels.ipynb) "
             "and [the audit](../../docs/release-audit.md)")
    executed(build / "01_ddn_sirr.ipynb", (results / "smoke" / "table1.md").read_text(), png_bytes(600, noise=True))
    audit = tmp_path / "audit.md"
    audit.write_text("# Audit\n\nSee [the ledger](../results/cpu/ledger.md).\n\n| a | b |\n|---|---|\n| fact | ours |\n")
    return dict(notebooks=nbs, build_dir=tmp_path / "build", results_dir=results, figures_dir=tmp_path / "figures",
                audit=audit, tmp=tmp_path)


def render(d, **kw):
    return site.render_site("smoke", d["build_dir"], d["results_dir"], d["figures_dir"], d["notebooks"],
                            audit=d["audit"], cpu_book="../cpu/index.html", **kw)


def test_site_pages_links_header_and_offline(book_dirs):
    out = render(book_dirs)
    folder = out["out"]
    assert folder == book_dirs["build_dir"] / "smoke" / "site"
    names = sorted(p.name for p in folder.glob("*.html"))
    assert names == ["00_overview.html", "01_ddn_sirr.html", "index.html", "release-audit.html"]
    assert out["missing"] == ["02_limited_labels"]  # neither executed nor shown from results
    index = (folder / "index.html").read_text()
    # the ledger opens the index, its Table 1 rows link to the Table 1 page
    assert index.index("claims ledger") < index.index("The pages")
    assert re.search(r'<a href="01_ddn_sirr.html">Table 1</a>', index)
    assert "not testable here" in index and 'href="release-audit.html"' in index
    assert "02_limited_labels.html" not in index  # a missing page is not linked
    for name in names:
        html = (folder / name).read_text()
        text = re.sub(r"<[^>]+>", " ", html)
        for item in ("profile", "data", "metric convention", "seeds", "training budget"):
            assert item in text, (name, item)
        assert "pipeline demonstration at toy scale, not evidence" in text and 'href="../cpu/index.html"' in html
        # nothing from the network: no remote script or style sheet
        assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", html), name
        assert not re.search(r"<link[^>]+href=[\"']?(https?:)?//", html), name
        assert re.search(r'<link rel="stylesheet" href="style-[0-9a-f]+\.css">', html)
        for other in ("index.html", "00_overview.html", "01_ddn_sirr.html", "release-audit.html"):
            if other != name:
                assert f'href="{other}"' in html, (name, other)
    overview = (folder / "00_overview.html").read_text()
    assert '<a href="01_ddn_sirr.html">Table 1</a>' in overview and '<a href="release-audit.html">the audit</a>' in overview
    assert 'href="02_limited_labels.ipynb"' in overview  # a missing page keeps its notebook link
    page = (folder / "01_ddn_sirr.html").read_text()
    assert "secret_code_line" not in page  # code input hidden
    assert "progress bar" not in page  # stderr dropped
    assert "<table" in page and "MOSS (this book)" in page and "(reported)" in page
    imgs = re.findall(r'src="data:(image/[a-z]+);base64,([^"]+)"', page)
    assert imgs and all(len(base64.b64decode(b)) <= site.MAX_IMAGE_BYTES for _, b in imgs)
    assert "jupyter-widgets" not in page and "widget-state" not in page
    assert "VBox(" not in page and "interactive widget stands here" in page
    audit_page = (folder / "release-audit.html").read_text()
    assert "| fact | ours |" not in audit_page  # rendered as a table
    assert '<a href="index.html">the ledger</a>' in audit_page
    assert len(list(folder.glob("style-*.css"))) == 1


def test_rendering_twice_gives_the_same_files(book_dirs):
    first = {p.name: p.read_bytes() for p in render(book_dirs)["written"]}
    second = {p.name: p.read_bytes() for p in render(book_dirs)["written"]}
    assert first == second


def test_fallback_pages_come_from_committed_results(book_dirs):
    (book_dirs["build_dir"] / "smoke" / "01_ddn_sirr.ipynb").unlink()
    figs = book_dirs["figures_dir"] / "smoke"
    figs.mkdir(parents=True)
    (figs / "fig4_test.png").write_bytes(png_bytes())
    assert "01_ddn_sirr" in render(book_dirs)["missing"]
    out = render(book_dirs, fallback=True)
    assert out["from_results"] == ["01_ddn_sirr"] and "01_ddn_sirr" not in out["missing"]
    page = (out["out"] / "01_ddn_sirr.html").read_text()
    assert "was not executed for this render" in page and "fig4_test.png" in page and "data:image/png" in page
    assert "MOSS (this book)" in page  # the committed table1.md


def test_a_notebook_still_executing_is_no_page(book_dirs):
    # the book removes the stamp when it starts a notebook; papermill writes the notebook as it runs
    (book_dirs["build_dir"] / "smoke" / "01_ddn_sirr.stamp.json").unlink()
    assert "01_ddn_sirr" in render(book_dirs)["missing"]
    assert render(book_dirs, fallback=True)["from_results"] == ["01_ddn_sirr"]  # its committed results instead


def test_cpu_site_has_no_toy_banner(book_dirs, tmp_path):
    cpu = book_dirs["build_dir"] / "cpu"
    cpu.mkdir()
    executed(cpu / "00_overview.ipynb", "overview text")
    out = site.render_site("cpu", book_dirs["build_dir"], book_dirs["results_dir"], book_dirs["figures_dir"],
                           book_dirs["notebooks"], audit=book_dirs["audit"])
    assert "toy scale" not in (out["out"] / "index.html").read_text()
    assert "toy scale" not in (out["out"] / "00_overview.html").read_text()


def test_header_budget_is_table1_runs_own(tmp_path):
    # the cpu book's Table 1 trains a reduced budget (bookruns.TABLE1_STEPS), not the profile's 12,000 steps
    cpu = site.header_markdown("cpu", tmp_path, None, [], "00_overview", "")
    assert "(Table 1's runs): 6,000 steps x batch 4" in cpu and "12,000" not in cpu
    quick = site.header_markdown("quick", tmp_path, None, [], "00_overview", "")
    steps = site.make_config("quick", "full", data_root="").optim.steps  # no reduction: the profile's own
    assert f"(Table 1's runs): {steps:,} steps" in quick


def test_strip_remote_keeps_local_scripts():
    html = ('<head><script src="https://cdn.example/mathjax.js"></script><script src="//cdn.x/y.js"></script>'
            '<script>var local = 1;</script><link rel="stylesheet" href="https://cdn.x/s.css">'
            '<link rel="stylesheet" href="style.css"></head>')
    out = site.strip_remote(html)
    assert "cdn" not in out and "var local = 1" in out and 'href="style.css"' in out


def test_run_book_ends_with_the_ledger_and_the_site(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    (nbs / "00_first.py").write_text(
        '# %% tags=["parameters"]\nprofile = "quick"\ndata_root = ""\nresults_dir = "results"\n'
        'figures_dir = "figures"\nruns_dir = "runs"\n\n# %%\nprint("hello")\n')
    kw = dict(notebooks=nbs, build_dir=tmp_path / "build", results_dir=str(tmp_path / "results"),
              figures_dir=str(tmp_path / "figures"), runs_dir=str(tmp_path / "runs"), progress=False)
    assert book.run_book("smoke", **kw) == 0
    out = capsys.readouterr().out
    assert "claims ledger:" in out and "HTML book in" in out
    assert (tmp_path / "results" / "smoke" / "ledger.md").is_file()
    assert (tmp_path / "build" / "smoke" / "site" / "index.html").is_file()
    assert "hello" in (tmp_path / "build" / "smoke" / "site" / "00_first.html").read_text()


def test_strip_remote_drops_nbconvert_inline_blocks_that_need_the_network():
    from mosslib.apps.site import strip_remote

    html = ('<p>keep</p><script type="text/x-mathjax-config">MathJax.Hub.Config({});</script>'
            '<script type="module">await import("https://cdn.example/m.mjs")</script>'
            '<script type="module">const local = 1;</script>')
    out = strip_remote(html)
    assert "MathJax" not in out and "https://" not in out
    assert "<p>keep</p>" in out and "const local = 1;" in out  # local scripts stay
