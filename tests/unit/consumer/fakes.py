"""In-memory stand-ins for what the consumer loop is given (arroyo's LocalBroker and MockedClock, in small).

``FakeSource`` plays a group member the way librdkafka does: rebalance callbacks run
*inside* ``poll()``, and a poll that revokes partitions may still return the messages it
had prefetched for them. Every call that matters (stores, dead letters, flushes, commits,
the end of a revoke) is appended to one shared ``log``, so a test can assert the order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from consumer.batch import RawMessage
from consumer.dlq import DeadLetter
from consumer.errors import DeadLetterFailed, KafkaFatal
from consumer.health import ConsumerHealth
from consumer.kafka import PartitionsCallback
from consumer.loop import ConsumerLoop
from consumer.retry import RetryPolicy
from consumer.store import StoreResult

TOPIC = "audit-events"


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def message(partition: int, offset: int) -> RawMessage:
    return (partition, offset, f"k{partition}".encode(), f"p{partition}o{offset}".encode())


@dataclass
class Poll:
    """One call of ``poll()``: rebalance inside it, then up to ``take`` new messages per assigned partition.

    ``revoke``: partitions revoked inside this poll; the messages prefetched for them (``stale``
    of each, from its position) are still returned, as librdkafka returns what it had queued.
    ``assign``: partitions assigned inside this poll (read from their committed offset).
    ``advance``: seconds the fake clock moves at the start of the poll.
    ``fatal``: raise KafkaFatal with this reason instead.
    ``wait_for``: block (up to 5 s) until this holds, then return nothing.
    """

    take: int = 0
    revoke: Sequence[int] = ()
    assign: Sequence[int] = ()
    stale: int = 3
    advance: float = 0.0
    fatal: str | None = None
    wait_for: Callable[[], bool] | None = None


@dataclass
class FakeSource:
    """In-memory partitions (``sizes[p]`` messages each, offsets from 0) read by a script of polls.

    When the script is done, ``stop`` is set (like SIGTERM), unless ``stop_when_done`` is false:
    then polls return nothing until the loop stops by itself.
    """

    sizes: dict[int, int]
    script: list[Poll]
    stop: threading.Event
    log: list[tuple[Any, ...]] = field(default_factory=list)
    clock: FakeClock | None = None
    stop_when_done: bool = True
    lags: dict[int, int] = field(default_factory=dict)
    on_poll: Callable[[], None] | None = None
    assigned: set[int] = field(default_factory=set)
    committed: dict[int, int] = field(default_factory=dict)
    commits: list[dict[int, int]] = field(default_factory=list)
    closed: bool = False
    _position: dict[int, int] = field(default_factory=dict)
    _on_assign: PartitionsCallback | None = None
    _on_revoke: PartitionsCallback | None = None

    def subscribe(self, on_assign: PartitionsCallback, on_revoke: PartitionsCallback) -> None:
        self._on_assign, self._on_revoke = on_assign, on_revoke

    def poll(self, max_messages: int, timeout: float) -> list[RawMessage]:
        assert self._on_assign is not None and self._on_revoke is not None, "poll() before subscribe()"
        if self.on_poll is not None:
            self.on_poll()
        if not self.script:
            if self.stop_when_done:
                self.stop.set()
            else:
                time.sleep(0.001)
            return []
        step = self.script.pop(0)
        if self.clock is not None:
            self.clock.advance(step.advance)
        if step.fatal is not None:
            raise KafkaFatal(f"the Kafka consumer cannot go on: {step.fatal}")
        if step.wait_for is not None:
            deadline = time.monotonic() + 5
            while not step.wait_for() and time.monotonic() < deadline:
                time.sleep(0.001)
            return []
        out: list[RawMessage] = []
        revoked = sorted(set(step.revoke) & self.assigned)
        for p in revoked:  # prefetched before the revoke, returned after it
            out += self._read(p, step.stale)
        if revoked:
            self._on_revoke(revoked)
            self.log.append(("revoked", tuple(revoked)))
            self.assigned.difference_update(revoked)
            for p in revoked:
                del self._position[p]
        assigned = sorted(set(step.assign) - self.assigned - set(revoked))
        if assigned:
            self.assigned.update(assigned)
            for p in assigned:
                self._position[p] = self.committed.get(p, 0)
            self._on_assign(assigned)
        for p in sorted(self.assigned):  # what is not returned now stays queued, as in librdkafka
            out += self._read(p, min(step.take, max_messages - len(out)))
        return out

    def _read(self, partition: int, count: int) -> list[RawMessage]:
        count = max(0, count)
        start = self._position[partition]
        end = min(start + count, self.sizes[partition])
        self._position[partition] = end
        return [message(partition, o) for o in range(start, end)]

    def commit(self, offsets: dict[int, int]) -> None:
        self.log.append(("commit", dict(offsets)))
        self.commits.append(dict(offsets))
        self.committed.update(offsets)

    def lag(self) -> dict[int, int]:
        return dict(self.lags)

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeStore:
    """Stores in memory. ``failures``: exceptions raised by the first calls, in order.

    ``dead``: (partition, offset) pairs the store refuses as poison (returned as dead letters).
    """

    log: list[tuple[Any, ...]]
    failures: list[BaseException] = field(default_factory=list)
    dead: set[tuple[int, int]] = field(default_factory=set)
    on_call: Callable[[int], None] | None = None
    calls: list[tuple[list[RawMessage], str]] = field(default_factory=list)
    stored: list[RawMessage] = field(default_factory=list)
    closed: bool = False

    def store(self, messages: Sequence[RawMessage], token: str) -> StoreResult:
        self.calls.append((list(messages), token))
        if self.on_call is not None:
            self.on_call(len(self.calls))
        if self.failures:
            raise self.failures.pop(0)
        result = StoreResult()
        for m in messages:
            if (m[0], m[1]) in self.dead:
                result.dead_letters.append((m, "InvalidEvent: refused by the fake store"))
            else:
                self.stored.append(m)
                result.stored += 1
        self.log.append(("stored", token, tuple((m[0], m[1]) for m in messages)))
        return result

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeDeadLetters:
    """A dead-letter topic in memory; the first ``flush_failures`` flushes fail as a broker would."""

    log: list[tuple[Any, ...]]
    flush_failures: int = 0
    sent: list[DeadLetter] = field(default_factory=list)

    def send(self, letter: DeadLetter) -> None:
        self.sent.append(letter)
        self.log.append(("dead_letter", letter.partition, letter.offset))

    def flush(self, timeout: float = 30.0) -> None:
        if self.flush_failures:
            self.flush_failures -= 1
            self.log.append(("flush_failed",))
            raise DeadLetterFailed("the dead-letter topic did not take 1 message(s)")
        self.log.append(("flushed",))

    def close(self) -> None:
        self.closed = True


def make_loop(source: FakeSource, store: FakeStore, dead_letters: FakeDeadLetters | None = None, *,
              batch_max_events: int = 100, batch_max_seconds: float = 3600.0, clock: FakeClock | None = None,
              health: ConsumerHealth | None = None, give_up_after: float = 60.0,
              rejoin_max_seconds: float = 120.0) -> ConsumerLoop:
    """A loop over the fakes with a real RetryPolicy (millisecond backoff) and a real ConsumerHealth."""
    clock = clock or source.clock or FakeClock()
    health = health or ConsumerHealth(stall_seconds=60, clock=clock)
    retry = RetryPolicy(initial=0.001, max_delay=0.002, give_up_after=give_up_after, stop=source.stop,
                        health=health)
    return ConsumerLoop(source=source, store=store, dead_letters=dead_letters or FakeDeadLetters(source.log),
                        retry=retry, health=health, topic=TOPIC, batch_max_events=batch_max_events,
                        batch_max_seconds=batch_max_seconds, stop=source.stop,
                        rejoin_max_seconds=rejoin_max_seconds, clock=clock)
