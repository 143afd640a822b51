"""The task board: users, projects and tasks behind one small interface.

:class:`Board` is what the task assistant talks to.  Its public methods hold
the domain rules every backend shares (who exists, which projects take new
tasks, who may write, what a valid task looks like); a backend only supplies
a handful of storage primitives (the ``_find_*``, ``_insert_*``, ``_update_*``
methods) and, if it can, a transaction.  :class:`~.sqlite_board.SQLiteBoard`
is the local backend; a Notion or Linear backend would implement the same
primitives against their APIs.

Every write validates everything *before* it stores anything, inside the
backend's transaction, so a failed call writes nothing.  Every error is a
:class:`BoardError` whose message is a sentence saying what to do, fit to show
a user or to hand back to a model.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "READ",
    "WRITE",
    "TaskStatus",
    "STATUSES",
    "ACTIVE_STATUSES",
    "User",
    "Project",
    "Task",
    "Board",
    "BoardError",
    "UnknownUser",
    "UnknownProject",
    "InactiveProject",
    "UnknownTask",
    "PermissionDenied",
    "InvalidInput",
    "AlreadyExists",
    "AlreadyLinked",
    "parse_status",
]

log = logging.getLogger("llmgine_nb.apps.tasks")

READ = "tasks:read"
WRITE = "tasks:write"

TaskStatus = Literal["todo", "in_progress", "done"]
STATUSES: tuple[str, ...] = ("todo", "in_progress", "done")
ACTIVE_STATUSES: frozenset[str] = frozenset({"todo", "in_progress"})

MAX_TITLE = 200
MAX_DESCRIPTION = 5000
# How many names an error lists before it says "and N more".
_LIST_LIMIT = 8


# -- errors -------------------------------------------------------------------


class BoardError(Exception):
    """Base of every board error; its message says what went wrong and what to do."""


class UnknownUser(BoardError, LookupError):
    """No board user has that id, email or platform link."""


class UnknownProject(BoardError, LookupError):
    """No project has that id."""


class InactiveProject(BoardError):
    """The project exists but is archived, so it takes no new tasks."""


class UnknownTask(BoardError, LookupError):
    """No task has that id."""


class PermissionDenied(BoardError, PermissionError):
    """The acting user lacks the grant this operation needs."""


class InvalidInput(BoardError, ValueError):
    """A value is malformed: an empty title, an unknown status, a non-email."""


class AlreadyExists(BoardError):
    """A user or project with that id or email is already on the board."""


class AlreadyLinked(BoardError):
    """The platform id is already linked to a different board user."""


# -- models -------------------------------------------------------------------


class User(BaseModel):
    """A person on the board.  ``grants`` holds permissions such as ``tasks:write``."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    email: str
    grants: frozenset[str] = frozenset({READ})

    def can(self, grant: str) -> bool:
        """Whether this user holds ``grant`` (for example ``WRITE``)."""
        return grant in self.grants

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.split() else self.name


class Project(BaseModel):
    """A project tasks belong to.  Inactive (archived) projects take no new tasks."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    active: bool = True


class Task(BaseModel):
    """One task: what, where, who, by when, and how far along."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    description: str = ""
    project_id: str
    assignee_id: str
    due: date | None = None
    status: TaskStatus = "todo"
    created_by: str
    created: datetime
    updated: datetime

    @property
    def is_active(self) -> bool:
        """True while the task is still to do or in progress."""
        return self.status in ACTIVE_STATUSES


# -- small helpers --------------------------------------------------------------

_STATUS_WORDS = {
    "todo": "todo",
    "to do": "todo",
    "open": "todo",
    "not started": "todo",
    "pending": "todo",
    "in progress": "in_progress",
    "in_progress": "in_progress",
    "in-progress": "in_progress",
    "doing": "in_progress",
    "started": "in_progress",
    "underway": "in_progress",
    "done": "done",
    "complete": "done",
    "completed": "done",
    "finished": "done",
    "closed": "done",
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_status(text: str) -> TaskStatus:
    """Turn a status as people say it ("done", "in progress", "finished") into a ``TaskStatus``."""
    key = " ".join(str(text).strip().lower().replace("_", " ").split())
    status = _STATUS_WORDS.get(key) or _STATUS_WORDS.get(key.replace(" ", "_"))
    if status is None:
        raise InvalidInput(f"{text!r} is not a task status; use one of: todo, in progress, done.")
    return status  # type: ignore[return-value]


def _normalise_email(email: str) -> str:
    cleaned = str(email).strip().lower()
    if not _EMAIL.match(cleaned):
        raise InvalidInput(
            f"{email!r} is not an email address; give the email you use on the board, like sam@example.org."
        )
    return cleaned


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "item"


def _listing(items: Iterable[str]) -> str:
    names = list(items)
    if not names:
        return "(none)"
    shown = ", ".join(names[:_LIST_LIMIT])
    more = len(names) - _LIST_LIMIT
    return f"{shown} and {more} more" if more > 0 else shown


def _required_text(value: str, what: str) -> str:
    cleaned = " ".join(str(value).split())
    if not cleaned:
        raise InvalidInput(f"{what} cannot be empty.")
    return cleaned


# -- the interface ----------------------------------------------------------------


class Board(ABC):
    """The task board interface: shared rules here, storage in a backend.

    Reads: :meth:`users`, :meth:`user`, :meth:`user_by_email`,
    :meth:`user_for_platform`, :meth:`projects`, :meth:`active_projects`,
    :meth:`project`, :meth:`task`, :meth:`tasks`, :meth:`active_tasks`.
    Writes: :meth:`link_platform`, :meth:`unlink_platform`, :meth:`add_user`,
    :meth:`add_project`, :meth:`set_project_active`, :meth:`create_task`,
    :meth:`update_status`.
    """

    # ---- storage primitives a backend implements --------------------------------

    @abstractmethod
    def users(self) -> list[User]:
        """Every user on the board, in a stable order."""

    @abstractmethod
    def projects(self) -> list[Project]:
        """Every project, active and archived, in a stable order."""

    @abstractmethod
    def _find_user(self, user_id: str) -> User | None: ...

    @abstractmethod
    def _find_user_by_email(self, email: str) -> User | None:
        """Look up by an already lower-cased email."""

    @abstractmethod
    def _find_project(self, project_id: str) -> Project | None: ...

    @abstractmethod
    def _find_task(self, task_id: str) -> Task | None: ...

    @abstractmethod
    def _query_tasks(
        self, assignee_id: str | None, project_id: str | None, statuses: frozenset[str] | None
    ) -> list[Task]:
        """Tasks matching every given filter (None = any), soonest due first."""

    @abstractmethod
    def _find_link(self, platform: str, platform_user_id: str) -> str | None:
        """The board user id linked to this platform id, or None."""

    @abstractmethod
    def _save_link(self, platform: str, platform_user_id: str, user_id: str) -> None: ...

    @abstractmethod
    def _delete_link(self, platform: str, platform_user_id: str) -> None: ...

    @abstractmethod
    def _insert_user(self, user: User) -> None: ...

    @abstractmethod
    def _insert_project(self, project: Project) -> None: ...

    @abstractmethod
    def _update_project(self, project: Project) -> None: ...

    @abstractmethod
    def _next_task_id(self) -> str:
        """A fresh task id; called inside the write transaction."""

    @abstractmethod
    def _insert_task(self, task: Task) -> None: ...

    @abstractmethod
    def _update_task(self, task: Task) -> None: ...

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Wrap one write; backends with transactions roll back on error."""
        yield

    def _now(self) -> datetime:
        return datetime.now(timezone.utc)

    # ---- users and platform links --------------------------------------------------

    def user(self, user_id: str) -> User:
        """The user with this id; raises :class:`UnknownUser` if there is none."""
        found = self._find_user(str(user_id))
        if found is None:
            raise UnknownUser(
                f"There is no user with id {user_id!r} on the board; known users are: "
                f"{_listing(f'{u.id} ({u.name})' for u in self.users())}."
            )
        return found

    def user_by_email(self, email: str) -> User:
        """The user with this email (any case); raises :class:`UnknownUser` if there is none."""
        found = self._find_user_by_email(_normalise_email(email))
        if found is None:
            raise UnknownUser(
                f"No board user has the email {email.strip()!r}; check the spelling, "
                "or ask a board admin to add you."
            )
        return found

    def user_for_platform(self, platform: str, platform_user_id: str) -> User | None:
        """The board user a chat platform's user id is linked to, or None if not linked yet.

        None is the cue to ask the person for their board email and call
        :meth:`link_platform`.
        """
        user_id = self._find_link(*self._link_key(platform, platform_user_id))
        if user_id is None:
            return None
        return self._find_user(user_id)

    def link_platform(self, platform: str, platform_user_id: str, email: str) -> User:
        """Verify ``email`` against the board and remember that the platform id is that user.

        Linking the same pair again is harmless; linking a platform id that
        already belongs to someone else raises :class:`AlreadyLinked`.
        """
        key = self._link_key(platform, platform_user_id)
        with self._transaction():
            user = self.user_by_email(email)
            current = self._find_link(*key)
            if current == user.id:
                return user
            if current is not None:
                owner = self._find_user(current)
                owner_name = owner.name if owner else current
                raise AlreadyLinked(
                    f"{key[0]} user {key[1]!r} is already linked to {owner_name}; "
                    "unlink it first if it should belong to someone else."
                )
            self._save_link(*key, user.id)
        log.info("linked %s user %s to board user %s", key[0], key[1], user.id)
        return user

    def unlink_platform(self, platform: str, platform_user_id: str) -> None:
        """Forget a platform link (nothing happens if there was none)."""
        key = self._link_key(platform, platform_user_id)
        with self._transaction():
            self._delete_link(*key)

    @staticmethod
    def _link_key(platform: str, platform_user_id: str) -> tuple[str, str]:
        return (
            _required_text(platform, "The platform name").lower(),
            _required_text(platform_user_id, "The platform user id"),
        )

    def add_user(
        self, name: str, email: str, *, grants: Iterable[str] = (READ,), id: str | None = None
    ) -> User:
        """Add a person (a set-up operation).  ``grants`` defaults to read only: fail closed."""
        name = _required_text(name, "A user's name")
        clean_email = _normalise_email(email)
        grant_set = frozenset(_required_text(g, "A grant") for g in grants)
        with self._transaction():
            user_id = self._choose_id(id, name, self._find_user)
            existing = self._find_user_by_email(clean_email)
            if existing is not None:
                raise AlreadyExists(f"{clean_email} is already on the board as {existing.name} ({existing.id}).")
            user = User(id=user_id, name=name, email=clean_email, grants=grant_set)
            self._insert_user(user)
        return user

    # ---- projects -------------------------------------------------------------------------

    def active_projects(self) -> list[Project]:
        """The projects that take new tasks."""
        return [p for p in self.projects() if p.active]

    def project(self, project_id: str) -> Project:
        """The project with this id (active or not); raises :class:`UnknownProject` if none."""
        found = self._find_project(str(project_id))
        if found is None:
            raise UnknownProject(
                f"There is no project with id {project_id!r}; active projects are: "
                f"{_listing(f'{p.id} ({p.name})' for p in self.active_projects())}."
            )
        return found

    def add_project(self, name: str, *, active: bool = True, id: str | None = None) -> Project:
        """Add a project (a set-up operation)."""
        name = _required_text(name, "A project's name")
        with self._transaction():
            project = Project(id=self._choose_id(id, name, self._find_project), name=name, active=bool(active))
            self._insert_project(project)
        return project

    def set_project_active(self, project_id: str, active: bool) -> Project:
        """Archive (``active=False``) or reopen a project."""
        with self._transaction():
            project = self.project(project_id).model_copy(update={"active": bool(active)})
            self._update_project(project)
        return project

    def _choose_id(self, given: str | None, name: str, find) -> str:
        if given is not None:
            chosen = _required_text(given, "An id")
            if find(chosen) is not None:
                raise AlreadyExists(f"The id {chosen!r} is already taken; choose another id or leave it out.")
            return chosen
        base = _slug(name)
        candidate, n = base, 2
        while find(candidate) is not None:
            candidate, n = f"{base}-{n}", n + 1
        return candidate

    # ---- tasks ------------------------------------------------------------------------------

    def task(self, task_id: str) -> Task:
        """The task with this id; raises :class:`UnknownTask` if there is none."""
        found = self._find_task(str(task_id).strip())
        if found is None:
            raise UnknownTask(f"There is no task with id {task_id!r}; list the tasks to find the right id.")
        return found

    def tasks(
        self,
        *,
        assignee_id: str | None = None,
        project_id: str | None = None,
        status: str | Iterable[str] | None = None,
    ) -> list[Task]:
        """Tasks filtered by assignee, project and status (one or several), soonest due first.

        An unknown assignee or project raises instead of quietly returning nothing.
        """
        if assignee_id is not None:
            self.user(assignee_id)
        if project_id is not None:
            self.project(project_id)
        statuses: frozenset[str] | None
        if status is None:
            statuses = None
        elif isinstance(status, str):
            statuses = frozenset({parse_status(status)})
        else:
            statuses = frozenset(parse_status(s) for s in status)
        return self._query_tasks(assignee_id, project_id, statuses)

    def active_tasks(self, assignee_id: str) -> list[Task]:
        """A user's tasks that are still to do or in progress."""
        return self.tasks(assignee_id=assignee_id, status=ACTIVE_STATUSES)

    def create_task(
        self,
        title: str,
        *,
        project_id: str,
        assignee_id: str,
        created_by: str,
        due: date | str | None = None,
        description: str = "",
    ) -> Task:
        """Create a task, checking everything first so that a failure writes nothing.

        ``created_by`` must hold ``tasks:write``; the assignee must exist; the
        project must exist and be active.  ``due`` is a date or an ISO string
        (use :func:`~.dates.parse_due_date` for phrases like "Friday").
        """
        clean_title = _required_text(title, "A task's title")
        if len(clean_title) > MAX_TITLE:
            raise InvalidInput(f"A task's title is limited to {MAX_TITLE} characters; put the details in the description.")
        clean_description = str(description or "").strip()
        if len(clean_description) > MAX_DESCRIPTION:
            raise InvalidInput(f"A task's description is limited to {MAX_DESCRIPTION} characters; shorten it.")
        due_date = _coerce_due(due)
        with self._transaction():
            creator = self.user(created_by)
            _require(creator, WRITE, "create tasks")
            assignee = self.user(assignee_id)
            project = self.project(project_id)
            if not project.active:
                raise InactiveProject(
                    f"Project {project.name!r} is archived, so it takes no new tasks; choose an active project: "
                    f"{_listing(f'{p.id} ({p.name})' for p in self.active_projects())}."
                )
            now = self._now()
            task = Task(
                id=self._next_task_id(),
                title=clean_title,
                description=clean_description,
                project_id=project.id,
                assignee_id=assignee.id,
                due=due_date,
                status="todo",
                created_by=creator.id,
                created=now,
                updated=now,
            )
            self._insert_task(task)
        log.info("task %s created in %s for %s by %s", task.id, project.id, assignee.id, creator.id)
        return task

    def update_status(self, task_id: str, status: str, *, by: str) -> Task:
        """Set a task's status ("done", "in progress", ...) on behalf of user ``by``.

        ``by`` must hold ``tasks:write``.  Setting the status a task already has
        changes nothing and returns it as it is.
        """
        new_status = parse_status(status)
        with self._transaction():
            actor = self.user(by)
            _require(actor, WRITE, "change tasks")
            task = self.task(task_id)
            if task.status == new_status:
                return task
            updated = task.model_copy(update={"status": new_status, "updated": self._now()})
            self._update_task(updated)
        log.info("task %s set to %s by %s", task.id, new_status, actor.id)
        return updated


def _require(user: User, grant: str, doing: str) -> None:
    if not user.can(grant):
        raise PermissionDenied(
            f"{user.name} may not {doing} (missing the {grant!r} permission); ask a board admin to grant it."
        )


def _coerce_due(due: date | str | None) -> date | None:
    if due is None or isinstance(due, date):
        return due.date() if isinstance(due, datetime) else due
    text = str(due).strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{due!r} is not a date; pass a date or YYYY-MM-DD (parse phrases like 'Friday' with parse_due_date)."
        ) from None
