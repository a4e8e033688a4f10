from __future__ import annotations

from query_api.density import DensityMemo
from query_api.filters import EventFilters


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_density_is_remembered_per_workspace_and_filters():
    memo = DensityMemo(10, 60.0)
    memo.put("ws_a", EventFilters(actor="alex"), 0.5)
    assert memo.get("ws_a", EventFilters(actor="alex")) == 0.5
    assert memo.get("ws_b", EventFilters(actor="alex")) is None
    assert memo.get("ws_a", EventFilters(actor="alexa")) is None
    assert memo.get("ws_a", EventFilters()) is None


def test_a_density_expires():
    clock = Clock()
    memo = DensityMemo(10, 60.0, clock=clock)
    memo.put("ws", EventFilters(category="members"), 1.0)
    clock.now = 59.0
    assert memo.get("ws", EventFilters(category="members")) == 1.0
    clock.now = 61.0
    assert memo.get("ws", EventFilters(category="members")) is None


def test_the_memo_keeps_only_the_most_recently_stored_entries():
    memo = DensityMemo(2, 60.0)
    for i in range(3):
        memo.put(f"ws_{i}", EventFilters(), float(i))
    assert memo.get("ws_0", EventFilters()) is None
    assert memo.get("ws_1", EventFilters()) == 1.0
    assert memo.get("ws_2", EventFilters()) == 2.0
