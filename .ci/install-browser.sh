#!/usr/bin/env bash
# Install what the real-browser tests need, idempotently:
#   - Debian's chromium (+ a font so pages render text) via apt-get, only if
#     /usr/bin/chromium is missing and we are root;
#   - playwright (Python driver only) and jupyterlab into the venv given as $1
#     (default: .venv), only if they are not importable there.
# Never runs `playwright install`: the tests drive /usr/bin/chromium, no
# browser download is needed (or possible without network).
set -euo pipefail

VENV="${1:-.venv}"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    echo "install-browser.sh: no Python at $PY; create the venv first or pass its path as the first argument." >&2
    exit 2
fi

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-browser.sh: /usr/bin/chromium is missing and we are not root; run as root or 'apt-get install chromium fonts-dejavu-core'." >&2
        exit 2
    fi
    echo "install-browser.sh: installing Debian chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
else
    echo "install-browser.sh: /usr/bin/chromium already present"
fi

missing=()
"$PY" -c "import playwright.sync_api" >/dev/null 2>&1 || missing+=(playwright)
"$PY" -c "import jupyterlab" >/dev/null 2>&1 || missing+=(jupyterlab)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-browser.sh: pip installing ${missing[*]} into $VENV"
    "$PY" -m pip install -q "${missing[@]}"
else
    echo "install-browser.sh: playwright and jupyterlab already installed in $VENV"
fi
