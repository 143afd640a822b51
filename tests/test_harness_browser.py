"""The real-browser harness, proved with a plain ipywidgets Button in JupyterLab.

Needs Debian's chromium, playwright and jupyterlab (``.ci/install-browser.sh``);
skipped with the reason if one is missing (never in CI).  Run alone with ``pytest -m browser``.
"""

from __future__ import annotations

import sys

from browser_harness import (
    ChromiumBrowser,
    JupyterLabServer,
    browser_marks,
    write_notebook,
)

pytestmark = browser_marks()

BUTTON_CELL = """\
import ipywidgets as widgets
label = widgets.Label(value="not clicked")
button = widgets.Button(description="Click me")
button.on_click(lambda b: setattr(label, "value", "clicked!"))
widgets.VBox([button, label])
"""


def test_button_clicked_in_jupyterlab_updates_label(tmp_path):
    write_notebook(tmp_path, "button.ipynb", ["import sys; print(sys.executable)", BUTTON_CELL])
    with JupyterLabServer(tmp_path) as server, ChromiumBrowser() as browser:
        nb = browser.open_notebook(server, "button.ipynb")
        assert nb.kernel_name == "python3"
        nb.run_all_cells()
        nb.wait_for_text(sys.executable)  # the kernel is this venv's Python
        nb.wait_for_text("not clicked")
        # The label has not changed by itself: only the click changes it.
        assert nb.page.locator(".jp-OutputArea").get_by_text("clicked!", exact=True).count() == 0

        nb.click_button("Click me")
        nb.wait_for_text("clicked!")
        shot = nb.screenshot("browser-harness-button-clicked")
    assert shot.stat().st_size > 10_000, f"screenshot {shot} looks empty"
