"""``NotebookRuntime``: the llmgine of one kernel, and the Python API the magics are made of.

    from llmgine_nb.notebook import NotebookRuntime, runtime
    rt = runtime()                                # this kernel's (the extension makes one per kernel)
    rt = NotebookRuntime(get_ipython())          # or your own
    turn = rt.ask("What is 2+2?")                 # returns at once; the output updates in place
    turn.wait()                                   # -> TurnResult
    rt.ask_sync("And 3+3?")                       # the blocking form, for scripts
    rt.approve("call_1_0"); rt.deny("call_2_0", "not that file")
    rt.model = "openai/gpt-4o-mini"; rt.sessions(); rt.resume("research"); rt.usage()

The runtime puts together a few parts with one job each, and keeps the API:

* one ``MessageBus`` whose background loop (``bus.background``) runs the engines;
  one ``Store`` (``LLMGINE_DB`` or the per-user default) with the event log on it;
  one ``ToolManager`` fed with the ``@tool`` functions of the namespace (``NamespaceTools``);
* ``SessionEngines`` (``sessions.py``): the sessions and the ``ChatEngine`` of each;
* ``TurnRunner`` (``turns.py``): ask, retry, stop; each turn in a live cell (``TurnCells``);
* ``Answerer`` (``answers.py``): approvals and questions, by card, command or ``input()``;
* the reports (``lookback.py``): plain functions over the store.

Front ends send commands and render events: the runtime never reaches into an engine's turn.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bus import MessageBus
from ..engine.commands import EditMessage, ForgetMessage, PinMessage
from ..engine.turn import TurnResult
from ..messages import Event
from ..secrets import Redactor
from ..tools.manager import ToolManager
from . import lookback
from .answers import Answerer
from .cells import KernelParts, TurnCells
from .config import APPROVAL_PROMPTS, UI_MODES, NotebookConfig
from .handle import TurnHandle
from .namespace_tools import NamespaceTools
from .sessions import SessionEngines, notebook_name
from .turns import TurnRunner
from .voice import error_sentence

if TYPE_CHECKING:
    from ..engine import ChatEngine
    from ..store import Store
    from ..tools.commands import RequestApproval, ToolQuestion
    from .mapping import MapHandle

__all__ = ["NotebookRuntime", "TurnHandle", "NotebookConfig", "UI_MODES", "APPROVAL_PROMPTS"]

log = logging.getLogger("llmgine_nb.notebook")


class NotebookRuntime:
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
        self._event_log: Any = None
        self._own_tools = tools is None
        self.tools = tools if tools is not None else ToolManager(bus=self.bus, approval_timeout=self.config.approval_timeout)
        # (A ToolManager given without a bus still works: each engine passes its bus to every call.)
        #: The one redactor of this kernel: the engines' storage, the event log and every cell output.
        self.redactor = Redactor()
        self._closed = False
        cells = TurnCells()
        parts = KernelParts(self.bus, self.config, self.redactor, cells)
        self._namespace_tools = NamespaceTools(self.tools, self.namespace)
        self._answers = Answerer(parts, serves=lambda s: self._sessions.serves(s))
        self.approvals = self._answers.approvals
        self._sessions = SessionEngines(
            self.bus, lambda: self.store, tools=self.tools, approvals=self.approvals, redactor=self.redactor,
            config=self.config, namespace=self.namespace, notebook=notebook_name(shell), model=model, llm=llm,
            system_prompt=system_prompt, initial_session=session,
        )
        self._turns = TurnRunner(parts, self._sessions, self._answers, shell=shell, namespace=self.namespace,
                                 refresh_tools=self.refresh_tools, ui=lambda: self.ui)
        self._registrations: list[Any] = [
            self.approvals.attach(self.bus),
            self.bus.subscribe(Event, cells.subscriber(), priority=-10, inline=True),  # it schedules redraws on the loop
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
        return self._sessions.current

    @property
    def session_id(self) -> str:
        return self.engine.session_id

    @property
    def current_session(self) -> str | None:
        """The current session's id, or None before the first turn (nothing is started to say it)."""
        return self._sessions.current_id

    @property
    def ui(self) -> str:
        """The front end in use: widgets, markdown or text (``auto`` resolved)."""
        if self.config.ui != "auto":
            return self.config.ui
        if getattr(self.shell, "kernel", None) is None:
            return "text"  # a plain IPython shell or terminal: nothing to update in place
        return "widgets"

    @property
    def cells(self) -> TurnCells:
        """Which live cell shows which running turn."""
        return self._turns.cells

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
        images: Sequence[Any] = (),
    ) -> TurnHandle:
        """Start a turn and return at once; the output (if ``display``) updates in place.

        ``model``/``system``: for this turn only.  ``tools=False``: no tools.
        ``format``: markdown, text, code or json (code: the answer's code also
        goes into a new cell below, not run; the cell waits for the answer,
        since that new cell travels in its reply).  ``schema``: a pydantic
        model class the answer must fit (structured output).  ``session``:
        the session (id or name; created if new) - default the current one.
        ``out``: a variable of the user's namespace set to the answer's
        value when the turn ends.  ``images``: figures, PIL images, file
        paths, or names of them (a variable, ``Out[N]``, ``_``), sent with
        the prompt as image parts (a ``{name}`` in the text holding an image
        is sent too).

        ``wait=True`` blocks until the turn ends (at most ``timeout``
        seconds), asking approvals with ``input()``; the live output then
        makes way for one final output, so that tools that read outputs as
        sent (nbval) see the answer, not the first update.
        """
        return self._turns.ask(text, model=model, system=system, tools=tools, format=format, schema=schema,
                               session=session, display=display, out=out, wait=wait, timeout=timeout,
                               images=images)

    def fix(self, *, model: str | None = None, timeout: float | None = None) -> TurnHandle:
        """Explain the last exception and put a corrected cell below (not run); waits for the answer.

        The prompt: the traceback, the failing cell, its variables' values, within a token budget (``fixes.py``).
        """
        from .fixes import fix_prompt

        return self._turns.ask(fix_prompt(self.namespace or {}), model=model, system=None, tools=False,
                               format=None, schema=None, session=None, display=True, out=None, wait=True,
                               timeout=timeout, code_cell=True)

    def explain(self, number: int, *, model: str | None = None, wait: bool = False, display: bool = True) -> TurnHandle:
        """Explain cell ``number`` (its ``In[n]`` code and ``Out[n]`` value); returns at once, like ``ask``."""
        from .fixes import explain_prompt

        return self.ask(explain_prompt(self.namespace or {}, number), model=model, tools=False, wait=wait,
                        display=display)

    def retry(
        self, *, format: str | None = None, display: bool = True, wait: bool = False, timeout: float | None = None
    ) -> TurnHandle:
        """Run the current session's last message again (after a failed or stopped turn).

        The message is not stored a second time, as re-running the cell that
        asked would do.  Returns at once, like ``ask``.
        """
        return self._turns.retry(format=format, display=display, wait=wait, timeout=timeout)

    def ask_sync(self, text: str, *, timeout: float | None = None, **options: Any) -> TurnResult:
        """``ask`` and wait for the result (approvals meanwhile by ``input()``); for scripts."""
        return self.ask(text, wait=True, timeout=timeout, **options).result

    @property
    def last(self) -> TurnHandle | None:
        """The most recent turn this runtime started."""
        return self._turns.last

    def stop(self) -> int:
        """Cancel every running turn (partial replies are kept, marked); returns how many."""
        return self._turns.stop()

    # -- a prompt over data ------------------------------------------------------------------

    def map(
        self,
        template: str,
        rows: Any,
        *,
        name: str | None = None,
        schema: type | None = None,
        model: str | None = None,
        concurrency: int = 8,
        max_cost: float | None = None,
        retries: int = 2,
        display: bool = True,
        wait: bool = False,
        timeout: float | None = None,
        out: str | None = None,
    ) -> MapHandle:
        """Run ``template`` over ``rows`` (a DataFrame, a list, or a glob of files); returns at once.

        ``{column}`` names a row's value (``{item}``: a plain value; ``{path}``, ``{name}``, ``{text}``: a file).
        ``concurrency`` rows at once; ``max_cost`` (USD) asks before spending past it; a failing row is tried
        ``retries`` more times; ``schema`` (pydantic) gives structured answers, columns in ``to_frame()``.
        Answered rows are kept in the store under the job's ``name`` (default: from the template and the rows):
        running it again, after a kernel restart too, asks only the rest.  ``wait=True`` blocks until it ends.
        """
        from .mapping import map_in_notebook

        return map_in_notebook(self, template, rows, self._answers.answer_while_waiting, name=name, schema=schema,
                               model=model, concurrency=concurrency, max_cost=max_cost, retries=retries,
                               display=display, wait=wait, timeout=timeout, out=out)

    # -- approvals and questions -------------------------------------------------------------

    def pending(self) -> list[Any]:
        """Approval requests and questions waiting for an answer, oldest first."""
        return self._answers.pending()

    def decide(self, call_id: str, decision: Any, *, decided_by: str | None = None) -> RequestApproval:
        """Answer the pending approval of tool call ``call_id`` (or its first 6+ characters).

        ``decision``: an ``ApprovalDecision`` or ``"approve"``/``"deny"``/``"always"``.
        """
        return self._answers.decide(call_id, decision, decided_by=decided_by)

    def approve(self, call_id: str, *, decided_by: str | None = None) -> RequestApproval:
        """Approve the pending tool call ``call_id`` as asked."""
        return self._answers.approve(call_id, decided_by=decided_by)

    def deny(self, call_id: str, reason: str | None = None, *, decided_by: str | None = None) -> RequestApproval:
        """Deny it; ``reason`` (optional) is told to the model."""
        return self._answers.deny(call_id, reason, decided_by=decided_by)

    def edit(self, call_id: str, arguments: dict[str, Any], *, decided_by: str | None = None) -> RequestApproval:
        """Approve it with these arguments instead (checked against the tool's schema)."""
        return self._answers.edit(call_id, arguments, decided_by=decided_by)

    def always(self, call_id: str, *, decided_by: str | None = None) -> RequestApproval:
        """Approve it, and every later call of the same tool in this session."""
        return self._answers.always(call_id, decided_by=decided_by)

    def answer(self, request_id: str, value: Any, *, answered_by: str | None = None) -> ToolQuestion:
        """Answer a tool's question: ``True``/``False`` (or yes/no) for a confirm, an option (or None) for a choice."""
        return self._answers.answer(request_id, value, answered_by=answered_by)

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
        return self._sessions.set_model(name)

    def use_llm(self, llm: Any) -> None:
        """Use a ready model client (e.g. a ``ScriptedLLM``) in the current and every new session.

        The current session's engine is restarted on the same session with it
        (a running turn is cancelled first).
        """
        self._sessions.use_llm(llm)

    # -- tools ----------------------------------------------------------------------------------

    def refresh_tools(self) -> list[str]:
        """Register the ``@tool`` functions of the user's namespace (and drop deleted ones); their names."""
        return self._namespace_tools.refresh()

    def list_tools(self) -> Any:
        """The tools the model may call: schema, risk and approval policy."""
        self.refresh_tools()
        return lookback.tools_report(self.tools, always=self.tools.always_allowed(self.current_session))

    # -- sessions --------------------------------------------------------------------------------

    def new_session(self, name: str | None = None) -> str:
        """Start a new session (optionally named) and make it current; returns its id."""
        return self._sessions.new(name)

    def resume(self, ref: str) -> str:
        """Make session ``ref`` (id, unique id prefix, or name) current; returns its id."""
        return self._sessions.resume(ref)

    def fork(self, at_message_id: str | None = None, name: str | None = None) -> str:
        """Continue in a copy of the current session (up to a message, default all); returns the new id.

        ``at_message_id`` may be a unique prefix of the id (``%llmgine history`` shows them).
        """
        return self._sessions.fork(at_message_id, name)

    def find_message(self, ref: str) -> str:
        """The id of the current session's message ``ref`` (an id or a unique prefix of one)."""
        return self._sessions.find_message(ref)

    # -- editing the dialog (each a command the session's engine answers; see engine/dialog.py) ----

    def forget(self, ref: str, *, forgotten: bool = True) -> list[str]:
        """Leave the exchange holding message ``ref`` (an id or unique prefix) out of what the model is sent.

        The exchange is the user message and the replies to it; it stays in the
        history, marked.  ``forgotten=False`` brings it back.  Returns the ids changed.
        """
        return self._dialog(ForgetMessage(session_id=self.session_id, message_id=ref, forgotten=forgotten))

    def edit_message(self, ref: str, text: str) -> str:
        """Replace the text of message ``ref``; the model sees the new text from the next turn on."""
        return self._dialog(EditMessage(session_id=self.session_id, message_id=ref, text=text))

    def pin(self, ref: str, *, pinned: bool = True) -> str:
        """Pin message ``ref``: it is sent on every turn, however long the history grows (``pinned=False`` unpins)."""
        return self._dialog(PinMessage(session_id=self.session_id, message_id=ref, pinned=pinned))

    def _dialog(self, command: Any) -> Any:
        result = self.bus.execute_sync(command, timeout=30)
        if not result.success:
            raise LookupError(error_sentence(result.error or "the change was not made"))
        return result.result

    # -- looking back --------------------------------------------------------------------------------

    def sessions(self, limit: int = 20) -> Any:
        """The most recent sessions, as a table."""
        return lookback.sessions_report(self.store, current=self.current_session, limit=limit)

    def history(self, last: int | None = None, *, session: str | None = None) -> Any:
        """The messages of a session (default the current one), as a transcript table."""
        return lookback.history_report(self.store, self._sessions.session_id_of(session), last=last)

    def search(self, query: str, *, session: str | None = None, limit: int = 20) -> Any:
        """Full-text search over every session's messages (or one session's)."""
        return lookback.search_report(self.store, query, session=session, limit=limit)

    def usage(self, *, all_sessions: bool = False) -> Any:
        """Tokens and cost: totals per model and a chart over time (this session, or all)."""
        return lookback.usage_report(self.store, None if all_sessions else self.session_id)

    def log(self, *, session: str | None = None, types: list[str] | None = None, limit: int | None = 2000) -> Any:
        """The session's event stream: a filterable table and a timeline of turns, model calls and tools."""
        session_id = self._sessions.session_id_of(session)
        if self._event_log is not None:
            self._event_log.flush()
        return lookback.log_report(self.store, session_id, types=types, limit=limit)

    def context(self, *, session: str | None = None) -> Any:
        """Exactly what the last model call of a session sent: each part with its tokens, images, tools."""
        from .context_view import context_view

        session_id = self._sessions.session_id_of(session)
        if self._event_log is not None:
            self._event_log.flush()
        counter = self.engine.compiler.counter if session_id == self.current_session else None
        return context_view(self.store, session_id, counter)

    def settings(self) -> Any:
        """Configuration: the notebook settings, the model, the database, the environment (no secrets)."""
        current = self.current_session
        return lookback.settings_report(self.config, self.store, model=self.engine.model if current else None,
                                        session_id=current, ui=self.ui)

    def configure(self, **values: Any) -> NotebookConfig:
        """Change notebook settings (see ``NotebookConfig``)."""
        for name, value in values.items():
            self.config.set(name, value)
            if name == "approval_timeout":
                self.tools.approval_timeout = self.config.approval_timeout
            if name == "max_steps":
                self._sessions.set_max_steps(self.config.max_steps)
            if name == "request_cache":
                self._sessions.set_request_cache(self.config.request_cache)
        return self.config

    def keys(self) -> Any:
        """Which providers have an API key (masked: ``sk-...abcd``)."""
        return lookback.keys_report()

    def export(self, path: str | os.PathLike[str], *, session: str | None = None, overwrite: bool = False) -> Path:
        """Write a session (default the current one) to ``.ipynb`` or ``.md``; returns the path.

        An existing file is refused (``FileExistsError``) unless ``overwrite``.
        """
        from ..store.export import export_session

        return export_session(self.store, self._sessions.session_id_of(session), Path(path), overwrite=overwrite)

    def help(self) -> str:
        """The help text of ``%llmgine``."""
        from .help import HELP

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
        self._turns.interrupt.remove()
        self.approvals.deny_all("the notebook runtime was closed")
        self._sessions.close()
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

    def __repr__(self) -> str:
        session = self.current_session or "no session yet"
        return f"<NotebookRuntime session={session} ui={self.ui} tools={len(self.tools)}>"


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "you"
