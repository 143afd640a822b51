"""Typed per-session variables: a pydantic model the application defines.

The engine keeps one instance per session, stores it with the session and
hands tools a mapping view of it (``ctx.state["count"] += 1``).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from pydantic import BaseModel

__all__ = ["StateView", "load_state"]


class StateView(MutableMapping[str, Any]):
    """The engine's typed state as the mapping a tool sees.

    Keys are the model's fields; ``.model`` is the pydantic instance itself.
    Writes go through ``setattr``, so a model with ``validate_assignment=True``
    validates them.
    """

    def __init__(self, model: BaseModel) -> None:
        self.model = model

    def _fields(self) -> list[str]:
        return list(type(self.model).model_fields)

    def __getitem__(self, key: str) -> Any:
        if key not in self._fields():
            raise KeyError(key)
        return getattr(self.model, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._fields():
            raise KeyError(f"{key!r} is not a field of the engine state ({', '.join(self._fields())})")
        setattr(self.model, key, value)

    def __delitem__(self, key: str) -> None:
        raise TypeError("fields of the engine state cannot be deleted; set them to a value instead")

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields())

    def __len__(self) -> int:
        return len(self._fields())


def load_state(state_type: type[BaseModel] | None, current: BaseModel | None, stored: dict[str, Any] | None) -> BaseModel | None:
    """A session's state: the stored one, else ``current``, else a new ``state_type()`` (None without a type)."""
    if state_type is None:
        return current
    if stored:
        return state_type.model_validate(stored)
    return current if current is not None else state_type()
