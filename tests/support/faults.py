"""Injecting failures around the real engine and running consumers in threads, for the fault tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from consumer.loop import ConsumerLoop, RunResult


class FailingClient:
    """The real client, whose statements raise while ``failing`` is set (the store unreachable), or whose
    statements matching ``refuse`` raise the engine's own error text (a data error)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.failing = threading.Event()
        self.refused = 0
        self.error: Exception = ConnectionError("ClickHouse unreachable (injected)")

    def _check(self) -> None:
        if self.failing.is_set():
            self.refused += 1
            raise self.error

    def command(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        if sql.startswith(("INSERT", "TRUNCATE")):
            self._check()
        return self._real.command(sql, *args, **kwargs)

    def raw_insert(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return self._real.raw_insert(*args, **kwargs)

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return self._real.insert(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def run_in_thread(runner: ConsumerLoop) -> tuple[threading.Thread, dict[str, RunResult]]:
    """Start ``runner.run()`` in a thread; the result lands in ``out["result"]``."""
    out: dict[str, RunResult] = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", runner.run()), daemon=True)
    thread.start()
    return thread, out


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
