"""Fixtures of the browser test: Debian's chromium, a JupyterLab server on 127.0.0.1.

``MOSS_E2E`` decides what happens when playwright or chromium is missing: unset -> the test is
skipped (the normal ``pytest`` run); ``1`` -> it fails (``scripts/e2e.sh``, ``make e2e``);
``0`` -> the test is always skipped (e.g. a CI that runs ``make e2e`` on its own).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build" / "e2e"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def _unavailable(reason: str):
    if os.environ.get("MOSS_E2E") == "1":
        pytest.fail(f"browser test required (MOSS_E2E=1) but {reason}")
    pytest.skip(reason)


def chromium_path() -> str | None:
    """``$CHROMIUM`` or Debian's ``chromium`` on PATH (never a downloaded browser)."""
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    if os.environ.get("MOSS_E2E") == "0":
        pytest.skip("browser test disabled (MOSS_E2E=0)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright; no browser download needed)")
    path = chromium_path()
    if path is None:
        _unavailable("Debian's chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def chromium_args() -> list[str]:
    """Flags for an offline, sandbox-free headless chromium (the profile dir is made fresh)."""
    return list(CHROMIUM_ARGS)


@pytest.fixture
def browser_page(chromium, chromium_args, build_dir):
    """``with browser_page("book") as (page, step):`` a page of a fresh headless chromium (1400x1000,
    its own profile folder); ``step(msg)`` prints a timed progress line. When the block raises, a
    screenshot goes to ``build/e2e/<name>_failure.png``; the browser is closed either way."""
    from playwright.sync_api import sync_playwright

    @contextlib.contextmanager
    def open_page(name: str, timeout_ms: int = 30_000):
        t0 = time.monotonic()

        def step(message: str) -> None:
            print(f"[e2e {name} {time.monotonic() - t0:6.1f} s] {message}", flush=True)

        with tempfile.TemporaryDirectory(prefix="moss-chromium-") as profile_dir, sync_playwright() as pw:
            step(f"launching {chromium}")
            context = pw.chromium.launch_persistent_context(
                profile_dir, executable_path=chromium, headless=True, args=chromium_args,
                viewport={"width": 1400, "height": 1000}, timeout=60_000,
            )
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            try:
                yield page, step
            except Exception:
                shot = build_dir / f"{name}_failure.png"
                page.screenshot(path=str(shot))
                step(f"failed; screenshot in {shot}")
                raise
            finally:
                context.close()

    return open_page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def build_dir() -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    return BUILD


@pytest.fixture(scope="session")
def jupyterlab(chromium, build_dir):
    """A JupyterLab server on 127.0.0.1 with a random free port and a token, serving build/e2e.

    Yields the base URL and the token; the server (started here) is stopped by its pid.
    """
    port, token = free_port(), secrets.token_hex(16)
    home = build_dir / "jupyter"
    for sub in ("config", "data", "runtime", "settings", "workspaces"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={build_dir}", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(build_dir / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, cwd=build_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}; see {build_dir / 'jupyterlab.log'}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not answer on {base} in 90 s; see {build_dir / 'jupyterlab.log'}")
                time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
