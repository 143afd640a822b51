"""A small, realistic demo organisation for tutorials, tests and trying things out.

A student club: six people (Riley can only read), four projects ("Finance"
and "Finance Ops" are easy to confuse; "Website Relaunch" is archived) and
twelve tasks, several of them about recruitment so that "I've finished the
recruitment stuff" needs a "do you mean ...?".
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone

from .board import READ, WRITE, AlreadyExists, Board
from .sqlite_board import SQLiteBoard

__all__ = ["seed_demo_board", "demo_board", "DEMO_USERS", "DEMO_PROJECTS", "DEMO_TASKS", "DEMO_LINKS"]

log = logging.getLogger("llmgine_nb.apps.tasks")

# (id, name, email, grants)
DEMO_USERS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("mei", "Mei Chen", "mei@example.org", (READ, WRITE)),
    ("sam", "Sam Carter", "sam@example.org", (READ, WRITE)),
    ("priya", "Priya Natarajan", "priya@example.org", (READ, WRITE)),
    ("alex", "Alex Morgan", "alex@example.org", (READ, WRITE)),
    ("jordan", "Jordan Lee", "jordan@example.org", (READ, WRITE)),
    ("riley", "Riley Brooks", "riley@example.org", (READ,)),  # read only: writes are refused
]

# (id, name, active)
DEMO_PROJECTS: list[tuple[str, str, bool]] = [
    ("recruitment", "Recruitment", True),
    ("finance", "Finance", True),
    ("finance-ops", "Finance Ops", True),
    ("website", "Website Relaunch", False),
]

# (title, project, assignee, due in days from today or None, status, description)
DEMO_TASKS: list[tuple[str, str, str, int | None, str, str]] = [
    ("Send out recruitment forms", "recruitment", "sam", 2, "todo", "Email the sign-up form to every first-year mailing list."),
    ("Review recruitment form responses", "recruitment", "sam", 9, "todo", "Shortlist applicants from the form responses."),
    ("Book rooms for recruitment interviews", "recruitment", "sam", 5, "in_progress", "Two rooms, Tuesday and Thursday afternoons."),
    ("Draft recruitment email to new members", "recruitment", "jordan", 3, "todo", ""),
    ("Print recruitment flyers", "recruitment", "jordan", -2, "done", "200 copies, A5."),
    ("Schedule the interview panel", "recruitment", "mei", 6, "todo", "Find three panellists for each interview day."),
    ("Prepare Q3 budget review", "finance", "priya", 4, "in_progress", "Compare spending against the semester budget."),
    ("Reconcile club bank statements", "finance", "priya", 7, "todo", ""),
    ("Submit sponsorship grant application", "finance", "mei", 12, "todo", "Student union grant, round two."),
    ("Process reimbursement claims", "finance-ops", "alex", 1, "todo", "Claims from the welcome-week barbecue."),
    ("Update the expense policy", "finance-ops", "alex", 14, "in_progress", ""),
    ("Migrate old blog posts", "website", "alex", None, "done", "Moved to the new site before it was paused."),
]

# Platform ids already verified; everyone else is asked for their email first.
DEMO_LINKS: list[tuple[str, str, str]] = [
    ("discord", "1001", "sam@example.org"),
    ("discord", "1002", "mei@example.org"),
]

_CREATOR = "mei"


def seed_demo_board(board: Board, *, today: date | None = None) -> None:
    """Fill an empty ``board`` with the demo organisation; due dates count from ``today``.

    Raises :class:`~.board.AlreadyExists` if the board already has users, so a
    real board is never mixed with demo data.
    """
    today = today or date.today()
    if board.users():
        raise AlreadyExists(
            "This board already has users; seed the demo only into an empty board, "
            "for example demo_board() or SQLiteBoard(':memory:')."
        )
    for user_id, name, email, grants in DEMO_USERS:
        board.add_user(name, email, grants=grants, id=user_id)
    for project_id, name, _active in DEMO_PROJECTS:
        # Projects start active so their tasks can be created, then archived below.
        board.add_project(name, id=project_id)
    for title, project_id, assignee_id, due_in, status, description in DEMO_TASKS:
        task = board.create_task(
            title,
            project_id=project_id,
            assignee_id=assignee_id,
            created_by=_CREATOR,
            due=today + timedelta(days=due_in) if due_in is not None else None,
            description=description,
        )
        if status != "todo":
            board.update_status(task.id, status, by=_CREATOR)
    for project_id, _name, active in DEMO_PROJECTS:
        if not active:
            board.set_project_active(project_id, False)
    for platform, platform_user_id, email in DEMO_LINKS:
        board.link_platform(platform, platform_user_id, email)
    log.info("seeded the demo board: %d users, %d projects, %d tasks", len(DEMO_USERS), len(DEMO_PROJECTS), len(DEMO_TASKS))


def demo_board(*, today: date | None = None, path: str = ":memory:") -> SQLiteBoard:
    """A new :class:`SQLiteBoard` seeded with the demo organisation.

    With ``today`` given, the board's clock is fixed at 09:00 UTC that day, so
    everything it records (and every notebook output) is reproducible.
    """
    clock = None
    if today is not None:
        fixed = datetime.combine(today, time(9, 0), tzinfo=timezone.utc)
        clock = lambda: fixed  # noqa: E731 - a constant clock
    board = SQLiteBoard(path, clock=clock)
    seed_demo_board(board, today=today)
    return board
