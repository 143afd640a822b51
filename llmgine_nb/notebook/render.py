"""A turn as Markdown (with small HTML boxes) and as plain text.

Pure functions of a ``Transcript``: no IPython, no widgets.  The Markdown is
what notebook frontends render (JupyterLab, Notebook 7, VS Code, Colab all
render ``text/markdown``); tool calls are ``<details>`` boxes inside it,
written on one line each so that Markdown parsers keep them as one HTML
block.  The plain text is the ``text/plain`` fallback nbval compares and
terminals show.

Model text and tool output are untrusted: raw HTML in them is escaped so that
a reply can never inject markup or script into the notebook (``markdown``).
The colours and formats are ``style``'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..text import clip
from .blocks import Approval, Block, NoticeBlock, QuestionBlock, TextBlock, ToolBlock, shown_id
from .markdown import extract_code, format_text, parse_json_reply
from .style import (
    BORDER,
    CODE_FONT,
    ERROR,
    INFO,
    MUTED,
    NO_MATH,
    OK,
    PANEL,
    WARN,
    call_signature,
    esc,
    fmt_cost,
    fmt_duration,
    fmt_tokens,
    pre_html,
    pretty_json,
    risk_badge,
)
from .transcript import Transcript

__all__ = [
    "NBVAL_SANITIZE",
    "decision_sentence",
    "tool_box_html",
    "question_html",
    "notice_html",
    "failure_hint",
    "error_html",
    "footer_text",
    "footer_html",
    "blocks_markdown",
    "status_html",
    "transcript_markdown",
    "tail_html",
    "block_text",
    "transcript_text",
    "turn_metadata",
    "bundle",
]


#: An nbval sanitize file (``pytest --nbval --nbval-sanitize-with FILE``) for turn outputs.
#: Their text/plain is the same run after run; the Markdown shows latencies and clock
#: times, which these patterns replace before comparing.
NBVAL_SANITIZE = r"""[llmgine-durations]
regex: (&lt;|<)?\d+(\.\d+)? ?(ms|s|min)\b
replace: DURATION

[llmgine-clock]
regex: \b\d\d:\d\d:\d\d\b
replace: HH:MM:SS
"""

_STATE_ICON = {
    "preparing": ("…", MUTED, "preparing"),
    "requested": ("•", MUTED, "requested"),
    "awaiting approval": ("●", WARN, "waiting for approval"),
    "approved": ("✓", MUTED, "approved"),
    "running": ("▶", INFO, "running"),
    "ok": ("✓", OK, "done"),
    "error": ("✗", ERROR, "failed"),
    "timeout": ("✗", ERROR, "timed out"),
    "denied": ("⊘", ERROR, "not run"),
    "invalid": ("!", WARN, "not run"),
}
_TEXT_ICON = {
    "preparing": "…",
    "requested": "•",
    "awaiting approval": "?",
    "approved": "approved",
    "running": ">",
    "ok": "ok",
    "error": "error",
    "timeout": "timeout",
    "denied": "not run",
    "invalid": "not run",
}

_FAILURE_TITLES = {
    "authentication": "The model provider refused the API key.",
    "no_api_key": "No API key is set for this model's provider.",
    "rate_limit": "Rate limited: the model provider is limiting requests right now.",
    "server_error": "Server error: the model's server failed on its side.",
    "timeout": "The model took too long to answer.",
    "context_too_long": "The conversation is too long for this model.",
    "content_filter": "The provider's content filter blocked the reply.",
    "bad_response": "The model's reply could not be used.",
    "connection": "The model's server could not be reached.",
    "other": "The model call failed.",
    "internal": "Something went wrong inside llmgine-nb.",
    "budget": "The turn would exceed its budget.",
    "config": "The model is not configured the way this call needs.",
}
_FAILURE_HINTS = {
    "authentication": "Check which keys are set with `%llmgine keys`, fix the key, then `%llmgine retry`.",
    "no_api_key": "`%llmgine keys` shows which keys are set; or switch model with `%llmgine model NAME` "
    "(`%llmgine model` lists them). Then `%llmgine retry`.",
    "server_error": "This is usually temporary: wait a moment, then `%llmgine retry`.",
    "rate_limit": "Wait a moment, then `%llmgine retry` (or first switch model with `%llmgine model NAME`).",
    "timeout": "`%llmgine retry` runs it again; if it keeps happening, try a faster model with `%llmgine model NAME`.",
    "context_too_long": "Start a fresh session with `%llmgine new`, or fork an earlier point with `%llmgine fork`.",
    "content_filter": "Rephrase the request and ask again.",
    "connection": "Check the model's address with `%llmgine config` and your network, then `%llmgine retry`.",
    "config": "See `%llmgine config` and `%llmgine keys`, fix the setting, then `%llmgine retry`.",
}




# -- boxes ------------------------------------------------------------------------------


def _badge(text: str, colour: str) -> str:
    return (
        f'<span style="display:inline-block;min-width:1.2em;text-align:center;font-weight:600;'
        f'color:{colour}">{esc(text)}</span>'
    )


def _label(text: str) -> str:
    return (
        f'<div style="font-size:.78em;text-transform:uppercase;letter-spacing:.04em;color:{MUTED};'
        f'margin:.5em 0 .15em">{esc(text)}</div>'
    )


def _pre(text: str, colour: str | None = None) -> str:
    style = (
        f"margin:0;padding:.45em .6em;background:{PANEL};border-radius:4px;white-space:pre-wrap;"
        f"word-break:break-word;font-family:{CODE_FONT};font-size:.85em;max-height:24em;overflow:auto"
    )
    if colour:
        style += f";color:{colour}"
    return f'<pre style="{style}">{pre_html(text)}</pre>'



def decision_sentence(approval: Approval, *, with_time: bool = True) -> str:
    """"Approved by ada via button at 14:03:12" - what was decided and by whom."""
    verb = {
        "approve": "Approved",
        "always": "Approved (always, for this session)",
        "edit": "Approved with edits",
        "deny": "Denied",
    }.get(approval.decision or "", approval.decision or "Decided")
    if approval.decision == "always" and not approval.allow_always:
        verb = "Approved (this once: the tool does not remember approvals)"
    if approval.decision != "deny" and approval.approved is False:
        verb = "Not run: the edited arguments were invalid"
    who = approval.decided_by or "you"
    when = f" at {approval.decided_at.astimezone().strftime('%H:%M:%S')}" if with_time and approval.decided_at else ""
    sentence = f"{verb} by {who}{when}"
    if approval.message:
        sentence += f' - "{approval.message}"'
    return sentence


def tool_box_html(block: ToolBlock, *, open: bool = False, answer_hint: bool = False) -> str:
    """A collapsible box for one tool call: name, arguments, approval, result or error, duration."""
    icon, colour, state_word = _STATE_ICON.get(block.state, ("•", MUTED, block.state))
    args = block.shown_arguments
    signature = call_signature(block.tool_name, args, block.raw_arguments, limit=80)
    extra = [state_word]
    if block.duration_s is not None:
        extra.append(fmt_duration(block.duration_s))
    if block.approval is not None and not block.approval.pending:
        verdict = ("approved with edits" if block.approval.decision == "edit" else "approved") if block.approval.approved else "denied"
        extra.append(f"{verdict} by {block.approval.decided_by or 'you'}")
    summary = (
        f'<summary style="cursor:pointer;padding:.3em .6em;list-style-position:inside">'
        f'{_badge(icon, colour)} <span style="font-family:{CODE_FONT};font-size:.88em">{esc(signature)}</span>'
        f' <span style="color:{MUTED};font-size:.82em">· {esc(" · ".join(extra))}</span></summary>'
    )
    body = [_label("Arguments"), _pre(pretty_json(args) if args is not None else block.raw_arguments or "{}")]
    approval = block.approval
    if approval is not None:
        body.append(_label("Approval"))
        if approval.pending:
            why = f" - {approval.reason}" if approval.reason else ""
            body.append(f"<div>{risk_badge(approval.risk)} Needs your approval{esc(why)}</div>")
            if approval.preview:
                body.append(_pre(approval.preview))
            if answer_hint:
                body.append(
                    f'<div style="margin-top:.3em">Answer with <code>%llmgine approve {esc(shown_id(block))}</code> '
                    f"or <code>%llmgine deny {esc(shown_id(block))} [reason]</code></div>"
                )
        else:
            tint = OK if approval.approved else ERROR
            body.append(f'<div style="color:{tint}">{esc(decision_sentence(approval))}</div>')
    if block.result is not None:
        body.append(_label("Result"))
        body.append(_pre(block.result))
    body.extend(_image_tag(image) for image in block.images[:4])
    if block.error:
        body.append(_label("Error" if block.state in ("error", "timeout") else "Why it did not run"))
        body.append(_pre(block.error, ERROR))
    return (
        f'<details{" open" if open else ""} class="{NO_MATH}" style="margin:.35em 0;border:1px solid {BORDER};border-radius:6px">'
        f'{summary}<div style="padding:0 .7em .6em">{"".join(body)}</div></details>'
    )


_SHOWN_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")  # never SVG: it can carry script


def _image_tag(image: dict[str, str]) -> str:
    """An image a tool returned (base64), inline; anything else is left to the text fallback."""
    mime, data = image.get("mimeType"), image.get("data")
    if mime not in _SHOWN_IMAGES or not isinstance(data, str) or len(data) > 2_000_000:
        return ""
    if not re.fullmatch(r"[A-Za-z0-9+/=\s]*", data):
        return ""
    return f'<img src="data:{mime};base64,{data}" style="max-width:100%;max-height:24em;margin-top:.3em" alt="tool image">'


def question_html(block: QuestionBlock, *, answer_hint: bool = False) -> str:
    options = ""
    if block.kind == "choice" and block.options:
        options = "".join(f"<li>{esc(o)}</li>" for o in block.options)
        options = f'<ol style="margin:.2em 0 .2em 1.4em;padding:0">{options}</ol>'
    if block.answered:
        shown = block.answer if block.kind == "choice" else ("yes" if block.answer is True else "no")
        state = f'<div style="color:{MUTED}">Answered: <b>{esc(shown if shown is not None else "none of these")}</b>'
        state += f" by {esc(block.answered_by)}</div>" if block.answered_by else "</div>"
    elif answer_hint:
        state = f'<div style="color:{MUTED}">Answer with <code>%llmgine answer {esc(shown_id(block))} VALUE</code></div>'
    else:
        state = f'<div style="color:{WARN}">Waiting for your answer</div>'
    return (
        f'<div class="{NO_MATH}" style="margin:.35em 0;padding:.4em .7em;border:1px solid {BORDER};border-left:4px solid {INFO};'
        f'border-radius:6px"><b>Question:</b> {esc(block.question)}{options}{state}</div>'
    )


def _inline_code(text: str) -> str:
    """Escaped text whose `backticked` pieces show as code, as Markdown would show them."""
    return re.sub(r"`([^`]+)`", lambda m: f"<code>{m.group(1)}</code>", esc(text))


def notice_html(block: NoticeBlock) -> str:
    colour = WARN if block.level == "warning" else MUTED
    icon = "⚠ " if block.level == "warning" else "ℹ "
    return f'<div class="{NO_MATH}" style="color:{colour};font-size:.85em;margin:.3em 0">{icon}{_inline_code(block.text)}</div>'


def failure_hint(kind: str, retryable: bool = True) -> str:
    hint = _FAILURE_HINTS.get(kind)
    if hint is None:
        # The message is kept: re-running the cell would send it a second time.
        hint = "`%llmgine retry` runs your message again." if retryable else "Check the request and try again."
    return hint + " The full error is in `%llmgine log`."


def error_html(kind: str, reason: str, retryable: bool = True) -> str:
    """A failed turn: what went wrong, in a sentence, and what to do."""
    title = _FAILURE_TITLES.get(kind, "The turn failed.")
    hint = failure_hint(kind, retryable)
    hint_html = _inline_code(hint)
    reason_html = f"<div>{_inline_code(reason)}</div>" if reason and reason != title else ""
    return (
        f'<div class="{NO_MATH}" style="margin:.4em 0;padding:.5em .8em;border-left:4px solid {ERROR};background:{PANEL};'
        f'border-radius:4px"><div style="font-weight:600;color:{ERROR}">{esc(title)}</div>{reason_html}'
        f'<div style="color:{MUTED};font-size:.88em;margin-top:.2em">{hint_html}</div></div>'
    )


def footer_text(t: Transcript, *, latency: bool = True) -> str:
    """``scripted · 120 in / 35 out tokens · $0.00 · 0.42 s`` (``latency=False`` leaves out the time)."""
    models = ", ".join(t.models) if len(t.models) > 1 else (t.model or (t.models[0] if t.models else "?"))
    parts = [
        models,
        f"{fmt_tokens(t.usage.input_tokens)} in / {fmt_tokens(t.usage.output_tokens)} out tokens",
        fmt_cost(t.cost_usd, t.cost_known),
    ]
    if latency and t.latency_s is not None:
        parts.append(fmt_duration(t.latency_s))
    if t.provenance.get("replayed"):
        parts.append("replayed from the request cache")
    return " · ".join(parts)


def footer_html(t: Transcript) -> str:
    status = {
        "cancelled": f'<span style="color:{WARN}">■ stopped</span> · ',
        "failed": f'<span style="color:{ERROR}">failed</span> · ',
        "step_limit": f'<span style="color:{WARN}">step limit</span> · ',
    }.get(t.status, "")
    return (
        f'<div class="{NO_MATH}" style="color:{MUTED};font-size:.8em;margin-top:.5em;padding-top:.3em;border-top:1px solid {BORDER}">'
        f"{status}{esc(footer_text(t))}</div>"
    )


# -- whole transcripts -------------------------------------------------------------------


def _block_markdown(block: Block, fmt: str, *, live: bool, answer_hint: bool, last_text: bool) -> str:
    if isinstance(block, TextBlock):
        text = block.text
        if not text:
            return ""
        md = format_text(text, fmt, live=live and not block.interrupted and block.final is None)
        if block.interrupted:
            md += f'\n\n<span style="color:{WARN};font-size:.85em">■ Stopped here - the reply above is partial.</span>'
        elif live and last_text and block.final is None:
            md += " ▍"
        return md
    if isinstance(block, ToolBlock):
        pending = block.approval is not None and block.approval.pending
        return tool_box_html(block, open=pending or block.state in ("error", "timeout"), answer_hint=answer_hint)
    if isinstance(block, QuestionBlock):
        return question_html(block, answer_hint=answer_hint)
    return notice_html(block)


def blocks_markdown(
    blocks: Iterable[Block], fmt: str = "markdown", *, live: bool = False, answer_hint: bool = False,
    last_text: TextBlock | None = None,
) -> str:
    """Markdown of a run of blocks; HTML blocks are set apart by blank lines."""
    parts = [
        _block_markdown(b, fmt, live=live, answer_hint=answer_hint, last_text=b is last_text) for b in blocks
    ]
    return "\n\n".join(p for p in parts if p)


def status_html(t: Transcript) -> str:
    if t.status == "waiting":
        return f'<div style="color:{MUTED};font-size:.85em">Waiting for the previous turn to finish…</div>'
    return f'<div style="color:{MUTED};font-size:.85em">Thinking…</div>'


def transcript_markdown(t: Transcript, fmt: str = "markdown", *, live: bool = False, answer_hint: bool = False) -> str:
    """The whole turn as Markdown: text, tool boxes, notices, then an error or the footer."""
    last_text = next((b for b in reversed(t.blocks) if isinstance(b, TextBlock)), None)
    md = blocks_markdown(t.blocks, fmt, live=live, answer_hint=answer_hint, last_text=last_text)
    tail = tail_html(t, live=live)
    return f"{md}\n\n{tail}" if md and tail else md or tail


def tail_html(t: Transcript, *, live: bool) -> str:
    """What closes a turn's output: the error box and the footer, or a progress line."""
    if t.done:
        tail = error_html(t.failure.kind, t.failure.reason, t.failure.retryable) if t.failure else ""
        return tail + footer_html(t)
    if live and not any(isinstance(b, TextBlock) and b.text for b in t.blocks) and not t.pending_approvals():
        return status_html(t)
    return ""


def _tool_text(block: ToolBlock, *, stable: bool = False) -> str:
    line = f"[tool] {call_signature(block.tool_name, block.shown_arguments, block.raw_arguments)}"
    state = _TEXT_ICON.get(block.state, block.state)
    line += f" - {state}"
    if block.duration_s is not None and not stable:
        line += f" ({fmt_duration(block.duration_s)})"
    lines = [line]
    if block.approval is not None:
        if block.approval.pending:
            why = f" ({block.approval.reason})" if block.approval.reason else ""
            lines.append(f"  needs approval, risk {block.approval.risk}{why}")
            lines.append(f"  answer: %llmgine approve {shown_id(block)}  |  %llmgine deny {shown_id(block)} [reason]")
        else:
            lines.append(f"  {decision_sentence(block.approval, with_time=not stable)}")
    if block.result is not None:
        lines.append("  result: " + clip(block.result.replace("\n", " "), 200))
    if block.error:
        lines.append("  " + clip(block.error.replace("\n", " "), 200))
    return "\n".join(lines)


def block_text(block: Block, fmt: str = "markdown", *, stable: bool = False) -> str:
    if isinstance(block, TextBlock):
        text = block.text
        if fmt == "json" and block.final is not None:
            try:
                text = pretty_json(parse_json_reply(text))
            except ValueError:
                pass
        elif fmt == "code" and block.final is not None:
            text = extract_code(text)[1]
        return text + ("\n[stopped: the reply above is partial]" if block.interrupted else "")
    if isinstance(block, ToolBlock):
        return _tool_text(block, stable=stable)
    if isinstance(block, QuestionBlock):
        options = "".join(f"\n  {i}) {o}" for i, o in enumerate(block.options, 1))
        answer = f"\n  answered: {block.answer!r} by {block.answered_by}" if block.answered else ""
        return f"[question] {block.question}{options}{answer}"
    return f"[{'warning' if block.level == 'warning' else 'note'}] {block.text}"


def transcript_text(t: Transcript, fmt: str = "markdown") -> str:
    """The whole turn as plain text (the ``text/plain`` fallback).

    It leaves out latencies and clock times, so that it reads the same run
    after run and nbval can compare it.
    """
    parts = [block_text(b, fmt, stable=True) for b in t.blocks]
    parts = [p for p in parts if p]
    if t.failure is not None:
        parts.append(f"Error: {_FAILURE_TITLES.get(t.failure.kind, 'The turn failed.')} {t.failure.reason}".rstrip())
        parts.append(failure_hint(t.failure.kind, t.failure.retryable).replace("`", ""))
    if t.done:
        status = {"cancelled": "stopped · ", "failed": "failed · ", "step_limit": "step limit · "}.get(t.status, "")
        parts.append(f"-- {status}{footer_text(t, latency=False)}")
    elif not parts:
        parts.append("(thinking…)" if t.status != "waiting" else "(waiting for the previous turn…)")
    return "\n\n".join(parts)


def turn_metadata(t: Transcript) -> dict[str, Any]:
    """The answer's provenance, in its output's metadata (a saved notebook keeps it): model, session, turn,
    tokens, cost, latency, status, the sha256 of the request sent, and whether the answer was replayed."""
    return {
        "llmgine": {
            "session_id": t.provenance.get("session_id"),
            "turn_id": t.turn_id,
            "status": t.status,
            "model": t.model,
            "models": list(t.models),
            "usage": t.usage.model_dump(),
            "cost_usd": t.cost_usd if t.cost_known else None,
            "latency_s": t.latency_s,
            "steps": t.steps,
            "message_id": t.message_id,
            "request_hash": t.provenance.get("request_hash"),
            "replayed": bool(t.provenance.get("replayed")),
        }
    }


def bundle(t: Transcript, fmt: str = "markdown", *, live: bool, answer_hint: bool = False) -> dict[str, Any]:
    """The MIME bundle of a turn: Markdown for frontends, plain text for nbval and terminals."""
    data: dict[str, Any] = {
        "text/markdown": transcript_markdown(t, fmt, live=live, answer_hint=answer_hint),
        "text/plain": transcript_text(t, fmt),
    }
    if not live and fmt == "json":
        try:
            parsed = parse_json_reply(t.final_text)
        except ValueError:
            parsed = None
        if isinstance(parsed, (dict, list)):  # frontends' JSON viewers want an object or array
            data["application/json"] = parsed
    if t.redactor is not None:
        # The last word on secrets: streamed text is redacted here, once its pieces are joined.
        data = t.redactor.data(data)
    return data

