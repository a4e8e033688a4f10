from __future__ import annotations

from producers.spool import Spool


def test_spooled_messages_are_read_back_in_order(tmp_path):
    spool = Spool(tmp_path)
    for i in range(5):
        spool.append(b"ws", f"v{i}".encode())
    assert [v for _k, v in spool.read()] == [b"v0", b"v1", b"v2", b"v3", b"v4"]


def test_a_torn_final_write_is_skipped_and_earlier_records_survive(tmp_path):
    spool = Spool(tmp_path)
    spool.append(b"ws", b"complete")
    spool.append(b"ws", b"torn-record")
    data = spool.path.read_bytes()
    spool.path.write_bytes(data[:-5])
    assert list(spool.read()) == [(b"ws", b"complete")]


def test_take_moves_the_spool_aside_for_replay(tmp_path):
    spool = Spool(tmp_path)
    spool.append(b"k", b"v")
    taken = spool.take()
    assert taken is not None and taken.exists()
    assert not spool.path.exists()
    assert list(Spool(taken.parent, taken.name).read()) == [(b"k", b"v")]
