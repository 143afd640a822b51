"""The notebook front end: ``%llmgine`` magics, live cells, approval widgets.

    %load_ext llmgine_nb
    %llmgine What is 2+2?

or, from Python (an application building its own interface)::

    from llmgine_nb.notebook import runtime
    rt = runtime()                  # this kernel's NotebookRuntime
    turn = rt.ask("What is 2+2?")   # returns at once; turn.wait() for the TurnResult

Modules: ``kernel_runtime`` (``NotebookRuntime``, the Python API; not
named ``runtime`` so that the ``runtime()`` function keeps its name here),
``magics`` (the magics over it),
``transcript`` / ``render`` / ``live`` (a turn's events -> live output),
``widgets`` (approval and question cards), ``reports`` (sessions, usage,
log ... as tables and inline SVG charts), ``extension`` (load/unload).

Names are imported on first use, so ``%load_ext llmgine_nb`` stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..lazy import lazy_names

if TYPE_CHECKING:
    from .config import NotebookConfig
    from .extension import runtime
    from .handle import TurnHandle
    from .kernel_runtime import NotebookRuntime
    from .live import DisplaySink, LiveCell, NullSink
    from .magics import LLMgineMagics
    from .text_sink import TextSink
    from .transcript import Transcript

__all__ = [
    "DisplaySink",
    "LLMgineMagics",
    "LiveCell",
    "NotebookConfig",
    "NotebookRuntime",
    "NullSink",
    "TextSink",
    "Transcript",
    "TurnHandle",
    "load_ipython_extension",
    "runtime",
    "unload_ipython_extension",
]

_LAZY = {
    "runtime": "extension",
    "NotebookRuntime": "kernel_runtime",
    "NotebookConfig": "config",
    "TurnHandle": "handle",
    "LLMgineMagics": "magics",
    "LiveCell": "live",
    "DisplaySink": "live",
    "TextSink": "text_sink",
    "NullSink": "live",
    "Transcript": "transcript",
}


__getattr__ = lazy_names(__name__, _LAZY, globals())


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext llmgine_nb.notebook`` (the same as ``%load_ext llmgine_nb``)."""
    from .extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .extension import unload

    unload(ipython)
