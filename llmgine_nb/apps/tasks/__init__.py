"""The task assistant's board: users, projects and tasks, plus the domain logic around them.

The seed design's "Darcy" flows (verify a chat user, view tasks, assign a
task, update a task's status) rest on these parts:

- :mod:`.board`: the :class:`Board` interface, its models and errors;
- :mod:`.sqlite_board`: :class:`SQLiteBoard`, the local backend;
- :mod:`.matching`: fuzzy matching of project names, people and task statements;
- :mod:`.dates`: due dates as people say them;
- :mod:`.formatting`: plain-text task lists and "do you mean ...?" questions;
- :mod:`.demo`: a seeded demo organisation;
- :mod:`.tools`: :class:`TaskTools`, the board as tools a model may call;
- :mod:`.assistant`: :class:`TaskAssistant`, the chat assistant (the Python API a bot or web server drives);
- :mod:`.offline`: :class:`TaskPlanner`, the deterministic offline "model" of the four flows;
- :mod:`.events`: what the tools publish when they change the board.

Quick look::

    from datetime import date
    from llmgine_nb.apps.tasks import demo_board, match_projects, parse_due_date

    board = demo_board(today=date(2026, 5, 6))
    [c.item.name for c in match_projects("Fin", board.active_projects())]   # ambiguous: two
    parse_due_date("Friday", today=date(2026, 5, 6))                         # 2026-05-08
"""

from __future__ import annotations

from .answers import parse_choice, parse_yes_no
from .assistant import SYSTEM_PROMPT, Reply, TaskAssistant, TaskSession
from .board import (
    ACTIVE_STATUSES,
    READ,
    STATUSES,
    WRITE,
    AlreadyExists,
    AlreadyLinked,
    Board,
    BoardError,
    InactiveProject,
    InvalidInput,
    PermissionDenied,
    Project,
    Task,
    TaskStatus,
    UnknownProject,
    UnknownTask,
    UnknownUser,
    User,
    parse_status,
)
from .dates import DateParseError, describe_date, parse_due_date
from .demo import demo_board, seed_demo_board
from .events import TaskCompleted, TaskCreated, TaskEvent, UserVerified
from .formatting import format_choices, format_task, format_tasks
from .matching import Candidate, match_projects, match_tasks, match_users
from .offline import TaskPlanner, offline_task_llm
from .sqlite_board import SQLiteBoard
from .tools import Assignment, TaskTools

__all__ = [
    "ACTIVE_STATUSES",
    "AlreadyExists",
    "AlreadyLinked",
    "Assignment",
    "Board",
    "BoardError",
    "Candidate",
    "DateParseError",
    "InactiveProject",
    "InvalidInput",
    "PermissionDenied",
    "Project",
    "READ",
    "Reply",
    "SQLiteBoard",
    "STATUSES",
    "SYSTEM_PROMPT",
    "Task",
    "TaskAssistant",
    "TaskCompleted",
    "TaskCreated",
    "TaskEvent",
    "TaskPlanner",
    "TaskSession",
    "TaskStatus",
    "TaskTools",
    "UnknownProject",
    "UnknownTask",
    "UnknownUser",
    "User",
    "UserVerified",
    "WRITE",
    "demo_board",
    "describe_date",
    "format_choices",
    "format_task",
    "format_tasks",
    "match_projects",
    "match_tasks",
    "match_users",
    "offline_task_llm",
    "parse_choice",
    "parse_due_date",
    "parse_status",
    "parse_yes_no",
    "seed_demo_board",
]
