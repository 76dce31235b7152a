#!/usr/bin/env bash
# End-to-end browser tests (`make e2e`), in headless Debian chromium driven by Playwright (no
# browser download): the memory explorer (JupyterLab on 127.0.0.1 with a token, 05_memory opened,
# all cells run, the item slider moved, the attention image checked) and the HTML book (the smoke
# book executed, its index.html opened from the file system, the ledger's link followed to the
# Table 1 page). Screenshots: build/e2e/.
# Installs Debian's chromium when missing (as root) and playwright into the venv when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PLAYWRIGHT_VERSION=${PLAYWRIGHT_VERSION:-1.65.2}

if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo ">> installing Debian's chromium"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "e2e: Debian's chromium is missing (sudo apt-get install chromium, or set CHROMIUM=/path)" >&2
        exit 1
    fi
fi
if ! "$PY" -c "import playwright" 2>/dev/null; then
    echo ">> installing playwright==$PLAYWRIGHT_VERSION into $PY's environment (its driver only, no browser)"
    "$PY" -m pip install -q --disable-pip-version-check -c constraints.txt "playwright==$PLAYWRIGHT_VERSION"
fi
mkdir -p build/e2e
MOSS_E2E=1 exec "$PY" -m pytest -q -s -p no:cacheprovider tests/e2e "$@"
