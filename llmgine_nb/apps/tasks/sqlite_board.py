"""A task board stored in SQLite through sqlite-utils.

Tables: ``users``, ``projects``, ``tasks``, ``platform_links`` and
``board_migrations`` (which schema steps have run).  Each write runs in one
transaction; a failed write rolls back and leaves the file as it was.

The connection is opened with ``check_same_thread=False`` and guarded by a
lock, because the notebook thread and the bus's background loop both use the
board.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any

from sqlite_utils import Database

from .board import Board, Project, Task, User

__all__ = ["SQLiteBoard"]

log = logging.getLogger("llmgine_nb.apps.tasks")


# -- schema migrations: plain functions, applied once each, recorded by name ----------


def _m001_initial(db: Database) -> None:
    db.table("users").create(
        {"id": str, "name": str, "email": str, "grants": str},
        pk="id",
        not_null={"name", "email", "grants"},
    )
    db.table("users").create_index(["email"], unique=True)
    db.table("projects").create({"id": str, "name": str, "active": int}, pk="id", not_null={"name", "active"})
    db.table("tasks").create(
        {
            "id": str,
            "seq": int,
            "title": str,
            "description": str,
            "project_id": str,
            "assignee_id": str,
            "due": str,
            "status": str,
            "created_by": str,
            "created": str,
            "updated": str,
        },
        pk="id",
        not_null={"seq", "title", "project_id", "assignee_id", "status", "created_by", "created", "updated"},
        foreign_keys=[
            ("project_id", "projects", "id"),
            ("assignee_id", "users", "id"),
            ("created_by", "users", "id"),
        ],
    )
    db.table("tasks").create_index(["seq"], unique=True)
    db.table("tasks").create_index(["assignee_id", "status"])
    db.table("tasks").create_index(["project_id"])
    db.table("platform_links").create(
        {"platform": str, "platform_user_id": str, "user_id": str, "linked": str},
        pk=("platform", "platform_user_id"),
        not_null={"user_id", "linked"},
        foreign_keys=[("user_id", "users", "id")],
    )


MIGRATIONS: list[Callable[[Database], None]] = [_m001_initial]


def _migrate(db: Database) -> None:
    with db.atomic():
        if "board_migrations" not in db.table_names():
            db.table("board_migrations").create({"name": str, "applied": str}, pk="name")
        done = {row["name"] for row in db["board_migrations"].rows}
        for step in MIGRATIONS:
            if step.__name__ not in done:
                step(db)
                db.table("board_migrations").insert(
                    {"name": step.__name__, "applied": datetime.now(timezone.utc).isoformat()}
                )
                log.info("task board schema: applied %s", step.__name__)


# -- rows <-> models -------------------------------------------------------------


def _user(row: dict[str, Any]) -> User:
    return User(id=row["id"], name=row["name"], email=row["email"], grants=frozenset(json.loads(row["grants"])))


def _project(row: dict[str, Any]) -> Project:
    return Project(id=row["id"], name=row["name"], active=bool(row["active"]))


def _task(row: dict[str, Any]) -> Task:
    return Task(
        id=row["id"],
        title=row["title"],
        description=row["description"] or "",
        project_id=row["project_id"],
        assignee_id=row["assignee_id"],
        due=date.fromisoformat(row["due"]) if row["due"] else None,
        status=row["status"],
        created_by=row["created_by"],
        created=datetime.fromisoformat(row["created"]),
        updated=datetime.fromisoformat(row["updated"]),
    )


def _task_row(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "seq": int(task.id.lstrip("T")),
        "title": task.title,
        "description": task.description,
        "project_id": task.project_id,
        "assignee_id": task.assignee_id,
        "due": task.due.isoformat() if task.due else None,
        "status": task.status,
        "created_by": task.created_by,
        "created": task.created.isoformat(),
        "updated": task.updated.isoformat(),
    }


class SQLiteBoard(Board):
    """A :class:`~.board.Board` in a SQLite file (or ``":memory:"``).

    ``path_or_db`` is a file path, ``":memory:"``, or an existing
    ``sqlite_utils.Database`` to share (its connection should allow use from
    other threads).  ``clock`` returns the current UTC time; pass a fixed one
    for reproducible notebooks and tests.
    """

    def __init__(
        self,
        path_or_db: str | os.PathLike[str] | Database = ":memory:",
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if isinstance(path_or_db, Database):
            self.db = path_or_db
        else:
            conn = sqlite3.connect(os.fspath(path_or_db), check_same_thread=False)
            self.db = Database(conn)
        self._clock = clock
        self._lock = threading.RLock()
        self.db.execute("PRAGMA foreign_keys = ON")
        _migrate(self.db)

    def __repr__(self) -> str:
        return f"SQLiteBoard({self.db.conn!r})"

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self.db.close()

    def __enter__(self) -> SQLiteBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing -------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock, self.db.atomic():
            yield

    def _now(self) -> datetime:
        return self._clock() if self._clock else datetime.now(timezone.utc)

    def _rows(self, sql: str, params: tuple | list = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))

    # ---- reads --------------------------------------------------------------------

    def users(self) -> list[User]:
        return [_user(r) for r in self._rows("select * from users order by name, id")]

    def projects(self) -> list[Project]:
        return [_project(r) for r in self._rows("select * from projects order by name, id")]

    def _find_user(self, user_id: str) -> User | None:
        rows = self._rows("select * from users where id = ?", (user_id,))
        return _user(rows[0]) if rows else None

    def _find_user_by_email(self, email: str) -> User | None:
        rows = self._rows("select * from users where email = ?", (email,))
        return _user(rows[0]) if rows else None

    def _find_project(self, project_id: str) -> Project | None:
        rows = self._rows("select * from projects where id = ?", (project_id,))
        return _project(rows[0]) if rows else None

    def _find_task(self, task_id: str) -> Task | None:
        rows = self._rows("select * from tasks where id = ?", (task_id,))
        return _task(rows[0]) if rows else None

    def _query_tasks(
        self, assignee_id: str | None, project_id: str | None, statuses: frozenset[str] | None
    ) -> list[Task]:
        where: list[str] = []
        params: list[Any] = []
        if assignee_id is not None:
            where.append("assignee_id = ?")
            params.append(assignee_id)
        if project_id is not None:
            where.append("project_id = ?")
            params.append(project_id)
        if statuses is not None:
            if not statuses:
                return []
            where.append(f"status in ({', '.join('?' for _ in statuses)})")
            params.extend(sorted(statuses))
        sql = "select * from tasks"
        if where:
            sql += " where " + " and ".join(where)
        sql += " order by due is null, due, seq"  # soonest due first, undated last
        return [_task(r) for r in self._rows(sql, params)]

    def _find_link(self, platform: str, platform_user_id: str) -> str | None:
        rows = self._rows(
            "select user_id from platform_links where platform = ? and platform_user_id = ?",
            (platform, platform_user_id),
        )
        return rows[0]["user_id"] if rows else None

    # ---- writes (always called inside _transaction) --------------------------------------

    def _save_link(self, platform: str, platform_user_id: str, user_id: str) -> None:
        self.db.table("platform_links").insert(
            {
                "platform": platform,
                "platform_user_id": platform_user_id,
                "user_id": user_id,
                "linked": self._now().isoformat(),
            }
        )

    def _delete_link(self, platform: str, platform_user_id: str) -> None:
        self.db.execute(
            "delete from platform_links where platform = ? and platform_user_id = ?", (platform, platform_user_id)
        )

    def _insert_user(self, user: User) -> None:
        self.db.table("users").insert(
            {"id": user.id, "name": user.name, "email": user.email, "grants": json.dumps(sorted(user.grants))}
        )

    def _insert_project(self, project: Project) -> None:
        self.db.table("projects").insert({"id": project.id, "name": project.name, "active": int(project.active)})

    def _update_project(self, project: Project) -> None:
        self.db.table("projects").update(project.id, {"name": project.name, "active": int(project.active)})

    def _next_task_id(self) -> str:
        (last,) = self.db.execute("select coalesce(max(seq), 0) from tasks").fetchone()
        return f"T{last + 1}"

    def _insert_task(self, task: Task) -> None:
        self.db.table("tasks").insert(_task_row(task))

    def _update_task(self, task: Task) -> None:
        row = _task_row(task)
        del row["id"]
        self.db.table("tasks").update(task.id, row)
