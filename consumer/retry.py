"""Retrying a store operation while its failures are transient, and never forever.

Backoff doubles from ``initial`` to ``max_delay``. After ``give_up_after``
seconds of consecutive failures the outage counts as fatal
(``StoreOutageTooLong``): the consumer stops with a non-zero exit, nothing
committed past stored rows, so a restart (by the orchestrator or an operator)
takes over where it stopped. A stop request ends the retries at once (the
batch stays uncommitted).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from consumer.errors import StoreOutageTooLong, TransientError
from consumer.health import ConsumerHealth
from consumer.metrics import INSERT_LATENCY, INSERT_RETRIES

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Stopped(Exception):
    """Told to stop while the operation was still failing; nothing may be committed."""


class RetryPolicy:
    def __init__(self, *, initial: float, max_delay: float, give_up_after: float, stop: threading.Event,
                 health: ConsumerHealth, clock: Callable[[], float] = time.monotonic) -> None:
        self._initial = initial
        self._max = max_delay
        self._give_up = give_up_after
        self._stop = stop
        self._health = health
        self._clock = clock

    def run(self, operation: Callable[[], T], what: str) -> T:
        """``operation()``'s result; retries TransientError; raises Stopped or StoreOutageTooLong."""
        delay = self._initial
        attempt = 0
        first_failure: float | None = None
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                result = operation()
            except TransientError as err:
                now = self._clock()
                first_failure = now if first_failure is None else first_failure
                INSERT_RETRIES.inc()
                self._health.retrying(f"{what}: {err}")
                if now - first_failure >= self._give_up:
                    raise StoreOutageTooLong(
                        f"could not {what} for {now - first_failure:.0f}s (consumer.outage_max_seconds): {err}"
                    ) from err
                logger.warning("store_failed what=%s attempt=%d retry_in=%.1fs error=%s",
                               what, attempt, delay, err, exc_info=attempt == 1)
                if self._stop.wait(delay):
                    raise Stopped(what) from err
                delay = min(delay * 2, self._max)
                continue
            INSERT_LATENCY.observe(time.perf_counter() - started)
            if attempt > 1:
                logger.info("store_recovered what=%s attempts=%d", what, attempt)
            return result
