"""How densely a workspace's filters matched on recent pages: a hint for sizing a page's first window.

A page for a rare filter (one person in a big workspace) finds next to
nothing in the newest two days and then reads the rest of the history: the
first query is wasted. The density a page measured (rows per second of
history it read back from its top) is remembered per workspace and filters
for a while, so the next page with the same question — the next page of the
same search, or the same search again — sizes its first window from it, or
reads the rest at once. It only chooses windows: the windows still cover the
whole history and a wrong hint costs a query, never a row.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import orjson

from query_api.filters import EventFilters


class DensityMemo:
    """A bounded, expiring map of (workspace, filters) to matches per second of history; thread-safe."""

    def __init__(self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[tuple[str, bytes], tuple[float, float]] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()

    @staticmethod
    def _key(workspace_id: str, filters: EventFilters) -> tuple[str, bytes]:
        return workspace_id, orjson.dumps(filters.canonical(), option=orjson.OPT_SORT_KEYS)

    def get(self, workspace_id: str, filters: EventFilters) -> float | None:
        key = self._key(workspace_id, filters)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            density, stored_at = entry
            if self._clock() - stored_at > self._ttl:
                del self._entries[key]
                return None
            return density

    def put(self, workspace_id: str, filters: EventFilters, density: float) -> None:
        key = self._key(workspace_id, filters)
        with self._lock:
            self._entries[key] = (density, self._clock())
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
