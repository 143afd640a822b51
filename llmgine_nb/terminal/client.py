"""The terminal chat: a prompt, the reply streaming under it, approvals and choices asked in line.

    await TerminalChat(LocalConnection(hub)).run()

It sends the same commands as every other front end (through a
``Connection``) and renders the session's events; Ctrl-C stops a running
turn.  Slash commands: see ``HELP``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import Any

from ..replies import parse_yes_no
from .connection import Connection, ConnectionError_
from .render import Renderer, kind

__all__ = ["TerminalChat", "HELP"]

HELP = """Type a message to chat.  Commands:
  /new              start a new session
  /sessions         list your sessions
  /resume ID        continue a session (a unique start of its id is enough)
  /model NAME       use another model in this session
  /usage            tokens and cost of this session
  /stop             stop the running turn (or press Ctrl-C while it runs)
  /help             this help
  /quit             leave (Ctrl-D too)"""

_ENDS = ("TurnFinished", "TurnFailed", "TurnCancelled")


class TerminalChat:
    def __init__(self, connection: Connection, *, renderer: Renderer | None = None, prompt: str = "you> ") -> None:
        self.conn = connection
        self.out = renderer or Renderer()
        self.prompt = prompt
        self.session_id: str | None = None
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._turn_running = False
        self._asked: set[str] = set()

    # -- input --------------------------------------------------------------------

    async def ask(self, prompt: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, input, prompt)

    # -- the session being watched ------------------------------------------------

    async def use(self, session_id: str, after: int) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self.session_id = session_id
        self.inbox = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read(session_id, after))

    async def _read(self, session_id: str, after: int) -> None:
        try:
            async for record in self.conn.events(session_id, after):
                await self.inbox.put(record)
        except ConnectionError_ as exc:
            self.out.error(str(exc))

    # -- the loop ---------------------------------------------------------------------

    async def run(self, resume: str | None = None) -> int:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._interrupt)
        try:
            if resume:
                await self.resume(resume)
            else:
                await self.new()
            self.out.notice("Type a message, or /help.")
            while True:
                try:
                    line = (await self.ask(self.prompt)).strip()
                except EOFError:
                    self.out.line()
                    return 0
                if not line:
                    continue
                try:
                    if line.startswith("/"):
                        if await self.command(line) == "quit":
                            return 0
                    else:
                        await self.turn(line)
                except ConnectionError_ as exc:
                    self.out.error(str(exc))
        finally:
            if self._reader is not None:
                self._reader.cancel()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)

    def _interrupt(self) -> None:
        if self._turn_running and self.session_id is not None:
            self.out.notice("[stopping ...]")
            asyncio.ensure_future(self.conn.cancel(self.session_id))
        else:
            self.out.notice("(type /quit to leave)")

    # -- a turn ---------------------------------------------------------------------------

    async def turn(self, text: str) -> None:
        assert self.session_id is not None
        await self.follow(await self.conn.send(self.session_id, text))

    async def follow(self, turn_id: str | None) -> None:
        """Show the turn's events, asking what it asks, until it ends (``turn_id`` None: the next turn to end)."""
        self._turn_running = True
        try:
            while True:
                record = await self.inbox.get()
                self.out.event(record)
                item = waiting_item(record)  # approvals and questions arrive as events: no polling
                if item is not None:
                    await self.ask_item(item)
                if kind(record) in _ENDS and turn_id in (None, record.get("turn_id")):
                    self.out.end_reply()
                    return
        finally:
            self._turn_running = False

    async def ask_pending(self) -> None:
        """Ask what already waited when the session was resumed (later ones come as events), then
        follow the turn that asked to its end: its answer's outcome shows now, not after the next message."""
        assert self.session_id is not None
        items = await self.conn.pending(self.session_id)
        for item in items:
            await self.ask_item(item)
        if items:
            await self.follow(items[-1].get("turn_id"))

    async def ask_item(self, item: dict[str, Any]) -> None:
        """Ask an approval or a question once (a replayed event does not ask it again)."""
        if item["id"] in self._asked:
            return
        self._asked.add(item["id"])
        if item["kind"] == "approval":
            await self.ask_approval(item)
        else:
            await self.ask_question(item)

    async def ask_approval(self, item: dict[str, Any]) -> None:
        assert self.session_id is not None
        self.out.approval_card(item)
        while True:
            answer = (await self.ask("approve? [y]es / [n]o / [a]lways / [e]dit > ")).strip().lower()
            message, arguments = None, None
            if parse_yes_no(answer) is True:  # the package's one yes/no grammar
                decision = "approve"
            elif answer in ("a", "always"):
                decision = "always"
            elif parse_yes_no(answer) is False:
                decision = "deny"
                message = (await self.ask("reason (told to the model, may be empty) > ")).strip() or None
            elif answer in ("e", "edit"):
                decision = "edit"
                raw = await self.ask("new arguments as JSON > ")
                try:
                    arguments = json.loads(raw)
                    if not isinstance(arguments, dict):
                        raise ValueError
                except ValueError:
                    self.out.error('That is not a JSON object; e.g. {"text": "buy bread"}. Nothing was decided yet.')
                    continue
            else:
                self.out.notice("Answer y, n, a or e.")
                continue
            try:
                await self.conn.decide(self.session_id, item["call_id"], decision, message=message, arguments=arguments,
                                       args_hash=item.get("args_hash"))
            except ConnectionError_ as exc:
                self.out.error(str(exc))
            return

    async def ask_question(self, item: dict[str, Any]) -> None:
        assert self.session_id is not None
        self.out.question(item)
        options = item.get("options") or []
        answer: Any
        while True:
            raw = (await self.ask("your choice (number, or empty for none) > " if options else "yes or no? > ")).strip()
            if options:
                if not raw:
                    answer = None
                elif raw.isdigit() and 1 <= int(raw) <= len(options):
                    answer = options[int(raw) - 1]
                elif raw in options:
                    answer = raw
                else:
                    self.out.notice(f"Pick 1 to {len(options)}, or leave it empty.")
                    continue
            else:
                answer = parse_yes_no(raw) is True  # anything unclear is a no
            break
        try:
            await self.conn.answer(self.session_id, item["id"], answer)
        except ConnectionError_ as exc:
            self.out.error(str(exc))

    # -- slash commands ---------------------------------------------------------------------

    async def command(self, line: str) -> str | None:
        name, _, argument = line[1:].partition(" ")
        argument = argument.strip()
        if name in ("quit", "exit", "q"):
            return "quit"
        if name == "help":
            self.out.line(HELP)
        elif name == "new":
            await self.new(argument or None)
        elif name == "sessions":
            for s in await self.conn.sessions():
                mark = "*" if s["id"] == self.session_id else " "
                self.out.line(f"{mark} {s['id']}  {s.get('model') or ''}  {s.get('message_count') or 0} messages")
        elif name == "resume":
            if not argument:
                self.out.notice("Give the session's id: /resume ID (see /sessions).")
            else:
                await self.resume(argument)
        elif name == "model":
            if not argument:
                self.out.notice("Give a model: /model NAME (e.g. scripted, or openai/gpt-4o-mini).")
            else:
                assert self.session_id is not None
                self.out.notice(f"This session now uses {await self.conn.switch_model(self.session_id, argument)}.")
        elif name == "usage":
            assert self.session_id is not None
            rows = await self.conn.usage(self.session_id)
            if not rows:
                self.out.notice("No model calls in this session yet.")
            for row in rows:
                self.out.line(f"{row['key']}: {row['calls']} calls, {row['input_tokens']} in / "
                              f"{row['output_tokens']} out tokens, ${row['cost']:.6f}")
        elif name == "stop":
            assert self.session_id is not None
            stopped = await self.conn.cancel(self.session_id)
            self.out.notice("Stopped." if stopped else "No turn is running.")
        else:
            self.out.notice(f"There is no /{name}; /help lists the commands.")
        return None

    async def new(self, model: str | None = None) -> None:
        session = await self.conn.new_session(model)
        await self.use(session["id"], int(session.get("last_seq") or 0))
        self.out.notice(f"New session {session['id']} ({session.get('model') or 'default model'}).")

    async def resume(self, ref: str) -> None:
        sessions = await self.conn.sessions()
        matches = [s for s in sessions if s["id"] == ref] or [s for s in sessions if s["id"].startswith(ref)]
        if len(matches) != 1:
            self.out.error(f"{'No' if not matches else 'More than one'} session matches {ref!r}; see /sessions.")
            return
        session = matches[0]
        await self.use(session["id"], int(session.get("last_seq") or 0))
        self.out.notice(f"Resumed session {session['id']}.")
        self._asked.clear()
        if await self.conn.pending(session["id"]):
            self.out.notice("Something in this session waits for you:")
            await self.ask_pending()


def waiting_item(record: dict[str, Any]) -> dict[str, Any] | None:
    """The card to ask for an ``ApprovalRequested``/``ConfirmationRequested``/``ChoiceRequested`` record,
    shaped as the pending endpoint's items (so both are asked the same way); None for other events."""
    name = kind(record)
    if name == "ApprovalRequested":
        return {"kind": "approval", "id": record["call_id"], "call_id": record["call_id"],
                "display_id": record.get("display_id") or None, "args_hash": record.get("args_hash") or None,
                "tool_name": record.get("tool_name"), "arguments": record.get("arguments") or {},
                "reason": record.get("reason"), "preview": record.get("preview")}
    if name in ("ConfirmationRequested", "ChoiceRequested"):
        return {"kind": "choice" if name == "ChoiceRequested" else "confirm", "id": record["question_id"],
                "call_id": record.get("call_id"), "tool_name": record.get("tool_name"),
                "display_id": record.get("display_id") or None, "question": record.get("question"),
                "options": list(record.get("options") or [])}
    return None
