"""The task board as tools a model may call: the seed design's "Darcy" functions.

    tools = TaskTools(board, platform="discord", today=date(2026, 5, 6))
    manager = ToolManager(bus=bus)
    tools.register(manager)          # whoami, verify_user, list_projects, find_tasks, create_task, complete_task

Who is calling comes from the tool context, never from the model: ``ctx.user``
is the board user id the session was given (``ToolManager.set_access``) and
``ctx.state["platform_user_id"]`` the chat platform's id that
``verify_user`` links.  A model cannot act as someone else by saying so.

Every write is verified before it touches the board: the tool manager
validates the arguments and checks the ``tasks:write`` grant; then

- ``create_task`` resolves the names (project, assignee, due date).  When
  they resolve to exactly one assignment, the manager asks for approval with
  the sentence "I'm going to assign ... - confirm?" (a ``RequestApproval``)
  and only an approved call is created.  An ambiguous name is settled first
  by a "did you mean" choice; the call is then made again with the chosen
  id, so that what is confirmed is always the whole, resolved assignment.
- ``complete_task`` matches the statement against the user's active tasks
  and asks "Do you mean 1) X, 2) Y or 3) Z?" (or "Do you mean X?" when one
  task fits); the user's pick is the confirmation, as in the seed's update
  flow, and only the picked task is marked done.

Errors come back as sentences the model can act on (unknown names list the
known ones; an archived project says which are active).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from ...tools import Tool, ToolContext, ToolError, ToolManager, ToolOutput, tool
from .board import (
    ACTIVE_STATUSES,
    READ,
    WRITE,
    Board,
    BoardError,
    InvalidInput,
    Project,
    Task,
    UnknownUser,
    User,
    parse_status,
)
from .dates import DateParseError, describe_date, parse_due_date
from .events import TaskCompleted, TaskCreated, UserVerified
from .formatting import format_tasks
from .matching import Candidate, match_projects, match_tasks, match_users

__all__ = ["TaskTools", "Assignment", "NOT_VERIFIED"]

log = logging.getLogger("llmgine_nb.apps.tasks")

T = TypeVar("T")

# Words that mean "the person I am talking to" when naming an assignee.
_ME = frozenset({"me", "myself", "i", "self"})
_TASK_ID = re.compile(r"\bT\d+\b", re.IGNORECASE)
# How many vetted call ids to remember (only calls waiting for approval are in it).
_VETTED_LIMIT = 256

NOT_VERIFIED = (
    "This {account} ({platform_user_id}) is not verified yet. Ask them for the email they use on the "
    "task board, then call verify_user with it."
)

#: How replies name a platform to people (``discord`` is the id the code and the board keep).
PLATFORM_NAMES = {"discord": "Discord"}


def account_name(platform: str) -> str:
    """``Discord account``: the chat identity a reply speaks of (never "discord user")."""
    return f"{PLATFORM_NAMES.get(platform, platform)} account"


@dataclass(frozen=True)
class Assignment:
    """A ``create_task`` call with every name resolved: what the user confirms."""

    title: str
    assignee: User
    project: Project
    due: date | None
    description: str = ""

    def sentence(self, actor_id: str | None = None) -> str:
        """``I'm going to assign 'Budget review' to Sam Carter due Fri 8 May 2026 in Finance - confirm?``"""
        who = "you" if actor_id is not None and self.assignee.id == actor_id else self.assignee.name
        when = f"due {describe_date(self.due)}" if self.due else "with no due date"
        return f"I'm going to assign '{self.title}' to {who} {when} in {self.project.name} - confirm?"


class _Ambiguous(Exception, Generic[T]):
    """A name fits several items: ask the user which one."""

    def __init__(self, kind: str, argument: str, query: str, candidates: Sequence[Candidate[T]]) -> None:
        super().__init__(f"{query!r} could be several {kind}s")
        self.kind = kind  # "project" or "person"
        self.argument = argument  # which create_task/find_tasks argument it was
        self.query = query
        self.candidates = list(candidates)

    def options(self) -> list[str]:
        return _labels([c.item for c in self.candidates])

    def question(self) -> str:
        return _choice_question(self.options(), lead=f"By {self.query!r}, do you mean")

    def pick(self, option: str) -> T:
        return dict(zip(self.options(), (c.item for c in self.candidates)))[option]


def _labels(items: Sequence[Any]) -> list[str]:
    """Names (or titles) as choice options, with the id added where two are the same."""
    names = [str(getattr(i, "name", None) or getattr(i, "title", None)) for i in items]
    return [f"{n} ({i.id})" if names.count(n) > 1 else n for n, i in zip(names, items)]


def _choice_question(labels: Sequence[str], *, lead: str = "Do you mean") -> str:
    """``Do you mean 1) X, 2) Y or 3) Z?`` (the wording of :func:`~.formatting.format_choices`)."""
    if len(labels) == 1:
        return f"{lead} {labels[0]}?"
    numbered = [f"{n}) {label}" for n, label in enumerate(labels, start=1)]
    return f"{lead} {', '.join(numbered[:-1])} or {numbered[-1]}?"


def _exact(lookup: Callable[[str], T], ident: str) -> T | None:
    """The item whose id is exactly ``ident``, or None."""
    try:
        return lookup(ident) if ident else None
    except BoardError:
        return None


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "(none)"


class TaskTools:
    """Tools over one :class:`~.board.Board`, for a :class:`~llmgine_nb.tools.ToolManager`.

    ``platform`` names the chat platform whose user ids ``verify_user``
    links (``"discord"``, ``"slack"``, ...).  ``today`` is the date due dates
    count from: a date, a function returning one, or None for the real date.
    """

    def __init__(
        self,
        board: Board,
        *,
        platform: str = "discord",
        today: date | Callable[[], date] | None = None,
    ) -> None:
        self.board = board
        self.platform = platform
        self._today = today
        # Call ids of create_task calls whose arguments resolved when the
        # manager assessed them, so approval was asked: only these may write.
        self._vetted: OrderedDict[str, None] = OrderedDict()

    def today(self) -> date:
        """The date due dates are counted from."""
        if self._today is None:
            return date.today()
        return self._today() if callable(self._today) else self._today

    # -- registering -------------------------------------------------------------

    def tools(self) -> list[Tool]:
        """The six tools, bound to this board, with their verification rules."""
        return [
            Tool.from_function(self.whoami),
            Tool.from_function(self.verify_user),
            Tool.from_function(self.list_projects),
            Tool.from_function(self.find_tasks),
            Tool.from_function(
                self.create_task, approval=self._create_needs_approval, preview=self.assignment_preview
            ),
            Tool.from_function(self.complete_task),
        ]

    def register(self, manager: ToolManager) -> list[Tool]:
        """Register the tools on ``manager``; returns them."""
        return [manager.register(t) for t in self.tools()]

    # -- who is calling ----------------------------------------------------------------

    def _actor(self, ctx: ToolContext) -> User:
        if ctx.user is None:
            raise ToolError(self._not_verified(ctx))
        try:
            return self.board.user(ctx.user)
        except UnknownUser:
            raise ToolError(
                f"The session's user {ctx.user!r} is not on the board any more; ask them to verify again "
                "with their board email (verify_user)."
            ) from None

    def _platform_identity(self, ctx: ToolContext) -> tuple[str, str | None]:
        state = ctx.state
        platform = state.get("platform") or self.platform
        return str(platform), state.get("platform_user_id")

    def _not_verified(self, ctx: ToolContext) -> str:
        platform, platform_user_id = self._platform_identity(ctx)
        return NOT_VERIFIED.format(account=account_name(platform), platform_user_id=platform_user_id or "unknown id")

    # -- the tools -----------------------------------------------------------------------

    @tool(risk="read")
    async def whoami(self, ctx: ToolContext) -> str:
        """Who the user you are talking to is on the task board, and what they may do.

        Call this first when you do not know; an unverified user must give
        their board email (then call verify_user).
        """
        if ctx.user is None:
            return self._not_verified(ctx)
        user = self._actor(ctx)
        may = "read and change tasks" if user.can(WRITE) else "read tasks but not change them"
        return f"You are talking to {user.name} (id {user.id}, {user.email}), who may {may}."

    @tool(risk="write", approval="never")
    async def verify_user(self, ctx: ToolContext, email: str) -> str:
        """Verify the user by the email they use on the task board, and remember it for next time.

        Args:
            email: The email address the user gave, exactly as they wrote it.
        """
        platform, platform_user_id = self._platform_identity(ctx)
        if not platform_user_id:
            raise ToolError(
                "This session has no chat platform user to verify; the application sets one per user "
                "(TaskAssistant does), so verification is not possible here."
            )
        if ctx.user is not None:
            current = self._actor(ctx)
            if current.email == email.strip().lower():
                return f"Already verified: this {account_name(platform)} belongs to {current.name} ({current.email})."
            raise ToolError(
                f"This {account_name(platform)} is already verified as {current.name}; a board admin must unlink "
                "it before it can belong to someone else."
            )
        try:
            user = self.board.link_platform(platform, platform_user_id, email)
        except BoardError as exc:
            raise ToolError(f"{exc} Ask the user to check the email and try again.") from None
        if self.board.user_for_platform(platform, platform_user_id) is None:
            # The board keeps the claim for an administrator to confirm (a Discord server's board does).
            return (
                f"Waiting for a board admin to confirm that this {account_name(platform)} belongs to {user.name} "
                f"({user.email}); "
                "you can use the board as soon as they do."
            )
        if "user_id" in ctx.state:
            ctx.state["user_id"] = user.id
        if ctx.bus is not None:
            await ctx.bus.publish(
                UserVerified(
                    session_id=ctx.session_id, platform=platform, platform_user_id=platform_user_id,
                    user_id=user.id, user_name=user.name,
                )
            )
        return f"Verified: this {account_name(platform)} belongs to {user.name} ({user.email}) from now on."

    @tool(risk="read", permissions={READ})
    async def list_projects(self, ctx: ToolContext) -> ToolOutput:
        """The active projects (the ones that take new tasks), with their ids."""
        self._actor(ctx)
        projects = self.board.active_projects()
        if not projects:
            return ToolOutput("There are no active projects on the board.", value=[])
        lines = "\n".join(f"- {p.name} (id {p.id})" for p in projects)
        return ToolOutput(f"Active projects:\n{lines}", value=[p.model_dump(mode="json") for p in projects])

    @tool(risk="read", permissions={READ})
    async def find_tasks(
        self,
        ctx: ToolContext,
        assignee: str | None = None,
        project: str | None = None,
        status: str = "active",
    ) -> ToolOutput:
        """List tasks on the board, filtered by person, project and status.

        Args:
            assignee: Whose tasks: a name, email or id, or "me" for the user; leave out for everyone's.
            project: Which project: its name or id; leave out for all projects.
            status: "active" (to do or in progress, the default), "all", "todo", "in progress" or "done".
        """
        actor = self._actor(ctx)
        try:
            statuses = _statuses(status)
            person = await self._choose_or_error(ctx, lambda: self._person(assignee, actor)) if assignee else None
            if person is None and assignee:
                return ToolOutput("The user did not say which person they meant, so no tasks were listed.", value=[])
            place = await self._choose_or_error(ctx, lambda: self._any_project(project)) if project else None
            if place is None and project:
                return ToolOutput("The user did not say which project they meant, so no tasks were listed.", value=[])
            tasks = self.board.tasks(
                assignee_id=person.id if person else None,
                project_id=place.id if place else None,
                status=statuses,
            )
        except BoardError as exc:
            raise ToolError(str(exc)) from None
        heading = _heading(person, place, status, actor)
        value = [t.model_dump(mode="json") for t in tasks]
        if not tasks:
            return ToolOutput(f"{heading}: none.", value=value)
        return ToolOutput(f"{heading}:\n{format_tasks(tasks, self.board)}", value=value)

    @tool(risk="write", permissions={WRITE}, remember_approval=False)
    async def create_task(
        self,
        ctx: ToolContext,
        title: str,
        assignee: str,
        project: str,
        due: str | None = None,
        description: str = "",
    ) -> ToolOutput:
        """Create a task and assign it; the user confirms the resolved assignment before it is created.

        Args:
            title: What is to be done, in a few words ("Budget review").
            assignee: Who does it: a name, email or id ("Sam"), or "me" for the user.
            project: The project's name or id (see list_projects); must be an active project.
            due: When it is due, as the user said it ("Friday", "next Friday", "Dec 1", "2026-05-08"); leave out for none.
            description: Optional details.
        """
        actor = self._actor(ctx)
        arguments = {"title": title, "assignee": assignee, "project": project, "due": due, "description": description}
        try:
            plan = self._resolve_assignment(arguments, actor)
        except _Ambiguous as ambiguous:
            return await self._settle(ctx, ambiguous)
        except (BoardError, DateParseError) as exc:
            raise ToolError(str(exc)) from None
        if not self._take_vetted(ctx.call_id):
            # The names did not resolve when approval was assessed (the board
            # changed in between), so nobody confirmed this: do not write.
            raise ToolError(
                "The project, person or date changed while this call was checked, so nothing was created; "
                "call create_task again so the user can confirm it."
            )
        try:
            task = self.board.create_task(
                plan.title, project_id=plan.project.id, assignee_id=plan.assignee.id, created_by=actor.id,
                due=plan.due, description=plan.description,
            )
        except BoardError as exc:
            raise ToolError(str(exc)) from None
        if ctx.bus is not None:
            await ctx.bus.publish(
                TaskCreated(
                    session_id=ctx.session_id, task_id=task.id, title=task.title, assignee_id=task.assignee_id,
                    project_id=task.project_id, due=task.due, created_by=actor.id,
                )
            )
        when = f"due {describe_date(task.due)}" if task.due else "with no due date"
        return ToolOutput(
            f"Created {task.id}: '{task.title}' assigned to {plan.assignee.name}, {when}, in {plan.project.name}.",
            value=task.model_dump(mode="json"),
        )

    @tool(risk="write", permissions={WRITE}, approval="never")
    async def complete_task(self, ctx: ToolContext, task: str) -> ToolOutput:
        """Mark one of the user's tasks as done; asks the user which task when the statement fits several.

        Args:
            task: What the user said they finished ("sending out the recruitment forms"), or a task id like "T3".
        """
        actor = self._actor(ctx)
        try:
            candidates = self._tasks_meant(task, actor)
        except BoardError as exc:
            raise ToolError(str(exc)) from None
        if not candidates:
            active = self.board.active_tasks(actor.id)
            titles = [f"{t.id} {t.title}" for t in active]
            raise ToolError(
                f"None of {actor.name}'s active tasks matches {task!r}. Their active tasks are: {_listing(titles)}. "
                "Ask the user which one they finished, then call complete_task with its id."
            )
        chosen = await self._pick_task(ctx, candidates)
        if chosen is None:
            return ToolOutput("The user did not confirm a task, so nothing was changed.", value=None)
        if chosen.status == "done":
            return ToolOutput(f"{chosen.id} '{chosen.title}' was already done.", value=chosen.model_dump(mode="json"))
        try:
            updated = self.board.update_status(chosen.id, "done", by=actor.id)
        except BoardError as exc:
            raise ToolError(str(exc)) from None
        if ctx.bus is not None:
            await ctx.bus.publish(
                TaskCompleted(session_id=ctx.session_id, task_id=updated.id, title=updated.title, by=actor.id)
            )
        return ToolOutput(f"Marked {updated.id} '{updated.title}' as done.", value=updated.model_dump(mode="json"))

    # -- create_task: resolution, approval and preview -----------------------------------

    def _resolve_assignment(self, arguments: dict[str, Any], actor: User | None) -> Assignment:
        """Every name of a create_task call resolved, or ``_Ambiguous`` / a ``BoardError`` / ``DateParseError``."""
        title = " ".join(str(arguments.get("title") or "").split()).strip("'\"")
        if not title:
            raise InvalidInput("A task needs a title; ask the user what the task is.")
        project = self._active_project(str(arguments.get("project") or ""))
        assignee = self._person(str(arguments.get("assignee") or ""), actor)
        due_text = arguments.get("due")
        due = parse_due_date(due_text, today=self.today()) if due_text and str(due_text).strip() else None
        return Assignment(title, assignee, project, due, str(arguments.get("description") or "").strip())

    def _create_needs_approval(self, arguments: dict[str, Any], ctx: ToolContext) -> bool:
        """The approval policy of create_task: ask when the call would write.

        A call whose names do not resolve to one assignment writes nothing
        (it asks "did you mean" or returns an error instead), so there is
        nothing to approve yet; a call that resolves is remembered as vetted,
        and only vetted calls may create a task.
        """
        try:
            actor = self.board.user(ctx.user) if ctx.user else None
            if actor is None:
                return False  # create_task refuses unverified users without writing
            self._resolve_assignment(arguments, actor)
        except (_Ambiguous, BoardError, DateParseError):
            return False
        self._vetted[ctx.call_id] = None
        while len(self._vetted) > _VETTED_LIMIT:
            self._vetted.popitem(last=False)
        return True

    def _take_vetted(self, call_id: str) -> bool:
        if call_id not in self._vetted:
            return False
        del self._vetted[call_id]
        return True

    def assignment_preview(self, arguments: dict[str, Any]) -> str:
        """The confirmation sentence an approval shows for a create_task call."""
        assignee = str(arguments.get("assignee") or "").strip().lower()
        try:
            if assignee in _ME:
                # The preview does not know the caller; "you" is right from their side.
                plan = self._resolve_assignment(arguments, _YOU)
                return plan.sentence(actor_id=_YOU.id)
            return self._resolve_assignment(arguments, None).sentence()
        except _Ambiguous as ambiguous:
            return f"{ambiguous.question()} (this must be settled before the task can be created)"
        except (BoardError, DateParseError) as exc:
            return f"This assignment cannot be created: {exc}"

    async def _settle(self, ctx: ToolContext, ambiguous: _Ambiguous[Any]) -> ToolOutput:
        """Ask which item an ambiguous name meant; the call is then made again with its id."""
        answer = await ctx.choose(ambiguous.question(), ambiguous.options())
        if answer is None:
            return ToolOutput(
                f"The user did not say which {ambiguous.kind} {ambiguous.query!r} means, so nothing was created. "
                f"Ask them which {ambiguous.kind} they mean.",
                value=None,
            )
        item = ambiguous.pick(answer)
        return ToolOutput(
            f"The user chose the {ambiguous.kind} {item.name} (id {item.id}). Nothing is created yet: "
            f'call create_task again with {ambiguous.argument}="{item.id}" and the same other arguments, '
            "so that they can confirm the whole assignment.",
            value={"argument": ambiguous.argument, "id": item.id, "name": item.name},
        )

    # -- name resolution ----------------------------------------------------------------

    def _person(self, name: str, actor: User | None) -> User:
        query = " ".join(name.split())
        if query.lower() in _ME:
            if actor is None:
                raise UnknownUser("Say who the task is for; 'me' needs a verified user.")
            return actor
        found = _exact(self.board.user, query)
        if found is not None:
            return found
        candidates = match_users(query, self.board.users())
        if not candidates:
            names = [u.name for u in self.board.users()]
            raise UnknownUser(f"No one on the board is called {query!r}; people on the board are: {_listing(names)}.")
        if len(candidates) > 1:
            raise _Ambiguous("person", "assignee", query, candidates)
        return candidates[0].item

    def _active_project(self, name: str) -> Project:
        query = " ".join(name.split())
        exact = _exact(self.board.project, query)
        if exact is not None and exact.active:
            return exact
        active = self.board.active_projects()
        candidates = match_projects(query, active) if query else []
        if len(candidates) > 1:
            raise _Ambiguous("project", "project", query, candidates)
        if candidates:
            return candidates[0].item
        active_names = [f"{p.name} (id {p.id})" for p in active]
        archived = [c.item for c in match_projects(query, self.board.projects())] if query else []
        if exact is not None or archived:
            gone = exact or archived[0]
            raise BoardError(
                f"Project {gone.name!r} is archived and takes no new tasks; active projects are: "
                f"{_listing(active_names)}."
            )
        raise BoardError(f"There is no active project called {query!r}; active projects are: {_listing(active_names)}.")

    def _any_project(self, name: str) -> Project:
        query = " ".join(name.split())
        exact = _exact(self.board.project, query)
        if exact is not None:
            return exact
        candidates = match_projects(query, self.board.projects())
        if not candidates:
            names = [f"{p.name} (id {p.id})" for p in self.board.projects()]
            raise BoardError(f"There is no project called {query!r}; projects are: {_listing(names)}.")
        if len(candidates) > 1:
            raise _Ambiguous("project", "project", query, candidates)
        return candidates[0].item

    async def _choose_or_error(self, ctx: ToolContext, resolve: Callable[[], T]) -> T | None:
        """``resolve()``, asking the user to choose when the name is ambiguous (None: no pick)."""
        try:
            return resolve()
        except _Ambiguous as ambiguous:
            answer = await ctx.choose(ambiguous.question(), ambiguous.options())
            return None if answer is None else ambiguous.pick(answer)

    # -- complete_task -----------------------------------------------------------------------

    def _tasks_meant(self, statement: str, actor: User) -> list[Task]:
        ids = {m.group(0).upper() for m in _TASK_ID.finditer(statement)}
        if len(ids) == 1:
            return [self.board.task(ids.pop())]
        active = self.board.active_tasks(actor.id)
        return [c.item for c in match_tasks(statement, active)] if active else []

    async def _pick_task(self, ctx: ToolContext, candidates: list[Task]) -> Task | None:
        if len(candidates) == 1:
            only = candidates[0]
            ok = await ctx.confirm(f"Do you mean '{only.title}' ({only.id})? I'll mark it as done.")
            return only if ok else None
        labels = _labels(candidates)
        answer = await ctx.choose(_choice_question(labels), labels)
        return dict(zip(labels, candidates)).get(answer) if answer is not None else None


# A stand-in caller for previews of "assign to me": the preview never sees who calls.
_YOU = User(id="\x00you", name="you", email="you@invalid.example")


def _statuses(status: str | None) -> frozenset[str] | str | None:
    key = (status or "active").strip().lower()
    if key in ("active", "open", "current"):
        return ACTIVE_STATUSES
    if key in ("all", "any", "everything"):
        return None
    return parse_status(key)


def _heading(person: User | None, project: Project | None, status: str, actor: User) -> str:
    if person is None:
        who = "Everyone's"
    elif person.id == actor.id:
        who = "Your"
    else:
        who = f"{person.name}'s"
    key = (status or "active").strip().lower()
    which = "" if key in ("all", "any", "everything") else f" {key}"
    where = f" in {project.name}" if project else ""
    return f"{who}{which} tasks{where}"
