"""``SessionEngines``: the kernel's sessions and the ``ChatEngine`` that serves each.

It makes, resumes and forks sessions, knows the current one, and switches
models; each change is a command on the bus (``SwitchModel``,
``ForkSession``) or a new engine.  It is given what every engine shares -
the bus, the store (made on first use, so it is passed as a function), the
tools, the approval queue, the redactor and the settings.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine.commands import ForkSession, SwitchModel
from ..tools.pending import MIN_PREFIX

if TYPE_CHECKING:
    from ..bus import MessageBus
    from ..engine import ChatEngine
    from ..secrets import Redactor
    from ..store import Store
    from ..tools.manager import ToolManager
    from ..tools.queue import ApprovalQueue
    from .config import NotebookConfig

__all__ = ["SessionEngines", "check_model_name", "notebook_name"]

log = logging.getLogger("llmgine_nb.notebook")


class SessionEngines:
    """The sessions this kernel talks in, each with its engine; one of them is current."""

    def __init__(
        self,
        bus: MessageBus,
        store: Callable[[], Store],
        *,
        tools: ToolManager,
        approvals: ApprovalQueue,
        redactor: Redactor,
        config: NotebookConfig,
        namespace: dict[str, Any] | None,
        notebook: str | None,
        model: str | None = None,
        llm: Any = None,
        system_prompt: str | None = None,
        initial_session: str | None = None,
    ) -> None:
        self.bus = bus
        self._store = store
        self.tools = tools
        self.approvals = approvals
        self.redactor = redactor
        self.config = config
        self.namespace = namespace
        self.notebook = notebook
        self.model = model
        self.llm = llm
        self.system_prompt = system_prompt
        self._initial_session = initial_session
        self._engines: dict[str, ChatEngine] = {}
        self.current_id: str | None = None
        self._lock = threading.RLock()  # making the current engine (never held while a turn ends)
        self.closed = False

    @property
    def store(self) -> Store:
        return self._store()

    # -- the current session ------------------------------------------------------------

    @property
    def current(self) -> ChatEngine:
        """The current session's engine (started on first use)."""
        with self._lock:
            if self.current_id is None:
                self.current_id = self.engine_for(self._initial_session, create_named=True).session_id
            return self._engines[self.current_id]

    def serves(self, session_id: str) -> bool:
        """True when an engine of this kernel runs ``session_id``."""
        return session_id in self._engines

    def get(self, session_id: str) -> ChatEngine:
        return self._engines[session_id]

    def engine_for(self, ref: str | None, *, create_named: bool) -> ChatEngine:
        """The engine of session ``ref`` (id or name): running, resumed from disk, or new."""
        self.check_open()
        if ref is None:
            engine = self._start_engine()
        else:
            for engine in self._engines.values():
                if ref == engine.session_id:
                    return engine
            # An id, a name, or the shortened id `%llmgine sessions` shows (6+ characters).
            record = self.find(ref, min_prefix=MIN_PREFIX)
            if record is None and not create_named:
                raise LookupError(f"there is no session {ref!r}; `%llmgine sessions` lists them")
            if record is not None and record.id in self._engines:
                return self._engines[record.id]
            if record is not None:
                engine = self._start_engine(session_id=record.id)
            else:
                engine = self._start_engine(session_name=ref)
        self._engines[engine.session_id] = engine
        return engine

    def _start_engine(self, *, session_id: str | None = None, session_name: str | None = None) -> ChatEngine:
        from ..engine import ChatEngine

        llm = self.llm
        if llm is None and self.current_id is not None and self.model is None:
            llm = self._engines[self.current_id].llm  # a new session keeps the model in use
        engine = ChatEngine(
            self.bus,
            store=self.store,
            tools=self.tools,
            model=None if llm is not None else self.model,
            llm=llm,
            system_prompt=self.system_prompt,
            session_id=session_id,
            session_name=session_name,
            notebook=self.notebook,
            max_steps=self.config.max_steps,
            request_cache=self.config.request_cache,
            namespace=self.namespace,
            approvals=self.approvals,
            redactor=self.redactor,
        )
        return self.bus.background.run(engine.start(), timeout=60)

    # -- making, finding and switching sessions -------------------------------------------------

    def new(self, name: str | None = None) -> str:
        """Start a new session (optionally named) and make it current; returns its id."""
        self.check_open()
        if name and self.store.find_session(name) is not None:
            raise ValueError(f"a session named {name!r} already exists; resume it with %llmgine resume {name}")
        engine = self._start_engine(session_name=name or None)
        self._engines[engine.session_id] = engine
        self.current_id = engine.session_id
        return engine.session_id

    def resume(self, ref: str) -> str:
        """Make session ``ref`` (id, unique id prefix, or name) current; returns its id."""
        record = self.find(ref)
        if record is None:
            raise LookupError(f"there is no session {ref!r}; `%llmgine sessions` lists them")
        engine = self.engine_for(record.id, create_named=False)
        self.current_id = engine.session_id
        return engine.session_id

    def find(self, ref: str, *, min_prefix: int = 1) -> Any:
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

    def session_id_of(self, session: str | None) -> str:
        """The id of session ``session`` (an id or a name; None: the current one)."""
        if session is None:
            return self.current.session_id
        record = self.store.find_session(session)
        if record is None:
            raise LookupError(f"there is no session {session!r}; `%llmgine sessions` lists them")
        return str(record.id)

    def find_message(self, ref: str) -> str:
        """The id of the current session's message ``ref`` (an id or a unique prefix of one)."""
        ids = [m.id for m in self.store.messages(self.current.session_id)]
        found = [i for i in ids if i == ref] or [i for i in ids if i.startswith(ref)]
        if len(found) != 1:
            problem = "no message" if not found else f"{len(found)} messages"
            raise LookupError(f"{problem} of this session start with {ref!r}; `%llmgine history` shows the ids")
        return found[0]

    def fork(self, at_message_id: str | None = None, name: str | None = None) -> str:
        """Continue in a copy of the current session (up to a message, default all); returns the new id."""
        engine = self.current
        old = engine.session_id
        if at_message_id:
            at_message_id = self.find_message(at_message_id)
        if name and self.store.find_session(name) is not None:
            raise ValueError(f"a session named {name!r} already exists; choose another name for the fork")
        result = self.bus.execute_sync(ForkSession(session_id=old, at_message_id=at_message_id, name=name), timeout=60)
        new_id = str(result.unwrap())
        self._engines.pop(old, None)
        self._engines[new_id] = engine  # the engine now serves the fork
        self.current_id = new_id
        return new_id

    # -- the model ------------------------------------------------------------------------------

    def set_model(self, name: str) -> str:
        """Switch the current session to model ``name`` (a litellm model string or an alias)."""
        if not name or not name.strip():
            raise ValueError("give a model name, e.g. %llmgine model openai/gpt-4o-mini")
        name = name.strip()
        check_model_name(name)
        engine = self.current
        result = self.bus.execute_sync(SwitchModel(session_id=engine.session_id, model=name), timeout=60)
        return str(result.unwrap())

    def use_llm(self, llm: Any) -> None:
        """Use a ready model client in the current and every new session (the current engine restarts with it)."""
        with self._lock:  # (the engines pass their bus to each call: the client is used as given)
            self.llm = llm
            current = self.current_id
        if current is None:
            return
        # Not under the lock: closing the old engine ends its running turn, and the end of a
        # turn runs callbacks on the loop thread that must not wait for this thread.
        old = self._engines[current]
        self.bus.background.run(old.close(), timeout=30)
        engine = self._start_engine(session_id=current)
        self._engines[engine.session_id] = engine  # only now: a failed close leaves the old engine in place

    def set_max_steps(self, max_steps: int) -> None:
        for engine in self._engines.values():
            engine.max_steps = max_steps

    def set_request_cache(self, on: bool) -> None:
        for engine in self._engines.values():
            engine.requests.cache = on

    # -- the end ----------------------------------------------------------------------------------

    def check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this notebook runtime was closed; %load_ext llmgine_nb (or %reload_ext) starts a new one")

    def close(self) -> None:
        """Stop every engine (each ends its running turn)."""
        self.closed = True
        for engine in list(self._engines.values()):
            try:
                self.bus.background.run(engine.close(), timeout=10)
            except Exception:  # noqa: BLE001 - closing must go on
                log.debug("closing engine %s failed", engine.session_id, exc_info=True)
        self._engines.clear()


def check_model_name(name: str) -> None:
    """Refuse what cannot be a model: an alias, ``scripted``, or a name whose provider is known."""
    from ..llm.config import DEFAULT_ALIASES, provider_of, resolve_aliases

    aliases = set(resolve_aliases()) | {alias for names in DEFAULT_ALIASES.values() for alias in names}
    if name in aliases or (not any(c.isspace() for c in name) and provider_of(name) is not None):
        return
    raise ValueError(
        f"{name!r} is not a model name: use an alias ({', '.join(sorted(aliases))}), 'scripted', or a litellm "
        "model with its provider, e.g. openai/gpt-4o-mini; to ask a question, write %llmgine ask ..."
    )


def notebook_name(shell: Any) -> str | None:
    """The notebook's file name where the front end tells it (VS Code, Jupyter Server)."""
    ns = getattr(shell, "user_ns", None) or {}
    return ns.get("__vsc_ipynb_file__") or os.environ.get("JPY_SESSION_NAME") or None
