"""ConsumerHealth (consumer/health.py): what /readyz and the metrics say, and when."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from consumer.health import STATES, ConsumerHealth
from tests.unit.consumer.fakes import FakeClock


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def _with_lag(health: ConsumerHealth, lags: dict[int, int]) -> dict[int, int]:
    """Give ``health`` a lag source (the Kafka source's measurements), returned to be changed in place."""
    health.lag_source = lambda: dict(lags)
    return lags


@pytest.mark.parametrize("state", ["starting", "retrying", "fatal", "stopped"])
def test_only_a_running_consumer_is_ready(state):
    health = ConsumerHealth(stall_seconds=60, clock=FakeClock())
    assert health.report().state == "starting"
    health.running()
    assert health.report().ready
    if state == "starting":
        health = ConsumerHealth(stall_seconds=60, clock=FakeClock())
    else:
        {"retrying": lambda: health.retrying("engine unreachable"), "fatal": lambda: health.fatal("fenced"),
         "stopped": health.stopped}[state]()

    report = health.report()

    assert report.state == state and not report.ready


def test_a_running_consumer_with_lag_and_no_progress_for_stall_seconds_is_stalled():
    clock = FakeClock()
    health = ConsumerHealth(stall_seconds=60, clock=clock)
    health.running()
    health.progressed()
    _with_lag(health, {0: 5})

    clock.advance(59)
    assert health.report().ready and health.report().state == "running"

    clock.advance(2)
    report = health.report()
    assert (report.ready, report.state, report.lag) == (False, "stalled", 5)
    assert "5 message(s) waiting" in report.detail

    health.progressed()
    assert health.report().ready


def test_no_lag_is_never_a_stall():
    clock = FakeClock()
    health = ConsumerHealth(stall_seconds=60, clock=clock)
    health.running()
    health.progressed()
    _with_lag(health, {0: 0})
    clock.advance(3_600)
    assert health.report().ready


def test_a_backlog_at_start_is_a_stall_only_after_stall_seconds_without_progress():
    clock = FakeClock()
    health = ConsumerHealth(stall_seconds=60, clock=clock)
    health.running()
    _with_lag(health, {1: 3})
    assert health.report().state == "running"
    clock.advance(61)
    assert health.report().state == "stalled"


def test_progress_clears_retrying():
    health = ConsumerHealth(stall_seconds=60, clock=FakeClock())
    health.retrying("engine unreachable")
    assert health.report().state == "retrying"

    health.progressed()

    assert health.report().state == "running" and health.report().ready


def test_progress_does_not_revive_a_fatal_consumer():
    health = ConsumerHealth(stall_seconds=60, clock=FakeClock())
    health.fatal("fenced")
    health.progressed()
    assert health.report().state == "fatal" and not health.report().ready


def test_the_state_and_ready_gauges_follow_the_state():
    health = ConsumerHealth(stall_seconds=60, clock=FakeClock())

    health.running()
    assert _gauge("auditlog_consumer_ready") == 1
    assert {s: _gauge("auditlog_consumer_state", state=s) for s in STATES} == {
        "starting": 0, "running": 1, "retrying": 0, "fatal": 0, "stopped": 0}

    health.retrying("engine unreachable")
    assert _gauge("auditlog_consumer_ready") == 0
    assert _gauge("auditlog_consumer_state", state="retrying") == 1
    assert _gauge("auditlog_consumer_state", state="running") == 0

    health.fatal("fenced")
    assert _gauge("auditlog_consumer_ready") == 0
    assert _gauge("auditlog_consumer_state", state="fatal") == 1


def test_the_ready_gauge_drops_on_a_stall_without_a_readyz_call():
    clock = FakeClock()
    health = ConsumerHealth(stall_seconds=60, clock=clock)
    health.running()
    health.progressed()
    _with_lag(health, {0: 5})
    assert _gauge("auditlog_consumer_ready") == 1

    clock.advance(120)  # nobody asks /readyz: the gauge is computed when it is scraped
    assert health.report().state == "stalled"
    assert _gauge("auditlog_consumer_ready") == 0


def test_progress_is_timestamped():
    health = ConsumerHealth(stall_seconds=60, clock=FakeClock())
    before = _gauge("auditlog_consumer_last_progress_timestamp_seconds") or 0.0
    health.progressed()
    assert (_gauge("auditlog_consumer_last_progress_timestamp_seconds") or 0.0) >= max(before, 1.0)
