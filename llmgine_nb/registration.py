"""One registration on the bus, and what makes two registrations "the same handler".

A notebook cell that subscribes a function runs again and again; each run
makes a new function object.  The bus treats the new one as the same handler
as the old (and replaces it) when they have the same module and qualified
name, and, for a bound method, the same instance.  That is what a person
means by "the same function", and it is what ``handler_identity`` computes.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["DuplicateHandlerError", "Registration", "handler_identity", "describe_handler"]


class DuplicateHandlerError(ValueError):
    """A command type already has a different handler in that scope."""


def describe_handler(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def is_async_handler(fn: Callable[..., Any]) -> bool:
    # An instance whose class has ``async def __call__`` is an async handler too.
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)  # noqa: B004 - the method itself, not whether fn is callable
    return inspect.iscoroutinefunction(call)


def handler_identity(fn: Callable[..., Any]) -> Hashable:
    """A key equal for two objects that are "the same handler" (see the module's docstring).

    - a bound method: its function's identity and its instance (two observers
      of one class are two handlers; a re-bound method of the same one is not);
    - a named function: its module and qualified name;
    - a lambda, or a function made inside another function at run time, has
      no name of its own: its code and what it closes over decide, so two
      different lambdas stay two handlers while a re-run of an unchanged cell
      is recognised;
    - any other callable (an instance with ``__call__``, a ``functools.partial``):
      the object itself.
    """
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        function = getattr(fn, "__func__", None)
        inner = handler_identity(function) if function is not None else describe_handler(fn)
        # id() is safe: the registration holds the method, so the instance outlives the key.
        return ("method", inner, id(owner))
    code = getattr(fn, "__code__", None)
    qualname = getattr(fn, "__qualname__", None)
    if code is None or not isinstance(qualname, str):
        return ("object", id(fn))
    module = getattr(fn, "__module__", None)
    if "<lambda>" in qualname or "<locals>" in qualname:
        cells = tuple(_cell_identity(cell) for cell in (getattr(fn, "__closure__", None) or ()))
        return ("function", module, qualname, code, cells)
    return ("function", module, qualname)


def _cell_identity(cell: Any) -> Hashable:
    try:
        value = cell.cell_contents
    except ValueError:  # a cell not yet filled
        return ("empty",)
    if callable(value) and hasattr(value, "__code__"):
        return handler_identity(value)
    try:
        hash(value)
    except Exception:  # unhashable (a list, a dict ...): only the same object is the same
        return ("object", id(value))
    return ("value", value)


class Registration:
    """A handle on one registration; ``unregister()`` removes it (idempotent).

    ``inline`` says a synchronous handler runs on the event loop's own thread
    (it promised never to block); other synchronous handlers run on the bus's
    worker threads (see ``MessageBus.subscribe``).
    """

    __slots__ = ("fn", "is_async", "inline", "priority", "session_id", "order", "exclude", "identity", "_remove")

    def __init__(
        self,
        fn: Callable[..., Any],
        priority: int,
        session_id: str | None,
        order: int,
        remove: Callable[[Registration], None],
        exclude: tuple[type, ...] = (),
        *,
        inline: bool = False,
    ) -> None:
        self.fn = fn
        self.is_async = is_async_handler(fn)
        self.inline = inline
        self.priority = priority
        self.session_id = session_id
        self.order = order
        self.exclude = exclude
        self.identity = handler_identity(fn)
        self._remove: Callable[[Registration], None] | None = remove

    def unregister(self) -> None:
        if self._remove is not None:
            remove, self._remove = self._remove, None
            remove(self)

    @property
    def active(self) -> bool:
        return self._remove is not None

    @property
    def off_loop(self) -> bool:
        """Whether delivery runs this handler on a worker thread rather than on the loop."""
        return not self.is_async and not self.inline

    def __repr__(self) -> str:
        scope = f" session={self.session_id}" if self.session_id else ""
        return f"<Registration {describe_handler(self.fn)} priority={self.priority}{scope}>"
