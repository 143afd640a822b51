"""A deterministic offline "model" for the task assistant's four flows.

    llm = offline_task_llm(bus=bus)       # a ScriptedLLM driven by TaskPlanner
    TaskAssistant(board, llm=llm)         # what TaskAssistant uses when no model is given

:class:`TaskPlanner` reads the conversation the engine sends (the system
prompt's "Current user:" line, the last user message, the latest tool
results) and answers the way a real model would: with tool calls, then a
short reply made from the tool results.  It understands four request
shapes by keyword and regular expression, nothing more:

- verification: an email anywhere ("I'm sam@example.org") -> ``verify_user``;
  an unverified user -> ``whoami``, then a request for their email;
- view: "show me Sam's tasks in Recruitment" -> ``find_tasks``;
- assign: "assign the budget review to Sam due Friday in Finance" ->
  ``list_projects``, then ``create_task`` (with the project's id when the
  name is exact);
- update: "I've just finished sending out the recruitment forms" ->
  ``complete_task``.

Everything else gets a short help text.  A real model needs none of this:
the same tools and system prompt work unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...chat import ChatMessage, ToolCall
from ...llm.scripted import ScriptedLLM, ScriptedReply, call

if TYPE_CHECKING:
    from ...bus import MessageBus

__all__ = ["TaskPlanner", "Request", "parse_request", "offline_task_llm", "HELP", "ASK_EMAIL"]

HELP = (
    "I can show tasks (\"show me Sam's tasks in Recruitment\"), assign one "
    "(\"assign the budget review to Sam due Friday in Finance\") or mark one done "
    "(\"I've just finished sending out the recruitment forms\")."
)
ASK_EMAIL = "I don't recognise you yet. Please tell me the email you use on the task board, so I can verify you."

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NOT_VERIFIED = re.compile(r"^Current user: not verified", re.MULTILINE)
_WHO_AM_I = re.compile(r"\bwho\s+am\s+i\b", re.IGNORECASE)
_ASSIGN = re.compile(r"^(?:please\s+|can you\s+|could you\s+)*assign\s+(?P<title>.+?)\s+to\s+(?P<tail>.+)$", re.I)
_CLAUSE = re.compile(r"\s+(due(?:\s+by|\s+on)?|by|before|in|for)\s+", re.IGNORECASE)
_SHOW = re.compile(r"\b(show|see|list|view|what|which|get|display|give)\b", re.IGNORECASE)
_TASKS = re.compile(r"\btasks?\b", re.IGNORECASE)
_PROJECTS = re.compile(r"\bprojects\b", re.IGNORECASE)
_POSSESSIVE = re.compile(r"\b([A-Za-z][\w.-]*)['\u2019]s\s+(?:\w+\s+){0,2}tasks\b")
_MINE = re.compile(r"\bmy\s+(?:\w+\s+)?tasks\b|\btasks\s+(?:for|of|assigned\s+to)\s+me\b", re.IGNORECASE)
_FOR = re.compile(r"\btasks\s+(?:for|of|assigned\s+to)\s+([A-Za-z][\w.-]*)", re.IGNORECASE)
_IN = re.compile(r"\bin\s+(?:the\s+)?(.+?)(?:\s+project)?\s*$", re.IGNORECASE)
_FINISHED = re.compile(
    r"\b(?:finished|completed|done\s+with|wrapped\s+up|sent\s+out|got\s+through)\s+(?P<what>.+)$", re.IGNORECASE
)
_MARK = re.compile(r"^(?:please\s+)?mark\s+(?P<what>.+?)\s+(?:as\s+)?(?:done|complete|completed|finished)$", re.I)
_IS_DONE = re.compile(r"^(?P<what>.+?)\s+(?:is|are)\s+(?:now\s+)?(?:done|finished|complete|completed)$", re.I)
_CHOSE = re.compile(r'call create_task again with (\w+)="([^"]+)"')
_PROJECT_LINE = re.compile(r"^- (?P<name>.+) \(id (?P<id>[^)]+)\)$", re.MULTILINE)
_ARTICLE = re.compile(r"^(?:the|a|an|our|my)\s+", re.IGNORECASE)
# How often one turn may call create_task again after a "did you mean" (project, then person).
_MAX_CREATE_CALLS = 3


@dataclass
class Request:
    """What a user message asks for: ``kind`` and the parts the planner read from it."""

    kind: str  # verify, whoami, view, assign, complete, projects, unknown
    fields: dict[str, Any] = field(default_factory=dict)


def _strip(text: str) -> str:
    return text.strip().strip("\"'").strip(" .!?")


def _title(text: str) -> str:
    title = _ARTICLE.sub("", _strip(text))
    return title[:1].upper() + title[1:]


def _assignment(match: re.Match[str]) -> dict[str, Any]:
    """Split "Sam due Friday in Finance" (clauses in any order) into assignee, due and project."""
    parts = _CLAUSE.split(match.group("tail"))
    found: dict[str, Any] = {"title": _title(match.group("title")), "assignee": _strip(parts[0])}
    for keyword, value in zip(parts[1::2], parts[2::2]):
        key = "project" if keyword.lower() in ("in", "for") else "due"
        value = _strip(value)
        if key == "project":
            value = re.sub(r"\s+project$", "", _ARTICLE.sub("", value), flags=re.IGNORECASE)
        found[key] = value
    return found


def parse_request(text: str) -> Request:
    """Read one user message as one of the request shapes the planner knows."""
    message = " ".join(text.replace("/darcy", " ").split())
    if m := _ASSIGN.match(_strip(message)):  # first: the assignee may be given by email
        return Request("assign", _assignment(m))
    if m := _EMAIL.search(message):
        return Request("verify", {"email": m.group(0).rstrip(".")})
    if _WHO_AM_I.search(message):
        return Request("whoami")
    if _TASKS.search(message) and _SHOW.search(message):
        return Request("view", _view_fields(_strip(message)))
    for pattern in (_MARK, _IS_DONE, _FINISHED):
        if m := pattern.search(_strip(message)):
            return Request("complete", {"task": _strip(m.group("what"))})
    if _PROJECTS.search(message) and _SHOW.search(message):
        return Request("projects")
    return Request("unknown")


def _view_fields(message: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if m := _POSSESSIVE.search(message):
        fields["assignee"] = m.group(1)
    elif _MINE.search(message):
        fields["assignee"] = "me"
    elif m := _FOR.search(message):
        fields["assignee"] = m.group(1)
    if m := _IN.search(message):
        fields["project"] = _strip(m.group(1))
    lowered = message.lower()
    if re.search(r"\b(done|completed|finished)\s+tasks\b", lowered):
        fields["status"] = "done"
    elif re.search(r"\ball\s+(?:of\s+)?(?:\w+['\u2019]s\s+|my\s+)?tasks\b", lowered):
        fields["status"] = "all"
    return fields


class TaskPlanner:
    """The planner behind the offline model: ``planner(messages, tools) -> reply``."""

    def __call__(self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None) -> str | ScriptedReply:
        if not messages:
            return HELP
        last = messages[-1]
        user_text = next((m.content or "" for m in reversed(messages) if m.role == "user"), "")
        if last.role == "tool":
            return self._after_tools(messages, user_text)
        system = "\n".join(m.content or "" for m in messages if m.role == "system")
        return self._plan(user_text, verified=not _NOT_VERIFIED.search(system))

    # -- a new user message ---------------------------------------------------------

    def _plan(self, text: str, *, verified: bool) -> str | ScriptedReply:
        request = parse_request(text)
        if request.kind == "verify":
            return _calls(call("verify_user", email=request.fields["email"]))
        if not verified or request.kind == "whoami":
            return _calls(call("whoami"))
        return self._act(request)

    def _act(self, request: Request) -> str | ScriptedReply:
        if request.kind == "assign":
            return _calls(call("list_projects"))  # as in the seed's flow: look the projects up first
        if request.kind == "view":
            return _calls(call("find_tasks", **request.fields))
        if request.kind == "complete":
            return _calls(call("complete_task", task=request.fields["task"]))
        if request.kind == "projects":
            return _calls(call("list_projects"))
        return HELP

    # -- tool results -------------------------------------------------------------------

    def _after_tools(self, messages: list[ChatMessage], user_text: str) -> str | ScriptedReply:
        at = max(i for i, m in enumerate(messages) if m.role == "assistant" and m.tool_calls)
        asked = messages[at]
        results = [m for m in messages[at + 1 :] if m.role == "tool"]
        replies = []
        for result in results:
            reply = self._read_result(result, asked, messages, user_text)
            if isinstance(reply, ScriptedReply):
                return reply
            replies.append(reply)
        return "\n\n".join(r for r in replies if r) or HELP

    def _read_result(
        self, result: ChatMessage, asked: ChatMessage, messages: list[ChatMessage], user_text: str
    ) -> str | ScriptedReply:
        content = result.content or ""
        name = result.name or ""
        if content.startswith("Permission denied"):
            reason = content.removeprefix("Permission denied: ").split(", so the call")[0]
            return f"Sorry, you can't do that: {reason}. Ask a board admin for access."
        if content.startswith("The user denied"):
            return "OK, I won't do that. Nothing was changed."
        if content.startswith("This call of") and "needs approval" in content:
            return "Nobody confirmed that, so nothing was changed."
        if name == "whoami":
            return ASK_EMAIL if "not verified" in content else content
        if name == "verify_user":
            if content.startswith("Waiting for a board admin"):
                return f"Thanks! {content}"
            if not content.startswith(("Verified", "Already verified")):
                # The tool's note is written for the model ("Ask the user to ..."): keep what the user needs.
                return content.split(" Ask the user")[0] + " Please check the email and tell me again."
            follow_up = parse_request(_EMAIL.sub("", user_text))
            if follow_up.kind not in ("unknown", "verify", "whoami"):
                return self._act(follow_up)  # "I'm sam@example.org - show me my tasks"
            return f"Thanks! {content} What can I do for you?"
        if name == "list_projects":
            request = parse_request(user_text)
            if request.kind != "assign":
                return content
            return _calls(call("create_task", **_with_project_id(request.fields, content)))
        if name == "create_task":
            if chose := _CHOSE.search(content):
                return self._call_again(chose, result, asked, messages) or content
            return f"Done! {content}" if content.startswith("Created") else content
        if name == "complete_task":
            if content.startswith("Marked"):
                return f"Nice work! {content}"
            if "did not confirm" in content:
                return "OK, I haven't changed anything. Which task did you finish?"
            return content
        return content

    def _call_again(
        self, chose: re.Match[str], result: ChatMessage, asked: ChatMessage, messages: list[ChatMessage]
    ) -> ScriptedReply | None:
        """create_task settled a "did you mean": make the same call with the chosen id."""
        turn = messages[max(i for i, m in enumerate(messages) if m.role == "user") :]
        made = sum(1 for m in turn for c in m.tool_calls if c.name == "create_task")
        previous = next((c for c in asked.tool_calls if c.id == result.tool_call_id), None)
        if made >= _MAX_CREATE_CALLS or previous is None or previous.arguments is None:
            return None
        arguments = {**previous.arguments, chose.group(1): chose.group(2)}
        return _calls(call("create_task", **arguments))


def _with_project_id(fields: dict[str, Any], projects: str) -> dict[str, Any]:
    """Use the project's id when the name the user said is exactly one project's name (else the tool matches)."""
    said = str(fields.get("project") or "")
    ids = {m.group("name").lower(): m.group("id") for m in _PROJECT_LINE.finditer(projects)}
    ids.update({i.lower(): i for i in ids.values()})
    arguments = dict(fields)
    arguments.setdefault("project", "")
    if said.lower() in ids:
        arguments["project"] = ids[said.lower()]
    return arguments


def _calls(*tool_calls: dict[str, Any] | ToolCall) -> ScriptedReply:
    return ScriptedReply(tool_calls=list(tool_calls))


def offline_task_llm(*, bus: MessageBus | None = None) -> ScriptedLLM:
    """The offline model of the task assistant: a ``ScriptedLLM`` driven by :class:`TaskPlanner`."""
    return ScriptedLLM(TaskPlanner(), bus=bus)
