"""Plain-text views of board data, shared by every front end (and fit to hand to a model)."""

from __future__ import annotations

from collections.abc import Sequence

from .board import Board, Task
from .dates import describe_date
from .matching import Candidate

__all__ = ["format_task", "format_tasks", "format_choices"]

_STATUS_LABELS = {"todo": "to do", "in_progress": "in progress", "done": "done"}


def format_task(task: Task, board: Board) -> str:
    """One line: ``T3 Send out recruitment forms - Sam Carter - Recruitment - due Fri 8 May 2026 - to do``."""
    return _line(task, _Names(board))


class _Names:
    """User and project names, read from the board once per listing."""

    def __init__(self, board: Board) -> None:
        self.users = {u.id: u.name for u in board.users()}
        self.projects = {p.id: p.name for p in board.projects()}


def _line(task: Task, names: _Names) -> str:
    parts = [
        f"{task.id} {task.title}",
        names.users.get(task.assignee_id, task.assignee_id),
        names.projects.get(task.project_id, task.project_id),
        f"due {describe_date(task.due)}" if task.due else "no due date",
        _STATUS_LABELS[task.status],
    ]
    return " - ".join(parts)


def format_tasks(tasks: Sequence[Task], board: Board, *, empty: str = "No tasks found.") -> str:
    """A numbered list of tasks, one per line, or ``empty`` when there are none."""
    if not tasks:
        return empty
    names = _Names(board)
    return "\n".join(f"{n}. {_line(task, names)}" for n, task in enumerate(tasks, start=1))


def format_choices(candidates: Sequence[Candidate[object]], *, question: str = "Do you mean") -> str:
    """``Do you mean 1) X, 2) Y or 3) Z?`` for ambiguous matches (a single one reads ``Do you mean X?``)."""
    labels = [_label(c) for c in candidates]
    if not labels:
        raise ValueError("format_choices needs at least one candidate; say that nothing matched instead.")
    if len(labels) == 1:
        return f"{question} {labels[0]}?"
    numbered = [f"{n}) {label}" for n, label in enumerate(labels, start=1)]
    return f"{question} {', '.join(numbered[:-1])} or {numbered[-1]}?"


def _label(candidate: Candidate[object]) -> str:
    # Show the task's title or the person's/project's name, not whichever alias matched.
    item = candidate.item
    return str(getattr(item, "title", None) or getattr(item, "name", None) or candidate.matched)
