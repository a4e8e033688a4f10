"""RetryPolicy (consumer/retry.py): backoff, giving up, stopping, and what it never retries."""

from __future__ import annotations

import threading

import pytest

from consumer.errors import FatalError, StoreMisconfigured, StoreOutageTooLong, StoreUnavailable
from consumer.health import ConsumerHealth
from consumer.retry import RetryPolicy, Stopped
from tests.unit.consumer.fakes import FakeClock


class FakeStop(threading.Event):
    """A stop event whose waits take no real time: each moves the fake clock and is recorded."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0))
        self.clock.advance(float(timeout or 0))
        return self.is_set()


class Failing:
    """An operation that raises ``error`` for its first ``times`` calls, then returns ``"done"``."""

    def __init__(self, error: Exception, times: int) -> None:
        self.error, self.times, self.calls = error, times, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return "done"


def _policy(clock: FakeClock, stop: threading.Event, *, initial: float = 1.0, max_delay: float = 8.0,
            give_up_after: float = 1_000.0) -> tuple[RetryPolicy, ConsumerHealth]:
    health = ConsumerHealth(stall_seconds=60, clock=clock)
    return RetryPolicy(initial=initial, max_delay=max_delay, give_up_after=give_up_after, stop=stop,
                       health=health, clock=clock), health


def test_backoff_doubles_from_initial_up_to_max_delay():
    clock = FakeClock()
    stop = FakeStop(clock)
    policy, _ = _policy(clock, stop, initial=1.0, max_delay=8.0)
    operation = Failing(StoreUnavailable("engine unreachable"), times=6)

    assert policy.run(operation, "store a batch") == "done"

    assert stop.waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert operation.calls == 7


def test_an_outage_longer_than_give_up_after_is_fatal():
    clock = FakeClock()
    stop = FakeStop(clock)
    policy, health = _policy(clock, stop, initial=1.0, max_delay=4.0, give_up_after=10.0)
    operation = Failing(StoreUnavailable("engine unreachable"), times=1_000)

    with pytest.raises(StoreOutageTooLong, match=r"for 11s .*engine unreachable") as raised:
        policy.run(operation, "store a batch")

    assert isinstance(raised.value, FatalError)
    # Failures at t=0, 1, 3, 7 are retried (under 10 s of outage); the one at t=11 gives up.
    assert stop.waits == [1.0, 2.0, 4.0, 4.0]
    assert operation.calls == 5
    assert health.report().state == "retrying"


def test_a_stop_request_ends_the_retries_with_stopped():
    clock = FakeClock()
    stop = FakeStop(clock)
    policy, _ = _policy(clock, stop)
    operation = Failing(StoreUnavailable("engine unreachable"), times=1_000)
    real_call = operation.__call__

    def stop_on_third_call() -> str:
        if operation.calls == 2:
            stop.set()
        return real_call()

    with pytest.raises(Stopped, match="store a batch"):
        policy.run(stop_on_third_call, "store a batch")

    assert operation.calls == 3
    assert len(stop.waits) == 3  # the wait after the third failure saw the stop


@pytest.mark.parametrize("error", [StoreMisconfigured("read-only user"), ValueError("a bug")])
def test_errors_that_are_not_transient_propagate_at_once(error):
    clock = FakeClock()
    stop = FakeStop(clock)
    policy, health = _policy(clock, stop)
    operation = Failing(error, times=1)

    with pytest.raises(type(error)):
        policy.run(operation, "store a batch")

    assert operation.calls == 1
    assert stop.waits == []
    assert health.report().state == "starting"  # never said "retrying"


def test_retrying_is_reported_to_health_while_the_operation_fails():
    clock = FakeClock()
    stop = FakeStop(clock)
    policy, health = _policy(clock, stop)
    states: list[str] = []
    operation = Failing(StoreUnavailable("engine unreachable"), times=2)

    def observed() -> str:
        states.append(health.report().state)
        return operation()

    policy.run(observed, "store a batch")

    assert states == ["starting", "retrying", "retrying"]
    assert "engine unreachable" in health.report().detail
