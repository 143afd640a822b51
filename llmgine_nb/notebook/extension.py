"""``%load_ext llmgine_nb``: register the magics; ``%reload_ext`` / unload take them off again.

The extension holds the kernel's one ``NotebookRuntime`` through its
``LLMgineMagics`` instance (in IPython's magics registry), so there is no
module-level runtime: ``runtime(shell)`` finds it there.  Unloading closes
the runtime - its handlers leave the bus, its engines stop - so a reload
never leaves a second set of handlers behind; the new runtime continues
the session the old one was in.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kernel_runtime import NotebookRuntime
    from .magics import LLMgineMagics

__all__ = ["load", "unload", "runtime", "keep_questions"]

log = logging.getLogger("llmgine_nb.notebook")

_REGISTRY_KEY = "LLMgineMagics"


def _magics(shell: Any) -> LLMgineMagics | None:
    manager = getattr(shell, "magics_manager", None)
    return manager.registry.get(_REGISTRY_KEY) if manager is not None else None


def load(shell: Any) -> None:
    """Register ``%llmgine``/``%%llmgine`` on ``shell`` (a second load replaces the first)."""
    from .magics import LLMgineMagics

    previous = _magics(shell)
    if previous is not None:
        unload(shell)
    session = _last_session.pop(id(shell), None)

    def make_runtime() -> NotebookRuntime:
        from .kernel_runtime import NotebookRuntime

        return NotebookRuntime(shell, session=session)

    shell.register_magics(LLMgineMagics(shell, make_runtime))
    cleanup = getattr(shell, "input_transformers_cleanup", None)
    if cleanup is not None and keep_questions not in cleanup:
        cleanup.append(keep_questions)
    _preload_model_library()


def _preload_model_library() -> None:
    """Start importing the configured model's library in a thread, without waiting for it.

    The openai SDK for an OpenAI model (or an OpenAI-compatible server),
    litellm for other providers: started here, the import is usually done
    by the time the first ``%llmgine`` cell runs, and ``%load_ext`` itself
    returns at once (even the model layer that decides which library is
    imported in the thread).  The offline model needs neither, and test runs
    that block real models need none.
    """
    threading.Thread(target=_preload_in_thread, name="llmgine-preload", daemon=True).start()


def _preload_in_thread() -> None:
    try:
        from ..llm import preload_for
        from ..llm.blocking import real_models_allowed

        if real_models_allowed():
            preload_for()
    except Exception:  # noqa: BLE001 - a preload is only a head start; the first call reports real problems
        log.debug("preloading the model library failed", exc_info=True)


def unload(shell: Any) -> None:
    """Take the magics off ``shell`` and close its runtime (turns stop, handlers leave the bus)."""
    magics = _magics(shell)
    if magics is None:
        return
    # Remember where the conversation was, for the next load (%reload_ext).
    shell.magics_manager.registry.pop(_REGISTRY_KEY, None)
    session = _session_of(magics)
    if session is not None:
        _last_session[id(shell)] = session
    for kind in ("line", "cell"):
        table = shell.magics_manager.magics[kind]
        owner: Any = getattr(table.get("llmgine"), "__self__", None)
        if owner is magics:
            del table["llmgine"]
    magics.close()
    cleanup = getattr(shell, "input_transformers_cleanup", None)
    if cleanup is not None and keep_questions in cleanup:
        cleanup.remove(keep_questions)


_QUESTION_LINE = re.compile(r"^(\s*)%llmgine[ \t]+(\S.*?\?+)[ \t]*$")


def keep_questions(lines: list[str]) -> list[str]:
    """Keep ``%llmgine Why is the sky blue?`` a question.

    IPython reads a line ending in ``name?`` as a request for help on
    ``name`` (here: ``blue``).  This input transformer, run before that,
    turns such a ``%llmgine`` line into the call IPython would make for it
    anyway; ``%llmgine?`` on its own still shows the help.
    """
    if not lines or lines[0].lstrip().startswith("%%"):
        return lines  # a cell magic's body is its own text
    out = []
    for line in lines:
        match = _QUESTION_LINE.match(line)
        if match is None:
            out.append(line)
            continue
        ending = "\n" if line.endswith("\n") else ""
        out.append(f"{match.group(1)}get_ipython().run_line_magic('llmgine', {match.group(2)!r}){ending}")
    return out


# shell id -> the session its last runtime was in (so %reload_ext continues it).
_last_session: dict[int, str] = {}


def _session_of(magics: LLMgineMagics | None) -> str | None:
    runtime = magics.made_runtime if magics is not None else None
    return runtime.current_session if runtime is not None else None


def runtime(shell: Any = None) -> NotebookRuntime:
    """This kernel's ``NotebookRuntime`` (made on first use); loads the extension if needed."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise RuntimeError(
                "there is no IPython shell here; in a script, make a runtime yourself: "
                "NotebookRuntime() from llmgine_nb.notebook"
            )
    magics = _magics(shell)
    if magics is None:
        load(shell)
        magics = _magics(shell)
        assert magics is not None
    return magics.runtime
