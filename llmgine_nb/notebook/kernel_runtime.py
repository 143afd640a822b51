"""``NotebookRuntime``: the llmgine of one kernel, and the Python API the magics are made of.

    from llmgine_nb.notebook import NotebookRuntime, runtime
    rt = runtime()                                # this kernel's (the extension makes one per kernel)
    rt = NotebookRuntime(get_ipython())          # or your own
    turn = rt.ask("What is 2+2?")                 # returns at once; the output updates in place
    turn.wait()                                   # -> TurnResult
    rt.ask_sync("And 3+3?")                       # the blocking form, for scripts
    rt.approve("call_1_0"); rt.deny("call_2_0", "not that file")
    rt.model = "openai/gpt-4o-mini"; rt.sessions(); rt.resume("research"); rt.usage()

A runtime owns one ``MessageBus`` whose background loop (``bus.background``)
runs the engines; one ``Store`` (``LLMGINE_DB`` or the per-user default);
one ``ToolManager`` fed with the ``@tool`` functions of the user's
namespace; the approval front end (an ``ApprovalQueue`` answered by widget
cards, ``%llmgine approve`` or an ``input()`` prompt); and one ``ChatEngine``
per session it has talked to.  Front ends send commands and render events:
the runtime never reaches into an engine's turn.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import re
import signal
import threading
import types
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bus import MessageBus
from ..engine.commands import CancelTurn, ForkSession, SendMessage, SwitchModel
from ..engine.events import TurnStarted
from ..engine.turn import TurnResult
from ..messages import CommandResult, Event
from ..observe.redact import Redactor
from ..tools.approval import MIN_PREFIX, ApprovalQueue
from ..tools.commands import ChoiceRequest, RequestApproval, ToolQuestion
from ..tools.events import ApprovalDecided
from ..tools.manager import ToolManager
from ..tools.tool import Tool, tool_options
from .answers import Answering
from .config import APPROVAL_PROMPTS, UI_MODES, NotebookConfig
from .handle import TurnHandle
from .live import DisplaySink, LiveCell, NullSink, TextSink
from .render import FORMATS
from .transcript import QuestionBlock, Transcript

if TYPE_CHECKING:
    from ..engine import ChatEngine
    from ..store import Store

__all__ = ["NotebookRuntime", "TurnHandle", "NotebookConfig", "UI_MODES", "APPROVAL_PROMPTS"]

log = logging.getLogger("llmgine_nb.notebook")


class NotebookRuntime(Answering):
    """The llmgine of one kernel: bus, store, tools, approvals, engines - and the API of every magic.

    ``shell`` is the IPython shell (None for a script).  ``store`` or ``db``
    choose the database (default ``LLMGINE_DB`` or the per-user file).
    ``model``/``llm``: the model for new sessions (default: from the
    environment, else the offline ``scripted`` model).  ``session``: a
    session id or name to resume (default: a new session).
    """

    def __init__(
        self,
        shell: Any = None,
        *,
        store: Store | None = None,
        db: str | os.PathLike[str] | None = None,
        model: str | None = None,
        llm: Any = None,
        system_prompt: str | None = None,
        session: str | None = None,
        config: NotebookConfig | None = None,
        tools: ToolManager | None = None,
        **config_values: Any,
    ) -> None:
        self.shell = shell
        self.config = config or NotebookConfig()
        for name, value in config_values.items():
            self.config.set(name, value)
        if not self.config.user:
            self.config.user = _user_name()
        self.bus = MessageBus("notebook")
        self._store = store
        self._own_store = store is None
        self._db = db
        self._model = model
        self._llm = llm
        self.system_prompt = system_prompt
        self._initial_session = session
        self._own_tools = tools is None
        self.tools = tools if tools is not None else ToolManager(bus=self.bus, approval_timeout=self.config.approval_timeout)
        if self.tools.bus is None:
            self.tools.bus = self.bus
        self._namespace_tools: set[str] = set()
        self.approvals = ApprovalQueue(on_request=self._on_request)
        #: The one redactor of this kernel: the engines' storage, the event log and every cell output.
        self.redactor = Redactor()
        self._engines: dict[str, ChatEngine] = {}
        self._current: str | None = None
        self._cells: dict[str, LiveCell] = {}  # session id -> the cell of its running turn
        self._turn_cells: dict[str, LiveCell] = {}  # turn id -> its cell
        self._active: dict[str, int] = {}  # session id -> turns asked and not finished
        self._locks: dict[str, asyncio.Lock] = {}
        self._deciders: dict[str, str] = {}
        self._handles: list[TurnHandle] = []
        self._event_log: Any = None
        self._closed = False
        self._interrupt_handler: tuple[Any, Any, Any] | None = None
        self._start_lock = threading.RLock()  # making the current engine (never held while a turn ends)
        self._active_lock = threading.Lock()  # the turn counts of ``_active``
        self._registrations: list[Any] = [
            self.approvals.attach(self.bus),
            self.bus.subscribe(Event, self._router(), priority=-10),
            # Before the engine persists the decision (priority 100): say who made it.
            self.bus.subscribe(ApprovalDecided, self._stamp_decider, priority=200),
        ]

    # -- parts, made when first needed ------------------------------------------------

    @property
    def store(self) -> Store:
        """The database of sessions, history, usage and the event log."""
        if self._store is None:
            from ..store import Store

            self._store = Store(self._db)
        if self._event_log is None:
            from ..observe.eventlog import EventLogObserver

            self._event_log = EventLogObserver(self._store, redactor=self.redactor).attach(self.bus)
        return self._store

    @property
    def namespace(self) -> dict[str, Any] | None:
        return getattr(self.shell, "user_ns", None)

    @property
    def engine(self) -> ChatEngine:
        """The current session's engine (started on first use)."""
        with self._start_lock:
            if self._current is None:
                self._current = self._engine_for(self._initial_session, create_named=True).session_id
            return self._engines[self._current]

    @property
    def session_id(self) -> str:
        return self.engine.session_id

    def _engine_for(self, ref: str | None, *, create_named: bool) -> ChatEngine:
        """The engine of session ``ref`` (id or name): running, resumed from disk, or new."""
        self._check_open()
        if ref is not None:
            for engine in self._engines.values():
                if ref == engine.session_id:
                    return engine
            # An id, a name, or the shortened id `%llmgine sessions` shows (6+ characters).
            record = self._find_session(ref, min_prefix=MIN_PREFIX)
            if record is None and not create_named:
                raise LookupError(f"there is no session {ref!r}; `%llmgine sessions` lists them")
            session_id = record.id if record is not None else None
            if session_id in self._engines:
                return self._engines[session_id]  # type: ignore[index]
            engine = self._new_engine(session_id=session_id, session_name=None if record else ref)
        else:
            engine = self._new_engine()
        self._engines[engine.session_id] = engine
        return engine

    def _new_engine(self, *, session_id: str | None = None, session_name: str | None = None) -> ChatEngine:
        from ..engine import ChatEngine

        llm = self._llm
        if llm is None and self._current is not None and self._model is None:
            llm = self._engines[self._current].llm  # a new session keeps the model in use
        engine = ChatEngine(
            self.bus,
            store=self.store,
            tools=self.tools,
            model=None if llm is not None else self._model,
            llm=llm,
            system_prompt=self.system_prompt,
            session_id=session_id,
            session_name=session_name,
            notebook=_notebook_name(self.shell),
            max_steps=self.config.max_steps,
            namespace=self.namespace,
            approvals=self.approvals,
            redactor=self.redactor,
        )
        return self.bus.background.run(engine.start(), timeout=60)

    # -- asking --------------------------------------------------------------------------

    def ask(
        self,
        text: str,
        *,
        model: str | None = None,
        system: str | None = None,
        tools: bool = True,
        format: str | None = None,
        schema: type | None = None,
        session: str | None = None,
        display: bool = True,
        out: str | None = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> TurnHandle:
        """Start a turn and return at once; the output (if ``display``) updates in place.

        ``model``/``system``: for this turn only.  ``tools=False``: no tools.
        ``format``: markdown, text, code or json.  ``schema``: a pydantic
        model class the answer must fit (structured output).  ``session``:
        the session (id or name; created if new) - default the current one.
        ``out``: a variable of the user's namespace set to the answer's
        value when the turn ends.

        ``wait=True`` blocks until the turn ends (at most ``timeout``
        seconds), asking approvals with ``input()``; the live output then
        makes way for one final output, so that tools that read outputs as
        sent (nbval) see the answer, not the first update.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("there is no prompt: give the question as text, e.g. %llmgine ask What is 2+2?")
        fmt = self._check_options(format, schema, out)
        engine = self._engine_for(session, create_named=True) if session else self.engine
        command = SendMessage(
            session_id=engine.session_id, text=text, model=model, system=system, use_tools=tools,
            response_model=schema,
        )
        return self._start(engine, text, command, model=model, fmt=fmt, schema=schema, display=display,
                           out=out, wait=wait, timeout=timeout)

    def retry(
        self, *, format: str | None = None, display: bool = True, wait: bool = False, timeout: float | None = None
    ) -> TurnHandle:
        """Run the current session's last message again (after a failed or stopped turn).

        The message is not stored a second time, as re-running the cell that
        asked would do.  Returns at once, like ``ask``.
        """
        fmt = self._check_options(format, None, None)
        engine = self.engine
        last = next((m for m in reversed(self.store.messages(engine.session_id)) if m.role == "user"), None)
        if last is None:
            raise ValueError("there is no earlier message to retry in this session; ask something first")
        return self._start(engine, last.content or "", None, model=None, fmt=fmt, schema=None, display=display,
                           out=None, wait=wait, timeout=timeout)

    def _check_options(self, format: str | None, schema: type | None, out: str | None) -> str:
        """The output format, once the options of a turn are known to be good (before anything starts)."""
        fmt = format or ("json" if schema is not None else self.config.format)
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        if schema is not None and not _is_model_class(schema):
            raise ValueError(f"{schema!r} is not a pydantic model class; structured output needs a BaseModel subclass")
        if out is not None and not out.isidentifier():
            raise ValueError(f"{out!r} is not a valid variable name for --out")
        return fmt

    def _start(
        self, engine: ChatEngine, prompt: str, command: SendMessage | None, *, model: str | None, fmt: str,
        schema: type | None, display: bool, out: str | None, wait: bool, timeout: float | None,
    ) -> TurnHandle:
        """Show the turn's cell and run ``command`` (None: the engine's retry) in the background."""
        self.refresh_tools()
        self._stop_on_interrupt()
        transcript = Transcript(prompt, model=model or engine.model, redactor=self.redactor)
        if not self._active.get(engine.session_id):
            transcript.mark_running()  # nothing ahead of it: it starts now, not "waiting"
        blocking = wait or (self.config.approval_prompt == "input" and not self._widgets_enabled())
        sink = self._sink(display, blocking=blocking)
        cell = LiveCell(transcript, sink, fmt=fmt, max_updates_per_s=self.config.updates_per_second)
        cell.start()
        session_id = engine.session_id
        with self._active_lock:
            self._active[session_id] = self._active.get(session_id, 0) + 1
        future = self.bus.background.submit(self._run(session_id, cell, command))

        def finished(_: Any) -> None:  # runs on the loop thread: it must not wait for the main thread's locks
            with self._active_lock:
                self._active[session_id] -= 1

        future.add_done_callback(finished)
        handle = TurnHandle(self, prompt, session_id, cell, future, fmt, schema)
        self._handles = [h for h in self._handles[-20:] if not h.done()] + [handle]
        if out:
            self._assign_when_done(handle, out)
        if blocking:
            handle.wait(timeout)
        return handle

    def ask_sync(self, text: str, *, timeout: float | None = None, **options: Any) -> TurnResult:
        """``ask`` and wait for the result (approvals meanwhile by ``input()``); for scripts."""
        return self.ask(text, wait=True, timeout=timeout, **options).result

    @property
    def last(self) -> TurnHandle | None:
        """The most recent turn this runtime started."""
        return self._handles[-1] if self._handles else None

    async def _retry_turn(self, session_id: str) -> CommandResult:
        """The engine's ``retry()``, as the result of a command (so a refusal shows like one)."""
        try:
            return CommandResult(command_id="retry", success=True, result=await self._engines[session_id].retry())
        except (RuntimeError, LookupError, ValueError) as exc:  # e.g. a turn is running
            return CommandResult(command_id="retry", success=False, error=f"{type(exc).__name__}: {exc}")

    async def _run(self, session_id: str, cell: LiveCell, command: SendMessage | None) -> TurnResult:
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:  # one turn at a time per session; a second ask waits its turn
            self._cells[session_id] = cell
            cell.change(lambda t: t.mark_running())
            try:
                result = await (self.bus.execute(command) if command is not None else self._retry_turn(session_id))
            finally:
                if self._cells.get(session_id) is cell:
                    del self._cells[session_id]
                for turn_id in [k for k, v in self._turn_cells.items() if v is cell]:
                    del self._turn_cells[turn_id]
        if result.success and isinstance(result.result, TurnResult):
            cell.finish()
            return result.result
        # The engine refused the turn before it began (e.g. an empty message).
        reason = error_sentence(result.error or "the turn could not start")
        cell.change(lambda t: t.fail_locally("internal", reason[:1].upper() + reason[1:], result.error or ""))
        cell.finish()
        return TurnResult(turn_id="", session_id=session_id, status="failed", reason=reason, error_kind="internal")

    def _sink(self, display: bool, *, blocking: bool = False) -> Any:
        if not display:
            return NullSink()
        ui = self.ui
        if ui == "text":
            return TextSink(answer_hint=self.config.approval_prompt == "command")
        return DisplaySink(
            interactive=ui == "widgets", decide=self._decide_from_card, answer=self._answer_from_card,
            user=self.config.user, blocking=blocking,
        )

    @property
    def ui(self) -> str:
        """The front end in use: widgets, markdown or text (``auto`` resolved)."""
        if self.config.ui != "auto":
            return self.config.ui
        if getattr(self.shell, "kernel", None) is None:
            return "text"  # a plain IPython shell or terminal: nothing to update in place
        return "widgets"

    def _widgets_enabled(self) -> bool:
        return self.ui == "widgets"

    def _assign_when_done(self, handle: TurnHandle, name: str) -> None:
        namespace = self.namespace

        def assign(_: Any) -> None:
            if namespace is None:
                return
            try:
                namespace[name] = handle.value
            except Exception:  # noqa: BLE001 - a failed turn has no value to assign
                log.debug("no value to assign to %s", name, exc_info=True)

        handle.future.add_done_callback(assign)

    # -- events to live cells --------------------------------------------------------------

    def _router(self) -> Callable[[Event], None]:
        """The subscriber that hands each event to the live cell of its turn.

        By session; events that lack one are matched by the turn id the
        engine stamps.  It sees every event of the bus, so it is a closure
        over the two tables (benchmarks/bench_notebook.py).
        """
        cells, turn_cells = self._cells, self._turn_cells

        def route(event: Event) -> None:
            cell = cells.get(event.session_id)  # type: ignore[arg-type]
            if cell is None:
                if not event.metadata:
                    return
                cell = turn_cells.get(event.metadata.get("turn_id"))  # type: ignore[arg-type]
                if cell is None:
                    return
            elif event.__class__ is TurnStarted:
                turn_cells[event.turn_id] = cell  # type: ignore[attr-defined]
            cell.feed(event)

        return route

    def _stamp_decider(self, event: ApprovalDecided) -> None:
        who = self._deciders.pop(event.call_id, None)
        if who is not None:
            event.metadata.setdefault("decided_by", who)

    def _on_request(self, request: Any) -> None:
        """A tool (or the engine) asks something: show it in the turn's cell."""
        cell = self._cells.get(request.session_id)
        if cell is None:
            log.info("%s waits for an answer: %s", type(request).__name__, getattr(request, "call_id", request.id))
            return
        if isinstance(request, RequestApproval):
            cell.change(lambda t: t.ask_approval(request))
        elif isinstance(request, ToolQuestion):
            block = QuestionBlock(
                request_id=request.id,
                question=request.question,
                kind="choice" if isinstance(request, ChoiceRequest) else "confirm",
                options=list(getattr(request, "options", []) or []),
                call_id=request.call_id,
                tool_name=request.tool_name,
            )
            cell.change(lambda t: t.add_question(block))

    # -- stopping -------------------------------------------------------------------------

    def _stop_on_interrupt(self) -> None:
        """Make the kernel's interrupt (the ■ button) stop background turns too.

        ipykernel ignores SIGINT while no cell runs, and puts back the handler
        it saved before a cell after it; a handler saved there is in force
        between cells.  It stops the running turns, and otherwise does what
        the saved one did.  (A blocked ``--wait`` cell gets KeyboardInterrupt
        as usual.)
        """
        kernel = getattr(self.shell, "kernel", None)
        if (
            self._interrupt_handler is not None
            or kernel is None
            or not hasattr(kernel, "saved_sigint_handler")
            or threading.current_thread() is not threading.main_thread()
        ):
            return
        previous = kernel.saved_sigint_handler

        def on_interrupt(signum: int, frame: Any) -> None:
            if self._cells:
                for session_id in list(self._cells):
                    # Not waiting here: a signal handler must not block.
                    self.bus.background.submit(self.bus.execute(CancelTurn(session_id=session_id, reason="interrupted")))
            elif callable(previous):
                previous(signum, frame)

        kernel.saved_sigint_handler = on_interrupt
        self._interrupt_handler = (kernel, on_interrupt, previous)

    def _restore_interrupt(self) -> None:
        if self._interrupt_handler is None:
            return
        kernel, ours, previous = self._interrupt_handler
        self._interrupt_handler = None
        if getattr(kernel, "saved_sigint_handler", None) is ours:
            kernel.saved_sigint_handler = previous
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is ours:
            signal.signal(signal.SIGINT, previous)

    def stop(self) -> int:
        """Cancel every running turn (partial replies are kept, marked); returns how many."""
        return sum(self._cancel(session_id, "stopped by the user") for session_id in list(self._cells))

    def _cancel(self, session_id: str, reason: str) -> bool:
        if session_id not in self._engines:
            return False
        result = self.bus.execute_sync(CancelTurn(session_id=session_id, reason=reason), timeout=30)
        return bool(result.success and result.result)

    # -- the model ---------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The current session's model (``rt.model = "openai/gpt-4o-mini"`` switches it)."""
        return self.engine.model

    @model.setter
    def model(self, name: str) -> None:
        self.set_model(name)

    def set_model(self, name: str) -> str:
        """Switch the current session to model ``name`` (a litellm model string or an alias)."""
        if not name or not name.strip():
            raise ValueError("give a model name, e.g. %llmgine model openai/gpt-4o-mini")
        name = name.strip()
        _check_model_name(name)
        engine = self.engine
        result = self.bus.execute_sync(SwitchModel(session_id=engine.session_id, model=name), timeout=60)
        return str(result.unwrap())

    def use_llm(self, llm: Any) -> None:
        """Use a ready model client (e.g. a ``ScriptedLLM``) in the current and every new session.

        The current session's engine is restarted on the same session with it
        (a running turn is cancelled first).
        """
        if getattr(llm, "bus", None) is None:
            llm.bus = self.bus
        with self._start_lock:
            self._llm = llm
            current = self._current
        if current is None:
            return
        # Not under the lock: closing the old engine ends its running turn, and the end of a
        # turn runs callbacks on the loop thread that must not wait for this thread.
        old = self._engines[current]
        self.bus.background.run(old.close(), timeout=30)
        engine = self._new_engine(session_id=current)
        self._engines[engine.session_id] = engine  # only now: a failed close leaves the old engine in place

    # -- tools ----------------------------------------------------------------------------------

    def refresh_tools(self) -> list[str]:
        """Register the ``@tool`` functions of the user's namespace (and drop deleted ones); their names."""
        namespace = self.namespace
        if namespace is None:
            return []
        found: dict[str, Any] = {}
        for name, value in list(namespace.items()):
            if name.startswith("_"):
                continue
            if isinstance(value, Tool) or (
                isinstance(value, (types.FunctionType, types.MethodType)) and tool_options(value) is not None
            ):
                found[name] = value
        registered = set()
        for value in found.values():
            try:
                registered.add(self.tools.register(value, replace=True).name)
            except (TypeError, ValueError) as exc:
                log.warning("could not register %r as a tool: %s", value, exc)
        for gone in self._namespace_tools - registered:
            if gone in self.tools:
                self.tools.unregister(gone)
        self._namespace_tools = registered
        return sorted(registered)

    # -- sessions --------------------------------------------------------------------------------

    def new_session(self, name: str | None = None) -> str:
        """Start a new session (optionally named) and make it current; returns its id."""
        self._check_open()
        if name and self.store.find_session(name) is not None:
            raise ValueError(f"a session named {name!r} already exists; resume it with %llmgine resume {name}")
        engine = self._new_engine(session_name=name or None)
        self._engines[engine.session_id] = engine
        self._current = engine.session_id
        return engine.session_id

    def resume(self, ref: str) -> str:
        """Make session ``ref`` (id, unique id prefix, or name) current; returns its id."""
        record = self._find_session(ref)
        if record is None:
            raise LookupError(f"there is no session {ref!r}; `%llmgine sessions` lists them")
        engine = self._engine_for(record.id, create_named=False)
        self._current = engine.session_id
        return engine.session_id

    def _find_session(self, ref: str, *, min_prefix: int = 1) -> Any:
        """The stored session ``ref`` names: its id or name, else the one id it is a prefix of.

        A prefix that fits several sessions is an error, not a new session.
        """
        record = self.store.find_session(ref)
        if record is not None or len(ref) < min_prefix:
            return record
        matches = [s.id for s in self.store.list_sessions(limit=None) if s.id.startswith(ref)]
        if len(matches) > 1:
            raise LookupError(f"{ref!r} is the start of {len(matches)} session ids; give more of the id")
        return self.store.find_session(matches[0]) if matches else None

    def fork(self, at_message_id: str | None = None, name: str | None = None) -> str:
        """Continue in a copy of the current session (up to a message, default all); returns the new id.

        ``at_message_id`` may be a unique prefix of the id (``%llmgine history`` shows them).
        """
        engine = self.engine
        old = engine.session_id
        if at_message_id:
            at_message_id = self.find_message(at_message_id)
        if name and self.store.find_session(name) is not None:
            raise ValueError(f"a session named {name!r} already exists; choose another name for the fork")
        result = self.bus.execute_sync(ForkSession(session_id=old, at_message_id=at_message_id, name=name), timeout=60)
        new_id = str(result.unwrap())
        self._engines.pop(old, None)
        self._engines[new_id] = engine  # the engine now serves the fork
        self._current = new_id
        return new_id

    def find_message(self, ref: str) -> str:
        """The id of the current session's message ``ref`` (an id or a unique prefix of one)."""
        ids = [m.id for m in self.store.messages(self.session_id)]
        found = [i for i in ids if i == ref] or [i for i in ids if i.startswith(ref)]
        if len(found) != 1:
            problem = "no message" if not found else f"{len(found)} messages"
            raise LookupError(f"{problem} of this session start with {ref!r}; `%llmgine history` shows the ids")
        return found[0]

    def sessions(self, limit: int = 20) -> Any:
        """The most recent sessions, as a table."""
        from .reports import SessionsReport

        return SessionsReport(self.store.list_sessions(limit=limit), current=self._current)

    def history(self, last: int | None = None, *, session: str | None = None) -> Any:
        """The messages of a session (default the current one), as a transcript table."""
        from .reports import HistoryReport

        session_id = self._session_ref(session)
        record = self.store.get_session(session_id)
        return HistoryReport(record, self.store.messages(session_id, last=last), self.store.tool_calls(session_id))

    def search(self, query: str, *, session: str | None = None, limit: int = 20) -> Any:
        """Full-text search over every session's messages (or one session's)."""
        from .reports import SearchReport

        return SearchReport(query, self.store.search(query, session=session, limit=limit))

    def _session_ref(self, session: str | None) -> str:
        if session is None:
            return self.session_id
        record = self.store.find_session(session)
        if record is None:
            raise LookupError(f"there is no session {session!r}; `%llmgine sessions` lists them")
        return record.id

    # -- looking back --------------------------------------------------------------------------------

    def list_tools(self) -> Any:
        """The tools the model may call: schema, risk and approval policy."""
        from .reports import ToolsReport

        self.refresh_tools()
        return ToolsReport(list(self.tools), always=self.tools.always_allowed(self._current))

    def usage(self, *, all_sessions: bool = False) -> Any:
        """Tokens and cost: totals per model and a chart over time (this session, or all)."""
        from .reports import UsageReport

        session = None if all_sessions else self.session_id
        calls = self.store.llm_calls(session)
        rows = self.store.usage("model", session=session)
        return UsageReport(calls, rows, scope="all sessions" if all_sessions else "this session")

    def log(self, *, session: str | None = None, types: list[str] | None = None, limit: int | None = 2000) -> Any:
        """The session's event stream: a filterable table and a timeline of turns, model calls and tools."""
        from .reports import LogReport

        session_id = self._session_ref(session)
        if self._event_log is not None:
            self._event_log.flush()
        events = self.store.events(session_id, limit=limit)
        if types:
            wanted = [t.lower() for t in types]
            events = [e for e in events if any(w in type(e).__name__.lower() for w in wanted)]
        return LogReport(events, session_id=session_id)

    def settings(self) -> Any:
        """Configuration: the notebook settings, the model, the database, the environment (no secrets)."""
        from ..llm.config import Settings, choose_model
        from .reports import ConfigReport

        env = Settings()
        rows = [(f.name, getattr(self.config, f.name), "notebook setting") for f in fields(self.config)]
        choice = choose_model(None, env)
        rows += [
            ("model", self.engine.model if self._current else choice.model,
             "this session" if self._current else f"from {choice.source}"),
            ("session", self._current or "(none yet)", "current session id"),
            ("database", str(self.store.path), "LLMGINE_DB" if os.environ.get("LLMGINE_DB") else "default location"),
        ]
        for name in ("LLMGINE_MODEL", "LLMGINE_API_BASE", "LLMGINE_FAST_MODEL", "LLMGINE_SMART_MODEL"):
            value, source = env.get(name)
            rows.append((name, _public_value(value) if value else "(not set)", source or ""))
        return ConfigReport(rows, ui=self.ui)

    def configure(self, **values: Any) -> NotebookConfig:
        """Change notebook settings (see ``NotebookConfig``)."""
        for name, value in values.items():
            self.config.set(name, value)
            if name == "approval_timeout":
                self.tools.approval_timeout = self.config.approval_timeout
            if name == "max_steps":
                for engine in self._engines.values():
                    engine.max_steps = self.config.max_steps
        return self.config

    def keys(self) -> Any:
        """Which providers have an API key (masked: ``sk-...abcd``)."""
        from ..llm.config import key_status
        from .reports import KeysReport

        return KeysReport(key_status())

    def export(self, path: str | os.PathLike[str], *, session: str | None = None, overwrite: bool = False) -> Path:
        """Write a session (default the current one) to ``.ipynb`` or ``.md``; returns the path.

        An existing file is refused (``FileExistsError``) unless ``overwrite``.
        """
        from ..store.export import export_session

        return export_session(self.store, self._session_ref(session), path, overwrite=overwrite)

    def help(self) -> str:
        """The help text of ``%llmgine``."""
        from .magics import HELP

        return HELP

    # -- the end ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop running turns, take every handler off the bus, flush the log and close the store."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - closing must go on
            log.debug("stopping turns on close failed", exc_info=True)
        self._restore_interrupt()
        self.approvals.deny_all("the notebook runtime was closed")
        for engine in list(self._engines.values()):
            try:
                self.bus.background.run(engine.close(), timeout=10)
            except Exception:  # noqa: BLE001
                log.debug("closing engine %s failed", engine.session_id, exc_info=True)
        self._engines.clear()
        for registration in self._registrations:
            registration.unregister()
        self._registrations.clear()
        if self._event_log is not None:
            self._event_log.detach()
        if self._own_tools:
            self.tools.close()
        self.bus.close()
        if self._store is not None and self._own_store:
            self._store.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this notebook runtime was closed; %load_ext llmgine_nb (or %reload_ext) starts a new one")

    def __repr__(self) -> str:
        session = self._current or "no session yet"
        return f"<NotebookRuntime session={session} ui={self.ui} tools={len(self.tools)}>"


# -- helpers ---------------------------------------------------------------------------------------------


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "you"


def _notebook_name(shell: Any) -> str | None:
    ns = getattr(shell, "user_ns", None) or {}
    return ns.get("__vsc_ipynb_file__") or os.environ.get("JPY_SESSION_NAME") or None


def error_sentence(error: str) -> str:
    """A command's error as a sentence: without the ``RuntimeError: `` its handler's exception adds."""
    return _ERROR_TYPE_PREFIX.sub("", error, count=1).strip()


_ERROR_TYPE_PREFIX = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Failed|NotFound|Refused|Timeout|Exit): ")


def _check_model_name(name: str) -> None:
    """Refuse what cannot be a model: an alias, ``scripted``, or a name whose provider is known."""
    from ..llm.config import DEFAULT_ALIASES, provider_of, resolve_aliases

    aliases = set(resolve_aliases()) | {alias for names in DEFAULT_ALIASES.values() for alias in names}
    if name in aliases or (not any(c.isspace() for c in name) and provider_of(name) is not None):
        return
    raise ValueError(
        f"{name!r} is not a model name: use an alias ({', '.join(sorted(aliases))}), 'scripted', or a litellm "
        "model with its provider, e.g. openai/gpt-4o-mini; to ask a question, write %llmgine ask ..."
    )


def _is_model_class(value: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(value, type) and issubclass(value, BaseModel)


def _public_value(value: str) -> str:
    """A URL without user:password or query (either may carry a key)."""
    if "://" in value:
        from ..llm.base import public_url

        return public_url(value)
    return value
