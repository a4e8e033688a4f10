"""Batch (consumer/batch.py): the deduplication token and the offsets to commit."""

from __future__ import annotations

from consumer.batch import Batch


def _batch(*messages: tuple[int, int, bytes | None, bytes | None]) -> Batch:
    batch = Batch()
    for m in messages:
        batch.add(m, now=0.0)
    return batch


def test_the_dedup_token_depends_only_on_topic_and_offset_ranges():
    a = _batch((0, 10, b"k", b"one"), (1, 5, None, b"two"), (0, 11, b"k", b"three"))
    same_ranges_other_content = _batch((1, 5, b"x", b"2"), (0, 10, None, None), (0, 11, b"y", b"3"))

    assert a.dedup_token("events") == same_ranges_other_content.dedup_token("events")
    assert a.dedup_token("events") != a.dedup_token("other-events")
    assert a.dedup_token("events") != _batch((0, 10, b"k", b"one"), (1, 5, None, b"two")).dedup_token("events")
    assert a.dedup_token("events") != _batch((0, 10, b"k", b"x"), (0, 11, b"k", b"y"),
                                             (1, 6, None, b"z")).dedup_token("events")


def test_the_dedup_token_does_not_depend_on_when_a_batch_was_opened():
    early, late = Batch(), Batch()
    early.add((0, 1, None, b"a"), now=1.0)
    late.add((0, 1, None, b"a"), now=99.0)
    assert early.dedup_token("t") == late.dedup_token("t")


def test_next_offsets_are_one_past_the_last_message_of_each_partition():
    batch = _batch((0, 10, None, b""), (2, 7, None, b""), (0, 11, None, b""), (2, 8, None, b""), (0, 12, None, b""))

    assert batch.next_offsets() == {0: 13, 2: 9}
    assert batch.first == {0: 10, 2: 7}
    assert len(batch) == 5


def test_an_empty_batch_commits_nothing():
    assert Batch().next_offsets() == {}
