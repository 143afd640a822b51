"""``--image`` values: a variable, ``Out[N]``, ``_``, or a file path, found in the notebook.

    %llmgine --image fig --image Out[4] --image plots/loss.png What changed between these?
    runtime.ask("What changed?", images=[fig, "plots/loss.png"])

Each is stored once (by sha256) and sent with the prompt as an image part;
``{name}`` references inside the prompt are found by the engine itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..chat import ImageRef
    from ..store import Store

__all__ = ["find_image", "store_images"]

_OUTPUT = re.compile(r"(?:Out|_oh)\[(\d+)\]")


def find_image(spec: Any, namespace: Mapping[str, Any]) -> tuple[str | None, Any]:
    """(label, value) for one ``--image`` value; a value that is no string is the image itself."""
    if not isinstance(spec, str):
        return None, spec
    name = spec.strip()
    numbered = _OUTPUT.fullmatch(name)
    if numbered:
        outputs = namespace.get("Out")
        number = int(numbered.group(1))
        if not isinstance(outputs, Mapping) or number not in outputs:
            raise ValueError(f"there is no Out[{number}] (cell {number} returned no value); "
                             "give a variable, Out[N] of a cell that returned an image, or a file path")
        return f"Out[{number}]", outputs[number]
    if name.isidentifier() and name in namespace:
        return name, namespace[name]
    path = os.path.expanduser(name)
    if os.path.isfile(path):
        return name, path
    raise ValueError(f"--image {name}: no variable of that name, no such Out[N] and no such file; "
                     "give a variable holding a figure or an image, Out[N], _ or the path of an image file")


def store_images(specs: Iterable[Any], namespace: Mapping[str, Any], store: Store) -> list[ImageRef]:
    """Each image stored once (content-addressed) and referred to as message data."""
    return [store.put_image(value, label=label) for label, value in (find_image(s, namespace) for s in specs)]
