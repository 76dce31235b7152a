"""The book as a static HTML site: the executed notebooks rendered with nbconvert, read offline.

``python -m mosslib site --profile P`` (and the end of ``python -m mosslib book``) writes
``build/<P>/site/``: ``index.html`` (the claims ledger of :mod:`mosslib.apps.ledger` first, then a link
per page), one page per notebook (``01_ddn_sirr.html``, ...) and ``release-audit.html`` (from
``docs/release-audit.md``). Every page starts with a header block naming the profile, the data,
the metric convention, the seeds and the training budget beside the paper's, and links to the
other pages; pages of the toy profiles (``smoke``, ``quick``) carry the banner that they are a
pipeline demonstration, not evidence.

Pages are nbconvert's ``lab`` HTML with the code cells hidden, the figures inline (large ones
re-encoded smaller) and nothing loaded from the network: scripts and style sheets that point to a
CDN (MathJax, require.js, the widget manager) are removed, so maths reads as its TeX source and
every number and figure is in the file. A notebook with no executed copy in ``build/<P>/`` can be
shown from its committed results instead (``fallback=True``: its tables and figures from
``results/<P>/`` and ``figures/<P>/``, with a line saying so), which is how the committed ``cpu``
book is rendered without retraining.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import io
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image

from . import ledger
from .bookruns import find_notebooks, table1_overrides
from ..measure import paper
from ..measure.metrics import CONVENTIONS
from ..measure.places import repo_root
from ..measure.tables import data_description, markdown_table, read_table
from ..method.profiles import make_config

__all__ = ["PAGE_TITLES", "PAGE_FILES", "Page", "header_markdown", "render_site", "strip_remote", "add_arguments", "run"]

PAGE_TITLES = {
    "00_overview": "Overview",
    "01_ddn_sirr": "Table 1, Figs. 4-5: DDN-SIRR",
    "02_limited_labels": "Tables 2-3: limited labels",
    "03_timing": "Fig. 8: running time",
    "04_ablation": "Table 4: ablation",
    "05_memory": "The memory",
    "06_real_world": "Real photos, Fig. 6",
    "07_memory_study": "The memory study",
}
# What a page shows when it is rendered from the committed results (no executed notebook): its tables
# (results/<profile>/, Markdown) and figures (figures/<profile>/, PNG), as glob patterns.
PAGE_FILES = {
    "00_overview": ((), ("overview_test_pairs.png",)),
    "01_ddn_sirr": (("table1.md",), ("fig4_test.png", "fig5_real.png")),
    "02_limited_labels": (("table2-3_*.md",), ("table2-3_*_psnr_vs_labels.png",)),
    "03_timing": (("fig8_timing.md",), ("fig8_timing.png",)),
    "04_ablation": (("table4.md",), ("table4_ablation.png",)),
    "05_memory": (("memory_usage.csv",), ("memory_pca.png", "memory_*_usage.png", "memory_*_triptych.png",
                                          "memory_*_nearest.png")),
    "06_real_world": (("user_study.csv",), ("real_world_grid.png", "real_world_zoom.png")),
}
AUDIT = "release-audit"
MAX_IMAGE_BYTES = 250_000  # larger inline images are re-encoded (scaled to MAX_WIDTH, JPEG when still large)
MAX_WIDTH = 1300


@dataclass
class Page:
    stem: str
    title: str
    source: str  # "executed" | "results" | "missing"
    href: str


def _say(message: str) -> None:
    print(f"[site] {message}", flush=True)


# -- the header block ---------------------------------------------------------------------------
def _table_header(results: Path) -> dict[str, str]:
    for name in ("table1.csv", "table4.csv"):
        if (results / name).is_file():
            return read_table(results / name)[0]
    return {}


def header_markdown(profile: str, results: Path, data_root: str | None, pages: Sequence[Page], current: str,
                    cpu_book: str) -> str:
    """The block that opens every page: navigation, toy banner, profile, data, convention, seeds, budget."""

    meta = _table_header(results)
    data = meta.get("data")
    if not data:
        try:
            data = data_description(make_config(profile, "full", data_root=data_root or ("" if profile in ledger.TOY_PROFILES else None)))
        except ValueError as exc:
            data = f"not known here ({exc})"
    try:
        cfg = make_config(profile, "full", data_root="", overrides=table1_overrides(profile))  # cpu: 6,000 steps
        budget = ledger.budget_of(cfg.optim.steps, cfg.data.batch_size, cfg.data.crop)
    except ValueError:
        budget = "-"
    nav = " | ".join(("**" + p.title + "**") if p.stem == current else f"[{p.title}]({p.href})" for p in pages)
    lines = [f"**The MOSS reproduction book** - {nav}", ""]
    if profile in ledger.TOY_PROFILES:
        lines += [f"> **{profile} profile: {ledger.toy_banner(cpu_book)}**", ""]
    lines += [
        f"- **profile**: `{profile}`",
        f"- **data**: {data}",
        f"- **metric convention**: {meta.get('convention') or paper.CONVENTION + ': ' + CONVENTIONS[paper.CONVENTION]}",
        f"- **seeds**: {meta.get('seeds', '1 (0)')} per configuration",
        f"- **training budget** (Table 1's runs): {budget}",
        f"- **paper**: {paper.CITATION}; its numbers are marked {paper.REPORTED}",
    ]
    return "\n".join(lines) + "\n"


# -- notebooks -> HTML ------------------------------------------------------------------------------
_REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script>", re.I | re.S)
_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.I | re.S)
# nbconvert's inline blocks that only act with a network: MathJax's configuration (MathJax itself is
# not loaded) and the module that imports mermaid from a CDN; each page carried ~450 dead lines
_DEAD_INLINE = re.compile(r"<script type=\"text/x-mathjax-config\">.*?</script>"
                          r"|<script type=\"module\">(?:(?!</script>).)*?https://.*?</script>", re.S)


def strip_remote(html: str) -> str:
    """``html`` without scripts or style sheets loaded from the network (MathJax, require.js, widgets)."""
    html = _DEAD_INLINE.sub("", _REMOTE_SCRIPT.sub("", html))
    return _REMOTE_LINK.sub("", html)


def _shrink_png(b64: str) -> tuple[str, str]:
    """(mime, base64) of an inline PNG, re-encoded smaller when it is large."""
    raw = base64.b64decode(b64)
    if len(raw) <= MAX_IMAGE_BYTES:
        return "image/png", b64
    im = Image.open(io.BytesIO(raw))
    im.load()
    if im.width > MAX_WIDTH:
        im = im.resize((MAX_WIDTH, round(im.height * MAX_WIDTH / im.width)), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    if buf.tell() <= MAX_IMAGE_BYTES:
        return "image/png", base64.b64encode(buf.getvalue()).decode()
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=82, optimize=True)
    return "image/jpeg", base64.b64encode(buf.getvalue()).decode()


def _clean(nb):
    """A copy of ``nb`` fit for a static page: no widget state or views, code hidden, images smaller."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outs = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None:
                if data.pop("application/vnd.jupyter.widget-view+json", None) is not None:
                    data.clear()  # its text form is a widget's repr: say what is there instead
                    data["text/markdown"] = ("*An interactive widget stands here in a live kernel: open the notebook "
                                             "in JupyterLab (`make lab`) to use it.*")
                if "image/png" in data:
                    png = data.pop("image/png")
                    mime, b64 = _shrink_png(png if isinstance(png, str) else "".join(png))
                    data[mime] = b64
                if not data:
                    continue
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                continue  # progress bars and warnings: not part of the reading
            outs.append(out)
        cell["outputs"] = outs
    return nb


def _markdown_cell(text: str):
    import nbformat  # lazy: only rendering needs the notebook tools

    return nbformat.v4.new_markdown_cell(text)


_STYLE = re.compile(r"<style\b[^>]*>.*?</style>", re.I | re.S)


def _share_styles(html: str, out: Path) -> str:
    """Move the page's inline style sheets (the same on every page) into one ``style-<hash>.css`` file."""
    head_end = html.find("</head>")
    if head_end < 0:
        return html
    head, body = html[:head_end], html[head_end:]
    blocks = _STYLE.findall(head)
    if not blocks:
        return html
    css = "\n".join(re.sub(r"^<style\b[^>]*>|</style>$", "", b.strip(), flags=re.I) for b in blocks)
    name = f"style-{hashlib.sha256(css.encode()).hexdigest()[:10]}.css"
    (out / name).write_text(css, encoding="utf-8")
    first = head.find(blocks[0])
    head = head[:first] + f'<link rel="stylesheet" href="{name}">' + _STYLE.sub("", head[first:])
    return head + body


def _export(nb, title: str) -> str:
    from nbconvert import HTMLExporter  # lazy: only rendering needs the notebook tools

    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    nb = copy.deepcopy(nb)
    nb.metadata["title"] = title
    for i, cell in enumerate(nb.cells):  # ids by position: the same book renders to the same files
        cell["id"] = f"cell-{i}"
    html, _ = exporter.from_notebook_node(nb)
    return strip_remote(html)


def _results_notebook(stem: str, results: Path, figures: Path, profile: str):
    """A page made from a notebook's committed tables and figures (it was not executed here)."""
    import nbformat  # lazy: only rendering needs the notebook tools

    tables, figs = PAGE_FILES.get(stem, ((), ()))
    cells = [_markdown_cell(
        f"*This page shows the committed results of notebook `{stem}` for the `{profile}` profile: its tables "
        f"(`results/{profile}/`) and figures (`figures/{profile}/`). The notebook itself was not executed for "
        f"this render (it trains models for hours); `python -m mosslib book --profile {profile}` re-makes it.*")]
    found = 0
    for pattern in tables:
        for path in sorted(results.glob(pattern)):
            if path.suffix == ".md":
                text = path.read_text()
            else:
                import pandas as pd  # lazy: pandas is slow to import and only this table needs it

                frame = pd.read_csv(path, comment="#")
                if frame.empty:
                    continue
                text = f"### {path.name}\n\n" + markdown_table(frame.astype(str))
            cells.append(_markdown_cell(text))
            found += 1
    for pattern in figs:
        for path in sorted(figures.glob(pattern)):
            cell = nbformat.v4.new_code_cell("")
            cell.outputs = [nbformat.v4.new_output("display_data", data={
                "image/png": base64.b64encode(path.read_bytes()).decode(), "text/plain": path.name})]
            cells.append(_markdown_cell(f"**{path.name}**"))
            cells.append(cell)
            found += 1
    if not found:
        return None
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    return nb


def _page_notebook(stem: str, build: Path, results: Path, figures: Path, profile: str, fallback: bool):
    executed = build / f"{stem}.ipynb"
    # the book writes the stamp when a notebook finishes and removes it when one starts: a notebook
    # without it is being executed (papermill writes as it goes) or failed, and is no page
    if executed.is_file() and (build / f"{stem}.stamp.json").is_file():
        import nbformat  # lazy: only rendering needs the notebook tools

        return nbformat.read(executed, as_version=4), "executed"
    if fallback:
        nb = _results_notebook(stem, results, figures, profile)
        if nb is not None:
            return nb, "results"
    return None, "missing"


def _local_links(html: str, pages: dict[str, Page], audit: bool) -> str:
    """Links between executed notebooks (``NN_name.ipynb``) and to the audit's Markdown, made links between pages."""
    def page(m):
        stem = m.group(2)
        return f'{m.group(1)}{stem}.html"' if stem in pages and pages[stem].source != "missing" else m.group(0)

    html = re.sub(r'(href=")(?:\./)?(\d\d_[A-Za-z0-9_]+)\.ipynb"', page, html)
    if audit:
        html = re.sub(r'href="(?:\.\./)*docs/release-audit\.md"', f'href="{AUDIT}.html"', html)
    return html


def _ledger_link(claim, pages: dict[str, Page]) -> str:
    page = pages.get(claim.page)
    return page.href if page and page.source != "missing" else ""


def render_site(profile: str, build_dir: str | os.PathLike = "build", results_dir: str | os.PathLike = "results",
                figures_dir: str | os.PathLike = "figures", notebooks: str | os.PathLike = "notebooks",
                out: str | os.PathLike | None = None, data_root: str | None = None, fallback: bool = False,
                audit: str | os.PathLike | None = None, cpu_book: str | None = None) -> dict:
    """Render the profile's book into ``out`` (default ``build/<profile>/site``); returns what was written."""
    import nbformat  # lazy: only rendering needs the notebook tools

    build = Path(build_dir) / profile
    results = Path(results_dir) / profile
    figures = Path(figures_dir) / profile
    out = Path(out) if out is not None else build / "site"

    audit = Path(audit) if audit is not None else repo_root() / "docs" / "release-audit.md"
    if cpu_book is None:
        target = repo_root() / ledger.CPU_BOOK
        cpu_book = os.path.relpath(target, out.resolve()) if out.resolve() != target.parent else "index.html"
    out.mkdir(parents=True, exist_ok=True)
    stems = [p.stem for p in find_notebooks(notebooks)]
    pages: dict[str, Page] = {}
    nbs = {}
    for stem in stems:
        nb, source = _page_notebook(stem, build, results, figures, profile, fallback)
        pages[stem] = Page(stem, PAGE_TITLES.get(stem, stem), source, f"{stem}.html")
        nbs[stem] = nb
    nav = [Page("index", "Claims ledger", "index", "index.html")] + [p for p in pages.values() if p.source != "missing"]
    if audit.is_file():
        nav.append(Page(AUDIT, "Release audit", "audit", f"{AUDIT}.html"))
    written = []
    claims = ledger.build_ledger(results, profile)
    # the index: the ledger first, then the pages
    head = header_markdown(profile, results, data_root, nav, "index", cpu_book)
    ledger_md = ledger.ledger_markdown(claims, profile, link=lambda c: _ledger_link(c, pages),
                                       audit_link=f"{AUDIT}.html" if audit.is_file() else "", banner_link=cpu_book,
                                       heading=f"# Did MOSS reproduce? The claims ledger (`{profile}`)")
    listing = ["## The pages", ""]
    for p in pages.values():
        how = {"executed": "the executed notebook", "results": "its committed tables and figures (not re-executed here)",
               "missing": "not rendered: no executed notebook and no committed results"}[p.source]
        listing.append(f"- [{p.title}]({p.href}) (`{p.stem}`): {how}" if p.source != "missing" else f"- {p.title} (`{p.stem}`): {how}")
    if audit.is_file():
        listing.append(f"- [Release audit]({AUDIT}.html): what the authors' public release does, and what this project does instead")
    index = nbformat.v4.new_notebook()
    index.cells = [_markdown_cell(head), _markdown_cell(ledger_md), _markdown_cell("\n".join(listing) + "\n")]
    for old in out.glob("style-*.css"):
        old.unlink()
    (out / "index.html").write_text(_share_styles(_export(index, f"MOSS reproduction book ({profile}): claims ledger"), out),
                                    encoding="utf-8")
    written.append(out / "index.html")
    for stem, nb in nbs.items():
        if nb is None:
            continue
        page = _clean(nb)
        page.cells.insert(0, _markdown_cell(header_markdown(profile, results, data_root, nav, stem, cpu_book)))
        html = _local_links(_export(page, f"{pages[stem].title} ({profile})"), pages, audit.is_file())
        (out / f"{stem}.html").write_text(_share_styles(html, out), encoding="utf-8")
        written.append(out / f"{stem}.html")
    if audit.is_file():
        doc = nbformat.v4.new_notebook()
        doc.cells = [_markdown_cell(header_markdown(profile, results, data_root, nav, AUDIT, cpu_book)),
                     _markdown_cell(re.sub(r"\]\((?:\.\./)*results/[^/)]+/ledger\.md\)", "](index.html)",
                                           audit.read_text(encoding="utf-8")))]
        (out / f"{AUDIT}.html").write_text(_share_styles(_export(doc, f"Release audit ({profile})"), out), encoding="utf-8")
        written.append(out / f"{AUDIT}.html")
    missing = [p.stem for p in pages.values() if p.source == "missing"]
    from_results = [p.stem for p in pages.values() if p.source == "results"]
    written += sorted(out.glob("style-*.css"))
    size = sum(p.stat().st_size for p in written)
    _say(f"{out}/index.html: {len(written)} pages, {size / 1e6:.1f} MB"
         + (f"; from committed results: {', '.join(from_results)}" if from_results else "")
         + (f"; missing: {', '.join(missing)}" if missing else ""))
    return {"out": out, "pages": pages, "written": written, "missing": missing, "from_results": from_results,
            "claims": claims}


# -- command line -----------------------------------------------------------------------------------
def add_arguments(p) -> None:
    p.add_argument("--profile", default="quick", help="smoke | quick (default) | cpu | paper")
    p.add_argument("--data", default=os.environ.get("DATA_ROOT", ""), help="data root (names the data in the header)")
    p.add_argument("--build", default="build", help="executed notebooks are read from BUILD/<profile>/")
    p.add_argument("--results", default="results", help="tables are read from RESULTS/<profile>/")
    p.add_argument("--figures", default="figures", help="figures are read from FIGURES/<profile>/")
    p.add_argument("--notebooks", default="notebooks", help="folder of NN_name.py notebooks (the page order)")
    p.add_argument("--out", default=None, help="the site's folder (default BUILD/<profile>/site)")
    p.add_argument("--from-results", action="store_true",
                   help="render a notebook that was not executed from its committed tables and figures")
    p.add_argument("--ledger", action="store_true", help="also (re)write RESULTS/<profile>/ledger.{md,csv,json}")


def run(args) -> int:
    if args.ledger:
        ledger.write_ledger(Path(args.results) / args.profile, args.profile)
    try:
        render_site(args.profile, args.build, args.results, args.figures, args.notebooks, args.out,
                    data_root=args.data or None, fallback=args.from_results)
    except Exception as exc:  # nbconvert and file errors: one line, exit 1
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
