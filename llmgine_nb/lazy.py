"""Names a package imports when they are first used (PEP 562), so that importing the package stays quick.

    __getattr__ = lazy_names(__name__, {"LiveCell": "live", ...}, globals())

The package lists its names under ``TYPE_CHECKING`` too, so type checkers
and readers see where each comes from.  This module imports nothing of the
package, so any package may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, names: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``names`` maps each name to the submodule defining it.

    The first use imports the submodule and keeps the value in ``namespace``
    (the package's ``globals()``), so that later uses are plain lookups.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    return __getattr__
