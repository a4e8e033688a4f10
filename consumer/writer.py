"""Storing a batch in ClickHouse, retrying with backoff until it is stored or we are told to stop."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from clickhouse.events import insert_rows
from consumer.metrics import INSERT_LATENCY, INSERT_RETRIES, ROWS_INSERTED

logger = logging.getLogger(__name__)

InsertFn = Callable[[Sequence[Sequence[Any]], str], None]


class ClickHouseWriter:
    """Writes one batch with one INSERT; on failure retries the same batch with the same token.

    ``write`` returns only when the batch is stored (True) or when ``stop`` was
    set while the store was failing (False): the caller must then not commit.
    """

    def __init__(
        self,
        insert: InsertFn,
        *,
        initial_backoff: float,
        max_backoff: float,
        stop: threading.Event,
    ) -> None:
        self._insert = insert
        self._initial = initial_backoff
        self._max = max_backoff
        self._stop = stop

    @classmethod
    def for_client(cls, client: Any, table: str, **kwargs: Any) -> ClickHouseWriter:
        return cls(lambda rows, token: insert_rows(client, table, rows, token), **kwargs)

    def write(self, rows: Sequence[Sequence[Any]], dedup_token: str) -> bool:
        """Insert ``rows`` with ``dedup_token``, retrying until stored (True) or stopped (False)."""
        return self.run(lambda: self._insert(rows, dedup_token), len(rows))

    def run(self, operation: Callable[[], None], rows: int) -> bool:
        """Run a store operation that writes ``rows`` rows, with the same retry and backoff as ``write``.

        The operation must be idempotent across attempts (same deduplication token).
        """
        delay = self._initial
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                operation()
            except Exception as err:
                INSERT_RETRIES.inc()
                logger.warning(
                    "insert_failed attempt=%d rows=%d retry_in=%.1fs error=%s",
                    attempt, rows, delay, err, exc_info=attempt == 1,
                )
                if self._stop.wait(delay):
                    # Told to stop while the store is failing: give up this batch uncommitted.
                    return False
                delay = min(delay * 2, self._max)
                continue
            INSERT_LATENCY.observe(time.perf_counter() - started)
            ROWS_INSERTED.inc(rows)
            if attempt > 1:
                logger.info("insert_recovered attempts=%d rows=%d", attempt, rows)
            return True
