"""``MapJob``: one prompt over many rows, at most ``concurrency`` at a time, resumable, within a cost cap.

    job = MapJob(llm, "Sentiment of: {text}", df, store=store.map_jobs, bus=bus, concurrency=8, max_cost=0.50)
    result = await job.run()          # -> MapResult; result.to_frame() adds the answers as columns

Rows answered by an earlier run of the same job (same id: the name given, or
a hash of the template and the prompts) come from the store and are not
asked again.  Each answered row is stored as soon as it is answered, so a
kernel that dies mid-job loses only the calls in flight.

The cost cap asks before spending past it: when what was spent, plus what
the rows in flight are expected to cost (the average so far), would pass
``max_cost``, the job sends a ``ConfirmRequest`` on the bus (announced by
``ConfirmationRequested``, answered by whichever front end is attached) and
waits.  Yes lifts the cap for this run; no, no answer in time, or nobody to
ask stops the job (fail closed): the rows not asked stay unpaid until it runs
again.  A row that fails is tried again ``retries`` times (the model layer
has already retried transient errors of each call); rows that still fail are
reported and asked again by the next run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..messages import use_session
from ..tools.commands import ConfirmRequest, read_answer
from ..tools.events import ConfirmationRequested, QuestionAnswered, QuestionExpired
from .events import MapFinished, MapRowFinished, MapStarted
from .result import MapResult, MapRowResult
from .rows import MapItem, job_id_for, make_items, read_rows

if TYPE_CHECKING:
    from ..bus import MessageBus
    from ..store.map_jobs import MapJobs, MapRowRecord

__all__ = ["MapJob", "MapProgress"]

log = logging.getLogger("llmgine_nb.batch")


@dataclass(frozen=True)
class MapProgress:
    """Where a job stands, for a progress bar."""

    job_id: str
    total: int
    answered: int
    failed: int
    reused: int
    cost_usd: float
    state: str = "running"  # running, asking, finished, stopped
    question: str = ""  # the cost cap's question while the job waits for an answer
    question_id: str = ""


@dataclass
class _Tally:
    spent: float = 0.0
    paid_rows: int = 0  # rows answered (and paid for) in this run
    running: int = 0
    failed: int = 0
    cap_lifted: bool = False
    stopped: str = ""
    results: dict[int, MapRowResult] = field(default_factory=dict)


class MapJob:
    """A prompt template run over rows; see the module's text."""

    def __init__(
        self,
        llm: Any,
        template: str,
        rows: Any,
        *,
        store: MapJobs | None = None,
        bus: MessageBus | None = None,
        name: str | None = None,
        schema: type | None = None,
        concurrency: int = 8,
        max_cost: float | None = None,
        retries: int = 2,
        retry_delay_s: float = 0.5,
        confirm_timeout: float | None = 300.0,
        session_id: str | None = None,
        on_progress: Callable[[MapProgress], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if retries < 0:
            raise ValueError(f"retries cannot be negative ({retries})")
        if max_cost is not None and max_cost < 0:
            raise ValueError(f"max_cost is a sum of money (0 or more), not {max_cost}")
        if schema is not None and not _is_model_class(schema):
            raise ValueError(f"{schema!r} is not a pydantic model class; structured output needs a BaseModel subclass")
        self.llm = llm
        self.template = template
        self.source = rows
        self.items: list[MapItem] = make_items(template, read_rows(rows))
        self.schema = schema
        self.job_id = job_id_for(template, self.items, schema.__name__ if schema else None, name)
        self.name = name
        self.store = store
        self.bus = bus
        self.concurrency = concurrency
        self.max_cost = max_cost
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.confirm_timeout = confirm_timeout
        self.session_id = session_id
        self.on_progress = on_progress
        self._tally = _Tally()
        self._reused = 0
        self._gate: asyncio.Lock | None = None  # one cost question at a time

    # -- running -----------------------------------------------------------------------

    async def run(self) -> MapResult:
        """Answer every row not answered yet; the result holds every row, stored ones included."""
        tally = self._tally = _Tally()
        self._gate = asyncio.Lock()  # made on the loop that runs the job
        stored = self._stored()
        for item in self.items:
            record = stored.get(item.index)
            if record is not None and record.prompt_hash == item.prompt_hash:
                tally.results[item.index] = _from_record(record)
        reused = self._reused = len(tally.results)
        if self.store is not None:
            self.store.save_job(self.job_id, name=self.name, template=self.template, model=getattr(self.llm, "model", None),
                                schema_name=self.schema.__name__ if self.schema else None, total=len(self.items))
        await self._publish(MapStarted(job_id=self.job_id, total=len(self.items), reused=reused,
                                       concurrency=self.concurrency, max_cost=self.max_cost, session_id=self.session_id))
        self._progress()
        todo = [item for item in self.items if item.index not in tally.results]
        slots = asyncio.Semaphore(self.concurrency)

        async def worker(item: MapItem) -> None:
            async with slots:
                if tally.stopped or not await self._may_start():
                    return
                tally.running += 1
                try:
                    await self._answer(item)
                finally:
                    tally.running -= 1
                self._progress()

        tasks = [asyncio.ensure_future(worker(item)) for item in todo]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        result = self._result(reused)
        await self._publish(MapFinished(
            job_id=self.job_id, answered=len(result.answered), failed=tally.failed, skipped=len(result.skipped),
            cost_usd=tally.spent, stopped=tally.stopped, session_id=self.session_id,
        ))
        self._progress("stopped" if tally.stopped else "finished")
        return result

    async def _answer(self, item: MapItem) -> None:
        tally = self._tally
        error = ""
        for attempt in range(1, self.retries + 2):
            spent = _Spend()
            try:
                with use_session(None):  # the job's calls are not a turn of any session
                    text, value = await self._ask(item.prompt, spent)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a row's failure is reported, the job goes on
                tally.spent += spent.cost
                error = str(exc) or type(exc).__name__
                log.info("map %s row %d attempt %d failed: %s", self.job_id, item.index, attempt, error)
                if attempt <= self.retries:
                    await asyncio.sleep(self.retry_delay_s * 2 ** (attempt - 1))
                continue
            tally.spent += spent.cost
            tally.paid_rows += 1
            row = MapRowResult(index=item.index, text=text, value=value, cost_usd=spent.cost, attempts=attempt)
            tally.results[item.index] = row
            self._save(item, row, spent)
            await self._publish(MapRowFinished(job_id=self.job_id, row_index=item.index, status="answered",
                                               attempts=attempt, cost_usd=spent.cost, session_id=self.session_id))
            return
        tally.failed += 1
        tally.results[item.index] = MapRowResult(index=item.index, error=error, attempts=self.retries + 1)
        await self._publish(MapRowFinished(job_id=self.job_id, row_index=item.index, status="failed",
                                           attempts=self.retries + 1, error=error, session_id=self.session_id))

    async def _ask(self, prompt: str, spent: _Spend) -> tuple[str, Any]:
        async def complete(messages: Any, **settings: Any) -> Any:
            response = await self.llm.complete(messages, bus=self.bus, **settings)
            spent.add(response)
            return response

        if self.schema is None:
            response = await complete(prompt)
            return response.text, None
        from ..llm.base import to_messages
        from ..llm.structured import ask_structured

        enforced = getattr(self.llm, "_supports_response_schema", lambda: False)()  # our own model layer's
        value: BaseModel = await ask_structured(complete, to_messages(prompt), self.schema, model=self.llm.model,
                                     response_schema=bool(enforced))
        return spent.text, value.model_dump(mode="json")

    # -- the cost cap --------------------------------------------------------------------

    async def _may_start(self) -> bool:
        """Whether another row may be asked: under the cap, or the person said to go past it."""
        tally = self._tally
        if self.max_cost is None or tally.cap_lifted:
            return True
        assert self._gate is not None
        async with self._gate:
            if tally.stopped:
                return False
            if tally.cap_lifted:
                return True
            average = tally.spent / tally.paid_rows if tally.paid_rows else 0.0
            expected = tally.spent + average * (tally.running + 1)
            if tally.spent < self.max_cost and expected <= self.max_cost:
                return True
            left = len(self.items) - len(tally.results) - tally.running
            question = (
                f"Map job {self.job_id} has spent ${tally.spent:.4f} of its ${self.max_cost:.4f} cap; "
                f"{left} rows are left (about ${average * left:.4f} more at the average so far). Go past the cap?"
            )
            if await self._confirm(question):
                tally.cap_lifted = True
                return True
            tally.stopped = (f"stopped at the cost cap (${self.max_cost:.4f}); run it again, with a higher "
                             "max_cost or answering yes, to ask the rows left")
            return False

    async def _confirm(self, question: str) -> bool:
        request = ConfirmRequest(question=question, tool_name="map", session_id=self.session_id)
        request = request.model_copy(update={"display_id": "cap-" + request.id[:4]})
        ids = {"question_id": request.id, "display_id": request.display_id, "tool_name": "map",
               "session_id": self.session_id}
        self._progress("asking", question=question, question_id=request.display_id)
        if self.bus is None:
            return False
        await self.bus.publish(ConfirmationRequested(question=question, **ids))
        try:
            result = await asyncio.wait_for(self.bus.execute(request), self.confirm_timeout)
        except asyncio.TimeoutError:
            await self.bus.publish(QuestionExpired(reason=f"no answer within {self.confirm_timeout:g} s", **ids))
            return False
        answer = read_answer(result.result) if result.success else None
        yes = answer is not None and answer.value is True
        if answer is None:
            await self.bus.publish(QuestionExpired(reason="nobody could answer", **ids))
        else:
            await self.bus.publish(QuestionAnswered(answer=yes, decided_by=answer.decided_by, **ids))
        self._progress()
        return yes

    # -- pieces ---------------------------------------------------------------------------

    def _stored(self) -> dict[int, MapRowRecord]:
        return self.store.answered(self.job_id) if self.store is not None else {}

    def _save(self, item: MapItem, row: MapRowResult, spent: _Spend) -> None:
        if self.store is None:
            return
        from ..store.map_jobs import MapRowRecord

        self.store.save_row(self.job_id, MapRowRecord(
            row_index=item.index, prompt_hash=item.prompt_hash, text=row.text, value=row.value,
            input_tokens=spent.input_tokens, output_tokens=spent.output_tokens, cost_usd=spent.cost,
            attempts=row.attempts, model=spent.model,
        ))

    def _result(self, reused: int) -> MapResult:
        rows = [self._tally.results.get(item.index) or MapRowResult(index=item.index, skipped=True)
                for item in self.items]
        return MapResult(job_id=self.job_id, rows=rows, source=self.source, fields=[i.fields for i in self.items],
                         schema=self.schema, reused=reused, cost_usd=self._tally.spent, stopped=self._tally.stopped)

    def _progress(self, state: str = "running", *, question: str = "", question_id: str = "") -> None:
        if self.on_progress is None:
            return
        tally = self._tally
        answered = sum(1 for r in tally.results.values() if not r.error)
        try:
            self.on_progress(MapProgress(self.job_id, len(self.items), answered, tally.failed, self._reused,
                                         tally.spent, state, question, question_id))
        except Exception:  # noqa: BLE001 - a broken progress bar must not stop the job
            log.debug("map progress display failed", exc_info=True)

    async def _publish(self, event: Any) -> None:
        if self.bus is not None:
            await self.bus.publish(event)


class _Spend:
    """What the calls of one attempt cost (a structured answer may take two calls)."""

    def __init__(self) -> None:
        self.cost = 0.0
        self.input_tokens = 0
        self.output_tokens = 0
        self.text = ""
        self.model: str | None = None

    def add(self, response: Any) -> None:
        self.cost += response.cost_usd or 0.0
        self.input_tokens += response.usage.input_tokens
        self.output_tokens += response.usage.output_tokens
        self.text = response.text
        self.model = response.model or self.model


def _from_record(record: MapRowRecord) -> MapRowResult:
    return MapRowResult(index=record.row_index, text=record.text, value=record.value, cost_usd=record.cost_usd,
                        attempts=record.attempts, reused=True)


def _is_model_class(value: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(value, type) and issubclass(value, BaseModel)
