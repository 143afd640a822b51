"""A real Jupyter kernel driven the way a notebook frontend drives it.

``KernelHarness`` starts an ipykernel of *this* venv (a kernelspec written to
a temporary directory whose argv is ``sys.executable``), runs cells, and
plays the frontend's part of the protocols a notebook UI relies on:

* every IOPub message of a request is collected into a ``KernelRequest``
  (streams, display_data, update_display_data, execute_result, error,
  clear_output), with displays updated in place by ``display_id`` as a
  frontend updates them;
* widget models are tracked from ``comm_open``/``comm_msg``/``comm_close``
  on the ``jupyter.widget`` target (ipywidgets 8, widget protocol 2.x), and
  output produced while an ``Output`` widget captures (its ``msg_id`` state)
  is routed into that widget, as the frontend's OutputModel does;
* clicks and value changes are sent as the ipywidgets frontend sends them:
  a ``comm_msg`` on the widget's comm with ``{"method": "custom",
  "content": {"event": "click"}}`` or ``{"method": "update", "state": {...},
  "buffer_paths": []}``.

Nothing here runs on a background thread: messages are read whenever a
test waits (``wait_until``, ``KernelRequest.wait``), so what a test sees is
deterministic and a failing wait reports what did arrive.

Example::

    with KernelHarness() as k:
        cell = k.execute("import ipywidgets as w; b = w.Button(description='Go'); b")
        button = k.find_widget("ButtonModel", description="Go", within=cell)
        k.click(button).wait()
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

__all__ = [
    "CellError",
    "KernelHarness",
    "offline_env",
    "offline_notebook",
    "KernelRequest",
    "WidgetModel",
    "WIDGET_MIME",
]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_TARGET = "jupyter.widget"
_KERNEL_NAME = "llmgine-nb-test-python"
_OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error"}


class CellError(AssertionError):
    """A cell raised in the kernel; the message carries the kernel's traceback."""


@dataclass
class WidgetModel:
    """What the harness knows of one widget model (a frontend's model copy)."""

    model_id: str
    state: dict[str, Any]
    target_name: str = WIDGET_TARGET
    #: Widget protocol version the kernel announced in ``comm_open`` (e.g. "2.1.0").
    protocol_version: str = ""
    closed: bool = False
    #: Contents of ``custom`` messages the kernel sent to this model.
    custom_messages: list[dict[str, Any]] = field(default_factory=list)
    #: Outputs an ``Output`` widget captured by ``msg_id`` routing.
    captured_outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model_name(self) -> str:
        """The ipywidgets model class name, e.g. ``"ButtonModel"``."""
        return str(self.state.get("_model_name", ""))

    def get(self, key: str, default: Any = None) -> Any:
        """One state value, e.g. ``label.get("value")``."""
        return self.state.get(key, default)

    @property
    def child_ids(self) -> list[str]:
        """Model ids referenced by this model's ``children`` (boxes)."""
        return [ref[len("IPY_MODEL_"):] for ref in self.state.get("children", [])
                if isinstance(ref, str) and ref.startswith("IPY_MODEL_")]

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """Everything an ``Output`` widget shows: synced ``outputs`` plus captured ones."""
        return list(self.state.get("outputs", [])) + self.captured_outputs

    @property
    def text(self) -> str:
        """Text an ``Output`` widget shows (streams and text/plain), joined."""
        return outputs_text(self.outputs)

    def __repr__(self) -> str:
        hints = {k: self.state[k] for k in ("description", "value") if k in self.state}
        return f"<WidgetModel {self.model_name} {self.model_id[:8]} {hints}>"


@dataclass
class KernelRequest:
    """One message sent on the shell channel (a cell, or a widget comm_msg)
    and everything the kernel published in reply to it."""

    harness: KernelHarness = field(repr=False)
    msg_id: str
    kind: str
    code: str = ""
    #: Outputs as a frontend would show them for this request, in order.
    outputs: list[dict[str, Any]] = field(default_factory=list)
    #: Every IOPub message whose parent is this request, raw.
    messages: list[dict[str, Any]] = field(default_factory=list, repr=False)
    #: The shell reply content (``execute_reply``); None for comm messages.
    reply: dict[str, Any] | None = None
    idle: bool = False
    _clear_on_next_output: bool = field(default=False, repr=False)

    @property
    def done(self) -> bool:
        """True once the kernel is idle for this request (and replied, for cells)."""
        return self.idle and (self.kind != "execute" or self.reply is not None)

    def wait(self, timeout: float = 30.0) -> KernelRequest:
        """Read messages until this request is done; returns self."""
        self.harness.wait_until(lambda: self.done, timeout=timeout,
                                what=f"{self.kind} {self.msg_id[:8]} to finish")
        return self

    @property
    def error(self) -> dict[str, Any] | None:
        """The error output or error reply, if the request failed."""
        for out in self.outputs:
            if out["output_type"] == "error":
                return out
        if self.reply is not None and self.reply.get("status") == "error":
            return self.reply
        return None

    def raise_for_error(self) -> KernelRequest:
        """Raise ``CellError`` with the kernel's traceback if the request failed."""
        err = self.error
        if err is not None:
            tb = "\n".join(err.get("traceback", []))
            raise CellError(
                f"The kernel raised {err.get('ename')}: {err.get('evalue')}\n"
                f"while running:\n{self.code}\n{strip_ansi(tb)}")
        return self

    @property
    def text(self) -> str:
        """Stream text and text/plain of this request's outputs, joined."""
        return outputs_text(self.outputs)

    @property
    def stdout(self) -> str:
        return "".join(o["text"] for o in self.outputs
                       if o["output_type"] == "stream" and o["name"] == "stdout")

    @property
    def widget_ids(self) -> list[str]:
        """Model ids of the widgets this request displayed."""
        return [o["data"][WIDGET_MIME]["model_id"] for o in self.outputs
                if WIDGET_MIME in o.get("data", {})]

    def _add_output(self, out: dict[str, Any]) -> None:
        if self._clear_on_next_output:
            self.outputs.clear()
            self._clear_on_next_output = False
        append_output(self.outputs, out)


class KernelHarness:
    """A python3 kernel of this venv, with a frontend's view of its outputs
    and widgets.  Use as a context manager, or call ``start``/``shutdown``."""

    def __init__(self, *, cwd: str | None = None, env: dict[str, str] | None = None,
                 startup_timeout: float = 60.0) -> None:
        """``env`` entries are added to this process's environment for the kernel."""
        self.cwd = cwd
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.widgets: dict[str, WidgetModel] = {}
        self.requests: dict[str, KernelRequest] = {}
        #: IOPub messages with no known parent (e.g. from before a request).
        self.unparented: list[dict[str, Any]] = []
        self._tmp: str | None = None
        self.km: KernelManager | None = None
        self.kc: Any = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> KernelHarness:
        """Start the kernel and wait until it answers."""
        self._tmp = tempfile.mkdtemp(prefix="llmgine-kernel-")
        spec_dir = os.path.join(self._tmp, "kernels", _KERNEL_NAME)
        os.makedirs(spec_dir)
        # The kernel must be this venv's Python, not whatever "python3"
        # kernelspec the machine happens to have installed.
        with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
            json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher",
                                "-f", "{connection_file}"],
                       "display_name": "llmgine-nb test kernel",
                       "language": "python"}, f)
        ipython_dir = os.path.join(self._tmp, "ipython")
        os.makedirs(ipython_dir)
        env = dict(os.environ)
        # A private IPython dir: no user profile or startup files leak in.
        env["IPYTHONDIR"] = ipython_dir
        env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        env.update(self.extra_env)
        ksm = KernelSpecManager(kernel_dirs=[os.path.join(self._tmp, "kernels")])
        self.km = KernelManager(kernel_name=_KERNEL_NAME, kernel_spec_manager=ksm)
        self.km.start_kernel(env=env, cwd=self.cwd or self._tmp)
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=self.startup_timeout)
        except RuntimeError:
            self.shutdown()
            raise
        # wait_for_ready leaves kernel_info traffic on IOPub; drop it.
        self._drain_iopub()
        return self

    def shutdown(self) -> None:
        """Stop channels and kernel and remove the temporary directory."""
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None
        if self.km is not None:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=False)
            self.km = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> KernelHarness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- running code ----------------------------------------------------

    def submit(self, code: str) -> KernelRequest:
        """Send a cell without waiting for it; ``.wait()`` on the result later."""
        self._require_started()
        msg_id = self.kc.execute(code, store_history=True, allow_stdin=False)
        req = KernelRequest(self, msg_id, "execute", code=code)
        self.requests[msg_id] = req
        return req

    def execute(self, code: str, *, timeout: float = 30.0,
                allow_errors: bool = False) -> KernelRequest:
        """Run a cell to completion; raise ``CellError`` if it failed (unless allowed)."""
        req = self.submit(code).wait(timeout)
        if not allow_errors:
            req.raise_for_error()
        return req

    # -- widgets -----------------------------------------------------------

    def find_widgets(self, model_name: str | None = None, *,
                     within: KernelRequest | WidgetModel | None = None,
                     include_closed: bool = False, **state: Any) -> list[WidgetModel]:
        """Widget models matching a model name (``"ButtonModel"``) and state values.

        ``within`` limits the search to widgets a request displayed (or a
        widget contains), following box children and Output widget contents.
        """
        pool = (self.widgets.values() if within is None
                else (self.widgets[i] for i in self._reachable(within) if i in self.widgets))
        return [w for w in pool
                if (include_closed or not w.closed)
                and (model_name is None or w.model_name == model_name)
                and all(w.state.get(k) == v for k, v in state.items())]

    def find_widget(self, model_name: str | None = None, *,
                    within: KernelRequest | WidgetModel | None = None,
                    **state: Any) -> WidgetModel:
        """Exactly one widget matching, or an AssertionError listing what exists."""
        found = self.find_widgets(model_name, within=within, **state)
        if len(found) != 1:
            known = self.find_widgets(within=within)
            raise AssertionError(
                f"Expected one widget {model_name or ''} with {state}, found {len(found)}. "
                f"Widgets known{' in that output' if within is not None else ''}: {known}")
        return found[0]

    def click(self, widget: WidgetModel | str) -> KernelRequest:
        """Click a Button as the ipywidgets frontend does; ``.wait()`` for the handler."""
        return self.send_comm_msg(widget, {"method": "custom", "content": {"event": "click"}})

    def set_state(self, widget: WidgetModel | str, **state: Any) -> KernelRequest:
        """Change widget state as a user edit in the frontend does (e.g. ``value=``)."""
        model = self._model(widget)
        model.state.update(state)  # the frontend's model changes first, then syncs
        return self.send_comm_msg(model, {"method": "update", "state": dict(state),
                                          "buffer_paths": []})

    def set_value(self, widget: WidgetModel | str, value: Any) -> KernelRequest:
        """Shortcut for ``set_state(widget, value=value)``."""
        return self.set_state(widget, value=value)

    def send_comm_msg(self, widget: WidgetModel | str, data: dict[str, Any]) -> KernelRequest:
        """Send ``data`` on the widget's comm; returns the request to wait on."""
        self._require_started()
        model = self._model(widget)
        if model.closed:
            raise AssertionError(f"{model} was closed by the kernel; it cannot receive messages.")
        # Same shape as @jupyter-widgets/base: comm.send(data, callbacks, {}, buffers).
        msg = self.kc.session.msg("comm_msg", {"comm_id": model.model_id, "data": data},
                                  metadata={})
        self.kc.shell_channel.send(msg)
        req = KernelRequest(self, msg["header"]["msg_id"], "comm_msg", code=json.dumps(data))
        self.requests[req.msg_id] = req
        return req

    # -- waiting -------------------------------------------------------------

    def wait_until(self, condition: Callable[[], Any], *, timeout: float = 30.0,
                   what: str = "the condition") -> Any:
        """Read kernel messages until ``condition()`` is truthy; return its value.

        Raises ``TimeoutError`` naming ``what`` and summarising recent requests.
        """
        self._require_started()
        deadline = time.monotonic() + timeout
        next_alive_check = time.monotonic() + 1.0
        while True:
            self._drain_shell()
            value = condition()
            if value:
                return value
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"Timed out after {timeout}s waiting for {what}. "
                                   f"Recent requests: {self._summary()}")
            if now >= next_alive_check:
                next_alive_check = now + 1.0
                if not self.km.is_alive():
                    raise RuntimeError(f"The kernel died while waiting for {what}. "
                                       f"Recent requests: {self._summary()}")
            try:
                msg = self.kc.get_iopub_msg(timeout=min(0.05, max(deadline - now, 0.001)))
            except queue.Empty:
                continue
            self._handle_iopub(msg)

    def wait_for_widget(self, model_name: str | None = None, *, timeout: float = 30.0,
                        within: KernelRequest | WidgetModel | None = None,
                        **state: Any) -> WidgetModel:
        """Wait until exactly one widget matches, and return it."""
        def one() -> WidgetModel | None:
            found = self.find_widgets(model_name, within=within, **state)
            return found[0] if len(found) == 1 else None
        return self.wait_until(one, timeout=timeout,
                               what=f"a widget {model_name or ''} with {state}")

    # -- message handling ---------------------------------------------------

    def _handle_iopub(self, msg: dict[str, Any]) -> None:
        msg_type = msg["header"]["msg_type"]
        content = msg["content"]
        parent_id = msg.get("parent_header", {}).get("msg_id")
        req = self.requests.get(parent_id) if parent_id else None
        if req is not None:
            req.messages.append(msg)
        else:
            self.unparented.append(msg)

        if msg_type == "status":
            if req is not None and content.get("execution_state") == "idle":
                req.idle = True
        elif msg_type == "comm_open":
            if content.get("target_name") == WIDGET_TARGET:
                data = content.get("data", {})
                state = _with_buffers(data.get("state", {}), data.get("buffer_paths", []),
                                      msg.get("buffers", []))
                self.widgets[content["comm_id"]] = WidgetModel(
                    content["comm_id"], state, content["target_name"],
                    protocol_version=str(msg.get("metadata", {}).get("version", "")))
        elif msg_type == "comm_msg":
            model = self.widgets.get(content.get("comm_id"))
            if model is not None:
                data = content.get("data", {})
                method = data.get("method")
                if method in ("update", "echo_update"):
                    model.state.update(_with_buffers(data.get("state", {}),
                                                     data.get("buffer_paths", []),
                                                     msg.get("buffers", [])))
                elif method == "custom":
                    model.custom_messages.append(data.get("content", {}))
        elif msg_type == "comm_close":
            model = self.widgets.get(content.get("comm_id"))
            if model is not None:
                model.closed = True
        elif msg_type == "update_display_data":
            self._update_display(content)
        elif msg_type in _OUTPUT_TYPES or msg_type == "clear_output":
            self._route_output(msg_type, content, parent_id, req)

    def _route_output(self, msg_type: str, content: dict[str, Any], parent_id: str | None,
                      req: KernelRequest | None) -> None:
        # A frontend sends output to the Output widget that currently captures
        # this parent id (the newest one, like the OutputModel registry does).
        capturing = [w for w in self.widgets.values()
                     if not w.closed and w.model_name == "OutputModel"
                     and parent_id and w.state.get("msg_id") == parent_id]
        if capturing:
            target = capturing[-1]
            if msg_type == "clear_output":
                target.captured_outputs.clear()
            else:
                append_output(target.captured_outputs, _to_output(msg_type, content))
            return
        if req is None:
            return
        if msg_type == "clear_output":
            if content.get("wait"):
                req._clear_on_next_output = True
            else:
                req.outputs.clear()
        else:
            req._add_output(_to_output(msg_type, content))

    def _update_display(self, content: dict[str, Any]) -> None:
        display_id = content.get("transient", {}).get("display_id")
        if not display_id:
            return
        lists = [r.outputs for r in self.requests.values()]
        lists += [w.captured_outputs for w in self.widgets.values()]
        for outputs in lists:
            for out in outputs:
                if out.get("display_id") == display_id:
                    out["data"] = content.get("data", {})
                    out["metadata"] = content.get("metadata", {})

    def _drain_shell(self) -> None:
        while self.kc.shell_channel.msg_ready():
            msg = self.kc.get_shell_msg(timeout=0)
            req = self.requests.get(msg.get("parent_header", {}).get("msg_id"))
            if req is not None:
                req.reply = msg["content"]

    def _drain_iopub(self) -> None:
        while True:
            try:
                self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                return

    # -- helpers -------------------------------------------------------------

    def _model(self, widget: WidgetModel | str) -> WidgetModel:
        model_id = widget.model_id if isinstance(widget, WidgetModel) else widget
        try:
            return self.widgets[model_id]
        except KeyError:
            raise AssertionError(f"No widget model {model_id!r} has been opened by the kernel; "
                                 f"known: {list(self.widgets.values())}") from None

    def _reachable(self, root: KernelRequest | WidgetModel) -> list[str]:
        if isinstance(root, KernelRequest):
            todo = list(root.widget_ids)
        else:
            todo = [root.model_id]
        seen: list[str] = []
        while todo:
            model_id = todo.pop(0)
            if model_id in seen:
                continue
            seen.append(model_id)
            model = self.widgets.get(model_id)
            if model is None:
                continue
            todo.extend(model.child_ids)
            todo.extend(o["data"][WIDGET_MIME]["model_id"] for o in model.outputs
                        if WIDGET_MIME in o.get("data", {}))
        return seen

    def _require_started(self) -> None:
        if self.kc is None or self.km is None:
            raise RuntimeError("The kernel is not running; call start() or use "
                               "'with KernelHarness() as kernel:'.")

    def _summary(self) -> str:
        recent = list(self.requests.values())[-3:]
        return "; ".join(f"[{r.kind} done={r.done} code={r.code[:60]!r} "
                         f"text={r.text[-200:]!r}]" for r in recent) or "none"


# -- output helpers (module level: also useful on nbclient outputs) ---------

def _to_output(msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
    if msg_type == "stream":
        return {"output_type": "stream", "name": content["name"], "text": content["text"]}
    if msg_type == "error":
        return {"output_type": "error", "ename": content.get("ename"),
                "evalue": content.get("evalue"), "traceback": content.get("traceback", [])}
    out = {"output_type": msg_type, "data": content.get("data", {}),
           "metadata": content.get("metadata", {})}
    if msg_type == "execute_result":
        out["execution_count"] = content.get("execution_count")
    display_id = content.get("transient", {}).get("display_id")
    if display_id:
        out["display_id"] = display_id
    return out


def append_output(outputs: list[dict[str, Any]], out: dict[str, Any]) -> None:
    """Append like a frontend: consecutive text on the same stream is merged."""
    if (out["output_type"] == "stream" and outputs
            and outputs[-1]["output_type"] == "stream" and outputs[-1]["name"] == out["name"]):
        outputs[-1] = {**outputs[-1], "text": outputs[-1]["text"] + out["text"]}
    else:
        outputs.append(out)


def outputs_text(outputs: Iterable[dict[str, Any]]) -> str:
    """Streams, text/plain and error lines of outputs, joined: what a text frontend shows."""
    parts: list[str] = []
    for out in outputs:
        kind = out["output_type"]
        if kind == "stream":
            parts.append(out["text"])
        elif kind == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}\n")
        elif "text/plain" in out.get("data", {}):
            text = out["data"]["text/plain"]
            parts.append(("".join(text) if isinstance(text, list) else text) + "\n")
    return "".join(parts)


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (kernel tracebacks are coloured)."""
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def _with_buffers(state: dict[str, Any], buffer_paths: list[list[Any]],
                  buffers: list[Any]) -> dict[str, Any]:
    """Put binary buffers back into state at their paths (the protocol's
    ``buffer_paths``), as the frontend does before using the state."""
    state = dict(state)
    for path, buf in zip(buffer_paths, buffers):
        obj: Any = state
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = bytes(buf)
    return state


def offline_env(db: str | Path) -> dict[str, str]:
    """A kernel's environment on the offline model: its own database, no model configured, no key."""
    return {"LLMGINE_DB": str(db), "LLMGINE_MODEL": "", "OPENAI_API_KEY": ""}


@contextmanager
def offline_notebook(db: str | Path, setup: str = "") -> Iterator[KernelHarness]:
    """A kernel on the offline model (``offline_env``) with the extension loaded and ``setup`` (dedented) run."""
    with KernelHarness(env=offline_env(db)) as kernel:
        kernel.execute("%load_ext llmgine_nb")
        if setup:
            kernel.execute(textwrap.dedent(setup))
        yield kernel
