"""The consumer loop's guarantees (consumer/loop.py), proven with fakes: no broker, no engine."""

from __future__ import annotations

import threading
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.errors import StoreMisconfigured, StoreUnavailable
from tests.unit.consumer.fakes import (
    TOPIC,
    FakeClock,
    FakeDeadLetters,
    FakeSource,
    FakeStore,
    Poll,
    make_loop,
    message,
)


def _source(sizes: dict[int, int], script: list[Poll], **kwargs) -> FakeSource:
    return FakeSource(sizes=sizes, script=script, stop=threading.Event(), **kwargs)


def _stored_offsets(store: FakeStore, partition: int) -> list[int]:
    return [o for p, o, _k, _v in store.stored if p == partition]


# -- commits --------------------------------------------------------------------


def test_offsets_are_committed_only_after_the_store_returned_with_the_next_offset_per_partition():
    source = _source({0: 7, 1: 7}, [Poll(assign=[0, 1]), *[Poll(take=3) for _ in range(6)]])
    store = FakeStore(source.log)
    loop = make_loop(source, store, batch_max_events=4)

    assert loop.run().ok

    assert source.commits, "nothing was committed"
    stored_so_far: dict[int, int] = {}
    for entry in source.log:
        if entry[0] == "stored":
            for p, o in entry[2]:
                stored_so_far[p] = max(stored_so_far.get(p, -1), o)
        elif entry[0] == "commit":
            # Every committed offset is one past a message the store already took.
            assert entry[1] == {p: stored_so_far[p] + 1 for p in entry[1]}
    assert source.committed == {0: 7, 1: 7}
    assert sorted(_stored_offsets(store, 0)) == list(range(7)) == sorted(_stored_offsets(store, 1))


def test_a_batch_closes_at_batch_max_events():
    source = _source({0: 12}, [Poll(assign=[0]), *[Poll(take=1) for _ in range(12)]])
    store = FakeStore(source.log)

    assert make_loop(source, store, batch_max_events=5).run().ok

    assert [len(messages) for messages, _ in store.calls] == [5, 5, 2]
    assert source.commits == [{0: 5}, {0: 10}, {0: 12}]


def test_a_batch_closes_batch_max_seconds_after_its_first_message():
    clock = FakeClock()
    source = _source({0: 10}, [Poll(assign=[0]), *[Poll(take=1, advance=1.0) for _ in range(10)]], clock=clock)
    store = FakeStore(source.log)

    assert make_loop(source, store, batch_max_events=100, batch_max_seconds=3.0).run().ok

    # Opened at the first message (t=1), sealed by the poll at t=4; the rest is flushed on stop.
    assert [len(messages) for messages, _ in store.calls] == [4, 4, 2]
    assert source.committed == {0: 10}


def test_stop_with_an_open_batch_stores_and_commits_it():
    source = _source({0: 7}, [Poll(assign=[0]), Poll(take=4), Poll(take=3)])
    store = FakeStore(source.log)

    result = make_loop(source, store, batch_max_events=100).run()

    assert result.ok and not result.fatal and result.reason == ""
    assert [len(messages) for messages, _ in store.calls] == [7]
    assert source.commits == [{0: 7}]
    assert source.closed and store.closed


# -- rebalance ------------------------------------------------------------------


def test_a_revoke_inside_poll_stores_and_commits_the_open_batch_before_it_returns():
    source = _source({0: 10, 1: 10}, [Poll(assign=[0, 1]), Poll(take=3), Poll(take=3, revoke=[1], stale=3)])
    store = FakeStore(source.log)

    assert make_loop(source, store, batch_max_events=100).run().ok

    revoked_at = source.log.index(("revoked", (1,)))
    before = source.log[:revoked_at]
    assert [e[0] for e in before] == ["stored", "commit"]
    assert before[1] == ("commit", {0: 3, 1: 3})


def test_messages_poll_returns_for_revoked_partitions_are_left_to_their_new_owner():
    source = _source({0: 10, 1: 10}, [Poll(assign=[0, 1]), Poll(take=3), Poll(take=3, revoke=[1], stale=3)])
    store = FakeStore(source.log)

    assert make_loop(source, store, batch_max_events=100).run().ok

    assert _stored_offsets(store, 1) == [0, 1, 2]  # 3..5 came back from poll() after the revoke
    assert source.committed[1] == 3  # the new owner starts at 3


def test_messages_of_still_assigned_partitions_returned_by_a_revoking_poll_are_stored():
    source = _source({0: 10, 1: 10}, [Poll(assign=[0, 1]), Poll(take=3), Poll(take=3, revoke=[1], stale=3)])
    store = FakeStore(source.log)

    assert make_loop(source, store, batch_max_events=100).run().ok

    assert _stored_offsets(store, 0) == [0, 1, 2, 3, 4, 5]
    assert source.committed[0] == 6


_steps = st.lists(
    st.tuples(
        st.integers(0, 4),  # messages per assigned partition
        st.sets(st.integers(0, 2), max_size=2),  # revoked inside the poll
        st.sets(st.integers(0, 2), max_size=3),  # assigned inside the poll
        st.integers(0, 4),  # prefetched messages poll() still returns for each revoked partition
        st.sampled_from([0.0, 0.0, 0.5, 2.0]),  # clock
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=st.sets(st.integers(0, 2), min_size=1), steps=_steps, batch_max=st.integers(1, 6))
def test_random_rebalances_inside_poll_store_every_message_once_in_order_without_gaps(initial, steps, batch_max):
    sizes = {0: 25, 1: 25, 2: 25}
    script = [Poll(assign=sorted(initial))] + [
        Poll(take=take, revoke=sorted(revoke), assign=sorted(assign), stale=stale, advance=advance)
        for take, revoke, assign, stale, advance in steps
    ]
    source = _source(sizes, script, clock=FakeClock())
    store = FakeStore(source.log)

    result = make_loop(source, store, batch_max_events=batch_max, batch_max_seconds=1.0).run()

    assert result.ok, result.reason
    for p in sizes:
        committed = source.committed.get(p, 0)
        # Up to the final committed offset: every message, in order, exactly once.
        assert _stored_offsets(store, p) == list(range(committed)), p
    for earlier, later in zip(source.commits, source.commits[1:], strict=False):
        assert all(later[p] >= earlier.get(p, 0) for p in later), "a commit went backwards"


# -- a member left without partitions -------------------------------------------


def test_a_member_that_lost_its_partitions_and_is_given_none_again_stops_with_a_fatal_error():
    clock = FakeClock()
    script = [Poll(assign=[0]), Poll(take=3), Poll(revoke=[0], stale=0, advance=1.0),
              *[Poll(advance=30.0) for _ in range(5)]]
    source = _source({0: 10}, script, clock=clock)  # stops when the script ends: a miss fails, not hangs
    store = FakeStore(source.log)

    result = make_loop(source, store, batch_max_events=100, rejoin_max_seconds=120.0).run()

    assert not result.ok and result.fatal
    assert "has not rejoined the consumer group" in result.reason
    assert source.commits == [{0: 3}]  # the open batch was stored and committed at the revoke
    assert _stored_offsets(store, 0) == [0, 1, 2]


def test_a_member_given_partitions_again_within_the_limit_goes_on():
    clock = FakeClock()
    script = [Poll(assign=[0]), Poll(take=3), Poll(revoke=[0], stale=0, advance=1.0), Poll(advance=100.0),
              Poll(assign=[0], take=2, advance=10.0), *[Poll(advance=60.0) for _ in range(4)]]
    source = _source({0: 10}, script, clock=clock)
    store = FakeStore(source.log)

    result = make_loop(source, store, batch_max_events=100, rejoin_max_seconds=120.0).run()

    assert result.ok, result.reason
    assert _stored_offsets(store, 0) == [0, 1, 2, 3, 4]


# -- dead letters ---------------------------------------------------------------


def test_dead_letters_of_a_batch_are_sent_and_flushed_before_its_commit():
    source = _source({0: 4}, [Poll(assign=[0]), Poll(take=4)])
    store = FakeStore(source.log, dead={(0, 2)})
    dead_letters = FakeDeadLetters(source.log)

    assert make_loop(source, store, dead_letters, batch_max_events=4).run().ok

    kinds = [e[0] for e in source.log]
    assert kinds == ["stored", "dead_letter", "flushed", "commit"]
    (letter,) = dead_letters.sent
    assert (letter.topic, letter.partition, letter.offset, letter.value) == (TOPIC, 0, 2, message(0, 2)[3])
    assert letter.reason == "InvalidEvent: refused by the fake store"
    assert source.commits == [{0: 4}]


def test_a_failed_dead_letter_flush_is_retried_and_nothing_is_committed_meanwhile():
    source = _source({0: 4}, [Poll(assign=[0]), Poll(take=4)])
    store = FakeStore(source.log, dead={(0, 1)})
    dead_letters = FakeDeadLetters(source.log, flush_failures=2)
    source.script.append(Poll(wait_for=lambda: ("flushed",) in source.log))  # no stop while it retries

    assert make_loop(source, store, dead_letters, batch_max_events=4).run().ok

    kinds = [e[0] for e in source.log]
    assert kinds.count("flush_failed") == 2
    assert kinds.index("commit") > kinds.index("flushed") > max(i for i, k in enumerate(kinds) if k == "flush_failed")
    assert kinds.count("commit") == 1
    assert len({token for _, token in store.calls}) == 1  # the same batch, the same token, each try
    assert source.commits == [{0: 4}]


# -- store failures -------------------------------------------------------------


def test_a_transient_store_failure_is_retried_with_the_same_token_and_health_says_retrying_then_running():
    seen_while_failing: list[str] = []
    seen_after: list[str] = []
    log: list[tuple[Any, ...]] = []
    store = FakeStore(log, failures=[StoreUnavailable("engine unreachable"), StoreUnavailable("engine unreachable")])
    source = _source({0: 3}, [Poll(assign=[0]), Poll(take=3), Poll(wait_for=lambda: len(store.calls) >= 3),
                              Poll(), Poll()], log=log)
    loop = make_loop(source, store, batch_max_events=3)

    def on_call(n: int) -> None:
        if n > 1:
            seen_while_failing.append(loop.health.report().state)
            assert source.commits == [], "committed while the store was failing"

    store.on_call = on_call
    source.on_poll = lambda: seen_after.append(loop.health.report().state) if source.commits else None

    assert loop.run().ok

    assert len(store.calls) == 3
    assert len({token for _, token in store.calls}) == 1
    assert seen_while_failing == ["retrying", "retrying"]
    assert seen_after and seen_after[0] == "running"
    assert source.commits == [{0: 3}]


def test_a_fatal_store_error_stops_the_loop_with_its_reason():
    source = _source({0: 3}, [Poll(assign=[0]), Poll(take=3)], stop_when_done=False)
    store = FakeStore(source.log, failures=[StoreMisconfigured("the store refuses to insert: READONLY")])
    loop = make_loop(source, store, batch_max_events=3)

    result = loop.run()

    assert not result.ok and result.fatal
    assert "READONLY" in result.reason
    assert loop.health.report().state == "fatal"
    assert source.commits == []
    assert source.closed and store.closed


def test_a_fatal_kafka_error_from_poll_stops_the_loop_with_its_reason():
    source = _source({0: 3}, [Poll(assign=[0]), Poll(take=2), Poll(fatal="_FENCED: static consumer fenced")],
                     stop_when_done=False)
    store = FakeStore(source.log)
    loop = make_loop(source, store)

    result = loop.run()

    assert not result.ok and result.fatal
    assert "fenced" in result.reason
    assert loop.health.report().state == "fatal"
    assert source.commits == []


def test_stop_while_the_store_fails_returns_not_ok_not_fatal_and_commits_nothing():
    source = _source({0: 3}, [Poll(assign=[0]), Poll(take=3)], stop_when_done=False)

    def stop_after_three_tries(n: int) -> None:
        if n >= 3:
            source.stop.set()

    store = FakeStore(source.log, failures=[StoreUnavailable("engine unreachable")] * 100,
                      on_call=stop_after_three_tries)

    result = make_loop(source, store, batch_max_events=3).run()

    assert not result.ok and not result.fatal
    assert "stopped while the store was failing" in result.reason
    assert source.commits == []


# -- health while consuming ---------------------------------------------------------


def test_the_ready_gauge_drops_when_the_loop_stalls_with_lag_without_anyone_asking_readyz():
    # `auditlog consume` serves only the metrics: nobody calls /readyz to refresh the ready gauge.
    from prometheus_client import REGISTRY

    clock = FakeClock()
    script = [Poll(assign=[0]), Poll(take=2), *[Poll(advance=20.0) for _ in range(5)]]
    source = _source({0: 2}, script, clock=clock, lags={0: 40})
    ready_seen: list[float | None] = []
    source.on_poll = lambda: ready_seen.append(REGISTRY.get_sample_value("auditlog_consumer_ready"))
    loop = make_loop(source, FakeStore(source.log), batch_max_events=2)

    assert loop.run().ok

    assert loop.health.report().state == "stopped"
    assert ready_seen[3] == 1  # stored 20 s ago: still ready
    assert ready_seen[-1] == 0  # lag 40, nothing stored for 80 s (stall_seconds 60): not ready
