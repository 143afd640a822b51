"""Approval, confirm and choice cards: the interactive parts of a live cell (core ipywidgets only).

A card shows what is asked and offers the answers as buttons; a click calls
back into the runtime, which answers the pending bus command.  The card then
shows what was decided and by whom, with its buttons disabled - also when the
decision came from elsewhere (``%llmgine approve``, a timeout), which the
live cell reports through ``show_decision``.

Clicks arrive on the kernel's main thread and decisions on the bus's loop
thread, so every change to a card's widgets goes through its lock.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..tools.approval import ApprovalDecision
from .blocks import QuestionBlock, ToolBlock
from .render import decision_sentence
from .style import BORDER, CODE_FONT, ERROR, INFO, MUTED, OK, WARN, esc, pretty_json, risk_badge

__all__ = ["ApprovalCard", "QuestionCard", "Decide", "Answer", "CARD_CSS", "close_tree"]

log = logging.getLogger("llmgine_nb.notebook")

#: ``decide(call_id, decision, decided_by)``; raises LookupError/ValueError with a sentence to show.
Decide = Callable[[str, ApprovalDecision, str], None]
#: ``answer(request_id, value, answered_by)``; raises LookupError with a sentence to show.
Answer = Callable[[str, Any, str], None]

# One small style sheet, scoped by class; frontends without JupyterLab's
# variables get the fallbacks.
CARD_CSS = f"""<style>
.llmgine-card {{ border: 1px solid {BORDER}; border-left: 4px solid {WARN}; border-radius: 8px;
  padding: 8px 12px 10px; margin: 6px 0; background: var(--jp-layout-color1, #fff); max-width: 52em;
  box-sizing: border-box; }}
.llmgine-card.llmgine-decided-ok {{ border-left-color: {OK}; }}
.llmgine-card.llmgine-decided-no {{ border-left-color: {ERROR}; }}
.llmgine-card .widget-button {{ margin-right: 6px; }}
.llmgine-card textarea {{ font-family: {CODE_FONT}; font-size: 0.85em; }}
.llmgine-card pre {{ margin: 0; padding: .45em .6em; background: var(--jp-layout-color2, #f6f7f9);
  border-radius: 4px; white-space: pre-wrap; word-break: break-word; font-family: {CODE_FONT};
  font-size: .85em; max-height: 18em; overflow: auto; }}
</style>"""

def _card_title(text: str, colour: str) -> str:
    return (f'<span style="font-size:.75em;font-weight:700;text-transform:uppercase;letter-spacing:.06em;'
            f'color:{colour}">{esc(text)}</span>')


def _auto() -> dict[str, Any]:
    """Buttons as wide as their label (ipywidgets' fixed width cuts long ones)."""
    return {"layout": w.Layout(width="auto", min_width="7.5em")}


def _hidden(widget: w.Widget, hidden: bool) -> None:
    widget.layout.display = "none" if hidden else None


class ApprovalCard:
    """Approve / Deny (with a reason) / Edit arguments / Always allow, for one tool call."""

    def __init__(self, block: ToolBlock, decide: Decide, *, user: str = "you") -> None:
        self.call_id = block.call_id
        self.tool_name = block.tool_name
        # The id and the hash of the arguments this card shows: the decision runs the call only if they match.
        self.display_id = block.approval.display_id if block.approval is not None else ""
        self.args_hash = block.approval.args_hash if block.approval is not None else ""
        self._decide = decide
        self._user = user
        self._lock = threading.RLock()
        self.decided = False
        approval = block.approval
        assert approval is not None, "an approval card needs a tool block that asks for approval"
        arguments = block.arguments if block.arguments is not None else block.shown_arguments or {}
        self._arguments = arguments

        self.header = w.HTML(self._header_html(block))
        self.details = w.HTML(self._details_html(block))
        self.reason = w.Text(
            placeholder="Reason for denying (optional; the model is told)",
            layout=w.Layout(width="26em"),
        )
        self.approve_button = w.Button(description="Approve", button_style="success", icon="check",
                                       tooltip="Run this call as shown", **_auto())
        self.deny_button = w.Button(description="Deny", button_style="danger", icon="times",
                                    tooltip="Do not run it; the reason, if any, is told to the model", **_auto())
        self.edit_button = w.Button(description="Edit arguments", icon="pencil",
                                    tooltip="Change the arguments, then run", **_auto())
        self.always_button = w.Button(description="Always allow for this session", icon="check-circle",
                                      tooltip=f"Run this call, and every later call of {block.tool_name} in this session",
                                      **_auto())
        buttons = [self.approve_button, self.deny_button, self.edit_button]
        if approval.allow_always:
            buttons.append(self.always_button)
        self.buttons = w.HBox(buttons, layout=w.Layout(flex_flow="row wrap", margin="6px 0 0 0"))
        self.deny_row = w.HBox([self.reason], layout=w.Layout(margin="4px 0 0 0"))

        # As wide as the card (stretched, not 100% plus margins: that scrolled sideways), and
        # tall enough for the arguments as they wrap, up to 16 lines.
        shown = pretty_json(arguments)
        lines = sum(1 + len(line) // 72 for line in shown.splitlines())
        self.editor = w.Textarea(value=shown, rows=min(16, lines + 1), layout=w.Layout(width="auto", align_self="stretch"))
        self.run_edited_button = w.Button(description="Run with these arguments", button_style="warning", icon="play",
                                          **_auto())
        self.cancel_edit_button = w.Button(description="Cancel edit", icon="undo", **_auto())
        self.edit_error = w.HTML("")
        self.edit_area = w.VBox(
            [w.HTML(f'<span style="color:{MUTED};font-size:.85em">Edit the arguments as JSON; they are checked '
                    "against the tool's schema before it runs.</span>"),
             self.editor, w.HBox([self.run_edited_button, self.cancel_edit_button]), self.edit_error],
            layout=w.Layout(margin="6px 0 0 0"),
        )
        _hidden(self.edit_area, True)
        self.status = w.HTML("")

        self.approve_button.on_click(lambda _: self._click(ApprovalDecision.approve(), "Approving…"))
        self.deny_button.on_click(lambda _: self._click(ApprovalDecision.deny(self.reason.value.strip() or None), "Denying…"))
        self.always_button.on_click(lambda _: self._click(ApprovalDecision.always(), "Approving…"))
        self.edit_button.on_click(lambda _: self._toggle_editor(True))
        self.cancel_edit_button.on_click(lambda _: self._toggle_editor(False))
        self.run_edited_button.on_click(lambda _: self._run_edited())

        self.widget = w.VBox(
            [w.HTML(CARD_CSS), self.header, self.details, self.buttons, self.deny_row, self.edit_area, self.status]
        )
        self.widget.add_class("llmgine-card")
        self._controls = [self.approve_button, self.deny_button, self.edit_button, self.always_button,
                          self.reason, self.editor, self.run_edited_button, self.cancel_edit_button]

    # -- content -------------------------------------------------------------

    @staticmethod
    def _header_html(block: ToolBlock) -> str:
        approval = block.approval
        assert approval is not None
        return _card_title("Approval needed", WARN) + (
            f'<div style="margin-top:3px"><code style="font-size:1em;font-weight:600">{esc(block.tool_name)}</code> '
            f'{risk_badge(approval.risk)}</div>'
            + (f'<div style="color:{MUTED};font-size:.88em;margin-top:2px">{esc(approval.description)}</div>'
               if approval.description else "")
        )

    def _details_html(self, block: ToolBlock) -> str:
        approval = block.approval
        assert approval is not None
        why = approval.reason or f"{block.tool_name} is a {approval.risk} tool, so each call asks first."
        parts = [f'<div style="margin:4px 0"><b>Why:</b> {esc(why)}</div>']
        if approval.permissions:
            parts.append(f'<div style="margin:2px 0;font-size:.88em;color:{MUTED}">Needs: '
                         f'{esc(", ".join(approval.permissions))}</div>')
        parts.append(f'<div style="margin:6px 0 2px;font-size:.78em;text-transform:uppercase;color:{MUTED}">'
                     f"Arguments</div><pre>{esc(pretty_json(self._arguments))}</pre>")
        if approval.preview:
            parts.append(f'<div style="margin:6px 0 2px;font-size:.78em;text-transform:uppercase;color:{MUTED}">'
                         f"What will run</div><pre>{esc(approval.preview)}</pre>")
        return "".join(parts)

    def refresh(self, block: ToolBlock) -> None:
        """Show details that arrived after the card (the request's description, permissions)."""
        with self._lock:
            if not self.decided:
                self.header.value = self._header_html(block)
                self.details.value = self._details_html(block)
                if block.approval is not None and not block.approval.allow_always:
                    self.buttons.children = [b for b in self.buttons.children if b is not self.always_button]

    # -- clicks (kernel main thread) --------------------------------------------

    def _toggle_editor(self, show: bool) -> None:
        with self._lock:
            if self.decided:
                return
            _hidden(self.edit_area, not show)
            self.edit_error.value = ""

    def _run_edited(self) -> None:
        try:
            arguments = json.loads(self.editor.value)
        except ValueError as exc:
            self.edit_error.value = f'<span style="color:{ERROR}">That is not valid JSON ({esc(exc)}); fix it and try again.</span>'
            return
        if not isinstance(arguments, dict):
            self.edit_error.value = (f'<span style="color:{ERROR}">The arguments must be a JSON object '
                                     "({\"name\": value, ...}).</span>")
            return
        self._click(ApprovalDecision.edit(arguments), "Running with your arguments…")

    def _click(self, decision: ApprovalDecision, progress: str) -> None:
        with self._lock:
            if self.decided:
                return
            self._set_disabled(True)
            self.status.value = f'<span style="color:{MUTED}">{esc(progress)}</span>'
        try:
            if self.args_hash:
                decision = decision.model_copy(update={"args_hash": self.args_hash})
            self._decide(self.display_id or self.call_id, decision, f"{self._user} via button")
        except (LookupError, ValueError) as exc:
            with self._lock:
                # Someone else answered first, or the turn ended: say so, keep the card closed.
                self.decided = True
                self.status.value = f'<span style="color:{MUTED}">{esc(exc)}</span>'
            return
        except Exception:
            log.exception("deciding approval %s failed", self.call_id)
            with self._lock:
                self._set_disabled(False)
                self.status.value = (f'<span style="color:{ERROR}">The decision could not be delivered; '
                                     "try again or use %llmgine approve/deny.</span>")

    # -- updates (any thread) ----------------------------------------------------

    def show_decision(self, block: ToolBlock) -> None:
        """The call was decided (here or elsewhere): show what and by whom, disable everything."""
        approval = block.approval
        if approval is None or approval.pending:
            return
        with self._lock:
            self.decided = True
            self._set_disabled(True)
            _hidden(self.edit_area, True)
            _hidden(self.deny_row, True)
            ok = bool(approval.approved)
            colour = OK if ok else ERROR
            self.status.value = (f'<div style="color:{colour};font-weight:600;margin-top:6px">'
                                 f'{"✔" if ok else "✖"} {esc(decision_sentence(approval))}</div>')
            self.header.value = self.header.value.replace(
                _card_title("Approval needed", WARN), _card_title("Approved" if ok else "Denied", colour))
            self.widget.add_class("llmgine-decided-ok" if ok else "llmgine-decided-no")

    def _set_disabled(self, disabled: bool) -> None:
        for control in self._controls:
            control.disabled = disabled

    def close(self) -> None:
        close_tree(self.widget)


class QuestionCard:
    """A tool's question: Yes / No, or one button per option ("did you mean 1) X, 2) Y?")."""

    def __init__(self, block: QuestionBlock, answer: Answer, *, user: str = "you") -> None:
        self.request_id = block.request_id
        self._answer = answer
        self._user = user
        self._lock = threading.RLock()
        self.answered = False
        title = "Did you mean…" if block.kind == "choice" else "Please confirm"
        tool = f' <span style="color:{MUTED};font-size:.85em">asked by {esc(block.tool_name)}</span>' if block.tool_name else ""
        self.header = w.HTML(_card_title(title, INFO) + tool +
                             f'<div style="margin:4px 0">{esc(block.question)}</div>')
        if block.kind == "choice":
            self.buttons = [self._button(f"{i}) {option}", option) for i, option in enumerate(block.options, 1)]
            self.buttons.append(self._button("None of these", None))
        else:
            self.buttons = [self._button("Yes", True, "success"), self._button("No", False, "danger")]
        self.status = w.HTML("")
        self.widget = w.VBox([w.HTML(CARD_CSS), self.header,
                              w.HBox(self.buttons, layout=w.Layout(flex_flow="row wrap")), self.status])
        self.widget.add_class("llmgine-card")

    def _button(self, label: str, value: Any, style: str = "") -> w.Button:
        button = w.Button(description=label, button_style=style, layout=w.Layout(width="auto"))
        button.on_click(lambda _: self._click(value))
        return button

    def _click(self, value: Any) -> None:
        with self._lock:
            if self.answered:
                return
            for b in self.buttons:
                b.disabled = True
        try:
            self._answer(self.request_id, value, f"{self._user} via button")
        except (LookupError, ValueError) as exc:
            with self._lock:
                self.answered = True
                self.status.value = f'<span style="color:{MUTED}">{esc(exc)}</span>'

    def show_answer(self, block: QuestionBlock) -> None:
        if not block.answered:
            return
        with self._lock:
            self.answered = True
            for b in self.buttons:
                b.disabled = True
            if block.kind == "choice":
                shown = block.answer if block.answer is not None else "none of these"
            else:
                shown = "yes" if block.answer is True else "no"
            by = f" by {block.answered_by}" if block.answered_by else ""
            self.status.value = f'<div style="color:{OK};font-weight:600;margin-top:6px">✔ Answered: {esc(shown)}{esc(by)}</div>'
            self.widget.add_class("llmgine-decided-ok")

    def close(self) -> None:
        close_tree(self.widget)


def close_tree(widget: w.Widget) -> None:
    """Close a widget and everything inside it (boxes do not close their children)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    parts = [getattr(widget, name, None) for name in ("layout", "style")]
    widget.close()
    for part in parts:
        if isinstance(part, w.Widget):
            part.close()
