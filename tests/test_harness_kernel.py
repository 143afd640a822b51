"""The real-kernel harness, proved with plain ipywidgets.

One kernel is shared by the module (starting one costs about a second);
each test uses its own variable names so the tests do not depend on order.
"""

from __future__ import annotations

import sys
import textwrap

import pytest
from kernel_harness import CellError, KernelHarness


@pytest.fixture(scope="module")
def kernel():
    with KernelHarness() as k:
        yield k


def run(kernel: KernelHarness, code: str, **kw):
    return kernel.execute(textwrap.dedent(code), **kw)


def test_kernel_is_this_venvs_python(kernel):
    cell = run(kernel, "import sys; print(sys.executable)")
    assert cell.stdout.strip() == sys.executable


def test_collects_every_output_kind_of_a_cell(kernel):
    cell = run(kernel, """
        import sys
        from IPython.display import display, Markdown
        print("to stdout")
        print("to stderr", file=sys.stderr)
        h = display(Markdown("**first**"), display_id=True)
        h.update(Markdown("**second**"))
        40 + 2
    """)
    kinds = [o["output_type"] for o in cell.outputs]
    assert kinds == ["stream", "stream", "display_data", "execute_result"]
    assert cell.stdout == "to stdout\n"
    # the display was updated in place, as a frontend shows it
    display_out = cell.outputs[2]
    assert display_out["data"]["text/markdown"] == "**second**"
    assert [m["header"]["msg_type"] for m in cell.messages].count("update_display_data") == 1
    assert cell.outputs[3]["data"]["text/plain"] == "42"
    assert cell.reply["status"] == "ok"


def test_cell_error_is_reported_with_traceback(kernel):
    with pytest.raises(CellError, match="ZeroDivisionError"):
        run(kernel, "1 / 0")
    cell = run(kernel, "1 / 0", allow_errors=True)
    assert cell.error["ename"] == "ZeroDivisionError"


def test_clear_output_wait_replaces_on_next_output(kernel):
    cell = run(kernel, """
        from IPython.display import clear_output
        print("old")
        clear_output(wait=True)
        print("new")
    """)
    assert cell.text == "new\n"


def test_button_click_via_comm_runs_handler_and_updates_label_and_output(kernel):
    cell = run(kernel, """
        import ipywidgets as widgets
        from IPython.display import display
        k1_label = widgets.Label(value="not yet")
        k1_out = widgets.Output()
        k1_button = widgets.Button(description="Click me")
        k1_clicks = []
        def k1_on_click(b):
            k1_clicks.append(1)
            k1_label.value = f"clicked {len(k1_clicks)}"
            with k1_out:
                print("handler ran", len(k1_clicks))
        k1_button.on_click(k1_on_click)
        display(widgets.VBox([k1_button, k1_label, k1_out]))
    """)
    button = kernel.find_widget("ButtonModel", description="Click me", within=cell)
    label = kernel.find_widget("LabelModel", within=cell)
    out = kernel.find_widget("OutputModel", within=cell)
    assert label.get("value") == "not yet"
    assert button.protocol_version.startswith("2."), "ipywidgets 8 speaks widget protocol 2.x"

    click = kernel.click(button).wait()
    assert click.error is None
    assert label.get("value") == "clicked 1"
    # the print went into the Output widget (msg_id routing), not the cell
    assert out.text == "handler ran 1\n"
    assert "handler ran" not in cell.text

    kernel.click(button).wait()
    assert label.get("value") == "clicked 2"
    assert out.text == "handler ran 1\nhandler ran 2\n"
    # the kernel's own view agrees
    assert run(kernel, "print(len(k1_clicks))").stdout == "2\n"


def test_unclicked_button_does_nothing(kernel):
    """Guards the click test: without the comm message the handler never runs."""
    cell = run(kernel, """
        import ipywidgets as widgets
        k2_label = widgets.Label(value="idle")
        k2_button = widgets.Button(description="Never clicked")
        k2_button.on_click(lambda b: setattr(k2_label, "value", "clicked"))
        widgets.HBox([k2_button, k2_label])
    """)
    label = kernel.find_widget("LabelModel", within=cell)
    run(kernel, "pass")
    assert label.get("value") == "idle"
    assert run(kernel, "print(k2_label.value)").stdout == "idle\n"


def test_text_value_set_via_comm_is_seen_by_kernel(kernel):
    cell = run(kernel, """
        import ipywidgets as widgets
        k3_text = widgets.Text(value="", description="Name")
        k3_seen = []
        k3_text.observe(lambda change: k3_seen.append(change["new"]), names="value")
        k3_text
    """)
    text = kernel.find_widget("TextModel", description="Name", within=cell)
    update = kernel.set_value(text, "Ada Lovelace").wait()
    assert update.error is None
    assert text.get("value") == "Ada Lovelace"
    assert run(kernel, "print(k3_text.value, k3_seen)").stdout == "Ada Lovelace ['Ada Lovelace']\n"


def test_kernel_answers_other_cells_while_background_work_waits_for_a_click(kernel):
    cell = run(kernel, """
        import threading
        import ipywidgets as widgets
        k4_status = widgets.Label(value="waiting for approval")
        k4_button = widgets.Button(description="Approve")
        k4_event = threading.Event()
        k4_button.on_click(lambda b: k4_event.set())
        def k4_work():
            if k4_event.wait(timeout=30):
                k4_status.value = "approved, work done"
        threading.Thread(target=k4_work, daemon=True).start()
        widgets.VBox([k4_status, k4_button])
    """, timeout=10)
    status = kernel.find_widget("LabelModel", within=cell)
    # the cell has returned while the work is still pending
    assert status.get("value") == "waiting for approval"
    other = run(kernel, "6 * 7", timeout=10)
    assert other.outputs[-1]["data"]["text/plain"] == "42"
    assert status.get("value") == "waiting for approval"

    kernel.click(kernel.find_widget("ButtonModel", description="Approve", within=cell))
    kernel.wait_until(lambda: status.get("value") == "approved, work done", timeout=10,
                      what="the background work to finish after the click")


def test_asyncio_task_on_kernel_loop_resumes_after_click(kernel):
    cell = run(kernel, """
        import asyncio
        import ipywidgets as widgets
        k5_label = widgets.Label(value="pending")
        k5_button = widgets.Button(description="Go on")
        k5_future = asyncio.get_running_loop().create_future()
        k5_button.on_click(lambda b: k5_future.done() or k5_future.set_result("go"))
        async def k5_turn():
            k5_label.value = "resumed: " + await k5_future
        k5_task = asyncio.ensure_future(k5_turn())
        widgets.VBox([k5_label, k5_button])
    """)
    label = kernel.find_widget("LabelModel", within=cell)
    assert run(kernel, "print(k5_task.done())").stdout == "False\n"
    kernel.click(kernel.find_widget("ButtonModel", description="Go on", within=cell))
    kernel.wait_until(lambda: label.get("value") == "resumed: go", timeout=10,
                      what="the asyncio task to resume")


def test_find_widget_explains_what_exists_when_missing(kernel):
    cell = run(kernel, "import ipywidgets as widgets; widgets.Button(description='Only')")
    with pytest.raises(AssertionError, match="ButtonModel.*Only"):
        kernel.find_widget("ButtonModel", description="Absent", within=cell)


def test_wait_until_times_out_with_a_summary(kernel):
    with pytest.raises(TimeoutError, match="never true"):
        kernel.wait_until(lambda: False, timeout=0.3, what="never true")
