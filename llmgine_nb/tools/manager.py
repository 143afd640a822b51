"""``ToolManager``: registers tools, lists their schemas and runs the model's calls.

Each call goes through the same steps, each published as an event (see
``events.py``): validate the arguments, check permissions, assess impact,
ask for approval when the policy says so, run, and report.  Nothing raises
into the caller: an unknown tool, bad arguments, a missing permission, a
denial, a timeout or an exception all come back as a ``ToolResult`` the
model can read and act on.

The calls of one model reply run concurrently (async tools on the event
loop, sync tools in a thread pool); a tool registered with
``concurrent=False`` runs alone, after the calls before it and before the
calls after it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..chat import ToolCall
from ..loop import BackgroundLoop
from ..messages import StopPublishing, current_session_id
from ..text import clean_text, clean_value, clip
from .approving import Run, ask_approval
from .context import ToolContext, grant_covers
from .events import (
    ToolArgumentsValidated,
    ToolCallRequested,
    ToolFinished,
    ToolImpactAssessed,
    ToolPermissionChecked,
    ToolStarted,
    ToolValidationFailed,
)
from .pending import DisplayIds
from .results import ToolError, ToolResult, jsonable, to_content, truncate
from .schema import ArgumentsInvalid, ValidatedArguments
from .tool import Tool, handler_for, string_set, tool_options

if TYPE_CHECKING:
    from ..bus import MessageBus
    from .mcp.hub import MCPServers

__all__ = ["ToolManager"]

log = logging.getLogger("llmgine_nb.tools")

StateHook = Callable[[Any], MutableMapping[str, Any]]


@dataclass
class _Access:
    user: str | None
    grants: frozenset[str]


class ToolManager:
    """The tools a model may call, and the one way they are called.

    ``bus``: where events go and approval/questions are asked (without one,
    every approval fails closed).  ``approval_timeout``: seconds to wait for
    an approval decision (None waits for ever).  ``question_timeout``: the
    same for ``ctx.confirm``/``ctx.choose`` (defaults to approval_timeout).
    ``default_timeout``: for tools without their own.  ``max_result_chars``:
    longer results are cut with a note.  ``user``/``grants``: who calls,
    unless a session or the call says otherwise (see ``set_access``).
    ``state``: ``state(session_id) -> dict-like`` for ``ctx.state``
    (default: a dict per session, kept in memory); see also ``set_state``
    and ``state_hook``.
    """

    def __init__(
        self,
        tools: Iterable[Any] = (),
        *,
        bus: MessageBus | None = None,
        approval_timeout: float | None = 300.0,
        question_timeout: float | None = None,
        default_timeout: float | None = None,
        max_result_chars: int | None = 20_000,
        max_workers: int = 8,
        user: str | None = None,
        grants: Iterable[str] = (),
        state: StateHook | None = None,
    ) -> None:
        self.bus = bus
        self.approval_timeout = approval_timeout
        self.question_timeout = question_timeout if question_timeout is not None else approval_timeout
        self.default_timeout = default_timeout
        self.max_result_chars = max_result_chars
        self.max_workers = max_workers
        self.user = user
        self.grants = string_set(grants, "grants")
        self._state_hook: StateHook | None = None
        self.state_hook = state
        self._states: dict[Any, dict[str, Any]] = {}  # the default: a dict per session
        self._given_states: dict[Any, MutableMapping[str, Any]] = {}  # set_state
        self._access: dict[str | None, _Access] = {}
        self._always: dict[str | None, set[str]] = {}
        self._tools: dict[str, Tool] = {}
        #: The short ids of the approvals and questions pending now (shown on cards; see pending.py).
        self.display_ids = DisplayIds()
        self._executor: ThreadPoolExecutor | None = None
        self._own_loop: BackgroundLoop | None = None
        self._mcp: MCPServers | None = None
        for item in tools:
            self.register(item)

    # -- registering ---------------------------------------------------------

    def register(self, fn: Any, *, replace: bool = False, **options: Any) -> Tool:
        """Add a tool: a ``Tool``, a function, bound method, async function or callable.

        ``options`` are those of ``@tool`` and override it.  Registering a
        second tool under a taken name raises, unless ``replace=True`` or it
        is the same function defined again (a re-run notebook cell).
        """
        new = fn.with_options(**options) if isinstance(fn, Tool) and options else (
            fn if isinstance(fn, Tool) else Tool.from_function(fn, **options)
        )
        old = self._tools.get(new.name)
        if old is not None and not replace and _identity(old.fn) != _identity(new.fn):
            raise ValueError(
                f"a different tool named '{new.name}' is already registered ({old.fn!r}); "
                "pass replace=True, register under another name=..., or unregister it first"
            )
        self._tools[new.name] = new
        return new

    def tool(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Decorator: ``@manager.tool`` or ``@manager.tool(risk="write")`` registers and returns the function."""

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            self.register(func, **options)
            return func

        return decorate(fn) if fn is not None else decorate

    def register_object(self, obj: Any) -> list[Tool]:
        """Register every method of ``obj`` marked with ``@tool`` (bound to ``obj``)."""
        found = []
        for name in dir(type(obj)):
            attr = getattr(type(obj), name, None)
            target = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
            if callable(target) and tool_options(target) is not None:
                found.append(self.register(getattr(obj, name)))
        if not found:
            raise ValueError(f"{type(obj).__name__} has no methods marked with @tool")
        return found

    def register_schema(
        self,
        name: str,
        fn: Callable[..., Any],
        parameters: Mapping[str, Any] | None = None,
        description: str = "",
        *,
        replace: bool = False,
        **options: Any,
    ) -> Tool:
        """Add a tool whose parameters are a JSON schema; ``fn(**arguments)`` runs it."""
        return self.register(Tool.from_schema(name, fn, parameters, description, **options), replace=replace)

    def register_openai(
        self, tools: Any, handler: Any, *, replace: bool = False, lenient: bool = False, **options: Any
    ) -> list[Tool]:
        """Add tools from an OpenAI tools list (or one entry).

        ``handler`` is a mapping ``{name: fn}`` (each called with keyword
        arguments) or one function ``handler(name, arguments)`` for all.
        ``lenient=True`` imports lists written for older APIs: non-standard
        types (``"dict"``, ``"float"``, ``"any"``) and names models refuse are
        mapped (the handler still gets the original name); the list returned
        then has ``.changes``, a sentence per change.
        """
        specs = [tools] if isinstance(tools, Mapping) else list(tools)
        if lenient:
            from .legacy import import_leniently  # local: only lenient imports need it

            return import_leniently(self, specs, handler, replace=replace, **options)
        out = []
        for spec in specs:
            function = spec.get("function", spec)
            name = function.get("name") if isinstance(function, Mapping) else None
            out.append(self.register(Tool.from_openai(spec, handler_for(handler, name), **options), replace=replace))
        return out

    def register_mcp(self, definitions: Any, handler: Any, *, replace: bool = False, **options: Any) -> list[Tool]:
        """Add tools from MCP definitions ``{name, description, inputSchema, annotations?}``.

        ``handler`` as for ``register_openai``; typically ``lambda name, args:
        session.call_tool(name, args)`` of an MCP client.
        """
        defs = [definitions] if isinstance(definitions, Mapping) else list(definitions)
        return [
            self.register(Tool.from_mcp(d, handler_for(handler, d.get("name")), **options), replace=replace)
            for d in defs
        ]

    @property
    def mcp(self) -> MCPServers:
        """This manager's MCP servers (``llmgine_nb.tools.mcp``), made on first use."""
        if self._mcp is None:
            from .mcp.hub import MCPServers  # local: the MCP SDK loads only when a server is used

            self._mcp = MCPServers(self)
        return self._mcp

    def add_mcp(self, name: str, command: str | None = None, args: Iterable[str] = (), *, start: bool = False,
                **config: Any) -> Any:
        """Add an MCP server's tools: ``add_mcp("time", "python", ["-m", "mcp_server_time"])`` or ``url=...``.

        See ``llmgine_nb.tools.mcp.MCPServerConfig`` for the options (risk
        overrides, timeout, prefix, env, headers).  The server starts on first
        need (or now with ``start=True``); returns its ``MCPConnection``.
        """
        from .mcp.config import MCPServerConfig

        return self.mcp.add(MCPServerConfig(name=name, command=command, args=tuple(args), **config), start=start)

    def unregister(self, name: str) -> Tool:
        try:
            return self._tools.pop(name)
        except KeyError:
            raise KeyError(f"no tool named '{name}' is registered") from None

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __getitem__(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise KeyError(f"no tool named '{name}'; registered: {', '.join(self._tools) or 'none'}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The tools in the OpenAI tools format, ready for ``litellm.completion(tools=...)``."""
        chosen = self._tools.values() if names is None else [self[n] for n in names]
        return [t.schema() for t in chosen]

    # -- who may do what -------------------------------------------------------

    def set_access(self, session_id: str | None, *, user: str | None = None, grants: Iterable[str] = ()) -> None:
        """The user and grants of a session's calls (replacing earlier ones)."""
        self._access[session_id] = _Access(user, string_set(grants, "grants"))

    def grant(self, session_id: str | None, *permissions: str) -> None:
        """Add grants to a session (starting from the manager's defaults)."""
        access = self._access.get(session_id) or _Access(self.user, self.grants)
        self._access[session_id] = _Access(access.user, access.grants | frozenset(permissions))

    def revoke(self, session_id: str | None, *permissions: str) -> None:
        access = self._access.get(session_id) or _Access(self.user, self.grants)
        self._access[session_id] = _Access(access.user, access.grants - frozenset(permissions))

    def grants_for(self, session_id: str | None) -> frozenset[str]:
        access = self._access.get(session_id)
        return access.grants if access else self.grants

    def always_allowed(self, session_id: str | None) -> frozenset[str]:
        """Tools approved with "always" in this session."""
        return frozenset(self._always.get(session_id, ()))

    def allow_always(self, session_id: str | None, tool_name: str) -> None:
        """Approve ``tool_name`` for the rest of the session, as an "always" decision does."""
        self._always.setdefault(session_id, set()).add(tool_name)

    def forget_session(self, session_id: str | None) -> None:
        """Drop what is remembered for a session: "always" approvals, access, state (``set_state`` too)."""
        self._always.pop(session_id, None)
        self._access.pop(session_id, None)
        self._states.pop(session_id, None)
        self._given_states.pop(session_id, None)

    @property
    def state_hook(self) -> StateHook | None:
        """``hook(session_id) -> mapping`` for sessions without a ``set_state`` mapping (None: a dict each)."""
        return self._state_hook

    @state_hook.setter
    def state_hook(self, hook: StateHook | None) -> None:
        if hook is not None and not callable(hook):
            raise TypeError(f"state_hook must be a function hook(session_id) -> mapping, or None; got {hook!r}")
        self._state_hook = hook

    def set_state(self, session_id: str | None, mapping: MutableMapping[str, Any]) -> None:
        """Give session ``session_id`` its own ``ctx.state`` mapping.

        For an application (an engine) that keeps each session's state
        itself: two engines sharing one manager each set the mapping of their
        own sessions.  It wins over ``state_hook`` and stays until
        ``forget_session(session_id)`` or the next ``set_state``.
        """
        if not isinstance(mapping, MutableMapping):
            raise TypeError(
                f"the state of a session must be a mutable mapping (a dict, say), not {type(mapping).__name__}"
            )
        self._given_states[session_id] = mapping

    def state_for(self, session_id: str | None) -> MutableMapping[str, Any]:
        """The per-session state tools see as ``ctx.state``.

        The mapping given with ``set_state``, else ``state_hook(session_id)``,
        else a dict kept in memory for the session.
        """
        given = self._given_states.get(session_id)
        if given is not None:
            return given
        if self._state_hook is not None:
            return self._state_hook(session_id)
        return self._states.setdefault(session_id, {})

    # -- running ---------------------------------------------------------------------

    async def execute(
        self,
        calls: Iterable[ToolCall],
        *,
        session_id: str | None = None,
        user: str | None = None,
        grants: Iterable[str] | None = None,
        ask_again: str | None = None,
        bus: MessageBus | None = None,
    ) -> list[ToolResult]:
        """Run the tool calls of one model reply; one result per call, in call order.

        ``bus``: where this run's events go and its approvals and questions
        are asked (default: the manager's), so that one manager can serve
        several engines, each on its own bus.
        ``session_id`` defaults to the bus session open in this task;
        ``user``/``grants`` default to the session's (``set_access``), then
        the manager's.  ``ask_again`` (a reason) makes every call need an
        approving decision whatever its policy - for calls resumed after a
        restart, which may already have run.
        """
        run = self._resolve_run(session_id, user, grants, bus if bus is not None else self.bus)
        if ask_again:
            run = dataclasses.replace(run, ask_again=ask_again)
        calls = list(calls)
        results: list[ToolResult | None] = [None] * len(calls)
        batch: list[int] = []

        async def flush() -> None:
            if batch:
                running = [asyncio.ensure_future(self._call(calls[i], run)) for i in batch]
                try:
                    done = await asyncio.gather(*running)
                except BaseException:
                    # One call must not go on (cancelled, or its start refused): neither do the others.
                    for task in running:
                        task.cancel()
                    await asyncio.gather(*running, return_exceptions=True)
                    raise
                for i, result in zip(batch, done):
                    results[i] = result
                batch.clear()

        for index, call in enumerate(calls):
            tool = self._tools.get(call.name)
            if tool is not None and not tool.concurrent:
                await flush()
                results[index] = await self._call(call, run)
            else:
                batch.append(index)
        await flush()
        return [r for r in results if r is not None]

    async def execute_one(self, call: ToolCall, **who: Any) -> ToolResult:
        """Run one tool call (see ``execute``)."""
        return (await self.execute([call], **who))[0]

    def execute_sync(self, calls: Iterable[ToolCall], *, timeout: float | None = None, **who: Any) -> list[ToolResult]:
        """``execute`` for synchronous code (a notebook cell, a script), on a background loop."""
        session_id = who.pop("session_id", None) or current_session_id()
        loop = self.bus.background if self.bus is not None else self._background()
        return loop.run(self.execute(list(calls), session_id=session_id, **who), timeout)

    def _background(self) -> BackgroundLoop:
        if self._own_loop is None:
            self._own_loop = BackgroundLoop("llmgine-tools")
        return self._own_loop

    def close(self) -> None:
        """Stop the thread pool (running tools finish on their own), any own loop and MCP servers."""
        if self._mcp is not None:
            self._mcp.close()
            self._mcp = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._own_loop is not None:
            self._own_loop.stop()
            self._own_loop = None

    def _resolve_run(
        self, session_id: str | None, user: str | None, grants: Iterable[str] | None, bus: MessageBus | None
    ) -> Run:
        sid = session_id if session_id is not None else current_session_id()
        access = self._access.get(sid) or _Access(self.user, self.grants)
        return Run(
            session_id=sid,
            bus=bus,
            user=user if user is not None else access.user,
            grants=string_set(grants, "grants") if grants is not None else access.grants,
        )

    def _thread_pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="llmgine-tool")
        return self._executor

    async def _call(self, call: ToolCall, run: Run) -> ToolResult:
        try:
            result = await self._verify_and_run(call, run)
        except (asyncio.CancelledError, StopPublishing):
            raise  # cancelled; or a step that had to be recorded first was refused (the call must not go on)
        except BaseException as exc:  # noqa: B036 - a bug here or a policy's SystemExit must not reach the loop
            log.exception("tool call %s (%s) failed inside the tool manager", call.id, call.name)
            result = ToolResult(
                call_id=call.id, tool_name=call.name, status="error", is_error=True,
                content=f"Error: the tool call could not be handled ({type(exc).__name__}: {exc}).",
            )
        result = _clean_result(result)
        await run.publish(ToolFinished(call_id=call.id, tool_name=call.name, result=result, session_id=run.session_id))
        return result

    async def _verify_and_run(self, call: ToolCall, run: Run) -> ToolResult:
        sid = run.session_id
        base = {"call_id": call.id, "tool_name": call.name, "session_id": sid}
        await run.publish(ToolCallRequested(raw_arguments=call.raw_arguments, **base))

        # 1. arguments
        tool = self._tools.get(call.name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            return await self._invalid(run, call, base, f"Unknown tool '{call.name}'. Available tools: {known}.")
        if call.arguments is None:
            return await self._invalid(
                run, call, base,
                f"The arguments for tool '{call.name}' are not a valid JSON object: {clip(call.raw_arguments, 200, note=True)}. "
                "Send the arguments as one JSON object and call the tool again.",
            )
        try:
            validated = tool.validate(call.arguments)
        except ArgumentsInvalid as exc:
            return await self._invalid(run, call, base, str(exc))
        await run.publish(ToolArgumentsValidated(arguments=validated.data, **base))

        # 2. permissions
        missing = sorted(p for p in tool.permissions if not any(grant_covers(g, p) for g in run.grants))
        who = f"user '{run.user}'" if run.user else "this session"
        reason = (
            f"'{tool.name}' needs {', '.join(repr(p) for p in missing)}, which {who} has not been granted"
            if missing else "all required permissions granted"
        )
        await run.publish(ToolPermissionChecked(
            required=sorted(tool.permissions), missing=missing, granted=not missing, user=run.user, reason=reason, **base
        ))
        if missing:
            return ToolResult(
                call_id=call.id, tool_name=tool.name, status="denied", is_error=True,
                content=f"Permission denied: {reason}, so the call was not run.",
                arguments=validated.data,
            )

        # 3. impact
        ctx = ToolContext(
            call=call, tool_name=tool.name, session_id=sid, user=run.user, grants=run.grants,
            state=lambda: self.state_for(sid), bus=run.bus, question_timeout=self.question_timeout,
            display_ids=self.display_ids,
            loop=asyncio.get_running_loop(),
        )
        needs, policy, why = await tool.approval_needed(validated.kwargs, ctx)
        if run.ask_again and not needs:
            needs, policy, why = True, "always", run.ask_again
        await run.publish(ToolImpactAssessed(risk=tool.risk, policy=policy, requires_approval=needs, reason=why, **base))

        # 4. approval
        if needs:
            outcome = await ask_approval(self, tool, call, validated, run, why)
            if isinstance(outcome, ToolResult):
                return outcome
            validated, note = outcome
        else:
            note = ""

        # 5. run
        await run.publish(ToolStarted(arguments=validated.data, **base))
        result = await self._run(tool, call, validated, ctx)
        if note:
            result = result.model_copy(update={"content": f"{note}\n{result.content}"})
        return result

    async def _invalid(self, run: Run, call: ToolCall, base: dict[str, Any], message: str) -> ToolResult:
        await run.publish(ToolValidationFailed(error=message, **base))
        return ToolResult(call_id=call.id, tool_name=call.name, status="invalid", is_error=True, content=message)

    async def _run(self, tool: Tool, call: ToolCall, validated: ValidatedArguments, ctx: ToolContext) -> ToolResult:
        timeout = tool.timeout if tool.timeout is not None else self.default_timeout
        common = {"call_id": call.id, "tool_name": tool.name, "arguments": validated.data}
        start = time.perf_counter()
        task = asyncio.ensure_future(_contained(tool.run(validated.kwargs, ctx, None if tool.is_async else self._thread_pool())))
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            # A sync tool's thread cannot be stopped: withdrawing its questions
            # (answered "no" at once) is what keeps it from acting later.
            ctx.abandon("the turn was cancelled")
            task.cancel()
            raise
        duration = time.perf_counter() - start
        if not done:
            ctx.abandon(f"the tool timed out after {timeout:g} s")
            task.cancel()
            log.info("tool %s (call %s) timed out after %s s", tool.name, call.id, timeout)
            return ToolResult(
                status="timeout", is_error=True, duration=duration,
                content=f"'{tool.name}' did not finish within {timeout:g} s; it was abandoned and has no result.",
                **common,
            )
        ctx.abandon("the tool call has finished")  # a question left behind must not outlive the call
        if task.cancelled():  # the tool raised CancelledError itself; this turn was not cancelled
            return ToolResult(status="error", is_error=True, duration=duration,
                              content=f"Error: '{tool.name}' cancelled itself and has no result.", **common)
        exc = task.exception()
        if isinstance(exc, ToolError):
            return ToolResult(status="error", is_error=True, duration=duration, content=exc.message,
                              value=jsonable(exc.value) if exc.value is not None else None, **common)
        if isinstance(exc, ToolRaisedBaseException):
            log.warning("tool %s (call %s): %s", tool.name, call.id, exc)
            return ToolResult(status="error", is_error=True, duration=duration, content=f"Error: {exc}.", **common)
        if exc is not None:
            log.debug("tool %s raised", tool.name, exc_info=exc)
            return ToolResult(status="error", is_error=True, duration=duration,
                              content=f"Error: {type(exc).__name__}: {exc}", **common)
        text, value = to_content(task.result())
        limit = tool.max_result_chars if tool.max_result_chars is not None else self.max_result_chars
        text, cut = truncate(text, limit)
        return ToolResult(status="ok", duration=duration, content=text, value=value, truncated_chars=cut, **common)


class ToolRaisedBaseException(Exception):
    """A tool raised ``SystemExit``, ``KeyboardInterrupt`` or another ``BaseException``.

    Let through, such an exception would stop the event loop that runs every
    session (asyncio re-raises ``SystemExit`` and ``KeyboardInterrupt`` out of
    the loop), so it is turned into an ordinary failure of this one call.
    """

    def __init__(self, original: BaseException) -> None:
        detail = str(original)
        what = f"{type(original).__name__}({detail})" if detail else type(original).__name__
        super().__init__(f"the tool raised {what}; the call failed and nothing else was stopped")
        self.original = original


async def _contained(work: Any) -> Any:
    """Await ``work``; any ``BaseException`` but a cancellation becomes a ``ToolRaisedBaseException``.

    argparse raises ``SystemExit`` on bad input, and a thread's
    ``KeyboardInterrupt`` arrives here through the executor's future: both must
    end as a failed tool result, never reach the loop.
    """
    try:
        return await work
    except (Exception, asyncio.CancelledError):
        raise
    except BaseException as exc:  # noqa: B036 - containing these is the point
        raise ToolRaisedBaseException(exc) from None


def _clean_result(result: ToolResult) -> ToolResult:
    """The result with lone surrogates replaced: a tool's text must not cost the message (see ``text.py``)."""
    content, value = clean_text(result.content), clean_value(result.value)
    if content is result.content and value == result.value:
        return result
    return result.model_copy(update={"content": content, "value": value})


def _identity(fn: Any) -> tuple[str, str]:
    target = getattr(fn, "__func__", fn)
    return (getattr(target, "__module__", "") or "", getattr(target, "__qualname__", repr(target)))
