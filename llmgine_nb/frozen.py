"""Read-only containers: what a message's dicts and lists become once it is made.

A message is a value (``messages.py``): every subscriber must see what was
published, so a dict or list inside it - tool arguments, metadata, a
result, at any depth - refuses writes.  ``FrozenDict`` and ``FrozenList``
are ``dict`` and ``list`` subclasses, so reading, ``json.dumps`` and
pydantic's serialisation treat them as the plain containers they are.

``copy.deepcopy`` and ``pickle`` give plain ``dict``/``list`` values back:
the way for a caller to get a copy it may change.  (A message re-freezes
its own fields after a deep copy or unpickling; see ``Message``.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["FrozenDict", "FrozenList", "FrozenModel", "freeze", "freeze_fields", "thaw"]

_M = TypeVar("_M", bound="FrozenModel")

_HINT = (
    "the contents of a message cannot be changed: messages are immutable values. Build a changed copy "
    "instead, e.g. message.model_copy(update={'arguments': {**message.arguments, 'key': value}}), "
    "or copy.deepcopy(value) for a plain dict or list you may change"
)


class FrozenDict(dict):
    """A ``dict`` that refuses every write; its values are frozen too."""

    __slots__ = ()
    _hint = _HINT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        for key, value in dict.items(self):
            frozen = freeze(value)
            if frozen is not value:
                dict.__setitem__(self, key, frozen)

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(self._hint)

    __setitem__ = __delitem__ = setdefault = update = pop = popitem = clear = __ior__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle gives a plain dict of plain values (the default would call __setitem__).
        return (dict, (thaw(self),))

    def __copy__(self) -> FrozenDict:
        return self  # immutable: a shallow copy may share it

    def __deepcopy__(self, memo: Any) -> dict[Any, Any]:
        import copy

        return {copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in dict.items(self)}


class FrozenList(list):
    """A ``list`` that refuses every write; its items are frozen too."""

    __slots__ = ()

    def __init__(self, items: Any = ()) -> None:
        list.__init__(self, (freeze(item) for item in items))

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(_HINT)

    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (thaw(self),))

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: Any) -> list[Any]:
        import copy

        return [copy.deepcopy(item, memo) for item in self]


def freeze(value: Any) -> Any:
    """``value`` with every dict and list in it (at any depth, tuples included) made read-only."""
    kind = type(value)
    if kind is FrozenDict or kind is FrozenList:
        return value
    if isinstance(value, dict):
        return value if isinstance(value, FrozenDict) else FrozenDict(value)
    if isinstance(value, list):
        return value if isinstance(value, FrozenList) else FrozenList(value)
    if kind is tuple and value:
        items = tuple(freeze(item) for item in value)
        return value if all(a is b for a, b in zip(items, value)) else items
    return value


def thaw(value: Any) -> Any:
    """A plain copy of ``value``: every FrozenDict/FrozenList in it a ``dict``/``list`` again."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    if type(value) is tuple:
        return tuple(thaw(item) for item in value)
    return value


class FrozenModel(BaseModel):
    """A pydantic model that is a value: no field can be reassigned, no dict or list in it changed.

    A float field must be finite (JSON, hence every wire and store, has no NaN or Infinity).

    For the models a message carries (a tool call, a tool's result, token
    counts): pydantic's ``frozen=True`` alone stops ``model.field = x`` but not
    ``model.field["key"] = x``.
    """

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="after")
    def _freeze_contents(self) -> Any:
        self._freeze_values()
        return self

    def _freeze_values(self, names: Iterable[str] | None = None) -> None:
        """Freeze the containers in the fields (all, or those in ``names``); subclasses may add to it."""
        freeze_fields(self, names)

    def model_copy(self: _M, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> _M:
        """A copy with ``update`` applied (pydantic's ``model_copy``); what it is given is frozen too."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            copied._freeze_values(update)
        return copied

    def __deepcopy__(self: _M, memo: dict[int, Any] | None = None) -> _M:
        # Frozen containers deep-copy to plain ones (a caller's editable copy); a model stays frozen.
        copied = super().__deepcopy__(memo)
        copied._freeze_values()
        return copied

    def __setstate__(self, state: dict[Any, Any]) -> None:
        # Unpickling, likewise, gives plain containers back; freeze them again.
        super().__setstate__(state)
        self._freeze_values()


def freeze_fields(model: BaseModel, names: Iterable[str] | None = None) -> None:
    """Make the dicts and lists held by ``model``'s fields (all, or those in ``names``) read-only.

    Writes the instance's own ``__dict__``: the one way to replace a value in a frozen model
    without validating it again.
    """
    fields = model.__dict__
    for name in fields if names is None else names:
        value = fields.get(name)
        if isinstance(value, (dict, list, tuple)):
            frozen = freeze(value)
            if frozen is not value:
                fields[name] = frozen
        elif type(value) is float and not math.isfinite(value):
            # JSON has no NaN or Infinity: a typed number that cannot cross a wire is refused where it is made
            # (free-form values - a tool's result, metadata - carry them as null instead: Message.to_json).
            raise ValueError(
                f"{type(model).__name__}.{name} must be a finite number (JSON has no NaN or Infinity); got {value!r}"
            )
