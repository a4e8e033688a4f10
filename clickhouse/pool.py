"""Engine handles for readers that run side by side: a pool of clients, leased one query (or page) at a time.

Why a pool: one clickhouse-connect client on chDB serialises every call on its one
engine handle (``_backend/chdb_backend.py`` holds a per-handle lock around each query),
so one shared client lets the API run one engine query at a time. chDB allows any number
of handles on the one engine of a process, each with its own lock; a client per lease
lets queries run at once. Against a server the same code holds a few HTTP clients that
share one urllib3 pool (each client is thread-safe without a session; the pool bounds
how many queries this process puts on the server at once).

A handle that saw an exception of any kind while leased (a failed query, a stream
closed early, a client that went away mid-export: ``GeneratorExit`` thrown into the
lease) is closed and never handed out again: on chDB 26.9 the next query on such a
handle can return the failed query's partial output (the same finding as the SQL
gateway's, ``clickhouse/readonly_engine.py``). A fresh one is opened on the next lease.

``ClientPool`` and ``SharedClient`` both answer ``lease()``, so a reader is written once
and runs over a pool or over one client (the way before the pool, kept for the tests
that prove both give the same pages, and for the benchmark's before/after).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, runtime_checkable

from clickhouse_connect.driver.client import Client

from clickhouse.errors import StoreError

logger = logging.getLogger(__name__)


class HandlesBusy(StoreError):
    """Every handle of a pool stayed busy for the pool's wait: the caller answers like a busy server."""


@runtime_checkable
class ClientSource(Protocol):
    """Where a reader gets a client for one unit of work (a page, a chunk of an export)."""

    def lease(self) -> AbstractContextManager[Client]:
        """A client that is the caller's alone until the block ends."""
        ...


class SharedClient:
    """One client for every caller: what the API did before the pool (one query at a time on chDB)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @contextmanager
    def lease(self) -> Iterator[Client]:
        yield self.client


class ClientPool:
    """Up to ``size`` clients made by ``factory``, each leased to one caller at a time.

    Clients are opened on demand and kept idle between leases (last returned, first
    reused, so a quiet API keeps few warm handles). A lease waits up to ``wait_seconds``
    for a free slot, then raises ``HandlesBusy``. A lease left by an exception closes its
    client instead of returning it (see the module docstring).

    Args:
        factory: opens a new client (its own chDB handle, or an HTTP client on a shared pool).
        size: how many leases run at once.
        wait_seconds: how long a lease waits for a slot.
        name: the pool's name in logs and errors (``pages``, ``exports``).
    """

    def __init__(self, factory: Callable[[], Client], size: int, wait_seconds: float, name: str) -> None:
        if size < 1:
            raise ValueError(f"a client pool needs at least one client, got size={size}")
        if wait_seconds <= 0:
            raise ValueError(f"a client pool's wait must be positive, got wait_seconds={wait_seconds}")
        self._factory = factory
        self.size = size
        self._wait_seconds = wait_seconds
        self.name = name
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Client] = []
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0  # clients closed after a lease ended in an exception (tests and logs read it)

    @contextmanager
    def lease(self) -> Iterator[Client]:
        """A client for the caller alone; closed instead of returned if the block raises.

        Raises:
            HandlesBusy: no client was free within the pool's wait.
            StoreError: the pool is closed.
        """
        started = time.monotonic()
        if not self._slots.acquire(timeout=self._wait_seconds):
            raise HandlesBusy(f"all {self.size} {self.name} engine handles stayed busy for "
                              f"{self._wait_seconds:g} s")
        waited = time.monotonic() - started
        if waited > 1.0:
            logger.info("client_pool_waited pool=%s seconds=%.2f", self.name, waited)
        try:
            client = self._take()
        except BaseException:
            self._slots.release()
            raise
        clean = False
        try:
            yield client
            clean = True
        finally:
            if clean:
                self._give_back(client)
            else:
                self._discard(client)
            self._slots.release()

    def _take(self) -> Client:
        with self._lock:
            if self._closed:
                raise StoreError(f"the {self.name} client pool is closed")
            if self._idle:
                return self._idle.pop()
        return self._factory()

    def _give_back(self, client: Client) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(client)
                return
        _close(client, self.name)

    def _discard(self, client: Client) -> None:
        with self._lock:
            self.replaced += 1
        logger.info("client_pool_handle_replaced pool=%s", self.name)
        _close(client, self.name)

    def idle(self) -> int:
        """Clients open and free right now."""
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        """Close the idle clients; leased ones are closed when their lease ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for client in idle:
            _close(client, self.name)


def _close(client: Client, pool: str) -> None:
    try:
        client.close()
    except Exception:
        logger.warning("client_pool_close_failed pool=%s", pool, exc_info=True)
