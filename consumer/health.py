"""What the consumer is doing, told truthfully to ``/readyz`` and to the metrics.

Ready means progress: the consumer has caught up, or it stored something
within ``stall_seconds``. Not ready: starting (no partitions yet), retrying a
failing store, stalled (lag > 0 and nothing stored for ``stall_seconds``),
fatal (it stopped and will not go on) or stopped. docs/runbook.md says what each
state means and what to do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from consumer.metrics import CONSUMER_READY, CONSUMER_STATE, LAST_PROGRESS

State = Literal["starting", "running", "retrying", "fatal", "stopped"]
STATES: tuple[State, ...] = ("starting", "running", "retrying", "fatal", "stopped")


@dataclass(frozen=True)
class HealthReport:
    ready: bool
    state: str  # a State, or "stalled" (running, lag > 0, no progress for stall_seconds)
    detail: str
    lag: int
    seconds_since_progress: float | None


class ConsumerHealth:
    """Thread-safe: the loop writes, the API and the metrics read."""

    def __init__(self, stall_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._stall = stall_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = "starting"
        self._detail = ""
        # Where the lag comes from (the Kafka source measures it on its own thread, so it stays true
        # while the loop is blocked on a failing store).
        self.lag_source: Callable[[], dict[int, int]] = dict
        self._progress_at: float | None = None
        self._set_state("starting", "")
        CONSUMER_READY.set_function(lambda: 1.0 if self.report().ready else 0.0)

    def _set_state(self, state: State, detail: str) -> None:
        self._state, self._detail = state, detail
        for name in STATES:
            CONSUMER_STATE.labels(state=name).set(1 if name == state else 0)

    def running(self) -> None:
        with self._lock:
            if self._progress_at is None:
                self._progress_at = self._clock()  # a backlog at start is not a stall until stall_seconds pass
            self._set_state("running", "")

    def retrying(self, detail: str) -> None:
        with self._lock:
            self._set_state("retrying", detail)

    def fatal(self, detail: str) -> None:
        with self._lock:
            self._set_state("fatal", detail)

    def stopped(self) -> None:
        with self._lock:
            self._set_state("stopped", "")

    def progressed(self) -> None:
        """A batch was stored (or the consumer found nothing to store)."""
        with self._lock:
            self._progress_at = self._clock()
            LAST_PROGRESS.set_to_current_time()
            if self._state == "retrying":
                self._set_state("running", "")

    def report(self) -> HealthReport:
        lag = sum(self.lag_source().values())
        since = None if self._progress_at is None else self._clock() - self._progress_at
        state: str = self._state
        detail = self._detail
        ready = state == "running"
        if ready and lag > 0 and (since is None or since > self._stall):
            state, ready = "stalled", False
            detail = f"{lag} message(s) waiting and nothing stored for {since or 0:.0f}s"
        return HealthReport(ready, state, detail, lag, since)
