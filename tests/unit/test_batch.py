from __future__ import annotations

from consumer.runner import Batch


def test_the_dedup_token_depends_only_on_topic_and_offset_ranges():
    a, b = Batch(), Batch()
    for p, o in [(0, 10), (1, 5), (0, 11)]:
        a.add_offset(p, o)
    for p, o in [(1, 5), (0, 10), (0, 11)]:
        b.add_offset(p, o)
    assert a.dedup_token("t") == b.dedup_token("t")
    assert a.dedup_token("t") != a.dedup_token("other")
    assert a.messages == 3


def test_different_ranges_give_different_tokens():
    a, b = Batch(), Batch()
    a.add_offset(0, 1)
    b.add_offset(0, 2)
    assert a.dedup_token("t") != b.dedup_token("t")
