"""The task assistant's board: SQLite storage, domain rules, matching, due dates, the demo org."""

from __future__ import annotations

import sqlite3
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlite_utils import Database

from llmgine_nb.apps.tasks import (
    READ,
    WRITE,
    AlreadyExists,
    AlreadyLinked,
    BoardError,
    DateParseError,
    InactiveProject,
    InvalidInput,
    PermissionDenied,
    SQLiteBoard,
    UnknownProject,
    UnknownTask,
    UnknownUser,
    demo_board,
    describe_date,
    format_choices,
    format_tasks,
    match_projects,
    match_tasks,
    match_users,
    parse_due_date,
    parse_status,
    seed_demo_board,
)
from llmgine_nb.apps.tasks.board import Project, Task, User

WEDNESDAY = date(2026, 5, 6)
T0 = datetime(2026, 5, 6, 9, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand, so timestamps are exact."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "board.db"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def board(path, clock):
    """A small board in a real file: a writer, a reader, two projects (one archived)."""
    b = SQLiteBoard(path, clock=clock)
    b.add_user("Sam Carter", "sam@example.org", grants=[READ, WRITE], id="sam")
    b.add_user("Riley Brooks", "riley@example.org", id="riley")  # read only (the default)
    b.add_project("Finance", id="finance")
    b.add_project("Old Website", id="website", active=False)
    yield b
    b.close()


def snapshot(path) -> list[str]:
    """Everything committed to the file, read through a separate connection."""
    conn = sqlite3.connect(str(path))
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


# -- users and projects ------------------------------------------------------------------


def test_users_are_added_and_found_by_id_and_email(board):
    assert [u.id for u in board.users()] == ["riley", "sam"]  # ordered by name
    sam = board.user("sam")
    assert sam == User(id="sam", name="Sam Carter", email="sam@example.org", grants=frozenset({READ, WRITE}))
    assert sam.can(WRITE) and not board.user("riley").can(WRITE)
    assert board.user_by_email("  SAM@Example.ORG ") == sam
    assert sam.first_name == "Sam"


def test_add_user_makes_an_id_from_the_name_and_never_reuses_one(board):
    first = board.add_user("Jordan Lee", "jordan@example.org")
    second = board.add_user("Jordan Lee", "jordan.lee@example.org")
    assert (first.id, second.id) == ("jordan-lee", "jordan-lee-2")
    assert first.grants == frozenset({READ})


def test_projects_active_and_archived(board):
    assert [p.id for p in board.projects()] == ["finance", "website"]
    assert board.active_projects() == [Project(id="finance", name="Finance", active=True)]
    assert board.project("website").active is False
    reopened = board.set_project_active("website", True)
    assert reopened.active and board.project("website").active
    board.set_project_active("finance", False)
    assert [p.id for p in board.active_projects()] == ["website"]


def test_unknown_user_and_project_errors_name_what_exists(board):
    with pytest.raises(UnknownUser, match=r"no user with id 'nobody'.*sam \(Sam Carter\)"):
        board.user("nobody")
    with pytest.raises(UnknownUser, match="check the spelling"):
        board.user_by_email("ghost@example.org")
    with pytest.raises(UnknownProject, match=r"no project with id 'nope'.*finance \(Finance\)"):
        board.project("nope")
    with pytest.raises(InvalidInput, match="not an email address"):
        board.user_by_email("sam")


# -- tasks ----------------------------------------------------------------------------------------


def test_create_task_stores_every_field(board, clock):
    task = board.create_task(
        "  Budget   review ",
        project_id="finance",
        assignee_id="sam",
        created_by="sam",
        due=date(2026, 5, 8),
        description="Q3 numbers",
    )
    assert task == Task(
        id="T1",
        title="Budget review",
        description="Q3 numbers",
        project_id="finance",
        assignee_id="sam",
        due=date(2026, 5, 8),
        status="todo",
        created_by="sam",
        created=T0,
        updated=T0,
    )
    assert board.task("T1") == task
    assert board.create_task("Second", project_id="finance", assignee_id="riley", created_by="sam").id == "T2"
    assert board.task("T2").due is None


def test_due_accepts_iso_text_and_rejects_phrases(board):
    task = board.create_task("A", project_id="finance", assignee_id="sam", created_by="sam", due="2026-12-01")
    assert task.due == date(2026, 12, 1)
    with pytest.raises(InvalidInput, match="parse_due_date"):
        board.create_task("B", project_id="finance", assignee_id="sam", created_by="sam", due="Friday")


def test_tasks_filter_by_assignee_project_and_status(board, clock):
    board.add_project("Recruitment", id="recruitment")
    make = lambda title, **kw: board.create_task(title, created_by="sam", **kw)  # noqa: E731
    a = make("A", project_id="finance", assignee_id="sam", due=date(2026, 5, 20))
    b = make("B", project_id="recruitment", assignee_id="sam", due=date(2026, 5, 10))
    c = make("C", project_id="recruitment", assignee_id="riley")
    d = make("D", project_id="finance", assignee_id="sam", due=date(2026, 5, 9))
    board.update_status(d.id, "done", by="sam")
    board.update_status(b.id, "in progress", by="sam")

    ids = lambda tasks: [t.id for t in tasks]  # noqa: E731
    assert ids(board.tasks()) == [d.id, b.id, a.id, c.id]  # soonest due first, undated last
    assert ids(board.tasks(assignee_id="sam")) == [d.id, b.id, a.id]
    assert ids(board.tasks(project_id="recruitment")) == [b.id, c.id]
    assert ids(board.tasks(assignee_id="sam", project_id="finance")) == [d.id, a.id]
    assert ids(board.tasks(status="done")) == [d.id]
    assert ids(board.tasks(status=["todo", "in_progress"])) == [b.id, a.id, c.id]
    assert ids(board.active_tasks("sam")) == [b.id, a.id]
    assert board.tasks(status=[]) == []
    with pytest.raises(UnknownUser):
        board.tasks(assignee_id="ghost")
    with pytest.raises(UnknownProject):
        board.tasks(project_id="ghost")
    with pytest.raises(InvalidInput, match="not a task status"):
        board.tasks(status="someday")


def test_update_status_records_the_change_and_its_time(board, clock):
    task = board.create_task("Budget review", project_id="finance", assignee_id="sam", created_by="sam")
    clock.advance(hours=2)
    done = board.update_status(task.id, "Finished", by="sam")
    assert (done.status, done.created, done.updated) == ("done", T0, T0 + timedelta(hours=2))
    assert board.task(task.id) == done
    clock.advance(hours=1)
    assert board.update_status(task.id, "done", by="sam") == done  # same status: nothing changes
    assert board.task(task.id).updated == T0 + timedelta(hours=2)


def test_parse_status_understands_how_people_say_it():
    assert {parse_status(s) for s in ["done", "Completed", "finished"]} == {"done"}
    assert {parse_status(s) for s in ["in progress", "IN_PROGRESS", "doing", "started"]} == {"in_progress"}
    assert {parse_status(s) for s in ["todo", "to do", "Open"]} == {"todo"}
    with pytest.raises(InvalidInput, match="use one of: todo, in progress, done"):
        parse_status("blocked")


# -- bad input writes nothing ---------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, hint",
    [
        (lambda b: b.create_task("X", project_id="finance", assignee_id="ghost", created_by="sam"), UnknownUser, "ghost"),
        (lambda b: b.create_task("X", project_id="finance", assignee_id="sam", created_by="ghost"), UnknownUser, "ghost"),
        (lambda b: b.create_task("X", project_id="nope", assignee_id="sam", created_by="sam"), UnknownProject, "finance"),
        (lambda b: b.create_task("X", project_id="website", assignee_id="sam", created_by="sam"), InactiveProject, "archived"),
        (lambda b: b.create_task("X", project_id="finance", assignee_id="sam", created_by="riley"), PermissionDenied, "tasks:write"),
        (lambda b: b.create_task("   ", project_id="finance", assignee_id="sam", created_by="sam"), InvalidInput, "title cannot be empty"),
        (lambda b: b.create_task("x" * 201, project_id="finance", assignee_id="sam", created_by="sam"), InvalidInput, "200 characters"),
        (lambda b: b.create_task("X", project_id="finance", assignee_id="sam", created_by="sam", due="soon"), InvalidInput, "not a date"),
        (lambda b: b.update_status("T1", "done", by="riley"), PermissionDenied, "ask a board admin"),
        (lambda b: b.update_status("T99", "done", by="sam"), UnknownTask, "T99"),
        (lambda b: b.update_status("T1", "someday", by="sam"), InvalidInput, "not a task status"),
        (lambda b: b.update_status("T1", "done", by="ghost"), UnknownUser, "ghost"),
        (lambda b: b.link_platform("discord", "42", "ghost@example.org"), UnknownUser, "check the spelling"),
        (lambda b: b.link_platform("discord", "42", "not-an-email"), InvalidInput, "not an email"),
        (lambda b: b.link_platform("discord", "7", "riley@example.org"), AlreadyLinked, "unlink it first"),
        (lambda b: b.link_platform("", "7", "riley@example.org"), InvalidInput, "platform name"),
        (lambda b: b.add_user("Imposter", "SAM@example.org"), AlreadyExists, "already on the board as Sam Carter"),
        (lambda b: b.add_user("Sam Two", "sam2@example.org", id="sam"), AlreadyExists, "already taken"),
        (lambda b: b.add_project("Finance again", id="finance"), AlreadyExists, "already taken"),
        (lambda b: b.set_project_active("nope", True), UnknownProject, "active projects are"),
    ],
)
def test_bad_input_raises_a_clear_error_and_writes_nothing(board, path, call, error, hint):
    board.create_task("Existing", project_id="finance", assignee_id="sam", created_by="sam")
    board.link_platform("discord", "7", "sam@example.org")
    before = snapshot(path)
    with pytest.raises(error, match=hint) as raised:
        call(board)
    assert isinstance(raised.value, BoardError)
    assert snapshot(path) == before


def test_a_failure_after_validation_rolls_the_whole_write_back(path):
    """The transaction, not only the validation, keeps a failed write out of the file."""

    class FailingAfterInsert(SQLiteBoard):
        def _insert_task(self, task):
            super()._insert_task(task)
            raise RuntimeError("disk full")

    board = FailingAfterInsert(path)
    board.add_user("Sam Carter", "sam@example.org", grants=[READ, WRITE], id="sam")
    board.add_project("Finance", id="finance")
    before = snapshot(path)
    with pytest.raises(RuntimeError, match="disk full"):
        board.create_task("Lost", project_id="finance", assignee_id="sam", created_by="sam")
    assert snapshot(path) == before
    assert board.tasks() == []
    board.close()


# -- platform links (user verification) --------------------------------------------------------


def test_unknown_platform_user_is_verified_by_email_and_remembered_across_reopen(board, path, clock):
    assert board.user_for_platform("Discord", "4242") is None  # unknown: ask for their email
    linked = board.link_platform("Discord", "4242", " Sam@Example.org ")
    assert linked.id == "sam"
    assert board.user_for_platform("discord", "4242") == linked  # platform names ignore case
    assert board.link_platform("discord", "4242", "sam@example.org") == linked  # linking again is harmless
    task = board.create_task("Budget review", project_id="finance", assignee_id="sam", created_by="sam")
    board.close()

    reopened = SQLiteBoard(path, clock=clock)
    assert reopened.user_for_platform("discord", "4242") == linked
    assert reopened.user_for_platform("slack", "4242") is None  # links are per platform
    assert reopened.task(task.id) == task
    assert reopened.create_task("Next", project_id="finance", assignee_id="sam", created_by="sam").id == "T2"
    assert [r["name"] for r in reopened.db["board_migrations"].rows] == ["_m001_initial"]
    reopened.unlink_platform("discord", "4242")
    assert reopened.user_for_platform("discord", "4242") is None
    reopened.close()


def test_one_user_may_be_linked_from_several_platforms(board):
    board.link_platform("discord", "1", "sam@example.org")
    board.link_platform("slack", "U1", "sam@example.org")
    assert board.user_for_platform("discord", "1") == board.user_for_platform("slack", "U1") == board.user("sam")


# -- storage variants and threads -----------------------------------------------------------------


def test_in_memory_and_shared_database_boards():
    memory = SQLiteBoard(":memory:")
    memory.add_user("Sam Carter", "sam@example.org")
    assert [u.id for u in memory.users()] == ["sam-carter"]

    db = Database(sqlite3.connect(":memory:", check_same_thread=False))
    db["other_app_table"].insert({"x": 1})
    shared = SQLiteBoard(db)
    shared.add_project("Finance")
    assert {"other_app_table", "projects", "tasks", "users", "platform_links"} <= set(db.table_names())
    assert db["projects"].count == 1


def test_a_board_is_usable_from_other_threads(path):
    """The bus's background loop runs in another thread than the notebook that made the board."""
    board = SQLiteBoard(path)
    board.add_user("Sam Carter", "sam@example.org", grants=[READ, WRITE], id="sam")
    board.add_project("Finance", id="finance")
    errors: list[BaseException] = []

    def create(n: int) -> None:
        try:
            for i in range(10):
                board.create_task(f"Task {n}-{i}", project_id="finance", assignee_id="sam", created_by="sam")
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = [t.id for t in board.tasks()]
    assert len(ids) == len(set(ids)) == 40
    assert sorted(int(i[1:]) for i in ids) == list(range(1, 41))
    board.close()


# -- matching -----------------------------------------------------------------------------------------


PROJECTS = [
    Project(id="recruitment", name="Recruitment"),
    Project(id="finance", name="Finance"),
    Project(id="finance-ops", name="Finance Ops"),
]


def names(candidates):
    return [getattr(c.item, "name", None) or c.item.title for c in candidates]


def test_project_matching_clear_ambiguous_and_none():
    assert names(match_projects("Finance", PROJECTS)) == ["Finance"]  # exact beats "Finance Ops"
    assert names(match_projects("finance ops", PROJECTS)) == ["Finance Ops"]
    assert names(match_projects("ops", PROJECTS)) == ["Finance Ops"]
    assert names(match_projects("Recruitmnet", PROJECTS)) == ["Recruitment"]  # a typo
    assert names(match_projects("recruiting", PROJECTS)) == ["Recruitment"]
    fin = match_projects("Fin", PROJECTS)
    assert names(fin) == ["Finance", "Finance Ops"]  # ambiguous: ask which
    assert fin[0].score > fin[1].score
    assert match_projects("Marketing", PROJECTS) == []
    assert match_projects("website", PROJECTS) == []


def test_user_matching_by_first_name_possessive_full_name_and_email():
    users = [
        User(id="sam", name="Sam Carter", email="sam@example.org"),
        User(id="priya", name="Priya Natarajan", email="priya@example.org"),
        User(id="alex", name="Alex Morgan", email="alex@example.org"),
        User(id="alexis", name="Alexis Wong", email="awong@example.org"),
    ]
    assert names(match_users("Sam's", users)) == ["Sam Carter"]
    assert names(match_users("priya natarajan", users)) == ["Priya Natarajan"]
    assert names(match_users("AWONG@example.org", users)) == ["Alexis Wong"]
    assert names(match_users("Alex", users)) == ["Alex Morgan"]  # a whole first name beats a prefix
    assert names(match_users("Al", users)) == ["Alex Morgan", "Alexis Wong"]
    assert match_users("Zed", users) == []
    # Two Sams: Sam Carter's id being "sam" must not hide Sam Lee.
    two_sams = users + [User(id="sam-lee", name="Sam Lee", email="slee@example.org")]
    assert set(names(match_users("Sam", two_sams))) == {"Sam Carter", "Sam Lee"}


def _task(id: str, title: str, description: str = "") -> Task:
    return Task(
        id=id, title=title, description=description, project_id="p", assignee_id="u", created_by="u", created=T0, updated=T0
    )


SAMS_TASKS = [
    _task("T1", "Send out recruitment forms"),
    _task("T2", "Review recruitment form responses"),
    _task("T3", "Book rooms for recruitment interviews"),
    _task("T4", "Reconcile club bank statements"),
]


def test_task_matching_clear_ambiguous_and_none():
    clear = match_tasks("I've just finished sending out the recruitment forms", SAMS_TASKS)
    assert names(clear) == ["Send out recruitment forms"] and clear[0].score > 0.9

    forms = match_tasks("recruitment forms", SAMS_TASKS)
    assert names(forms)[0] == "Send out recruitment forms" and forms[0].score >= 0.75

    vague = match_tasks("I finished the recruitment stuff", SAMS_TASKS)
    assert set(names(vague)) == {"Send out recruitment forms", "Review recruitment form responses", "Book rooms for recruitment interviews"}

    assert names(match_tasks("booked the interview rooms", SAMS_TASKS)) == ["Book rooms for recruitment interviews"]
    assert names(match_tasks("reconciled the bank statement", SAMS_TASKS)) == ["Reconcile club bank statements"]
    assert names(match_tasks("done with t4", SAMS_TASKS)) == ["Reconcile club bank statements"]  # by id
    assert match_tasks("paid the caterer", SAMS_TASKS) == []
    assert match_tasks("I've finished", SAMS_TASKS) == []  # only status words: nothing to go on


def test_task_descriptions_help_a_little():
    tasks = [_task("T1", "Sort out the venue", "Book the hall for the gala dinner"), _task("T2", "Sort out the speakers")]
    assert names(match_tasks("sorted the gala venue", tasks)) == ["Sort out the venue"]


def test_matching_an_empty_reference_is_an_error():
    with pytest.raises(InvalidInput, match="Say which project"):
        match_projects("  ", PROJECTS)
    with pytest.raises(InvalidInput, match="Say which task"):
        match_tasks("?!", SAMS_TASKS)


def test_format_choices_reads_like_the_question_to_ask():
    assert format_choices(match_tasks("I finished the recruitment stuff", SAMS_TASKS)).startswith("Do you mean 1) ")
    assert format_choices(match_projects("Fin", PROJECTS)) == "Do you mean 1) Finance or 2) Finance Ops?"
    assert format_choices(match_projects("Finance", PROJECTS)) == "Do you mean Finance?"
    with pytest.raises(ValueError, match="nothing matched"):
        format_choices([])


# -- due dates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("today", WEDNESDAY),
        ("tomorrow", date(2026, 5, 7)),
        ("Friday", date(2026, 5, 8)),
        ("this fri", date(2026, 5, 8)),
        ("due by Friday.", date(2026, 5, 8)),
        ("next Friday", date(2026, 5, 15)),
        ("friday next week", date(2026, 5, 15)),
        ("Wednesday", WEDNESDAY),  # today is Wednesday: the coming one is today
        ("next wednesday", date(2026, 5, 13)),
        ("Monday", date(2026, 5, 11)),
        ("in 3 days", date(2026, 5, 9)),
        ("in a week", date(2026, 5, 13)),
        ("in two weeks", date(2026, 5, 20)),
        ("2026-12-01", date(2026, 12, 1)),
        ("Dec 1", date(2026, 12, 1)),
        ("1st of December", date(2026, 12, 1)),
        ("December 1, 2027", date(2027, 12, 1)),
        ("May 5", date(2027, 5, 5)),  # already past this year: next year's
        ("Feb 29", date(2028, 2, 29)),  # the next leap day
    ],
)
def test_parse_due_date(text, expected):
    assert parse_due_date(text, today=WEDNESDAY) == expected


@pytest.mark.parametrize(
    "text, hint",
    [
        ("soonish", "Could not understand the due date 'soonish'. Try 'Friday'"),
        ("", "empty"),
        ("1/12", "ambiguous"),
        ("Feb 30", "Feb has no day 30"),
        ("2026-02-30", "not a real date"),
        ("next fortnight", "Could not understand"),
    ],
)
def test_unparseable_due_dates_say_what_to_write(text, hint):
    with pytest.raises(DateParseError, match=hint):
        parse_due_date(text, today=WEDNESDAY)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)), st.sampled_from(range(7)))
def test_weekday_phrases_land_on_that_weekday_in_the_right_week(today, weekday):
    name = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][weekday]
    coming = parse_due_date(name, today=today)
    following = parse_due_date(f"next {name}", today=today)
    assert coming.weekday() == following.weekday() == weekday
    assert 0 <= (coming - today).days <= 6
    next_monday = today + timedelta(days=7 - today.weekday())
    assert next_monday <= following < next_monday + timedelta(days=7)
    assert parse_due_date(today.isoformat(), today=WEDNESDAY) == today


def test_describe_date_is_locale_independent():
    assert describe_date(date(2026, 5, 8)) == "Fri 8 May 2026"


# -- the demo organisation and the four flows on it ------------------------------------------------------------


def test_demo_board_has_the_shape_the_flows_need(tmp_path):
    board = SQLiteBoard(tmp_path / "demo.db")
    seed_demo_board(board, today=WEDNESDAY)
    assert len(board.users()) == 6
    assert [u.name for u in board.users() if not u.can(WRITE)] == ["Riley Brooks"]
    assert len(board.projects()) == 4
    assert [p.name for p in board.projects() if not p.active] == ["Website Relaunch"]
    assert names(match_projects("Fin", board.active_projects())) == ["Finance", "Finance Ops"]
    assert len(board.tasks()) == 12
    assert len([t for t in board.tasks() if "recruitment" in t.title.lower()]) >= 4
    assert board.user_for_platform("discord", "1001").name == "Sam Carter"
    with pytest.raises(AlreadyExists, match="empty board"):
        seed_demo_board(board, today=WEDNESDAY)
    board.close()


def test_demo_board_is_reproducible_for_a_given_day():
    one, two = demo_board(today=WEDNESDAY), demo_board(today=WEDNESDAY)
    assert one.tasks() == two.tasks()
    assert format_tasks(one.tasks(assignee_id="sam"), one) == (
        "1. T1 Send out recruitment forms - Sam Carter - Recruitment - due Fri 8 May 2026 - to do\n"
        "2. T3 Book rooms for recruitment interviews - Sam Carter - Recruitment - due Mon 11 May 2026 - in progress\n"
        "3. T2 Review recruitment form responses - Sam Carter - Recruitment - due Fri 15 May 2026 - to do"
    )
    assert format_tasks([], one) == "No tasks found."


def test_the_four_flows_end_to_end_on_the_demo_board(tmp_path):
    path = tmp_path / "darcy.db"
    board = SQLiteBoard(path)
    seed_demo_board(board, today=WEDNESDAY)

    # 1. Verification: an unknown chat user gives their email, which is remembered.
    assert board.user_for_platform("discord", "2002") is None
    with pytest.raises(UnknownUser):
        board.link_platform("discord", "2002", "priya@exmaple.org")  # a typo: nothing remembered
    assert board.user_for_platform("discord", "2002") is None
    priya = board.link_platform("discord", "2002", "priya@example.org")

    # 2. View: "show me Sam's tasks in Recruitment".
    (sam,) = [c.item for c in match_users("Sam's", board.users())]
    (recruitment,) = [c.item for c in match_projects("Recruitment", board.active_projects())]
    shown = board.tasks(assignee_id=sam.id, project_id=recruitment.id)
    assert [t.title for t in shown] == [
        "Send out recruitment forms",
        "Book rooms for recruitment interviews",
        "Review recruitment form responses",
    ]

    # 3. Assign: "assign the budget review to Sam due Friday in Finance" (after the user confirms).
    (finance,) = [c.item for c in match_projects("Finance", board.active_projects())]
    due = parse_due_date("Friday", today=WEDNESDAY)
    created = board.create_task("Budget review", project_id=finance.id, assignee_id=sam.id, created_by=priya.id, due=due)
    assert (created.project_id, created.due) == ("finance", date(2026, 5, 8))
    # Riley cannot assign: nothing is written.
    before = snapshot(path)
    riley = board.user_for_platform("discord", "2003") or board.link_platform("discord", "2003", "riley@example.org")
    after_link = snapshot(path)
    assert after_link != before  # the link itself is remembered
    with pytest.raises(PermissionDenied):
        board.create_task("Budget review", project_id=finance.id, assignee_id=sam.id, created_by=riley.id, due=due)
    assert snapshot(path) == after_link

    # 4. Update: "I've just finished sending out the recruitment forms".
    sams = board.active_tasks(sam.id)
    options = match_tasks("I finished the recruitment stuff", sams)
    assert len(options) == 3  # "Do you mean 1) X, 2) Y or 3) Z?"
    chosen = match_tasks("I've just finished sending out the recruitment forms", sams)
    assert len(chosen) == 1
    board.update_status(chosen[0].item.id, "done", by=sam.id)
    board.close()

    reopened = SQLiteBoard(path)
    assert reopened.task(chosen[0].item.id).status == "done"
    assert reopened.user_for_platform("discord", "2002") == priya
    assert "Send out recruitment forms" not in [t.title for t in reopened.active_tasks("sam")]
    reopened.close()
