"""An engine worker: runs the commands of the sessions in the partitions it holds.

    worker = Worker(redis, SessionHub(store, model="scripted"), concurrency=8)
    await worker.run(stop)          # until ``stop`` is set; then it hands its partitions back

The worker is a ``SessionHub`` (engines, approvals, numbered event streams:
the same code as one process) with Redis around it:

- **Partitions** (``partitions.py``): it holds a lease on some of the command
  streams and reads only those, in the consumer group; a session's commands
  are therefore handled by one worker at a time, in the order they were sent.
- **Turns** (``SendMessage``, ``RetryTurn``) of a session run one after the
  other; turns of different sessions run concurrently, up to ``concurrency``.
  Other commands (cancel, decide, answer ...) run at once, so they reach a
  turn that is running.
- **Once**: a command's result is recorded (``done:<id>``), sent back and the
  entry acknowledged in one script that first checks the partition's lease is
  still this worker's (fencing: a worker that lost it answers nothing); a
  redelivered command answers with the recorded result, and a copy read while
  its command is queued or running here waits for that run's answer.  A turn a dead worker
  started (``started:<id>`` names its user message, written before that
  message is stored) is answered from the store when it ended there, else
  resumed from the store as a retry of that message, not run as a new one.
- **One runner**: a turn marks its session (``runner:<session>``); a worker
  that lost a lease mid-turn goes on with that turn, so the partition's new
  holder waits for the mark to go (or its worker's heartbeat to stop) before
  it opens the session (which would take the turn for cut) or runs a turn.
- **Fenced store writes**: every lease comes with a fencing token that only
  grows; the worker writes a session with its partition's token, and claims
  the session with it before reading it (``_open``).  A worker that was
  frozen past its lease (its heartbeat gone, so the new holder did not wait
  for it) wakes up to find its writes of the session refused (``Fenced``,
  ``store/fencing.py``): it stops that command quietly, answers nothing and
  hands the partition back (``fences.py``).
- **Events**: each opened session's numbered events (written to the store
  first by ``SessionStreams``) go to the session's event stream, trimmed to
  about ``events_kept`` entries.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import deque
from typing import Any

from ..engine.commands import RetryTurn, SendMessage
from ..engine.events import TurnStarted
from ..messages import Command, CommandResult, Message
from ..server.hub import SessionHub
from ..server.recovery import WORKER_STOPPED_REASON, stored_outcome
from ..store import Fenced, StoreError
from .fences import PartitionFences
from .forwarder import EventForwarder
from .keys import GROUP, Keys
from .leases import CLAIM_RUNNER, FENCED_FINISH
from .partitions import Partitions
from .redis_transport import RESULTS_KEPT, RESULTS_TTL_S, retrying

__all__ = ["Worker", "DONE_TTL_S"]

log = logging.getLogger("llmgine_nb.distributed.worker")

#: How long a handled command's result is kept to answer a redelivered copy (seconds).
DONE_TTL_S = 24 * 3600

TURN_COMMANDS = (SendMessage, RetryTurn)


class Worker:
    """Reads the command streams it holds leases on and runs the commands on its hub."""

    def __init__(
        self, redis: Any, hub: SessionHub, *, keys: Keys | None = None, worker_id: str | None = None,
        concurrency: int = 8, lease_ms: int = 5000, events_kept: int = 1000, backlog: int = 1000,
        lease_client: Any = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1 (turns of different sessions run at once)")
        self.redis = redis
        self.hub = hub
        hub.cut_reason = WORKER_STOPPED_REASON  # a turn found cut here was cut by a worker that stopped
        self.keys = keys or Keys()
        # Host and process in the id: an operator (or a fault test) can tell which process holds what.
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._backlog = asyncio.Semaphore(backlog)
        self.lease_ms = lease_ms
        # ``lease_client``: the synchronous redis-py client the lease thread uses (default: one like ``redis``).
        self.partitions = Partitions(redis, self.keys, self.id, lease_ms, self._dispatch, self._partition_released,
                                     lease_client)
        self._fenced_finish = redis.register_script(FENCED_FINISH)
        self._claim_runner = redis.register_script(CLAIM_RUNNER)
        self.partitions.busy = self.busy
        self.fences = PartitionFences(self.keys, self.partitions)
        hub.store.fencing = self.fences  # this worker's writes of a session carry its partition's token
        self.forwarder = EventForwarder(redis, self.keys, hub.streams, events_kept)
        self._turns: dict[str, deque[tuple[int, str, Command, str]]] = {}  # session -> turns waiting
        self._turn_runners: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[int, set[str]] = {}  # partition -> entry ids being handled
        self._running_command: dict[str, str] = {}  # session -> id of the turn command it runs
        # Command id -> the other copies of it read while it is queued or running: (partition, entry, reply_to).
        self._copies: dict[str, list[tuple[int, str, str]]] = {}
        self.handled = 0  # commands run
        self.answered_again = 0  # redelivered commands answered with their recorded result
        self.fenced = 0  # results not sent: the partition's lease (or the session, in the store) went to another worker
        self._registration = hub.bus.subscribe(TurnStarted, self._on_turn_started)

    # -- running ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish what is in flight and hand the partitions back."""
        await self.partitions.start()
        try:
            await stop.wait()
        finally:
            await self.partitions.stop()
            await self._wait_in_flight()
            await self.partitions.release_all()
            await self.forwarder.close()
            self._registration.unregister()

    async def _wait_in_flight(self) -> None:
        while self._tasks or self._turn_runners:
            await asyncio.gather(*self._tasks, *self._turn_runners.values(), return_exceptions=True)

    def busy(self, partition: int) -> bool:
        return bool(self._in_flight.get(partition))

    # -- dispatch -------------------------------------------------------------------

    async def _dispatch(self, partition: int, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Entries of a command stream, in order: each answered again, queued as a turn, or run now."""
        in_flight = self._in_flight.setdefault(partition, set())
        readable = []
        for entry_id, fields in entries:
            if entry_id in in_flight:
                continue  # claimed again while we still run it
            command = await self._read_command(partition, entry_id, fields)
            if command is None:
                continue
            reply_to = fields.get("reply_to", "")
            if command.id in self._copies:
                # Another copy (a sender that sent again, unsure the first went) is queued or running
                # here: this one gets that run's answer, it does not run again.
                in_flight.add(entry_id)
                self._copies[command.id].append((partition, entry_id, reply_to))
                continue
            # Registered before the look-up below: a copy read from now on waits for this one, and one
            # that finished before it was recorded first, so the look-up finds it.
            self._copies[command.id] = []
            readable.append((entry_id, command, reply_to))
        if not readable:
            return
        # One look-up for the whole read: a busy worker reads many entries at a time.
        done_keys = [self.keys.done(command.id) for _, command, _ in readable]
        try:
            recorded_results = await retrying("look up recorded results", lambda: self.redis.mget(done_keys))
        except BaseException:
            for _, command, _ in readable:
                self._copies.pop(command.id, None)
            raise
        for done, ((entry_id, command, reply_to), recorded) in enumerate(zip(readable, recorded_results)):
            try:
                if recorded is not None:  # handled already: a redelivery gets the same answer
                    self.answered_again += 1  # counted before the answer goes: its sender may look at once
                    try:
                        await self._finish(partition, entry_id, reply_to, recorded, record=False)
                    finally:
                        await self._answer_copies(command.id, recorded)
                else:
                    await self._start(partition, entry_id, command, reply_to)
            except BaseException:
                # Stopped here (the partition's reader cancelled, Redis away too long): what this read
                # registered and did not start is left pending, for whoever claims it next.
                for _, unstarted, _ in readable[done + 1:]:
                    self._drop_copies(unstarted.id)
                if recorded is None and command.id in self._copies and entry_id not in in_flight:
                    self._drop_copies(command.id)
                raise

    async def _read_command(self, partition: int, entry_id: str, fields: dict[str, str]) -> Command | None:
        try:
            command = Message.from_json(fields["command"])
            if not isinstance(command, Command):
                raise TypeError(f"a {type(command).__name__} is not a command")
            return command
        except (KeyError, ValueError, TypeError, LookupError) as exc:
            stream = self.keys.commands(partition)
            log.error("dropped entry %s of %s: not a command this worker can read (%s)", entry_id, stream, exc)
            await retrying("acknowledge an unreadable entry", lambda: self.redis.xack(stream, GROUP, entry_id))
            return None

    async def _start(self, partition: int, entry_id: str, command: Command, reply_to: str) -> None:
        """Queue a turn behind its session's others, or run another command at once."""
        in_flight = self._in_flight.setdefault(partition, set())
        await self._backlog.acquire()
        in_flight.add(entry_id)
        session_id = command.session_id
        if isinstance(command, TURN_COMMANDS) and session_id:
            self._turns.setdefault(session_id, deque()).append((partition, entry_id, command, reply_to))
            if session_id not in self._turn_runners:
                self._turn_runners[session_id] = asyncio.ensure_future(self._run_turns(session_id))
        else:
            task = asyncio.ensure_future(self._handle(partition, entry_id, command, reply_to))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_turns(self, session_id: str) -> None:
        """A session's turns, one after the other (each waits for a free slot)."""
        queue = self._turns[session_id]
        try:
            while queue:
                partition, entry_id, command, reply_to = queue.popleft()
                async with self._slots:
                    await self._handle(partition, entry_id, command, reply_to)
        finally:
            self._turns.pop(session_id, None)
            self._turn_runners.pop(session_id, None)

    async def _handle(self, partition: int, entry_id: str, command: Command, reply_to: str) -> None:
        if not await self.partitions.still_held(partition):
            # Not begun, and the lease is gone: the new holder claims the entry and runs it (not both of us);
            # its copies too.
            self._in_flight.get(partition, set()).discard(entry_id)
            self._drop_copies(command.id)
            self._backlog.release()
            return
        turn_of = command.session_id if isinstance(command, TURN_COMMANDS) else None
        fenced = False
        try:
            result = await self._execute(command)
        except Fenced:
            fenced = True  # refused while opening the session (the engine's turn ends with a result)
        except Exception as exc:  # a bug or a broken store: the sender gets a sentence, the entry is done
            log.exception("command %s (%s) failed in the worker", command.id, type(command).__name__)
            result = CommandResult(command_id=command.id, command_type=command.type_name,
                                   session_id=command.session_id, success=False,
                                   error=f"the worker could not run {type(command).__name__}: {type(exc).__name__}: {exc}")
        if fenced or (command.session_id and self.fences.is_fenced(command.session_id)):
            await self._let_go(partition, entry_id, command, turn_of)
            return
        self.handled += 1  # counted before the result goes: its sender may look at once
        result_json = result.to_json()
        try:
            await self._finish(partition, entry_id, reply_to, result_json, record=True, command_id=command.id,
                               turn_of=turn_of)
        except BaseException:
            self._drop_copies(command.id)
            raise
        finally:
            self._in_flight.get(partition, set()).discard(entry_id)
            self._backlog.release()
        await self._answer_copies(command.id, result_json)

    async def _let_go(self, partition: int, entry_id: str, command: Command, turn_of: str | None) -> None:
        """The store refused this worker's writes of the command's session: another worker holds it now.
        Stop without answering nor acknowledging (the partition's new holder claims the entry, and its
        copies, and answers)."""
        self.fenced += 1
        self._drop_copies(command.id)
        log.warning("worker %s was fenced out of session %s (partition %d has a newer holder); it stops command "
                    "%s (%s) without answering", self.id, command.session_id, partition, command.id,
                    type(command).__name__)
        try:
            if turn_of is not None:  # our turn is over: the mark is ours to remove (if it is still ours)
                runner = self.keys.runner(turn_of)
                await retrying("remove the runner mark", lambda: self.partitions.leases.release(runner))
        finally:
            self._in_flight.get(partition, set()).discard(entry_id)
            self._backlog.release()

    def _drop_copies(self, command_id: str) -> None:
        """Leave a command's copies unanswered and pending: whoever claims them next answers them."""
        for partition, entry_id, _ in self._copies.pop(command_id, []):
            self._in_flight.get(partition, set()).discard(entry_id)

    async def _answer_copies(self, command_id: str, result_json: str) -> None:
        """Answer the copies of a command read while it ran with its result (it is recorded by now)."""
        copies = self._copies.pop(command_id, [])
        try:
            for partition, entry_id, reply_to in copies:
                self.answered_again += 1
                await self._finish(partition, entry_id, reply_to, result_json, record=False)
        finally:  # one that could not be answered stays pending, for whoever claims it next
            for partition, entry_id, _ in copies:
                self._in_flight.get(partition, set()).discard(entry_id)

    async def _execute(self, command: Command) -> CommandResult:
        session_id = command.session_id
        if not session_id:
            return await self.hub.bus.execute(command)
        turn = isinstance(command, TURN_COMMANDS)
        started_mark = None
        if turn or session_id not in self.hub.engines:
            started_mark = await self._wait_for_other_runner(session_id, command.id, claim=turn)
        resumed = await self._open(session_id)
        if not turn:
            return await self.hub.bus.execute(command)
        started = self._started_before(started_mark) if isinstance(command, SendMessage) else None
        started_before = started is not None
        if resumed is not None:
            # Opening found a turn cut with tool calls unanswered, and the hub resumed it.
            await asyncio.wait({resumed})
            if started_before:
                return _answering(command, resumed.result())
        if started is not None:
            # Its worker stored the turn's end and stopped before the result reached Redis: that is the answer.
            outcome = stored_outcome(self.hub.store, session_id, started)
            if outcome is not None:
                return CommandResult(command_id=command.id, command_type=command.type_name, session_id=session_id,
                                     success=True, result=outcome)
        to_run: Command = RetryTurn(session_id=session_id) if started_before else command
        self._running_command[session_id] = command.id
        try:
            result = await self.hub.bus.execute(to_run)
        finally:
            self._running_command.pop(session_id, None)
        # A turn a dead worker started: its user message is stored, so it was retried from the store.
        return result if to_run is command else _answering(command, result)

    async def _open(self, session_id: str) -> asyncio.Task[CommandResult] | None:
        """Open the session here; the turn the hub resumed on opening it, if it did and it still runs.

        (``hub.turns`` holds running turns only: a resumed turn that ended within ``open`` is found
        by its stored outcome, as the caller does for any turn that ended before its answer was sent.)
        """
        if session_id in self.hub.engines:
            return None
        # The hub may have unloaded an idle engine (its stream ended): follow afresh, before opening,
        # so a resumed turn's first events are forwarded too.
        await self.forwarder.unfollow(session_id)
        self.forwarder.follow(session_id)
        # Before anything of the session is read: from now on a worker that held the partition before
        # (frozen past its lease, say) cannot write the session (``Fenced``) while we run it from what we read.
        self.hub.store.claim_fence(session_id)
        before = self.hub.turns.get(session_id)
        await self.hub.open(session_id)
        after = self.hub.turns.get(session_id)
        return after if after is not None and after is not before else None

    def _started_before(self, message_id: str | None) -> str | None:
        """The stored user message a turn of this command stored before (a worker now dead, or fenced out)."""
        if message_id is None:
            return None
        try:
            self.hub.store.get_message(message_id)
        except StoreError:  # no such message (the store says so with its own error)
            return None  # it stopped before storing the message: run the turn as new
        return message_id

    async def _wait_for_other_runner(self, session_id: str, command_id: str, *, claim: bool) -> str | None:
        """Wait while another live worker runs a turn of the session (it lost the lease mid-turn); then,
        with ``claim``, mark the session as ours to run.  The command's started mark, if it has one."""
        keys = [self.keys.runner(session_id), self.keys.started(command_id)]
        args = [self.id, self.keys.worker(""), DONE_TTL_S, "1" if claim else "0"]
        waited = False
        while True:
            other, started = await retrying("mark the session's runner",
                                            lambda: self._claim_runner(keys=keys, args=args))
            if not other:
                return started or None
            if not waited:
                log.warning("worker %s waits for worker %s to end its turn of session %s", self.id, other, session_id)
                waited = True
            await asyncio.sleep(min(0.2, self.lease_ms / 3000))

    async def _on_turn_started(self, event: TurnStarted) -> None:
        # Awaited before the engine stores the user message: a redelivery can tell the two apart.
        command_id = self._running_command.get(event.session_id or "")
        if command_id is not None:
            key = self.keys.started(command_id)
            await retrying("record a started turn", lambda: self.redis.set(key, event.user_message_id, ex=DONE_TTL_S))

    async def _finish(self, partition: int, entry_id: str, reply_to: str, result_json: str, *,
                      record: bool, command_id: str = "", turn_of: str | None = None) -> None:
        """Record the result, send it back and acknowledge the entry: all or nothing, and only while the
        partition's lease is still ours (else its new holder claims the entry and answers it)."""
        keys = [self.keys.partition_lease(partition), self.keys.done(command_id or "-"),
                self.keys.results(reply_to or "-"), self.keys.commands(partition), self.keys.runner(turn_of or "-")]
        args = [self.id, self.lease_ms, result_json, DONE_TTL_S, "1" if record else "0", "1" if reply_to else "0",
                RESULTS_KEPT, RESULTS_TTL_S, entry_id, GROUP, "1" if turn_of else "0"]
        written = await retrying("send a result", lambda: self._fenced_finish(keys=keys, args=args), patience_s=3600)
        if not written:
            self.fenced += 1
            log.warning("worker %s lost partition %d before answering command %s; its new holder answers it",
                        self.id, partition, command_id or entry_id)

    # -- partitions handed back ---------------------------------------------------------

    async def _partition_released(self, partition: int) -> None:
        """Close the partition's sessions: their next owner loads them from the store."""
        for session_id in [s for s in self.hub.engines if self.keys.partition_of(s) == partition]:
            try:
                await self.hub.close_session(session_id)
            except StoreError as exc:  # fenced out (a newer holder writes it): closing writes nothing of ours
                log.warning("worker %s: closing session %s: %s", self.id, session_id, exc)
            await self.forwarder.unfollow(session_id)



def _answering(command: Command, result: CommandResult) -> CommandResult:
    """``result`` as the answer to ``command`` (it came from the retry that resumed it)."""
    return result.model_copy(update={"command_id": command.id, "command_type": command.type_name})
