"""The consumer loop: poll, batch, store (on a flusher thread), commit, rebalance.

Contract:
- A batch closes at ``batch_max_events`` messages or ``batch_max_seconds``
  after its first message, whichever comes first.
- Offsets are committed only after the store acknowledged the batch and the
  dead-letter topic acknowledged its dead letters.
- A failing store is retried (consumer/retry.py) with the same batch while the
  loop takes no new batch; an outage longer than ``outage_max_seconds`` is fatal.
- Before partitions are revoked in a rebalance, the open batch is stored and
  committed.
- Setting ``stop`` (SIGTERM in ``auditlog consume``) finishes the open batch,
  commits it and returns ok.
- A fatal error (the group fenced this member, the store refuses this consumer,
  an outage too long) stops the loop; ``run`` returns it, and the command exits
  non-zero with it. The loop never keeps running idle: a member that lost its
  partitions and was given none again within ``rejoin_max_seconds`` (a group
  coordinator left unreachable by a hung broker) stops too.
- A crash anywhere re-delivers at most the uncommitted batches; the store finds
  their events by id and skips them.

The loop knows the broker, the store and the dead-letter topic only through
small interfaces (``Source``, ``BatchStore``, ``DeadLetterSink``), so its logic is
unit-tested with fakes while the integration tests use the real ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from consumer.batch import Batch, RawMessage
from consumer.dlq import DeadLetter
from consumer.errors import FatalError
from consumer.health import ConsumerHealth
from consumer.kafka import Source
from consumer.metrics import BATCH_SIZE, COMMITS, ROWS_INSERTED
from consumer.retry import RetryPolicy, Stopped
from consumer.store import StoreResult

logger = logging.getLogger(__name__)


class BatchStore(Protocol):
    def store(self, messages: Sequence[RawMessage], token: str) -> StoreResult: ...
    def close(self) -> None: ...


class DeadLetterSink(Protocol):
    def send(self, letter: DeadLetter) -> None: ...
    def flush(self, timeout: float = 30.0) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class RunResult:
    """How the loop ended: ok (stopped as asked), or why not; ``fatal`` if it could not go on."""

    ok: bool
    reason: str = ""
    fatal: bool = False

    def __bool__(self) -> bool:
        return self.ok


class ConsumerLoop:
    """Runs until ``stop`` is set or a fatal error; see the module docstring for the guarantees."""

    def __init__(self, *, source: Source, store: BatchStore, dead_letters: DeadLetterSink, retry: RetryPolicy,
                 health: ConsumerHealth, topic: str, batch_max_events: int, batch_max_seconds: float,
                 stop: threading.Event, rejoin_max_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._store = store
        self._dlq = dead_letters
        self._retry = retry
        self.health = health
        health.lag_source = source.lag
        self._topic = topic
        self._batch_max = batch_max_events
        self._batch_seconds = batch_max_seconds
        self._stop = stop
        self._clock = clock
        self._batch = Batch()
        self._assigned: set[int] = set()
        # When this member lost its last partitions without being given any since (None: it has some,
        # or the group gave it none, which is an assignment too). A member whose group coordinator
        # stays unreachable after a hung broker never rejoins, stores nothing and looks idle: after
        # ``rejoin_max_seconds`` that is fatal, so its supervisor starts a fresh member.
        self._rejoin_max = rejoin_max_seconds
        self._unassigned_since: float | None = None
        self._failure: str | None = None  # set once: the loop stops
        self._fatal = False
        self.stored_batches = 0
        # At most one sealed batch is being stored (by a flusher thread) while the next one fills:
        # consuming overlaps the engine's work, which runs without the GIL. Its offsets are committed
        # on the consume thread once it is stored (a synchronous commit from another thread blocks
        # while this one sits in poll()).
        self._inflight: threading.Thread | None = None
        self._inflight_batch: Batch | None = None
        self._inflight_error: BaseException | None = None

    def run(self) -> RunResult:
        """Consume until stopped (ok) or a fatal error (not ok, with the reason)."""
        self._source.subscribe(self._on_assign, self._on_revoke)
        logger.info("consumer_started topic=%s", self._topic)
        try:
            while not self._stop.is_set() and self._failure is None:
                self._poll_once()
            self._wait_inflight()
            if self._failure is None:
                self._store_open_batch()
        except FatalError as err:
            self._fail(str(err), fatal=True)
        finally:
            try:
                self._wait_inflight()
            except FatalError as err:
                self._fail(str(err), fatal=True)
            self._source.close()
            self._store.close()
            self._dlq.close()
            if self._fatal:
                self.health.fatal(self._failure or "")
            else:
                self.health.stopped()
            logger.log(logging.ERROR if self._failure else logging.INFO,
                       "consumer_stopped stored_batches=%d ok=%s reason=%s",
                       self.stored_batches, self._failure is None, self._failure or "")
        return RunResult(self._failure is None, self._failure or "", self._fatal)

    # -- loop ---------------------------------------------------------------

    def _poll_once(self) -> None:
        if self._inflight is not None and not self._inflight.is_alive():
            self._wait_inflight()
        now = self._clock()
        if self._unassigned_since is not None and now - self._unassigned_since > self._rejoin_max:
            self._fail(f"the consumer lost its partitions {now - self._unassigned_since:.0f}s ago and has not "
                       "rejoined the consumer group since (is the group coordinator reachable?); stopping so that a "
                       "fresh member joins. Nothing is lost: what was not committed is read again", fatal=True)
            return
        wanted = max(1, self._batch_max - len(self._batch))
        timeout = 0.2 if not self._batch.first else max(0.0, self._batch.opened_at + self._batch_seconds - now)
        messages = self._source.poll(min(wanted, 10_000), min(timeout, 0.2))
        # A rebalance inside poll() replaced the open batch, and may have revoked partitions whose
        # prefetched messages poll() still returned: those belong to their new owner now.
        batch = self._batch
        now = self._clock()
        for message in messages:
            if message[0] in self._assigned:
                batch.add(message, now)
        if not batch.first:
            if not messages and self._inflight is None and not any(self._source.lag().values()):
                self.health.progressed()  # nothing to do is progress too
            return
        if len(batch) >= self._batch_max or now - batch.opened_at >= self._batch_seconds:
            self._seal()

    def _seal(self) -> None:
        """Hand the open batch to a flusher thread, after the previous one is stored and committed."""
        self._wait_inflight()
        if self._failure is not None:
            return
        batch, self._batch = self._batch, Batch()
        self._inflight_batch = batch
        self._inflight_error = None

        def store() -> None:
            try:
                self._store_batch(batch)
            except BaseException as err:  # handed to the consume thread, which decides
                self._inflight_error = err

        self._inflight = threading.Thread(target=store, name="auditlog-flush", daemon=True)
        self._inflight.start()

    def _wait_inflight(self) -> None:
        """Wait for the batch being stored; commit it if it was stored, else stop the loop."""
        if self._inflight is None:
            return
        self._inflight.join()
        batch, error = self._inflight_batch, self._inflight_error
        self._inflight = self._inflight_batch = self._inflight_error = None
        if error is not None:
            self._handle_store_error(error)
        elif batch is not None:
            self._commit(batch)

    def _store_open_batch(self) -> None:
        """Store and commit the open batch on this thread (stop, rebalance)."""
        batch, self._batch = self._batch, Batch()
        try:
            self._store_batch(batch)
        except BaseException as err:
            self._handle_store_error(err)
            return
        self._commit(batch)

    def _handle_store_error(self, error: BaseException) -> None:
        if isinstance(error, Stopped):
            self._fail(f"stopped while the store was failing ({error}); the batch stays uncommitted", fatal=False)
        elif isinstance(error, FatalError):
            self._fail(str(error), fatal=True)
        else:
            self._fail(f"unexpected {type(error).__name__}: {error}", fatal=True)
            logger.error("store_crashed", exc_info=error)

    def _fail(self, reason: str, *, fatal: bool) -> None:
        if self._failure is None:
            self._failure = reason
            self._fatal = fatal
            if fatal:
                self.health.fatal(reason)
                logger.error("consumer_fatal reason=%s", reason)

    def _store_batch(self, batch: Batch) -> None:
        """Store ``batch`` and its dead letters (retried as one idempotent operation)."""
        if not batch.first:
            return
        token = batch.dedup_token(self._topic)

        def attempt() -> StoreResult:
            result = self._store.store(batch.raw, token)
            for (partition, offset, key, value), reason in result.dead_letters:
                self._dlq.send(DeadLetter(self._topic, partition, offset, key, value, reason))
            if result.dead_letters:
                self._dlq.flush()
            return result

        result = self._retry.run(attempt, "store a batch")
        ROWS_INSERTED.inc(result.stored)
        logger.debug("batch_stored messages=%d stored=%d skipped=%d dead_lettered=%d ranges=%s", len(batch),
                    result.stored, result.skipped, len(result.dead_letters),
                    {p: (batch.first[p], batch.last[p]) for p in sorted(batch.first)})

    def _commit(self, batch: Batch) -> None:
        """Commit the offsets of a stored batch (consume thread only)."""
        if not batch.first:
            return
        self._source.commit(batch.next_offsets())
        logger.debug("batch_committed offsets=%s", batch.next_offsets())
        COMMITS.inc()
        BATCH_SIZE.observe(batch.messages)
        self.stored_batches += 1
        self.health.progressed()
        self.health.running()

    # -- rebalance callbacks ---------------------------------------------------

    def _on_assign(self, partitions: list[int]) -> None:
        logger.info("partitions_assigned partitions=%s", partitions)
        self._assigned.update(partitions)
        self._unassigned_since = None
        if self._failure is None:
            self.health.running()

    def _on_revoke(self, partitions: list[int]) -> None:
        logger.info("partitions_revoked partitions=%s", partitions)
        try:
            self._wait_inflight()
            if self._failure is None:
                self._store_open_batch()
        except FatalError as err:
            self._fail(str(err), fatal=True)
        # Not stored: drop it; whoever gets the partitions re-reads it uncommitted.
        self._batch = Batch()
        self._assigned.difference_update(partitions)
        if not self._assigned and self._unassigned_since is None:
            self._unassigned_since = self._clock()
