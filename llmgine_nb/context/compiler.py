"""The context compiler: what the model is sent, within a token budget.

    compiler = ContextCompiler("gpt-4o-mini", budget=8000, summariser=summarise)
    compiled = await compiler.compile(history, system="You are ...", memory=notes,
                                      session_id=session.id, namespace=user_ns)
    compiled.messages   # ChatMessages to send
    compiled.report     # tokens per part, what was dropped or summarised

The result is, in order: the system prompt, memory notes, a summary of older
history (when one stands in for it), the pinned messages older than the cut,
then the most recent history that fits.

When history does not fit, the oldest turns go first.  A turn is a user
message and everything up to the next one (answers, tool calls and their
results); cuts fall only between turns, so what is sent always starts with
a user message and never holds an answer without its question.  The system
prompt, memory, pinned messages and the newest turn (the latest user
message and what followed it) are never cut; if they alone exceed the
budget they are still sent and the report says ``over_budget``.

With a ``summariser`` (``async (messages) -> str``, or a plain function),
cut history is replaced by a summary instead of vanishing.  Summaries are
stored (``summaries=``: the ``Store`` or any object with ``latest_summary``
and ``save_summary``) and reused on later turns for as long as the history
after them fits; when it no longer does, the summary is extended with the
next stretch of history (the previous summary is passed first, as a system
message) and the history kept shrinks to ``summary_target`` of the room
left, so that a model call is needed only every so many turns.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..chat import ChatMessage, ImageRef
from ..images import image_tokens
from .history import HistoryIndex, latest_turn_start, next_turn_start, pinned_units
from .notebook import NotebookContext
from .tokens import TokenCounter

__all__ = [
    "ContextCompiler",
    "CompiledContext",
    "ContextReport",
    "Summariser",
    "SummaryStore",
    "InMemorySummaries",
    "SUMMARY_PREFIX",
]

Summariser = Callable[[list[ChatMessage]], Awaitable[str] | str]

SUMMARY_PREFIX = "Summary of the earlier conversation:\n"
MEMORY_PREFIX = "Things to remember:\n"
# Histories a compiler keeps an index of (one per session it compiles for; the oldest goes first).
_INDEXED_HISTORIES = 16


class _Summary(Protocol):
    # Read-only members, so that frozen records (the store's StoredSummary) satisfy it.
    @property
    def upto_message_id(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def covered(self) -> int: ...


class SummaryStore(Protocol):
    """Where summaries are kept between turns (``Store`` implements this)."""

    def latest_summary(self, session_id: str) -> _Summary | None: ...

    def save_summary(self, session_id: str, upto_message_id: str, text: str, covered: int) -> Any: ...


@dataclass
class _Kept:
    upto_message_id: str
    text: str
    covered: int


class InMemorySummaries:
    """A ``SummaryStore`` in a dict, for compilers without a database."""

    def __init__(self) -> None:
        self._latest: dict[str, _Kept] = {}

    def latest_summary(self, session_id: str) -> _Kept | None:
        return self._latest.get(session_id)

    def save_summary(self, session_id: str, upto_message_id: str, text: str, covered: int) -> _Kept:
        kept = _Kept(upto_message_id, text, covered)
        self._latest[session_id] = kept
        return kept


@dataclass
class ContextReport:
    """What a compile sent: tokens per part and what was left out.

    ``tokens`` has the keys system, memory, summary, pinned, history and
    overhead (request framing); ``total`` is their sum.  ``dropped`` lists
    the ids of messages left out entirely, ``summarised`` those a summary
    stands in for.
    """

    model: str | None
    budget: int
    reserve: int
    tokens: dict[str, int]
    messages_sent: int
    dropped: list[str] = field(default_factory=list)
    summarised: list[str] = field(default_factory=list)
    summary_reused: bool = False
    summary_created: bool = False
    # What was sent, sized by what is sent: the parts the compiler wrote (system, memory,
    # summary), the pinned messages older than the cut, the history from the cut on.
    written: list[tuple[str, ChatMessage]] = field(default_factory=list)
    pinned_ids: list[str] = field(default_factory=list)
    history_from_id: str | None = None
    history_to_id: str | None = None
    images: list[ImageRef] = field(default_factory=list)
    image_tokens: int = 0
    forgotten: list[str] = field(default_factory=list)  # ids of messages the user told it to forget

    @property
    def total(self) -> int:
        return sum(self.tokens.values())

    @property
    def over_budget(self) -> bool:
        """True when even the parts that are never cut (system, memory, pinned, latest turn) did not fit."""
        return self.total > self.budget - self.reserve

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {count:,}" for name, count in self.tokens.items() if count)
        line = f"context: {self.total:,} of {self.budget - self.reserve:,} tokens ({parts}); {self.messages_sent} messages"
        if self.summarised:
            how = "new summary" if self.summary_created else "stored summary"
            line += f"; {len(self.summarised):,} older messages summarised ({how})"
        if self.dropped:
            line += f"; {len(self.dropped):,} older messages dropped"
        if self.forgotten:
            line += f"; {len(self.forgotten):,} forgotten messages left out"
        if self.over_budget:
            line += "; OVER BUDGET: the parts never cut (system prompt, memory, pinned messages, latest turn) do not fit"
        return line

    def _repr_markdown_(self) -> str:
        return str(self)


@dataclass
class CompiledContext:
    """The messages to send and the report on how they were chosen."""

    messages: list[ChatMessage]
    report: ContextReport

    def to_openai(self) -> list[dict[str, Any]]:
        return [m.to_openai() for m in self.messages]


@dataclass
class _Plan:
    cut: int  # history[cut:] (plus pinned units before it) is sent
    pinned_all: set[int]
    fixed: list[ChatMessage]
    tokens: dict[str, int]
    avail: int  # tokens left for history and summary
    summary_text: str | None = None
    summary_reused: bool = False
    summary_upto: int = -1  # index of the last message the summary covers
    to_summarise: list[ChatMessage] = field(default_factory=list)
    previous_summary: str | None = None
    previous_covered: int = 0
    index: HistoryIndex = field(default_factory=HistoryIndex)
    history: list[ChatMessage] = field(default_factory=list)  # the messages that may be sent (none forgotten)
    forgotten: list[str] = field(default_factory=list)  # ids of the messages left out because they are forgotten


class ContextCompiler:
    """Compiles system prompt, memory, pinned messages and history into what is sent.

    ``model`` picks the token counter (litellm's for real models, an estimate
    for ``scripted``); ``budget`` is the context window to fill and
    ``reserve`` the part of it kept free (tool schemas, the reply).
    ``interpolate=False`` turns notebook ``{name}`` interpolation off.
    """

    def __init__(
        self,
        model: str | None = "scripted",
        *,
        budget: int = 8000,
        reserve: int = 0,
        summariser: Summariser | None = None,
        summaries: SummaryStore | None = None,
        summary_target: float = 0.5,
        counter: TokenCounter | None = None,
        interpolate: bool = True,
        cell_refs: bool = True,
    ) -> None:
        if budget <= 0:
            raise ValueError("budget must be a positive number of tokens")
        if not 0 <= reserve < budget:
            raise ValueError("reserve must be at least 0 and less than the budget")
        if not 0 < summary_target <= 1:
            raise ValueError("summary_target is the share of the history room kept after summarising: 0 < x <= 1")
        self.counter = counter or TokenCounter(model)
        self._model = model
        self.budget = budget
        self.reserve = reserve
        self.summariser = summariser
        self._summaries: SummaryStore = summaries if summaries is not None else InMemorySummaries()
        # The latest summary of each session, read once: after that this compiler writes them.
        self._latest: dict[str, _Summary | None] = {}
        self.summary_target = summary_target
        self.interpolate = interpolate
        self.cell_refs = cell_refs
        self._indexes: dict[str, HistoryIndex] = {}

    @property
    def summaries(self) -> SummaryStore:
        """Where summaries are kept (read once per session, then remembered: this compiler writes them)."""
        return self._summaries

    @summaries.setter
    def summaries(self, value: SummaryStore) -> None:
        self._summaries = value
        self._latest.clear()

    def _latest_summary(self, key: str) -> _Summary | None:
        if key not in self._latest:
            self._latest[key] = self._summaries.latest_summary(key)
            while len(self._latest) > _INDEXED_HISTORIES:
                del self._latest[next(iter(self._latest))]
        return self._latest[key]

    @property
    def model(self) -> str | None:
        """The model whose tokenizer counts; setting it (a model switch) swaps the counter."""
        return self._model

    @model.setter
    def model(self, value: str | None) -> None:
        self._model = value
        if self.counter.model != value:
            self.counter = TokenCounter(value)

    # -- notebook context ------------------------------------------------------

    def expand(self, text: str, namespace: Mapping[str, Any] | None) -> str:
        """Expand notebook references (``{name}``, ``In[3]`` ...) in ``text``.

        Use it on new user input before storing it, so the history holds
        what the model was actually sent.
        """
        if namespace is None or not self.interpolate:
            return text
        return NotebookContext(namespace, interpolate=True, cell_refs=self.cell_refs).expand(text)

    def images_in(self, text: str, namespace: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
        """The images ``{name}`` / ``{Out[n]}`` in ``text`` refer to, as (label, value) pairs."""
        if namespace is None or not self.interpolate:
            return []
        return NotebookContext(namespace, interpolate=True, cell_refs=self.cell_refs).images_in(text)

    # -- compiling -----------------------------------------------------------------

    async def compile(
        self,
        history: Sequence[ChatMessage],
        *,
        system: str | None = None,
        memory: Sequence[Any] = (),
        session_id: str | None = None,
        namespace: Mapping[str, Any] | None = None,
    ) -> CompiledContext:
        """Choose what to send from ``history`` (oldest first) within the budget.

        ``memory`` holds notes (strings, or objects with ``.text`` such as
        ``MemoryNote``); ``namespace`` expands notebook references in the
        system prompt and memory; ``session_id`` keys stored summaries.
        """
        plan = self._plan(history, system, memory, session_id, namespace)
        if plan.to_summarise:
            assert self.summariser is not None
            result = self.summariser(self._summariser_input(plan))
            plan.summary_text = await result if inspect.isawaitable(result) else result
        return self._finish(plan, session_id)

    def compile_sync(
        self,
        history: Sequence[ChatMessage],
        *,
        system: str | None = None,
        memory: Sequence[Any] = (),
        session_id: str | None = None,
        namespace: Mapping[str, Any] | None = None,
    ) -> CompiledContext:
        """``compile`` for synchronous callers; needs a plain (non-async) summariser if any."""
        plan = self._plan(history, system, memory, session_id, namespace)
        if plan.to_summarise:
            assert self.summariser is not None
            result = self.summariser(self._summariser_input(plan))
            if inspect.isawaitable(result):
                if asyncio.iscoroutine(result):
                    result.close()
                raise TypeError("this summariser is async: use `await compiler.compile(...)` instead of compile_sync")
            plan.summary_text = result
        return self._finish(plan, session_id)

    # -- the plan: fixed parts, pinned units, the cut ------------------------------------

    def _fixed_parts(
        self, system: str | None, memory: Sequence[Any], namespace: Mapping[str, Any] | None
    ) -> tuple[list[ChatMessage], dict[str, int]]:
        fixed: list[ChatMessage] = []
        tokens = {"system": 0, "memory": 0}
        if system:
            msg = ChatMessage(id="llmgine-context-system", role="system", content=self.expand(system, namespace))
            fixed.append(msg)
            tokens["system"] = self.counter.count(msg)
        notes = [note if isinstance(note, str) else note.text for note in memory]
        if notes:
            text = MEMORY_PREFIX + "\n".join(f"- {self.expand(note, namespace)}" for note in notes)
            msg = ChatMessage(id="llmgine-context-memory", role="system", content=text)
            fixed.append(msg)
            tokens["memory"] = self.counter.count(msg)
        return fixed, tokens

    def _pinned_units(self, history: Sequence[ChatMessage], index: HistoryIndex | None = None) -> set[int]:
        """Indices of every unit (a message, or a tool call with its results) that holds a pinned message."""
        pinned = index.pinned_messages if index is not None else [i for i, m in enumerate(history) if m.pinned]
        return pinned_units(history, pinned)

    def _index(self, history: Sequence[ChatMessage], key: str) -> HistoryIndex:
        """The index of this session's history, brought up to date (reading only new messages)."""
        index = self._indexes.pop(key, None) or HistoryIndex()
        index.update(history)
        self._indexes[key] = index  # the most recently used last
        while len(self._indexes) > _INDEXED_HISTORIES:
            del self._indexes[next(iter(self._indexes))]
        return index

    def _earliest_fit(
        self, history: Sequence[ChatMessage], index: HistoryIndex, pinned: set[int], room: int, floor: int = 0
    ) -> int:
        """The earliest turn start (>= ``floor``) from which the unpinned messages fit in ``room`` tokens.

        Walks back a whole turn at a time from the newest, which is always
        kept, so a cut never separates an answer (or a tool call and its
        results) from the question that led to it.  Pinned messages are
        skipped (they are kept anyway and counted as "pinned").
        """
        # Pinned messages aside, the tokens from a turn start to the end only grow as
        # the walk goes back, so "fits" is one subtraction of running sums per turn.
        sums = index.running_sums(self.counter)
        leave_out = sorted(pinned)
        newest = cut = len(history)
        for start in index.turn_starts_newest_first(history, floor):
            size = sums[newest] - sums[start]
            if leave_out:
                size -= index.tokens_of(leave_out, start, newest)
            if cut < newest and size > room:
                break
            cut = start
        return cut

    def _plan(
        self,
        given: Sequence[ChatMessage],
        system: str | None,
        memory: Sequence[Any],
        session_id: str | None,
        namespace: Mapping[str, Any] | None,
    ) -> _Plan:
        fixed, tokens = self._fixed_parts(system, memory, namespace)
        key = session_id or "default"
        index = self._index(given, key)
        # What may be sent: the history without the messages the user told it to forget, kept
        # by the index as it reads new messages (so a turn never scans the whole history for
        # them). A copy, so that another compile updating the index meanwhile cannot change it.
        history = list(index.remembered)
        pinned = self._pinned_units(history, index)
        count = self.counter.count
        tokens["summary"] = 0
        tokens["pinned"] = sum(count(history[i]) for i in pinned)
        tokens["history"] = 0
        tokens["overhead"] = self.counter.priming
        room = self.budget - self.reserve - sum(tokens.values())
        cut = self._earliest_fit(history, index, pinned, room)
        plan = _Plan(cut=cut, pinned_all=pinned, fixed=fixed, tokens=tokens, avail=room, index=index,
                     history=history, forgotten=list(index.forgotten))
        if cut == 0 or self.summariser is None:
            return plan
        if len(pinned) >= cut and all(i in pinned for i in range(cut)):
            return plan  # only pinned messages are older than the cut: nothing to summarise

        # Reuse the stored summary while the history after it still fits.
        stored = self._latest_summary(key)
        upto = self._index_of(history, index, stored.upto_message_id) if stored is not None else -1
        least = cut  # the new cut must leave out at least this much
        expected_summary = 0  # room the new summary will take, judged by the last one
        if stored is not None and upto >= 0:
            expected_summary = count(self._summary_message(stored.text))
            fit = self._earliest_fit(history, index, pinned, room - expected_summary)
            # A summary that ends inside a turn (one stored by an older version)
            # is not reused as it is: it is extended to the end of that turn.
            resume = next_turn_start(history, pinned, upto + 1)
            if fit <= upto + 1 and resume == upto + 1:
                plan.cut = upto + 1
                plan.summary_text = stored.text
                plan.summary_reused = True
                plan.summary_upto = upto
                return plan
            plan.previous_summary = stored.text
            plan.previous_covered = stored.covered
            least = max(fit, resume)
        # Summarise from where the last summary ended up to a cut that leaves
        # room for the next few turns.
        target_room = int(room * self.summary_target) - expected_summary
        target = max(self._earliest_fit(history, index, pinned, target_room), least)
        first = upto + 1 if upto >= 0 else 0
        plan.cut = target
        gap = [i for i in range(first, target) if i not in pinned]
        if gap:
            plan.to_summarise = [history[i] for i in gap]
            plan.summary_upto = gap[-1]  # always an unpinned message: pinned ones are sent as they are
        else:  # only pinned messages in the gap: the old summary still covers the rest
            plan.summary_text = plan.previous_summary
            plan.summary_reused = plan.previous_summary is not None
            plan.summary_upto = upto if plan.summary_reused else -1
        return plan

    @staticmethod
    def _index_of(history: Sequence[ChatMessage], index: HistoryIndex, message_id: str) -> int:
        """Where a summary's last message is in history, or -1 (also when it
        would reach into the newest turn: a summary never replaces that)."""
        i = index.position.get(message_id, -1)
        return i if i < latest_turn_start(history) else -1

    @staticmethod
    def _summary_message(text: str) -> ChatMessage:
        return ChatMessage(id="llmgine-context-summary", role="system", content=SUMMARY_PREFIX + text)

    def _summariser_input(self, plan: _Plan) -> list[ChatMessage]:
        if plan.previous_summary:
            return [self._summary_message(plan.previous_summary), *plan.to_summarise]
        return list(plan.to_summarise)

    # -- finishing: store a new summary, fit it, assemble ------------------------------------

    def _finish(self, plan: _Plan, session_id: str | None) -> CompiledContext:
        count = self.counter.count
        history = plan.history
        created = False
        if plan.to_summarise and plan.summary_text is not None:
            if not isinstance(plan.summary_text, str) or not plan.summary_text.strip():
                raise ValueError("the summariser returned no text; it must return the summary as a non-empty string")
            covered = plan.previous_covered + len(plan.to_summarise)
            key, upto_id = session_id or "default", history[plan.summary_upto].id
            self._summaries.save_summary(key, upto_id, plan.summary_text, covered)
            self._latest[key] = _Kept(upto_id, plan.summary_text, covered)
            created = True

        messages = list(plan.fixed)
        cut = plan.cut
        summarised: list[str] = []
        if plan.summary_text:
            summary = self._summary_message(plan.summary_text)
            plan.tokens["summary"] = count(summary)
            messages.append(summary)
            summarised = plan.index.ids_between(0, plan.summary_upto + 1, plan.pinned_all)

        if created:
            # A summary longer than planned: drop more of the oldest kept units.
            cut = self._earliest_fit(history, plan.index, plan.pinned_all, plan.avail - plan.tokens["summary"], floor=cut)
        dropped = plan.index.ids_between(plan.summary_upto + 1, cut, plan.pinned_all)
        kept_pinned = [history[i] for i in sorted(plan.pinned_all) if i < cut]
        recent = list(history[cut:])
        messages.extend(kept_pinned)
        messages.extend(recent)
        plan.tokens["history"] = sum(count(m) for i, m in enumerate(recent, cut) if i not in plan.pinned_all)
        kinds = {"llmgine-context-system": "system", "llmgine-context-memory": "memory",
                 "llmgine-context-summary": "summary"}
        images = [image for m in messages if m.images for image in m.images]
        report = ContextReport(
            written=[(kinds[m.id], m) for m in messages if m.id in kinds],
            pinned_ids=[m.id for m in kept_pinned],
            history_from_id=recent[0].id if recent else None,
            history_to_id=recent[-1].id if recent else None,
            images=images,
            image_tokens=sum(image_tokens(i.width, i.height) for i in images),
            model=self.model,
            budget=self.budget,
            reserve=self.reserve,
            tokens=plan.tokens,
            messages_sent=len(messages),
            dropped=dropped,
            summarised=summarised,
            summary_reused=plan.summary_reused,
            summary_created=created,
            forgotten=plan.forgotten,
        )
        return CompiledContext(messages=messages, report=report)

