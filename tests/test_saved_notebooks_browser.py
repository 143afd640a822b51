"""Saved notebooks read well without running them: JupyterLab and nbconvert's HTML, in Debian's chromium.

Each tutorial and example notebook is copied as saved into a fresh
JupyterLab (a new data dir: every notebook opens untrusted, so HTML outputs
go through JupyterLab's sanitizer) and opened without running a cell.  The
page must show every chart and timeline as graphics (coloured marks with a
size), no "Error displaying widget: model not found", no chart text run
together, and no output typeset as maths.  The same notebooks converted with
``jupyter nbconvert --to html`` are checked the same way.  Screenshots of the
charts and pages are kept in ``test-artifacts/saved-notebooks/``.

Needs chromium, playwright and jupyterlab (``.ci/install-browser.sh``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from browser_harness import ARTIFACTS_DIR, REPO_ROOT, ChromiumBrowser, JupyterLabServer, browser_marks, write_notebook

pytestmark = browser_marks()

NOTEBOOKS = sorted((REPO_ROOT / "tutorials").glob("*.ipynb")) + sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
SHOTS = ARTIFACTS_DIR / "saved-notebooks"

#: What an SVG chart left behind once a sanitizer stripped it: its title run into its tick labels.
RUN_TOGETHER = re.compile(r"\(cumulative(, USD)?\)\$?\d|no turns recorded yet|nothing recorded yet")

# Runs in the page: for each chart, its title and the marks (bars, lines, points)
# that show as something: a size and a colour that is not transparent.
CHARTS_JS = """
(root) => [...(root || document).querySelectorAll('.llmgine-chart')].map(chart => {
  const marks = [...chart.querySelectorAll('.llmgine-mark')].filter(m => {
    const box = m.getBoundingClientRect();
    const colour = getComputedStyle(m).backgroundColor;
    return box.width > 0 && box.height > 0 && colour !== 'rgba(0, 0, 0, 0)' && colour !== 'transparent';
  });
  return {title: chart.getAttribute('title') || chart.textContent.slice(0, 40), marks: marks.length,
          total: chart.querySelectorAll('.llmgine-mark').length};
})
"""


def saved_charts(path: Path) -> int:
    """How many charts the saved outputs of a notebook hold."""
    nb = json.loads(path.read_text())
    count = 0
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html", "")
            count += "".join(html).count('class="llmgine-chart') if isinstance(html, list) else html.count(
                'class="llmgine-chart')
    return count


def test_saved_outputs_hold_no_svg_nor_bare_dollar_pairs():
    """The files themselves: no SVG (untrusted JupyterLab strips it) and no ``$`` a Markdown renderer pairs."""
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        for index, cell in enumerate(nb["cells"]):
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                for mime in ("text/html", "text/markdown"):
                    text = "".join(data.get(mime, ""))
                    where = f"{path.name} cell {index} ({mime})"
                    assert "<svg" not in text, f"{where}: SVG inside HTML is stripped from untrusted notebooks"
                    outside_code = re.sub(r"```.*?```|`[^`]*`|<pre.*?</pre>", "", text, flags=re.S)
                    assert "$" not in outside_code, f"{where}: a bare $ may pair with another and typeset as maths"


def _check_page(page, name: str, expected_charts: int) -> None:
    text = page.evaluate("() => document.body.textContent")
    assert "model not found" not in text and "Error displaying widget" not in text, (
        f"{name}: a widget output shows an error once the kernel is gone")
    found = RUN_TOGETHER.search(page.evaluate("() => document.body.innerText"))
    assert found is None, f"{name}: chart text shown as text ({found.group(0)!r})"
    maths = page.evaluate("() => document.querySelectorAll('.jp-OutputArea mjx-container, .output_area .MathJax').length")
    assert maths == 0, f"{name}: {maths} pieces of an output typeset as maths"
    charts = page.evaluate(CHARTS_JS, None)
    assert len(charts) == expected_charts, f"{name}: {len(charts)} charts on the page, {expected_charts} saved"
    for chart in charts:
        assert chart["marks"] >= 1 and chart["marks"] == chart["total"], f"{name}: a chart shows no graphics: {chart}"


TRUST_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  for (const cell of panel.content.model.cells) { cell.trusted = true; }
}
"""


def _settle(page) -> None:
    """Wait until outputs have rendered and widget managers have given up on models the file lacks."""
    page.wait_for_timeout(1500)
    page.wait_for_function("() => !document.body.textContent.includes('Loading widget')", timeout=30_000)
    page.wait_for_timeout(1500)


def _screenshots(page, stem: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for index, chart in enumerate(page.locator(".llmgine-chart").all()):
        chart.scroll_into_view_if_needed()
        chart.screenshot(path=str(SHOTS / f"{stem}-chart-{index}.png"))
    page.screenshot(path=str(SHOTS / f"{stem}-page.png"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_notebook_renders_in_jupyterlab_untrusted_and_trusted(path, lab):
    """Untrusted: as downloaded (the sanitizer's path).  Trusted: as one's own notebook reopened
    after the kernel is gone (widget outputs render as widgets, or fail as "model not found")."""
    server, browser, root = lab
    page = browser.new_page()
    page.goto(server.url(f"/lab/tree/{path.name}?reset"))  # ?reset: no tab of another notebook restored
    page.wait_for_function(
        "(path) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return w && w.context && w.context.path === path && w.context.isReady; }", arg=path.name, timeout=60_000)
    _settle(page)
    trusted = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.cells.get(0).trusted")
    assert not trusted, "the notebook must open untrusted, as a downloaded one does"
    _screenshots(page, f"{path.stem}-untrusted")
    _check_page(page, f"{path.name} (untrusted)", saved_charts(path))

    page.evaluate(TRUST_JS)
    _settle(page)
    _screenshots(page, f"{path.stem}-trusted")
    _check_page(page, f"{path.name} (trusted)", saved_charts(path))
    page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.shutdown(); }")
    page.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    for path in NOTEBOOKS:
        shutil.copy(path, root / path.name)
    env = {"LLMGINE_DB": str(root / "llmgine.db"), "LLMGINE_MODEL": "", "OPENAI_API_KEY": ""}
    with JupyterLabServer(root, env=env, log_name="jupyterlab-saved-notebooks.log") as server, \
            ChromiumBrowser(viewport=(1280, 1000)) as browser:
        yield server, browser, root


def test_nbconvert_html_shows_charts_and_no_widget_errors(tmp_path, lab):
    """``jupyter nbconvert --to html``: the static page a notebook becomes (opened offline)."""
    out = tmp_path / "html"
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", "--output-dir", str(out),
                    *map(str, NOTEBOOKS)], check=True, capture_output=True, timeout=300)
    browser = lab[1]
    for path in NOTEBOOKS:
        html = out / f"{path.stem}.html"
        assert "<svg" not in html.read_text().split("</head>", 1)[1].split("jp-Notebook", 1)[1], (
            f"{html.name}: an output is SVG")
        page = browser.new_page()
        page.goto(html.as_uri())
        page.wait_for_timeout(500)
        _check_page(page, html.name, saved_charts(path))
        _screenshots(page, f"{path.stem}-nbconvert")
        page.close()


EDIT_SETUP = '''\
from llmgine_nb import tool
from llmgine_nb.llm import ScriptedLLM, call
from llmgine_nb.notebook import runtime

@tool(risk="write", approval="always")
def send_report(recipients: list[str], subject: str, body: str) -> str:
    """Send a report by email."""
    return "sent"

runtime().use_llm(ScriptedLLM([call("send_report", recipients=["ada@example.org", "grace@example.org"],
    subject="Quarterly numbers, with the long title a real report has",
    body="Hello both,\\n\\nthe numbers are in. " + "Revenue grew in every region we track. " * 6)]))
'''

# Runs in the page: how the card's parts fit once the editor is open.
FIT_JS = """
(card) => {
  const area = card.querySelector('textarea'), output = card.closest('.jp-OutputArea-output');
  const box = card.getBoundingClientRect(), a = area.getBoundingClientRect();
  return {cardScroll: card.scrollWidth, cardWidth: card.clientWidth, outputScroll: output.scrollWidth,
          outputWidth: output.clientWidth, cardLeft: box.left, cardRight: box.right,
          areaLeft: a.left, areaRight: a.right, areaScroll: area.scrollHeight, areaHeight: area.clientHeight};
}
"""


def test_edit_arguments_panel_fits_the_card(lab):
    server, browser, root = lab
    write_notebook(root, "edit-arguments.ipynb", ["%load_ext llmgine_nb", EDIT_SETUP, "%llmgine Send the report"])
    nb = browser.open_notebook(server, "edit-arguments.ipynb")
    nb.run_all_cells()
    nb.click_button("Edit arguments")
    card = nb.page.locator(".llmgine-card")
    card.locator("textarea").wait_for(state="visible")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 760):  # a wide window, and a narrow one where the card is narrower than 52em
        nb.page.set_viewport_size({"width": width, "height": 1000})
        nb.page.wait_for_timeout(500)
        card.scroll_into_view_if_needed()
        card.screenshot(path=str(SHOTS / f"edit-arguments-card-{width}.png"))
        fit = card.evaluate(FIT_JS)
        assert fit["cardScroll"] <= fit["cardWidth"], f"the card scrolls sideways: {fit}"
        assert fit["outputScroll"] <= fit["outputWidth"], f"the card's output scrolls sideways: {fit}"
        assert fit["cardLeft"] <= fit["areaLeft"] and fit["areaRight"] <= fit["cardRight"], f"the text area is cut: {fit}"
        if width == 1280:  # narrower, the lines wrap more and the text area scrolls, as text areas do
            assert fit["areaScroll"] <= fit["areaHeight"] + 2, f"the arguments do not fit the text area: {fit}"
    nb.page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.shutdown(); }")
    nb.page.close()
