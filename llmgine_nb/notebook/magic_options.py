"""The options of ``%llmgine`` subcommands: argparse parsers, and splitting a line as a shell would.

Each subcommand that takes options has an argparse parser here, whose
errors are a ``UsageError`` sentence with the usage line, not an exit.  ``shell_words`` splits a line as far as it can: a lone apostrophe
("don't") ends the split, and the rest of the line is kept as typed.
"""

from __future__ import annotations

import argparse
import io
import shlex
from typing import NoReturn

from IPython.core.error import UsageError

__all__ = ["shell_words", "parse_subcommand", "SUBCOMMAND_PARSERS"]


def shell_words(line: str) -> tuple[list[str], list[int], bool]:
    """The line's words as a shell splits them, where each ends in ``line``, and whether all were read.

    An unbalanced quote (an apostrophe in free text) stops the split there:
    what follows is kept as typed by the caller.
    """
    stream = io.StringIO(line)  # read by the lexer as it goes: where it stands is where a word ends
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    tokens: list[str] = []
    ends: list[int] = []
    try:
        while (token := lexer.get_token()) is not None:
            tokens.append(token)
            ends.append(stream.tell())
    except ValueError:
        return tokens, ends, False
    return tokens, ends, True


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are a ``UsageError`` (a sentence in the cell), never an exit."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split())  # "usage: %llmgine retry [-w]"
        raise UsageError(f"{self.prog}: {message} ({usage})")


def _parser(name: str, description: str) -> _Parser:
    return _Parser(prog=f"%llmgine {name}", description=description, add_help=False)


def _build() -> dict[str, _Parser]:
    parsers = {}
    p = parsers["sessions"] = _parser("sessions", "recent sessions")
    p.add_argument("limit", nargs="?", type=int, default=20, help="how many (default 20)")
    p = parsers["history"] = _parser("history", "this session's messages, or a search over every session")
    p.add_argument("last", nargs="?", type=int, help="only the last N messages")
    p.add_argument("-s", "--search", nargs=argparse.REMAINDER, metavar="WORDS", help="search every session")
    p = parsers["retry"] = _parser("retry", "run the last message again")
    p.add_argument("-w", "--wait", action="store_true", help="block until the turn ends")
    p = parsers["usage"] = _parser("usage", "tokens and cost")
    p.add_argument("--all", action="store_true", help="of every session, not only this one")
    p = parsers["log"] = _parser("log", "the session's events")
    p.add_argument("types", nargs="*", metavar="TYPE", help="only events whose type contains one of these words")
    p = parsers["mcp add"] = _parser("mcp add", "an MCP server: NAME -- COMMAND ARGS... (stdio) or NAME URL (HTTP)")
    p.add_argument("name", help="what to call the server (its tools may be prefixed with it)")
    p.add_argument("url", nargs="?", help="a streamable HTTP server's address (instead of -- COMMAND)")
    p.add_argument("--risk", help="read, write or destructive: the risk of all its tools")
    p.add_argument("--prefix", help="put before each tool's name")
    p.add_argument("--timeout", type=float, help="seconds a call may take")
    p.add_argument("--start", action="store_true", help="start it now, not on the first turn")
    p = parsers["forget"] = _parser("forget", "leave an exchange out of what the model is sent")
    p.add_argument("message", help="a message id of this session (or its first characters)")
    p.add_argument("--undo", action="store_true", help="send it to the model again")
    p = parsers["pin"] = _parser("pin", "send a message on every turn, however long the history grows")
    p.add_argument("message", help="a message id of this session (or its first characters)")
    p.add_argument("--off", action="store_true", help="unpin it")
    p = parsers["fix"] = _parser("fix", "explain the last exception and propose a corrected cell below")
    p.add_argument("-m", "--model", help="the model (default: the session's)")
    p = parsers["explain"] = _parser("explain", "explain cell N and its output")
    p.add_argument("cell", type=int, metavar="N", help="the cell's number, as in its In [N] prompt")
    p.add_argument("-m", "--model", help="the model (default: the session's)")
    p.add_argument("-w", "--wait", action="store_true", help="block until the answer is complete")
    p = parsers["map"] = _parser("map", "run a prompt over rows: DATA [options] -- TEMPLATE")
    p.add_argument("data", help="a DataFrame or list in your namespace, or a glob pattern of files")
    p.add_argument("-n", "--name", help="the job's name (default: derived from the template and the rows)")
    p.add_argument("--schema", help="a pydantic model in your namespace: its fields become columns")
    p.add_argument("-m", "--model", help="the model (default: the session's)")
    p.add_argument("-c", "--concurrency", type=int, default=8, help="rows asked at once (default 8)")
    p.add_argument("--max-cost", type=float, help="USD to spend before asking whether to go on")
    p.add_argument("--retries", type=int, default=2, help="tries again for a failing row (default 2)")
    p.add_argument("-o", "--out", help="a variable to set to the answers (a DataFrame for a DataFrame)")
    p.add_argument("-w", "--wait", action="store_true", help="block until every row is done")
    p = parsers["export"] = _parser("export", "write the session to a file")
    p.add_argument("path", help="where: a .ipynb or .md path")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    return parsers


SUBCOMMAND_PARSERS = _build()


def parse_subcommand(name: str, rest: str) -> argparse.Namespace:
    """``rest`` read by subcommand ``name``'s parser; a bad option is a ``UsageError`` that says so."""
    tokens, ends, complete = shell_words(rest)
    if not complete:
        tokens.append(rest[ends[-1] if ends else 0:].strip())  # the unsplittable rest as one word
    return SUBCOMMAND_PARSERS[name].parse_args(tokens)
