"""Events the task tools publish when they change something.

Observers (a notebook dashboard, an audit log, a chat bot posting to a
channel) subscribe to these instead of polling the board.  The assistant
itself listens to :class:`UserVerified` to give a newly verified session its
user's grants.
"""

from __future__ import annotations

from datetime import date

from ...messages import Event

__all__ = ["TaskEvent", "UserVerified", "TaskCreated", "TaskCompleted"]


class TaskEvent(Event):
    """Base of every task-board event."""


class UserVerified(TaskEvent):
    """A chat platform's user id is now linked to a board user (checked by email)."""

    platform: str
    platform_user_id: str
    user_id: str
    user_name: str


class TaskCreated(TaskEvent):
    """A task was created on the board after the user confirmed it."""

    task_id: str
    title: str
    assignee_id: str
    project_id: str
    due: date | None = None
    created_by: str


class TaskCompleted(TaskEvent):
    """A task was marked done after the user picked or confirmed it."""

    task_id: str
    title: str
    by: str
