"""Export a stored session as a Jupyter notebook (nbformat) or as Markdown.

    nb = session_notebook(store, "analysis")        # an nbformat NotebookNode
    text = session_markdown(store, "analysis")
    export_session(store, "analysis", "analysis.ipynb")   # or .md

Every message becomes a Markdown cell; an assistant message's tool calls are
listed in its cell with their arguments, the decision taken on them and
their outcome, and each tool result follows as its own cell.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import nbformat

from ..chat import ChatMessage, ImageRef
from .records import SessionRecord, ToolCallRecord
from .store import Store

__all__ = ["session_markdown", "session_notebook", "export_session"]

_ROLE_TITLES = {"user": "You", "assistant": "Assistant", "system": "System", "tool": "Tool result"}


def _fence(text: str, lang: str = "") -> str:
    """A fenced code block that survives backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _pretty_arguments(raw: str) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw


def _header(session: SessionRecord) -> str:
    lines = [f"# {session.name or 'Session ' + session.id}", ""]
    facts = [("session id", f"`{session.id}`"), ("created", session.created.strftime("%Y-%m-%d %H:%M UTC"))]
    if session.model:
        facts.append(("model", f"`{session.model}`"))
    if session.notebook:
        facts.append(("notebook", f"`{session.notebook}`"))
    if session.forked_from_session:
        facts.append(
            ("forked from", f"`{session.forked_from_session}` at message `{session.forked_from_message}`")
        )
    lines.extend(f"- **{name}**: {value}" for name, value in facts)
    return "\n".join(lines)


def _tool_call_text(call: ToolCallRecord) -> str:
    parts = [f"**Tool call** `{call.tool}` (`{call.call_id}`): {call.status}", _fence(_pretty_arguments(call.arguments), "json")]
    if call.approval is not None:
        decision = call.approval
        line = f"*{decision.decision}*"
        if decision.who:
            line += f" by {decision.who}"
        if decision.reason:
            line += f": {decision.reason}"
        parts.append(line)
        if decision.edited_arguments is not None:
            parts.append("edited arguments:\n\n" + _fence(json.dumps(decision.edited_arguments, indent=2), "json"))
    if call.error:
        parts.append("error:\n\n" + _fence(call.error))
    elif call.result is not None and call.result_message_id is None:
        parts.append("result:\n\n" + _fence(call.result))
    return "\n\n".join(parts)


def _message_text(message: ChatMessage, calls: list[ToolCallRecord]) -> str:
    title = _ROLE_TITLES.get(message.role, message.role)
    if message.role == "tool" and message.name:
        title += f" from `{message.name}`"
    notes = []
    if message.model:
        notes.append(f"`{message.model}`")
    notes.append(message.created.strftime("%Y-%m-%d %H:%M:%S UTC"))
    if message.status != "complete":
        notes.append(message.status)
    if message.pinned:
        notes.append("pinned")
    parts = [f"**{title}** · " + " · ".join(notes)]
    if message.role == "tool":
        parts.append(_fence(message.content or ""))
    elif message.content:
        parts.append(message.content)
    parts.extend(_tool_call_text(call) for call in calls)
    # Images by attachment name; the notebook attaches the bytes, Markdown inlines them.
    parts.extend(f"![{image.describe()}](attachment:{_attachment_name(image)})" for image in message.images)
    return "\n\n".join(parts)


def _attachment_name(image: ImageRef) -> str:
    return f"{image.sha256[:16]}.{image.mime.rpartition('/')[2]}"


_Cell = tuple[str, dict[str, dict[str, str]]]  # Markdown, and its attachments: name -> {mime: base64}


def _cells(store: Store, session: str | SessionRecord) -> tuple[SessionRecord, list[_Cell]]:
    loaded = store.load_session(session)
    calls_by_message: dict[str, list[ToolCallRecord]] = {}
    for call in store.tool_calls(loaded.session.id):
        calls_by_message.setdefault(call.message_id or "", []).append(call)
    cells: list[_Cell] = [(_header(loaded.session), {})]
    for m in loaded.messages:
        attachments = {
            _attachment_name(image): {image.mime: base64.b64encode(store.image_data(image.sha256)).decode("ascii")}
            for image in m.images
        }
        cells.append((_message_text(m, calls_by_message.get(m.id, [])), attachments))
    return loaded.session, cells


def session_notebook(store: Store, session: str | SessionRecord) -> Any:
    """The session as an nbformat v4 notebook of Markdown cells (images as cell attachments)."""
    record, cells = _cells(store, session)
    nb = nbformat.v4.new_notebook()
    nb.cells = []
    for text, attachments in cells:
        cell = nbformat.v4.new_markdown_cell(text)
        if attachments:
            cell.attachments = attachments
        nb.cells.append(cell)
    nb.metadata["llmgine"] = {"session_id": record.id, "name": record.name, "model": record.model}
    return nb


def session_markdown(store: Store, session: str | SessionRecord) -> str:
    """The session as one Markdown document (images inline, as data URLs)."""
    _, cells = _cells(store, session)
    texts = []
    for text, attachments in cells:
        for name, bundle in attachments.items():
            ((mime, data),) = bundle.items()
            text = text.replace(f"(attachment:{name})", f"(data:{mime};base64,{data})")
        texts.append(text)
    return "\n\n---\n\n".join(texts) + "\n"


def export_session(
    store: Store, session: str | SessionRecord, path: str | Path, *, overwrite: bool = False
) -> Path:
    """Write the session to ``path``: a notebook for ``.ipynb``, Markdown for ``.md``.

    An existing file is kept (``FileExistsError``) unless ``overwrite``; a path
    that cannot be written raises ``OSError`` with a sentence saying why.
    """
    target = Path(path).expanduser()
    if target.suffix not in (".ipynb", ".md", ".markdown"):
        raise ValueError(f"cannot tell the export format from {target.name!r}; name the file *.ipynb or *.md")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; choose another name, or overwrite it (--force)")
    text = (
        nbformat.writes(session_notebook(store, session))
        if target.suffix == ".ipynb"
        else session_markdown(store, session)
    )
    try:
        # "x" creates the file only if it is still missing: no race with another writer.
        with open(target, "w" if overwrite else "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise FileExistsError(f"{target} already exists; choose another name, or overwrite it (--force)") from None
    except OSError as exc:
        raise OSError(f"cannot write {target}: {exc.strerror or exc}; check that the folder exists and is writable") from None
    return target
