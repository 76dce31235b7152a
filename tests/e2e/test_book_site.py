"""End-to-end: the smoke-profile HTML book in headless Debian chromium driven by Playwright.

The smoke book is executed (``mosslib.apps.book.run_book``, everything under build/e2e/book/), which
ends by rendering its static site. The browser opens ``index.html`` from the file system, checks
that the claims ledger comes first, follows the ledger's link to the Table 1 page, and finds the
table there with the profile named beside it. Screenshots go to build/e2e/. Run it with
``make e2e`` (scripts/e2e.sh).
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def smoke_site(chromium, build_dir) -> Path:
    """build/e2e/book/build/smoke/site/index.html of a freshly executed smoke book."""
    from mosslib.apps import book

    root = build_dir / "book"
    rc = book.run_book("smoke", data_root="", notebooks=REPO / "notebooks", build_dir=root / "build",
                       results_dir=str(root / "results"), figures_dir=str(root / "figures"), runs_dir=str(root / "runs"),
                       keep_going=True, progress=False)
    index = root / "build" / "smoke" / "site" / "index.html"
    assert rc == 0 and index.is_file(), f"the smoke book failed (exit {rc}) or wrote no {index}"
    return index


def test_the_smoke_book_reads_in_a_browser(smoke_site, build_dir, browser_page):
    requests: list[str] = []
    with browser_page("book") as (page, step):
        page.on("request", lambda r: requests.append(r.url))
        step(f"opening {smoke_site.as_uri()}")
        page.goto(smoke_site.as_uri())
        heading = page.locator("h1", has_text="claims ledger")
        heading.wait_for(state="visible")
        ledger = page.locator("table", has_text="Verdict").first
        assert ledger.is_visible()
        assert page.locator("blockquote", has_text="pipeline demonstration at toy scale, not evidence").first.is_visible()
        page.screenshot(path=str(build_dir / "book_index.png"))

        step("following the ledger's link to the Table 1 page")
        link = ledger.locator("a", has_text="Table 1").first
        with page.expect_navigation():
            link.click()
        assert page.url.endswith("/01_ddn_sirr.html"), page.url
        block = page.locator(".jp-RenderedMarkdown", has=page.locator("h3", has_text="Table 1:")).first
        block.wait_for(state="visible")
        table = block.locator("table").first
        assert table.is_visible()
        text = block.inner_text()
        assert "profile: smoke" in text, text[:500]
        assert "(reported)" in table.inner_text() and "MOSS (this book)" in table.inner_text()
        # the page's header names the profile too, and links back to the ledger
        header = page.locator(".jp-RenderedMarkdown").first.inner_text()
        assert "profile: smoke" in header and "metric convention" in header and "seeds" in header
        assert page.locator("a", has_text="Claims ledger").first.is_visible()
        table.scroll_into_view_if_needed()
        page.screenshot(path=str(build_dir / "book_table1.png"))
        step("done")
    remote = [u for u in requests if u.startswith(("http:", "https:"))]
    assert not remote, f"the book asked the network for {remote[:5]}"
