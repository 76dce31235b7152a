"""End-to-end: 05_memory in JupyterLab, in headless Debian chromium driven by Playwright.

The notebook is converted from notebooks/05_memory.py with jupytext into build/e2e/, its
parameters set for the ``smoke`` profile (papermill, prepare only: nothing executed), and the
smoke run trained beforehand so the browser only runs the notebook. The test runs all cells,
moves the item slider and checks that the attention image changed. Screenshots go to
build/e2e/. Run it with ``make e2e`` (scripts/e2e.sh).
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "05_memory.ipynb"


@pytest.fixture(scope="session")
def notebook(chromium, build_dir) -> Path:
    """build/e2e/05_memory.ipynb with smoke parameters, the smoke run trained in build/e2e/runs."""
    import jupytext
    import papermill

    from mosslib.method.runs import trained

    runs = build_dir / "runs"
    trained("smoke", "full", None, runs_dir=runs, quiet=True)
    plain = build_dir / "05_memory.plain.ipynb"
    jupytext.write(jupytext.read(REPO / "notebooks" / "05_memory.py"), plain)
    out = build_dir / NOTEBOOK
    papermill.execute_notebook(
        str(plain), str(out), prepare_only=True, progress_bar=False,
        parameters=dict(profile="smoke", runs_dir=str(runs), figures_dir=str(build_dir / "figures"),
                        results_dir=str(build_dir / "results")),
    )
    return out


def _png_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def test_memory_explorer_in_a_browser(notebook, jupyterlab, build_dir, browser_page):
    base, token = jupyterlab
    shots = build_dir
    with browser_page("explorer", timeout_ms=60_000) as (page, step):
        step("opening the notebook in JupyterLab")
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}&reset")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('notebook:run-all-cells')")
        step("waiting for an idle kernel")
        page.wait_for_function(
            "() => { const p = window.jupyterapp.shell.currentWidget;"
            " const k = p && p.sessionContext && p.sessionContext.session && p.sessionContext.session.kernel;"
            " return k && k.status === 'idle'; }", timeout=120_000)
        step("running all cells")
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        attention = page.locator("img.moss-attention")
        attention.wait_for(state="visible", timeout=240_000)
        page.wait_for_function("() => { const i = document.querySelector('img.moss-attention');"
                               " return i && i.complete && i.naturalWidth > 0; }")
        step("explorer rendered")
        slider = page.locator(".moss-item")
        slider.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "explorer.png"))
        before_src = attention.get_attribute("src")
        before = attention.screenshot(path=str(shots / "attention_before.png"))
        readout = slider.locator(".widget-readout")
        item_before = readout.inner_text().strip()

        step(f"moving the item slider from {item_before}")
        handle = slider.locator(".noUi-handle")
        box = handle.bounding_box()
        track = slider.locator(".noUi-target").bounding_box()
        assert box and track, "slider not rendered"
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        right = box["x"] < track["x"] + track["width"] / 2
        page.mouse.move(track["x"] + track["width"] * (0.75 if right else 0.25), box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        page.wait_for_function(
            "(old) => { const r = document.querySelector('.moss-item .widget-readout');"
            " return r && r.innerText.trim() !== old; }", arg=item_before, timeout=30_000)
        item_after = readout.inner_text().strip()
        step(f"item is now {item_after}; waiting for the attention image to change")
        page.wait_for_function(
            "(old) => { const i = document.querySelector('img.moss-attention');"
            " return i && i.src !== old && i.complete && i.naturalWidth > 0; }", arg=before_src, timeout=60_000)
        time.sleep(0.3)  # let the new image paint
        after = attention.screenshot(path=str(shots / "attention_after.png"))
        page.screenshot(path=str(shots / "explorer_moved.png"))
        step("done")
    assert item_after != item_before
    assert _png_digest(before) != _png_digest(after), "the attention image did not change after moving the item"
    for name in ("explorer.png", "attention_before.png", "attention_after.png", "explorer_moved.png"):
        assert (shots / name).stat().st_size > 0
