"""The reader pool's rules, on stand-in clients: bounded leases, reuse only after a clean lease.

What a reused chDB handle does after a failure is proven against the real engine in
tests/integration/test_reader_pool.py; here only the pool's bookkeeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import Any, cast

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from clickhouse.errors import StoreError
from clickhouse.pool import ClientPool, HandlesBusy


class _StandIn:
    """What the pool calls on a client: close(). Counts how it was treated."""

    made = 0

    def __init__(self) -> None:
        _StandIn.made += 1
        self.number = _StandIn.made
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _pool(size: int = 2, wait: float = 0.05) -> tuple[ClientPool, list[_StandIn]]:
    made: list[_StandIn] = []

    def factory() -> Client:
        client = _StandIn()
        made.append(client)
        return cast(Client, client)

    return ClientPool(factory, size, wait, "pages"), made


def test_a_client_returned_after_a_clean_lease_is_lent_again() -> None:
    pool, made = _pool()
    with pool.lease() as first:
        pass
    with pool.lease() as second:
        assert second is first
    assert len(made) == 1 and not made[0].closed and pool.replaced == 0


def test_a_client_whose_lease_raised_is_closed_and_never_lent_again() -> None:
    pool, made = _pool()
    with pytest.raises(RuntimeError), pool.lease():
        raise RuntimeError("the query failed")
    with pool.lease() as after:
        pass
    assert made[0].closed and cast(object, after) is not made[0] and pool.replaced == 1


def test_a_generator_closed_inside_a_lease_closes_its_client() -> None:
    """A client that goes away mid-export closes the export's generator: GeneratorExit inside the lease."""
    pool, made = _pool()

    def export() -> Generator[int, None, None]:
        with pool.lease():
            yield 1
            yield 2

    stream = export()
    next(stream)
    stream.close()
    assert made[0].closed and pool.replaced == 1 and pool.idle() == 0


def test_no_more_than_size_leases_run_at_once_and_the_next_waits_then_refuses() -> None:
    pool, _ = _pool(size=2, wait=0.05)
    with pool.lease(), pool.lease():
        started = time.monotonic()
        with pytest.raises(HandlesBusy, match="all 2 pages engine handles stayed busy"), pool.lease():
            pass
        assert time.monotonic() - started >= 0.05
    with pool.lease():
        pass  # the slots came back


def test_a_waiting_lease_gets_the_client_a_finished_one_returns() -> None:
    pool, made = _pool(size=1, wait=5.0)
    got: list[Any] = []
    with pool.lease() as first:
        waiter = threading.Thread(target=lambda: got.append(pool.lease().__enter__()))
        waiter.start()
        time.sleep(0.05)
        assert not got
    waiter.join(timeout=5)
    assert got == [first] and len(made) == 1


def test_close_closes_idle_clients_and_later_leases_refuse() -> None:
    pool, made = _pool()
    with pool.lease():
        pass
    pool.close()
    assert made[0].closed
    with pytest.raises(StoreError, match="closed"), pool.lease():
        pass


@pytest.mark.parametrize(("size", "wait"), [(0, 1.0), (-1, 1.0), (1, 0.0), (1, -2.0)])
def test_a_pool_without_clients_or_wait_is_refused(size: int, wait: float) -> None:
    with pytest.raises(ValueError, match=r"size|wait"):
        ClientPool(lambda: cast(Client, _StandIn()), size, wait, "pages")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_every_failed_lease_costs_exactly_one_client_and_clean_ones_none(outcomes: list[bool]) -> None:
    """Whatever the order of clean and failed leases, one at a time: a lease opens a new client only
    when the one before failed (or it is the first), every failed one is closed, no closed one is lent."""
    pool, made = _pool(size=1)
    for clean in outcomes:
        try:
            with pool.lease() as client:
                assert not cast(_StandIn, client).closed
                if not clean:
                    raise RuntimeError("failed")
        except RuntimeError:
            pass
    failures = outcomes.count(False)
    assert pool.replaced == failures
    assert sum(c.closed for c in made) == failures
    assert len(made) == 1 + outcomes[:-1].count(False)
