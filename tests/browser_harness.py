"""A real JupyterLab in a real browser, for the few tests that need one.

* ``JupyterLabServer`` starts ``jupyter lab`` of this venv on 127.0.0.1 on a
  free port, with a token, a temporary root dir and private Jupyter/IPython
  config, data and runtime dirs (no user settings, workspaces or kernels leak
  in), announcements and update checks off, and ``window.jupyterapp``
  exposed so the page can be driven through JupyterLab's command registry.
* ``ChromiumBrowser`` drives Debian's ``/usr/bin/chromium`` headless through
  Playwright's sync API (never a Playwright browser download), with a fresh
  profile, and a host resolver that only resolves localhost so the page
  cannot reach the network.
* ``NotebookPage`` opens a notebook by URL, runs all cells, clicks buttons,
  waits for text, and saves screenshots under ``test-artifacts/``.

``browser_unavailable_reason()`` says why a browser test must be skipped
(chromium or playwright or jupyterlab missing: run ``.ci/install-browser.sh``).

Example::

    with JupyterLabServer(root) as server, ChromiumBrowser() as browser:
        nb = browser.open_notebook(server, "demo.ipynb")
        nb.run_all_cells()
        nb.click_button("Click me")
        nb.wait_for_text("clicked!")
        nb.screenshot("demo")
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
import pytest

__all__ = [
    "ARTIFACTS_DIR",
    "CHROMIUM",
    "ChromiumBrowser",
    "JupyterLabServer",
    "NotebookPage",
    "browser_marks",
    "browser_unavailable_reason",
    "write_notebook",
]

log = logging.getLogger("llmgine_nb.tests.browser")

CHROMIUM = "/usr/bin/chromium"
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Screenshots and server logs are kept here (git-ignored).
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Only localhost resolves: the page cannot reach the network.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


def browser_unavailable_reason() -> str | None:
    """Why a real-browser test cannot run here, or None if it can."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing; run .ci/install-browser.sh (as root) to install Debian's chromium."
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed; run .ci/install-browser.sh to pip install it into the venv."
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "jupyterlab is not installed; run .ci/install-browser.sh to pip install it into the venv."
    return None


def browser_marks() -> list[pytest.MarkDecorator]:
    """Marks for a real-browser test: skipped with the reason on a developer's
    machine that lacks the tools, but never in CI (``CI`` set), where a missing
    browser must fail loudly instead of passing as a skip."""
    reason = browser_unavailable_reason()
    return [pytest.mark.browser, pytest.mark.skipif(reason is not None and not os.environ.get("CI"), reason=reason or "")]


def write_notebook(root_dir: str | os.PathLike[str], name: str, cells: list[str]) -> Path:
    """Write a python3 notebook of code cells into ``root_dir``; returns its path."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    path = Path(root_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterLabServer:
    """``jupyter lab`` on 127.0.0.1, started and stopped by a test."""

    def __init__(self, root_dir: str | os.PathLike[str], *, startup_timeout: float = 60.0,
                 log_name: str = "jupyterlab-server.log",
                 env: dict[str, str] | None = None) -> None:
        """``root_dir`` is served as the file browser root; ``env`` is added
        to the server's (and so the kernels') environment."""
        self.root_dir = Path(root_dir)
        self.startup_timeout = startup_timeout
        self.log_path = ARTIFACTS_DIR / log_name
        self.extra_env = dict(env or {})
        self.port = 0
        self.token = os.urandom(16).hex()
        self._proc: subprocess.Popen[bytes] | None = None
        self._home: str | None = None
        self._log_file: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """An absolute URL on the server carrying the token."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{sep}token={self.token}"

    def notebook_url(self, name: str) -> str:
        """The JupyterLab URL that opens notebook ``name`` (relative to root_dir)."""
        return self.url(f"/lab/tree/{name}")

    def start(self) -> JupyterLabServer:
        """Start the server and wait until its API answers."""
        self._home = tempfile.mkdtemp(prefix="llmgine-jlab-")
        config_dir = os.path.join(self._home, "config")
        os.makedirs(config_dir)
        lab_config = {"LabApp": {
            "expose_app_in_browser": True,     # window.jupyterapp for driving the page
            "news_url": None,                  # no announcement fetches
            "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            "extension_manager": "readonly",   # no PyPI queries
        }}
        with open(os.path.join(config_dir, "jupyter_lab_config.json"), "w") as f:
            json.dump(lab_config, f)
        # Never fetch news nor pop up the "get notified about news?" toast
        # over the page (it would cover widgets in screenshots).
        settings_dir = os.path.join(config_dir, "lab", "user-settings",
                                    "@jupyterlab", "apputils-extension")
        os.makedirs(settings_dir)
        with open(os.path.join(settings_dir, "notification.jupyterlab-settings"), "w") as f:
            json.dump({"fetchNews": "false", "checkForUpdates": False}, f)
        env = dict(os.environ)
        env.update({
            "JUPYTER_CONFIG_DIR": config_dir,
            "JUPYTER_DATA_DIR": os.path.join(self._home, "data"),
            "JUPYTER_RUNTIME_DIR": os.path.join(self._home, "runtime"),
            "IPYTHONDIR": os.path.join(self._home, "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
        })
        env.update(self.extra_env)
        self.port = _free_port()
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.open_browser=False",
            "--ServerApp.log_level=WARN",
            "--LabApp.expose_app_in_browser=True",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # CI containers run as root
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        self._log_file = open(self.log_path, "wb")
        self._proc = subprocess.Popen(cmd, env=env, cwd=str(self.root_dir),
                                      stdout=self._log_file, stderr=subprocess.STDOUT)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        status_url = self.url("/api/status")
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self._proc.returncode} "
                                   f"before answering; its log: {self.log_path}\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(status_url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (TimeoutError, urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise TimeoutError(f"jupyter lab did not answer on {self.base_url} within "
                           f"{self.startup_timeout}s; its log: {self.log_path}\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Shut the server down (kernels included) and remove its temp dirs."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # The shutdown API stops kernels cleanly; signals are the fallback.
            try:
                req = urllib.request.Request(self.url("/api/shutdown"), method="POST")
                urllib.request.urlopen(req, timeout=5).close()
            except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
                log.warning("jupyter lab shutdown request failed (%s); terminating it", exc)
                proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log.warning("jupyter lab did not stop within 15s; killing it")
                proc.kill()
                proc.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def __enter__(self) -> JupyterLabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ChromiumBrowser:
    """Headless Debian chromium driven by Playwright (sync API)."""

    def __init__(self, *, executable_path: str = CHROMIUM, headless: bool = True,
                 viewport: tuple[int, int] = (1280, 800), default_timeout_ms: int = 30_000) -> None:
        self.executable_path = executable_path
        self.headless = headless
        self.viewport = viewport
        self.default_timeout_ms = default_timeout_ms
        self._pw: Any = None
        self.context: Any = None
        self._profile: str | None = None
        #: Console messages and page errors, for diagnosing a failing test.
        self.console: list[str] = []

    def start(self) -> ChromiumBrowser:
        """Launch chromium with a fresh profile directory."""
        from playwright.sync_api import sync_playwright

        self._profile = tempfile.mkdtemp(prefix="llmgine-chromium-")
        self._pw = sync_playwright().start()
        try:
            self.context = self._pw.chromium.launch_persistent_context(
                self._profile,
                executable_path=self.executable_path,
                headless=self.headless,
                args=CHROMIUM_ARGS,
                viewport={"width": self.viewport[0], "height": self.viewport[1]},
            )
        except BaseException:
            self.stop()
            raise
        self.context.set_default_timeout(self.default_timeout_ms)
        return self

    def new_page(self) -> Any:
        """A new tab whose console and errors are recorded in ``self.console``."""
        page = self.context.new_page()
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        return page

    def open_notebook(self, server: JupyterLabServer, name: str) -> NotebookPage:
        """Open notebook ``name`` of the server's root dir and wait until its kernel is ready."""
        page = self.new_page()
        page.goto(server.notebook_url(name))
        nb = NotebookPage(page, name, self)
        nb.wait_ready()
        return nb

    def stop(self) -> None:
        """Close the browser and remove its profile."""
        if self.context is not None:
            self.context.close()
            self.context = None
        if self._pw is not None:
            self._pw.stop()
            self._pw = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def __enter__(self) -> ChromiumBrowser:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Runs in the page: the notebook panel for `path`, once its document and
# kernel session are ready.
_READY_JS = """
async (path) => {
  const app = window.jupyterapp;
  await app.restored;
  const panel = app.shell.currentWidget;
  if (!panel || !panel.context || panel.context.path !== path) {
    throw new Error('current widget is ' + (panel && panel.context ? panel.context.path : panel));
  }
  await panel.context.ready;
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) { throw new Error('the notebook has no kernel'); }
  await kernel.info;
  return kernel.name;
}
"""

_RUN_ALL_JS = """
async () => {
  const app = window.jupyterapp;
  app.shell.activateById(app.shell.currentWidget.id);
  await app.commands.execute('notebook:run-all-cells');
}
"""

# Runs in the page: null while cells are still queued or running, else the
# errors shown by code cells ([] when every cell ran cleanly).  Run-all stops
# at the first failing cell, so an error also means "finished".
_RUN_STATE_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const errors = [];
  for (const c of cells) {
    for (const o of c.model.outputs.toJSON()) {
      if (o.output_type === 'error') { errors.push(o.ename + ': ' + o.evalue); }
    }
  }
  const busy = !kernel || kernel.status !== 'idle'
    || cells.some(c => c.model.executionState === 'running'
                       || c.promptNode && c.promptNode.textContent.includes('*'));
  if (busy) { return null; }
  if (errors.length === 0 && cells.some(c => c.model.executionCount === null)) { return null; }
  return errors;
}
"""


class NotebookPage:
    """One JupyterLab notebook tab in the browser."""

    def __init__(self, page: Any, name: str, browser: ChromiumBrowser) -> None:
        self.page = page
        self.name = name
        self.browser = browser
        self.kernel_name: str | None = None

    def wait_ready(self, timeout_ms: int = 60_000) -> None:
        """Wait for JupyterLab to load this notebook and start its kernel."""
        self.page.wait_for_function(
            "(path) => window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.context"
            " && window.jupyterapp.shell.currentWidget.context.path === path",
            arg=self.name, timeout=timeout_ms)
        self.kernel_name = self.page.evaluate(_READY_JS, self.name)

    def run_all_cells(self, timeout_ms: int = 60_000, *, allow_errors: bool = False) -> None:
        """Run every cell (JupyterLab's ``notebook:run-all-cells``) and wait
        until none is queued or running; raise if a cell showed an error."""
        self.page.evaluate(_RUN_ALL_JS)
        errors = self.page.wait_for_function(_RUN_STATE_JS, timeout=timeout_ms).json_value()
        if errors and not allow_errors:
            raise AssertionError(f"Running all cells of {self.name} in the browser failed: "
                                 + "; ".join(errors))

    def button(self, text: str) -> Any:
        """The widget button showing ``text`` (a Playwright locator)."""
        return self.page.locator(".jp-OutputArea button.jupyter-button",
                                 has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))

    def click_button(self, text: str, timeout_ms: int = 30_000) -> None:
        """Click the widget button showing ``text`` with the mouse, as a user does."""
        button = self.button(text)
        button.wait_for(state="visible", timeout=timeout_ms)
        button.click()

    def wait_for_text(self, text: str, timeout_ms: int = 30_000) -> Any:
        """Wait until ``text`` is visible in the notebook's outputs; returns the locator."""
        found = self.page.locator(".jp-OutputArea").get_by_text(text, exact=True)
        found.first.wait_for(state="visible", timeout=timeout_ms)
        return found.first

    def screenshot(self, name: str) -> Path:
        """Save a full-page PNG as ``test-artifacts/<name>.png``; returns its path."""
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        path = ARTIFACTS_DIR / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path
