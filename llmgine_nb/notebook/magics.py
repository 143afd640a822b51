"""``%llmgine`` and ``%%llmgine``: the notebook's front end, a thin layer over ``NotebookRuntime``.

Every subcommand is one call of the runtime's Python API; this module only
parses the line, calls, and displays.  It imports nothing heavy, so that
``%load_ext llmgine_nb`` is quick: the runtime (store, engine, tools) is made
on the first use of the magic.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from .config import FORMATS
from .help import HELP
from .magic_options import parse_subcommand, shell_words
from .voice import error_sentence, say

if TYPE_CHECKING:
    from .kernel_runtime import NotebookRuntime

__all__ = ["LLMgineMagics", "HELP", "SUBCOMMANDS", "parse_prompt_options"]

log = logging.getLogger("llmgine_nb.notebook")

#: Subcommand -> runtime method name of its handler (on ``LLMgineMagics``).
SUBCOMMANDS = {
    "help": "_help",
    "ask": "_ask_line",
    "model": "_model",
    "models": "_model",
    "sessions": "_sessions",
    "new": "_new",
    "resume": "_resume",
    "fork": "_fork",
    "history": "_history",
    "tools": "_tools",
    "pending": "_pending",
    "approve": "_approve",
    "deny": "_deny",
    "always": "_always",
    "edit": "_edit",
    "answer": "_answer",
    "stop": "_stop",
    "retry": "_retry",
    "usage": "_usage",
    "context": "_context",
    "log": "_log",
    "config": "_config",
    "keys": "_keys",
    "export": "_export",
    "mcp": "_mcp",
    "map": "_map",
    "fix": "_fix",
    "forget": "_forget",
    "pin": "_pin",
    "explain": "_explain",
}

def _with_doc(doc: str) -> Callable[[Any], Any]:
    def set_doc(fn: Any) -> Any:
        fn.__doc__ = doc
        return fn

    return set_doc


@magics_class
class LLMgineMagics(Magics):
    """The ``%llmgine`` line and cell magic; ``runtime`` is this kernel's ``NotebookRuntime``."""

    def __init__(self, shell: Any, runtime_factory: Callable[[], NotebookRuntime] | None = None) -> None:
        super().__init__(shell)
        self._factory = runtime_factory
        self._runtime: NotebookRuntime | None = None

    @property
    def runtime(self) -> NotebookRuntime:
        """The kernel's runtime, made on first use."""
        if self._runtime is None:
            if self._factory is not None:
                self._runtime = self._factory()
            else:
                from .kernel_runtime import NotebookRuntime

                self._runtime = NotebookRuntime(self.shell)
        return self._runtime

    @property
    def made_runtime(self) -> NotebookRuntime | None:
        """The runtime if the magic has made it yet (None before its first use); makes nothing."""
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None

    # -- the magic ----------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="the model for this turn (a litellm name or an alias)")
    @argument("-s", "--session", help="the session for this turn (id or name; created if new)")
    @argument("--system", help="the system prompt for this turn")
    @argument("--no-tools", action="store_true", help="do not offer tools to the model")
    @argument("-f", "--format", choices=FORMATS, metavar="FORMAT",
              help=f"how to show the answer: {', '.join(FORMATS[:-1])} or {FORMATS[-1]} (default: {FORMATS[0]})")
    @argument("--schema", help="a pydantic model in your namespace the answer must fit")
    @argument("-o", "--out", help="a variable to set to the answer's value when the turn ends")
    @argument("-w", "--wait", action="store_true", help="block until the turn ends (approvals by input())")
    @argument("-i", "--image", action="append", default=[], metavar="IMAGE",
              help="send an image with the prompt: a variable (figure, PIL image), Out[N], _ or a file path; repeatable")
    @argument("prompt", nargs=argparse.REMAINDER,
              help="the question, after the options (in %%%%llmgine: the cell body); -- ends the options")
    @_with_doc(HELP)  # magic_arguments puts the options after this text: that is %llmgine?
    @no_var_expand
    @line_cell_magic
    def llmgine(self, line: str, cell: str | None = None) -> None:
        try:
            if cell is not None:
                args, rest = parse_prompt_options(line)
                if rest:
                    raise UsageError("the first line of %%llmgine takes only options; write the question in the cell body")
                self._ask(cell, args)
            else:
                self._dispatch(line.strip())
        except UsageError:
            raise
        except (ValueError, LookupError, TypeError, TimeoutError) as exc:
            raise UsageError(_sentence(exc)) from None
        except Exception as exc:
            from ..messages import CommandFailed

            if isinstance(exc, CommandFailed) or type(exc).__name__ in ("StoreError", "SessionNotFound"):
                raise UsageError(_sentence(exc)) from None
            raise

    # %llmgine? shows the help, then the options magic_arguments describes (without its usage line).
    llmgine.__doc__ = HELP + "\n" + (llmgine.__doc__ or "").partition("\noptions:\n")[2]

    def _dispatch(self, line: str) -> None:
        if not line:
            self._status()
            return
        word, _, rest = line.partition(" ")
        # Lowercase only: "%llmgine Model a queue in Python" is a prompt, not `model`.
        handler = SUBCOMMANDS.get(word) if not word.startswith("-") else "_ask_line"
        if handler is None:
            self._ask_line(line)  # not a subcommand: the whole line is the prompt
        else:
            getattr(self, handler)(line if word.startswith("-") else rest.strip())

    # -- asking ----------------------------------------------------------------------

    def _ask_line(self, rest: str) -> None:
        args, prompt = parse_prompt_options(rest)
        self._ask(prompt, args)

    def _ask(self, prompt: str, args: Any) -> None:
        if not prompt.strip():
            raise UsageError("there is no prompt: write the question after the options, or in the cell body")
        schema = None
        if args.schema:
            schema = (getattr(self.shell, "user_ns", None) or {}).get(args.schema)
            if schema is None:
                raise UsageError(f"there is no {args.schema!r} in the notebook; define the pydantic model first")
        try:
            self.runtime.ask(
                prompt.strip("\n"), model=args.model, system=args.system, tools=not args.no_tools,
                format=args.format, schema=schema, session=args.session, out=args.out, wait=args.wait,
                images=args.image,
            )
        except KeyboardInterrupt:
            pass  # a kernel interrupt while waiting cancelled the turn; its output shows what was kept

    # -- subcommands ---------------------------------------------------------------------

    def _help(self, rest: str) -> None:
        say(self.llmgine.__doc__)

    def _status(self) -> None:
        rt = self.runtime
        pending = rt.pending()
        tools = len(rt.refresh_tools())
        lines = [
            f"llmgine-nb · session {rt.session_id} · model {rt.model} · "
            f"{tools} tool{'' if tools == 1 else 's'} from this notebook",
        ]
        if pending:
            lines.append("waiting for an answer: " + ", ".join(_request_label(r) for r in pending))
        lines.append("`%llmgine help` lists the commands; `%llmgine What is 2+2?` asks.")
        say("\n".join(lines))

    def _model(self, rest: str) -> None:
        from .reports import ModelReport

        rt = self.runtime
        if rest:
            name = rt.set_model(rest)
            say(f"Model for this session: {name}")
            return
        from ..llm.config import choose_model, resolve_aliases

        self._show(ModelReport(rt.model, resolve_aliases(), offline=choose_model().offline))

    def _sessions(self, rest: str) -> None:
        self._show(self.runtime.sessions(parse_subcommand("sessions", rest).limit))

    def _new(self, rest: str) -> None:
        session_id = self.runtime.new_session(rest or None)
        say(f"New session {rest + ' ' if rest else ''}({session_id}); it is now the current one.")

    def _resume(self, rest: str) -> None:
        if not rest:
            raise UsageError("say which session: %llmgine resume NAME or ID (`%llmgine sessions` lists them)")
        session_id = self.runtime.resume(rest)
        count = len(self.runtime.store.messages(session_id))
        say(f"Resumed session {rest} ({session_id}): {count} messages. New prompts continue it.")

    def _fork(self, rest: str) -> None:
        # [MESSAGE_ID] [NAME]: a first word that is no message id of this session starts the name.
        first, _, more = rest.partition(" ")
        at, name = None, rest.strip() or None
        if first:
            try:
                at, name = self.runtime.find_message(first), more.strip() or None
            except LookupError:
                pass
        session_id = self.runtime.fork(at, name)
        say(f"Forked into session {name + ' ' if name else ''}({session_id}); it is now the current one.")

    def _context(self, rest: str) -> None:
        self._show(self.runtime.context(session=rest or None))

    def _history(self, rest: str) -> None:
        args = parse_subcommand("history", rest)
        if args.search is not None:
            query = " ".join(args.search).strip()
            if not query:
                raise UsageError("give words to search for: %llmgine history --search WORDS")
            self._show(self.runtime.search(query))
            return
        self._show(self.runtime.history(args.last))

    def _tools(self, rest: str) -> None:
        self._show(self.runtime.list_tools())

    def _pending(self, rest: str) -> None:
        pending = self.runtime.pending()
        if not pending:
            say("Nothing is waiting for an answer.")
            return
        for request in pending:
            say(self.runtime.redactor.text(_request_label(request, long=True)))

    def _approve(self, rest: str) -> None:
        request = self.runtime.approve(_one_id(rest, "approve"), decided_by=self._who("%llmgine approve"))
        say(f"Approved {request.tool_name} ({request.display_id or request.call_id}).")

    def _deny(self, rest: str) -> None:
        call_id, _, reason = rest.partition(" ")
        request = self.runtime.deny(_one_id(call_id, "deny"), reason.strip() or None,
                                    decided_by=self._who("%llmgine deny"))
        say(f"Denied {request.tool_name} ({request.display_id or request.call_id})." + (f" Told the model: {reason.strip()}" if reason.strip() else ""))

    def _always(self, rest: str) -> None:
        request = self.runtime.always(_one_id(rest, "always"), decided_by=self._who("%llmgine always"))
        if request.allow_always:
            say(f"Approved {request.tool_name} ({request.display_id or request.call_id}); it runs without asking for the rest of this session.")
        else:  # the tool says so: e.g. run_python, where every call runs different code
            say(f"Approved {request.tool_name} ({request.display_id or request.call_id}) this once: {request.tool_name} does not remember "
                "approvals, so its next call asks again.")

    def _edit(self, rest: str) -> None:
        call_id, _, raw = rest.partition(" ")
        if call_id and not _is_pending_approval(self.runtime.pending(), call_id):
            message_id = self.runtime.edit_message(call_id, raw.strip())  # a message of the dialog
            say(f"Edited message {message_id[:12]}; the model sees the new text from the next turn on.")
            return
        try:
            arguments = json.loads(raw)
        except ValueError as exc:
            raise UsageError(f'the new arguments must be a JSON object, e.g. %llmgine edit ID {{"path": "a.txt"}} ({exc})') from None
        if not isinstance(arguments, dict):
            raise UsageError('the new arguments must be a JSON object, e.g. {"path": "a.txt"}')
        request = self.runtime.edit(_one_id(call_id, "edit"), arguments, decided_by=self._who("%llmgine edit"))
        say(f"Approved {request.tool_name} ({request.display_id or request.call_id}) with your arguments.")

    def _answer(self, rest: str) -> None:
        request_id, _, value = rest.partition(" ")
        question = self.runtime.answer(_one_id(request_id, "answer"), value.strip(),
                                       answered_by=self._who("%llmgine answer"))
        say(f"Answered: {question.question}")

    def _stop(self, rest: str) -> None:
        last = self.runtime.last
        stopped = self.runtime.stop()
        if not stopped:
            say("No turn is running.")
        elif stopped == 1 and last is not None:
            try:
                kept = last.future.result(timeout=10).text  # the stopped turn ends at once
            except Exception:  # noqa: BLE001 - it failed or is still ending: nothing to show of it
                kept = ""
            say("Stopped the turn; " + ("the partial reply is kept, marked as stopped." if kept
                                        else "nothing had arrived, so nothing is kept."))
        else:
            say(f"Stopped {stopped} turns; what had arrived of each reply is kept, marked as stopped.")

    def _retry(self, rest: str) -> None:
        wait = parse_subcommand("retry", rest).wait
        try:
            self.runtime.retry(wait=wait)
        except KeyboardInterrupt:
            pass  # a kernel interrupt while waiting cancelled the turn; its output shows what was kept

    def _usage(self, rest: str) -> None:
        self._show(self.runtime.usage(all_sessions=parse_subcommand("usage", rest).all))

    def _log(self, rest: str) -> None:
        self._show(self.runtime.log(types=parse_subcommand("log", rest).types or None))

    def _config(self, rest: str) -> None:
        rt = self.runtime
        if rest:
            values = {}
            for item in shlex.split(rest):
                name, sep, value = item.partition("=")
                if not sep:
                    raise UsageError(f"write settings as NAME=VALUE, e.g. %llmgine config ui=text (got {item!r})")
                values[name.strip()] = value.strip()
            rt.configure(**values)
            say("Set " + ", ".join(f"{k}={getattr(rt.config, k)}" for k in values))
            return
        self._show(rt.settings())

    def _keys(self, rest: str) -> None:
        self._show(self.runtime.keys())

    def _export(self, rest: str) -> None:
        if not rest.strip():
            raise UsageError("say where, as one path: %llmgine export conversation.ipynb (or .md) [--force]")
        args = parse_subcommand("export", rest)
        try:
            path = self.runtime.export(args.path, overwrite=args.force)
        except OSError as exc:  # exists, no such folder, no permission: a sentence, not a traceback
            raise UsageError(str(exc)) from None
        say(f"Exported the session to {path}")

    def _mcp(self, rest: str) -> None:
        from .mcp_magic import mcp_command  # the logic lives there; MCP loads only when used

        self._show(mcp_command(self.runtime, rest))

    def _forget(self, rest: str) -> None:
        from .reports import plural

        args = parse_subcommand("forget", rest)
        changed = self.runtime.forget(args.message, forgotten=not args.undo)
        if args.undo:
            say(f"Brought back {plural(len(changed), 'message')}: the model is sent them again.")
        else:
            say(f"Forgot {plural(len(changed), 'message')} (the exchange): they stay in the history, marked, "
                f"and are not sent to the model. `%llmgine forget {args.message} --undo` brings them back.")

    def _pin(self, rest: str) -> None:
        args = parse_subcommand("pin", rest)
        message_id = self.runtime.pin(args.message, pinned=not args.off)
        say(f"Unpinned message {message_id[:12]}." if args.off else
            f"Pinned message {message_id[:12]}: it is sent on every turn, however long the history grows.")

    def _fix(self, rest: str) -> None:
        try:
            self.runtime.fix(model=parse_subcommand("fix", rest).model)
        except KeyboardInterrupt:
            pass  # a kernel interrupt while waiting cancelled the turn; its output shows what was kept

    def _explain(self, rest: str) -> None:
        args = parse_subcommand("explain", rest)
        self.runtime.explain(args.cell, model=args.model, wait=args.wait)

    def _map(self, rest: str) -> None:
        from .mapping import map_command  # the logic lives there

        map_command(self.runtime, rest)

    # -- helpers ---------------------------------------------------------------------------

    def _who(self, via: str) -> str:
        return f"{self.runtime.config.user} via {via}"

    def _show(self, report: Any) -> None:
        # Reports are static (HTML/Markdown and a text form) in every front end, so a saved
        # notebook shows them without a kernel; none is a widget.
        from IPython.display import display

        display(report)


def parse_prompt_options(line: str) -> tuple[argparse.Namespace, str]:
    """The options of ``%llmgine ask`` / ``%%llmgine`` (argparse decides them), then the prompt as typed.

    The line is split as a shell would, so that ``--system "Be brief."`` is
    one value - but only as far as the options go: where argparse says the
    prompt begins, the rest of the line is kept exactly as typed, quotes
    and apostrophes included ("What's up?" is no shell string).
    """
    tokens, ends, complete = shell_words(line)
    try:
        args, unknown = LLMgineMagics.llmgine.parser.parse_known_args(tokens)
    except UsageError as exc:  # argparse's own sentence, e.g. "argument -m/--model: expected one argument"
        raise UsageError(f"{exc}; `%llmgine help` lists the options") from None
    if unknown:
        raise UsageError(f"unknown option {unknown[0]}; `%llmgine help` lists the options")
    first = len(tokens) - len(args.prompt)  # the index of the prompt's first word
    if args.prompt and args.prompt[0] == "--":
        first += 1  # "--" ends the options, so a prompt may start with "-"
    del args.prompt  # the prompt is returned as typed, not as words
    if first == len(tokens) and complete:
        return args, ""
    start = ends[first - 1] if first > 0 else 0
    return args, line[start:].strip()


def _sentence(exc: BaseException) -> str:
    """The error as the user should read it: a failed command's ``RuntimeError: `` prefix removed."""
    return error_sentence(str(exc))


def _is_pending_approval(pending: list[Any], ident: str) -> bool:
    """Whether ``ident`` names a pending approval (its card's id or its call id): `edit` then edits its arguments."""
    from ..tools.commands import RequestApproval

    return any(isinstance(r, RequestApproval) and ident in (r.display_id, r.call_id) or
               (isinstance(r, RequestApproval) and len(ident) >= 6 and r.call_id.startswith(ident)) for r in pending)


def _one_id(text: str, command: str) -> str:
    ident = text.strip().split(" ")[0] if text.strip() else ""
    if not ident:
        raise UsageError(f"say which call: %llmgine {command} ID (`%llmgine pending` lists them)")
    return ident


def _request_label(request: Any, long: bool = False) -> str:
    from ..tools.commands import RequestApproval

    if isinstance(request, RequestApproval):
        shown = request.display_id or request.call_id  # the id on the card
        label = f"{shown} ({request.tool_name})"
        if long:
            from .style import call_signature

            label = (f"approval {shown}: {call_signature(request.tool_name, request.arguments)}"
                     f" - risk {request.risk}. %llmgine approve {shown} | %llmgine deny {shown} [reason]")
        return label
    shown = getattr(request, "display_id", "") or request.id
    label = f"question {shown}"
    if long:
        options = "".join(f" {i}) {o}" for i, o in enumerate(getattr(request, "options", []) or [], 1))
        label += f": {request.question}{options}. %llmgine answer {shown} VALUE"
    return label
