"""``@tool`` and ``Tool``: a callable plus what the model and the verifier need to know.

A tool has a name, a description, a parameters schema, a risk level
(``read``, ``write`` or ``destructive``), an approval policy, the
permissions it needs, a timeout and whether it may run beside other calls.

Approval policy (``approval=``):

* ``"never"`` - runs without asking;
* ``"always"`` - every call waits for an approving decision;
* a function ``(arguments, ctx) -> bool`` (or ``(arguments) -> bool``, sync or
  async) - asks when it returns True; if it raises or returns a non-bool,
  approval is asked (fail closed);
* ``None`` (the default) - decided by the risk: ``read`` never asks,
  ``write`` and ``destructive`` always ask.

The default risk of a function tool is ``read``: a tool that changes
anything should say ``risk="write"`` or ``risk="destructive"``.  Tools from
MCP definitions take their risk from the MCP hints (``readOnlyHint``,
``destructiveHint``), whose defaults make an unannotated MCP tool
destructive.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .context import ToolContext
from .schema import FunctionArguments, SchemaArguments, ValidatedArguments, _resolve_hints, is_context_annotation, parse_docstring

__all__ = [
    "Tool", "tool", "ToolOptions", "Risk", "ApprovalPolicy", "DEFAULT_APPROVAL", "tool_options", "string_set",
]

Risk = Literal["read", "write", "destructive"]
RISKS: tuple[str, ...] = ("read", "write", "destructive")
PolicyFunction = Callable[..., bool | Awaitable[bool]]
ApprovalPolicy = Literal["never", "always"] | PolicyFunction | None

# What a tool without an explicit policy does, by risk.
DEFAULT_APPROVAL: dict[str, str] = {"read": "never", "write": "always", "destructive": "always"}

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MARK = "__llmgine_tool__"


@dataclass(frozen=True)
class ToolOptions:
    """The options given to ``@tool``; ``None`` means "use the default"."""

    name: str | None = None
    description: str | None = None
    risk: Risk | None = None
    approval: ApprovalPolicy = None
    permissions: frozenset[str] = field(default_factory=frozenset)
    timeout: float | None = None
    concurrent: bool = True
    max_result_chars: int | None = None
    preview: Callable[[dict[str, Any]], str] | None = None
    remember_approval: bool = True
    idempotent: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "permissions", string_set(self.permissions, "permissions"))
        _check_options(self)


def _check_options(options: ToolOptions) -> None:
    if options.name is not None and not _NAME.match(options.name):
        raise ValueError(
            f"tool name {options.name!r} is not allowed: use 1 to 64 letters, digits, '_' or '-'"
        )
    if options.risk is not None and options.risk not in RISKS:
        raise ValueError(f"risk must be one of {', '.join(RISKS)}, not {options.risk!r}")
    policy = options.approval
    if policy is not None and policy not in ("never", "always") and not callable(policy):
        raise ValueError(
            f"approval must be 'never', 'always', a function (arguments, ctx) -> bool, or None "
            f"(decided by risk), not {policy!r}"
        )
    if options.timeout is not None and options.timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {options.timeout!r}")


def string_set(values: Iterable[str] | None, what: str) -> frozenset[str]:
    """``values`` (permissions, grants) as a frozenset of strings; a clear error for anything else.

    One string is refused rather than split into its letters.
    """
    if values is None:
        return frozenset()
    if isinstance(values, str):
        raise TypeError(f"{what} must be a collection of strings, e.g. {{{values!r}}}, not one string")
    if not isinstance(values, Iterable):
        raise TypeError(f"{what} must be a collection of strings, e.g. {{'tasks:write'}}, not {values!r}")
    out = frozenset(values)
    odd = sorted(repr(v) for v in out if not isinstance(v, str))
    if odd:
        raise TypeError(
            f"{what} must be a collection of strings, e.g. {{'tasks:write'}}; these are not: {', '.join(odd)}"
        )
    return out


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    risk: Risk | None = None,
    approval: ApprovalPolicy = None,
    permissions: Iterable[str] = (),
    timeout: float | None = None,
    concurrent: bool = True,
    max_result_chars: int | None = None,
    preview: Callable[[dict[str, Any]], str] | None = None,
    remember_approval: bool = True,
    idempotent: bool = False,
) -> Any:
    """Mark a function (or method, or async function) as a tool.

    Use bare (``@tool``) or with options (``@tool(risk="write",
    permissions={"tasks:write"}, timeout=10)``).  The function is returned
    unchanged (still callable as before) with the options attached; a
    ``ToolManager`` turns it into a ``Tool`` when it is registered.

    ``concurrent=False`` makes the tool run alone, never beside the other
    calls of the same reply.  ``preview(arguments) -> str`` is what an
    approval card shows.  ``remember_approval=False`` turns an "always allow
    for this session" answer into a one-time approval.  ``idempotent=True``
    says running a call twice does no more than running it once: a call cut
    by a stopped worker (started, result never recorded) may then run again;
    any other such call is reported as having an unknown outcome.
    """
    options = ToolOptions(
        name=name,
        description=description,
        risk=risk,
        approval=approval,
        permissions=string_set(permissions, "permissions"),
        timeout=timeout,
        concurrent=concurrent,
        max_result_chars=max_result_chars,
        preview=preview,
        remember_approval=remember_approval,
        idempotent=idempotent,
    )

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(func):
            raise TypeError(f"@tool decorates a function or method, not {func!r}")
        target = func.__func__ if isinstance(func, (staticmethod, classmethod)) else func
        setattr(target, _MARK, options)
        return func

    return decorate(fn) if fn is not None else decorate


def tool_options(fn: Any) -> ToolOptions | None:
    """The options ``@tool`` attached to ``fn`` (a function or bound method), or None."""
    options = getattr(fn, _MARK, None)
    return options if isinstance(options, ToolOptions) else None


def _is_async_callable(fn: Callable[..., Any]) -> bool:
    # The object's __call__ method itself (an async callable object), not a test of callability.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


def _context_params_of(fn: Callable[..., Any]) -> list[str]:
    """Parameters of ``fn`` annotated with ``ToolContext`` (for schema-defined tools)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    try:
        hints = _resolve_hints(fn)
    except TypeError:
        hints = {}
    return [
        name
        for name, param in signature.parameters.items()
        if is_context_annotation(hints.get(name, param.annotation))
    ]


class Tool:
    """A callable the model may call, with its schema and its verification rules.

    Make one with ``Tool.from_function``, ``Tool.from_schema``,
    ``Tool.from_openai`` or ``Tool.from_mcp`` (a ``ToolManager`` does this
    for you on ``register``).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        description: str,
        arguments: FunctionArguments | SchemaArguments,
        options: ToolOptions,
        context_params: list[str] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.description = description
        self.arguments = arguments
        self.risk: Risk = options.risk or "read"
        self.approval: ApprovalPolicy = options.approval
        self.permissions: frozenset[str] = options.permissions
        self.timeout = options.timeout
        self.concurrent = options.concurrent
        self.max_result_chars = options.max_result_chars
        self.preview_fn = options.preview
        self.remember_approval = options.remember_approval
        self.idempotent = options.idempotent
        self.context_params = list(context_params if context_params is not None else arguments.context_params)
        self.is_async = _is_async_callable(fn)
        self._policy_arity = _arity(options.approval) if callable(options.approval) else 0
        # Options that with_options()/register(..., option=) may not change
        # (run_python keeps its approval rules whatever it is registered with).
        self.locked_options: frozenset[str] = frozenset()

    # -- construction ------------------------------------------------------

    @classmethod
    def from_function(cls, fn: Callable[..., Any], **overrides: Any) -> Tool:
        """A tool from a function, bound method, async function or callable object.

        Options come from ``@tool`` if it was used, then from ``overrides``.
        """
        if isinstance(fn, Tool):
            return fn.with_options(**overrides) if overrides else fn
        base = tool_options(fn) or ToolOptions()
        options = _merge(base, overrides)
        name = options.name or getattr(fn, "__name__", None) or type(fn).__name__
        if not _NAME.match(name):
            raise ValueError(
                f"cannot use {name!r} as a tool name (a lambda or an odd callable?): "
                "pass name='...' with 1 to 64 letters, digits, '_' or '-'"
            )
        doc = inspect.getdoc(fn) if (inspect.isfunction(fn) or inspect.ismethod(fn)) else inspect.getdoc(
            getattr(fn, "__call__", fn)  # noqa: B004 - the docstring of a callable object's __call__
        )
        docstring = parse_docstring(doc)
        arguments = FunctionArguments(fn, name, docstring)
        description = options.description if options.description is not None else docstring.description
        return cls(fn, name=name, description=description, arguments=arguments, options=options)

    @classmethod
    def from_schema(
        cls,
        name: str,
        fn: Callable[..., Any],
        parameters: Mapping[str, Any] | None = None,
        description: str = "",
        **overrides: Any,
    ) -> Tool:
        """A tool whose parameters are an existing JSON schema.

        ``fn`` is called with the validated arguments as keyword arguments
        (plus the context, if it has a ``ToolContext`` parameter).
        """
        options = _merge(ToolOptions(), {"name": name, **overrides})
        assert options.name is not None
        arguments = SchemaArguments(parameters, options.name)
        desc = options.description if options.description is not None else description
        return cls(
            fn, name=options.name, description=desc, arguments=arguments, options=options,
            context_params=_context_params_of(fn),
        )

    @classmethod
    def from_openai(cls, spec: Mapping[str, Any], fn: Callable[..., Any], **overrides: Any) -> Tool:
        """A tool from one OpenAI tool entry (``{"type": "function", "function": {...}}``) or its inner function dict."""
        function = spec.get("function", spec) if spec.get("type", "function") == "function" else None
        if not isinstance(function, Mapping) or "name" not in function:
            raise ValueError(
                "an OpenAI tool looks like {'type': 'function', 'function': {'name': ..., 'description': ..., "
                f"'parameters': {{...}}}}; got {dict(spec)!r}"
            )
        return cls.from_schema(
            function["name"], fn, function.get("parameters"), function.get("description") or "", **overrides
        )

    @classmethod
    def from_mcp(cls, definition: Mapping[str, Any], fn: Callable[..., Any], **overrides: Any) -> Tool:
        """A tool from an MCP tool definition ``{name, description, inputSchema, annotations?}``.

        The risk follows the MCP hints unless ``risk=`` is given: read-only
        tools are ``read``; others are ``destructive`` unless
        ``destructiveHint`` is false (the MCP default is true).
        """
        if "name" not in definition:
            raise ValueError(f"an MCP tool definition needs a 'name' (and an 'inputSchema'); got {dict(definition)!r}")
        hints = definition.get("annotations") or {}
        if "risk" not in overrides or overrides["risk"] is None:
            if hints.get("readOnlyHint") is True:
                overrides["risk"] = "read"
            elif hints.get("destructiveHint") is False:
                overrides["risk"] = "write"
            else:
                overrides["risk"] = "destructive"
        return cls.from_schema(
            definition["name"], fn, definition.get("inputSchema"), definition.get("description") or "", **overrides
        )

    def with_options(self, **overrides: Any) -> Tool:
        """A copy of this tool with some options changed."""
        current = self.options
        changed = sorted(k for k in self.locked_options if k in overrides and overrides[k] != getattr(current, k))
        if changed:
            raise ValueError(
                f"tool '{self.name}' does not allow changing {', '.join(changed)}: "
                "these rules are what make it safe to offer; register it without those options"
            )
        clone = Tool.__new__(Tool)
        clone.__dict__.update(self.__dict__)
        options = _merge(self.options, overrides)
        for key in ("risk", "approval", "permissions", "timeout", "concurrent", "max_result_chars"):
            setattr(clone, key, getattr(options, key) if key != "risk" else (options.risk or "read"))
        clone.preview_fn = options.preview
        clone.remember_approval = options.remember_approval
        clone.idempotent = options.idempotent
        if options.name:
            clone.name = options.name
        if options.description is not None:
            clone.description = options.description
        clone._policy_arity = _arity(options.approval) if callable(options.approval) else 0
        return clone

    @property
    def options(self) -> ToolOptions:
        return ToolOptions(
            name=self.name,
            description=self.description,
            risk=self.risk,
            approval=self.approval,
            permissions=self.permissions,
            timeout=self.timeout,
            concurrent=self.concurrent,
            max_result_chars=self.max_result_chars,
            preview=self.preview_fn,
            remember_approval=self.remember_approval,
            idempotent=self.idempotent,
        )

    # -- what the model sees -----------------------------------------------

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments."""
        return self.arguments.schema

    def schema(self) -> dict[str, Any]:
        """This tool in the OpenAI tools format (what litellm passes to every provider)."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    # -- verification ---------------------------------------------------------

    def validate(self, arguments: Mapping[str, Any]) -> ValidatedArguments:
        """Validate and coerce; raises ``ArgumentsInvalid`` with a message for the model."""
        return self.arguments.validate(arguments)

    async def approval_needed(self, kwargs: dict[str, Any], ctx: ToolContext) -> tuple[bool, str, str]:
        """(needs approval, policy name, reason), by this tool's policy.  Never raises."""
        policy = self.approval if self.approval is not None else DEFAULT_APPROVAL[self.risk]
        if policy == "never":
            return False, "never", f"{self.risk} tool; its policy never asks"
        if policy == "always":
            return True, "always", f"'{self.name}' is a {self.risk} tool and always needs approval"
        assert callable(policy)
        try:
            answer = policy(kwargs) if self._policy_arity == 1 else policy(kwargs, ctx)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:
            return True, "function", f"the approval policy of '{self.name}' failed ({type(exc).__name__}: {exc}), so approval is needed"
        if not isinstance(answer, bool):
            return True, "function", f"the approval policy of '{self.name}' returned {answer!r}, not True/False, so approval is needed"
        if answer:
            return True, "function", f"the approval policy of '{self.name}' asks for approval of these arguments"
        return False, "function", f"the approval policy of '{self.name}' lets these arguments run"

    def preview(self, data: dict[str, Any]) -> str | None:
        """What an approval card should show beside the arguments (None: the arguments say it all)."""
        if self.preview_fn is None:
            return None
        try:
            return str(self.preview_fn(data))
        except Exception as exc:  # a broken preview must not hide the request
            return f"(preview failed: {type(exc).__name__}: {exc})"

    # -- running ------------------------------------------------------------------

    async def run(self, kwargs: dict[str, Any], ctx: ToolContext, executor: Executor | None = None) -> Any:
        """Call the function: awaited if async, else in ``executor`` (a thread pool)."""
        call_kwargs = dict(kwargs)
        for param in self.context_params:
            call_kwargs[param] = ctx
        if self.is_async:
            value = await self.fn(**call_kwargs)
        else:
            loop = asyncio.get_running_loop()
            context = contextvars.copy_context()  # session id etc. stay visible in the thread
            value = await loop.run_in_executor(executor, functools.partial(context.run, self.fn, **call_kwargs))
        if inspect.isawaitable(value):
            value = await value
        return value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (no validation, no approval)."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        extra = f" permissions={sorted(self.permissions)}" if self.permissions else ""
        return f"<Tool {self.name} risk={self.risk}{extra}>"


def _merge(base: ToolOptions, overrides: Mapping[str, Any]) -> ToolOptions:
    unknown = set(overrides) - set(ToolOptions.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown tool option(s): {', '.join(sorted(unknown))}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(base, **given)  # ToolOptions checks the values (permissions included)


def _arity(fn: Callable[..., Any]) -> int:
    """How many positional arguments a policy function takes (1 or 2)."""
    try:
        params = [
            p for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return 2
    return 1 if len(params) == 1 else 2


def handler_for(handler: Any, name: str | None) -> Callable[..., Any]:
    """The function for tool ``name``: from a mapping, or ``handler(name, arguments)`` bound to it."""
    if isinstance(handler, Mapping):
        if name not in handler:
            raise KeyError(f"no handler for tool '{name}' in the handlers given ({', '.join(handler) or 'none'})")
        return handler[name]
    if not callable(handler):
        raise TypeError("handler must be a mapping {name: function} or a function handler(name, arguments)")
    if _is_async_callable(handler):

        async def call_async(**arguments: Any) -> Any:
            return await handler(name, arguments)

        call_async.__qualname__ = f"{getattr(handler, '__qualname__', 'handler')}[{name}]"
        return call_async

    def call(**arguments: Any) -> Any:
        return handler(name, arguments)

    call.__qualname__ = f"{getattr(handler, '__qualname__', 'handler')}[{name}]"
    return call
