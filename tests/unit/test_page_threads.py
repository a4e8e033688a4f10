"""A page read alone gets the quiet thread count; pages read side by side get one thread each."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from clickhouse_connect.driver.client import Client

from clickhouse.pool import SharedClient
from query_api.filters import EventFilters
from query_api.queries import EventReader


class _Result:
    result_rows: list[Any] = []


class RecordingClient:
    """Answers every page query with no rows and records the engine threads it was asked for;
    ``hold`` keeps a query running until released, ``fail`` makes queries raise."""

    def __init__(self) -> None:
        self.threads: list[int | None] = []
        self.hold: threading.Event | None = None
        self.entered = threading.Event()
        self.fail = False

    def query(self, sql: str, parameters: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None) -> _Result:
        self.threads.append((settings or {}).get("max_threads"))
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(5)
        if self.fail:
            raise RuntimeError("engine failed")
        return _Result()


def _shared(client: RecordingClient) -> SharedClient:
    """The recording client as every page's one client (what a lone client gets in EventReader)."""
    return SharedClient(cast(Client, client))


def _page(reader: EventReader) -> None:
    reader.page("ws", EventFilters(), 50, None)


def test_a_page_read_alone_gets_the_quiet_thread_count():
    client = RecordingClient()
    reader = EventReader(_shared(client), "t", max_threads=1, quiet_max_threads=2)
    _page(reader)
    assert client.threads and set(client.threads) == {2}


def test_a_page_read_while_another_runs_gets_the_busy_thread_count():
    slow, fast = RecordingClient(), RecordingClient()
    slow.hold = threading.Event()
    clients = iter([slow, fast])

    class TwoClients:
        @contextmanager
        def lease(self) -> Iterator[Any]:
            yield next(clients)

    reader = EventReader(TwoClients(), "t", max_threads=1, quiet_max_threads=2)
    first = threading.Thread(target=_page, args=(reader,))
    first.start()
    assert slow.entered.wait(5)
    _page(reader)  # while the first page is still being read
    slow.hold.set()
    first.join(5)
    assert set(slow.threads) == {2} and set(fast.threads) == {1}


def test_a_failed_page_does_not_leave_later_pages_on_the_busy_thread_count():
    client = RecordingClient()
    client.fail = True
    reader = EventReader(_shared(client), "t", max_threads=1, quiet_max_threads=2)
    with pytest.raises(RuntimeError):
        _page(reader)
    client.fail = False
    client.threads.clear()
    _page(reader)
    assert set(client.threads) == {2}


def test_without_a_quiet_count_every_page_gets_the_busy_one():
    client = RecordingClient()
    reader = EventReader(_shared(client), "t", max_threads=1)
    _page(reader)
    assert set(client.threads) == {1}
