"""The spool keeps every record through torn writes, killed replays and concurrent replays."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from producers.spool import Record, Spool, SpoolClaim, encode_record, parse_records, read_records

keys = st.binary(max_size=40)
values = st.binary(min_size=1, max_size=300)
records = st.lists(st.tuples(keys, values), max_size=30)


def _everything(spool: Spool) -> Counter[Record]:
    """Every intact record on disk: the live spool and every claim file."""
    found: Counter[Record] = Counter(spool.read())
    for path in spool.directory.glob("undelivered.replaying.*"):
        found.update(read_records(path)[0])
    return found


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


def test_an_append_after_a_torn_tail_cuts_it_so_the_new_record_is_readable(tmp_path):
    # A crash mid-append leaves half a record; without the cut, every later record sits behind it, unread.
    Spool(tmp_path).append(b"ws", b"complete")
    path = Spool(tmp_path).path
    with open(path, "ab") as fh:
        fh.write(encode_record(b"ws", b"torn")[:-3])
    Spool(tmp_path).append(b"ws", b"after the crash")
    assert list(Spool(tmp_path).read()) == [(b"ws", b"complete"), (b"ws", b"after the crash")]


def test_a_writer_that_appended_before_a_replay_appends_intact_records_after_it(tmp_path):
    # Found by the state machine below: the writer remembered (inode, size) of the file it last wrote;
    # the replay removed that file and a new spool file got the same inode (ext4 often reuses it at once),
    # so the writer took the new file's records for a torn tail and cut them off.
    writer = Spool(tmp_path)
    writer.append(b"", b"a")
    for claim in Spool(tmp_path).claim():
        claim.finish()
    Spool(tmp_path).append_many([(b"", b"\x00"), (b"", b"b"), (b"", b"c"), (b"", b"d")])
    writer.append(b"", b"e")
    assert [v for _k, v in Spool(tmp_path).read()] == [b"\x00", b"b", b"c", b"d", b"e"]


def test_claim_moves_the_spool_aside_and_new_failures_go_to_a_fresh_file(tmp_path):
    spool = Spool(tmp_path)
    spool.append(b"k", b"v")
    [claim] = spool.claim()
    assert claim.path.exists() and not spool.path.exists()
    assert claim.records == [(b"k", b"v")]
    spool.append(b"k", b"new")
    assert spool.status().spooled == 1 and spool.status().replaying == 1
    claim.finish()
    assert not claim.path.exists()
    assert list(spool.read()) == [(b"k", b"new")]


def _claim_and_die(directory: Path) -> None:
    """A replay that claims the spool and is SIGKILLed before it finishes."""
    code = (
        "import os, signal, sys; from pathlib import Path; from producers.spool import Spool; "
        "claims = Spool(Path(sys.argv[1])).claim(); assert claims; os.kill(os.getpid(), signal.SIGKILL)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(directory)], check=False, capture_output=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == -9, result.stderr


def test_a_killed_replay_leaves_the_spool_complete_for_status_and_the_next_replay(tmp_path):
    spool = Spool(tmp_path)
    spool.append_many((b"ws", f"e{i}".encode()) for i in range(100))
    _claim_and_die(tmp_path)
    assert not spool.path.exists()
    status = spool.status()
    assert (status.spooled, status.orphaned, status.replaying) == (0, 100, 0)
    assert len(spool) == 100
    claims = spool.claim()
    assert sorted(v for c in claims for _k, v in c.records) == sorted(f"e{i}".encode() for i in range(100))
    for claim in claims:
        claim.finish()
    assert len(spool) == 0


def test_an_orphan_of_the_old_naming_is_found_too(tmp_path):
    # Before claims were locked, a killed replay left undelivered.replaying.<pid>.
    (tmp_path / "undelivered.replaying.4242").write_bytes(encode_record(b"ws", b"stranded"))
    spool = Spool(tmp_path)
    assert spool.status().orphaned == 1
    [claim] = spool.claim()
    assert claim.records == [(b"ws", b"stranded")]


def test_a_running_replays_claim_is_counted_but_not_taken(tmp_path):
    Spool(tmp_path).append(b"ws", b"e")
    [running] = Spool(tmp_path).claim()
    other = Spool(tmp_path)
    assert other.status().replaying == 1 and other.status().orphaned == 0
    assert other.claim() == []
    running.release()
    assert [c.records for c in other.claim()] == [[(b"ws", b"e")]]


def test_concurrent_replays_never_take_the_same_file_and_lose_nothing(tmp_path):
    for n in range(4):  # four orphans of killed replays, then a live spool
        Spool(tmp_path).append_many((b"ws", f"f{n}-{i}".encode()) for i in range(25))
        _claim_and_die(tmp_path)
    Spool(tmp_path).append_many((b"ws", f"live-{i}".encode()) for i in range(25))
    barrier = threading.Barrier(6)
    taken: list[list[SpoolClaim]] = []

    def replay() -> None:
        spool = Spool(tmp_path)
        barrier.wait()
        taken.append(spool.claim())

    threads = [threading.Thread(target=replay) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    paths = [c.path for claims in taken for c in claims]
    assert len(paths) == len(set(paths)) == 5
    values = sorted(v for claims in taken for c in claims for _k, v in c.records)
    assert len(values) == 125 and len(set(values)) == 125


@given(records, st.integers(min_value=0, max_value=10_000))
def test_parsing_any_prefix_yields_exactly_the_complete_records(recs: list[Record], cut: int) -> None:
    blob = b"".join(encode_record(k, v) for k, v in recs)
    cut = min(cut, len(blob))
    parsed, end = parse_records(blob[:cut])
    sizes = [len(encode_record(k, v)) for k, v in recs]
    complete = sum(1 for i in range(len(recs)) if sum(sizes[: i + 1]) <= cut)
    assert parsed == recs[:complete]
    assert end == sum(sizes[:complete])


class SpoolMachine(RuleBasedStateMachine):
    """Random appends, torn tails, killed and finished replays: nothing on disk differs from the model."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="spool-prop-"))
        self.spool = Spool(self.directory)
        self.live: list[Record] = []  # records in the live file, in order
        self.elsewhere: Counter[Record] = Counter()  # records in orphaned claim files

    @rule(recs=st.lists(st.tuples(keys, values), min_size=1, max_size=5))
    def append(self, recs: list[Record]) -> None:
        # A fresh Spool each time half of the time: another process appending, no shared cache.
        spool = self.spool if len(recs) % 2 else Spool(self.directory)
        spool.append_many(recs)
        self.live.extend(recs)

    @rule(data=st.data())
    def crash_mid_append(self, data: st.DataObject) -> None:
        record = encode_record(*data.draw(st.tuples(keys, values)))
        cut = data.draw(st.integers(min_value=1, max_value=len(record) - 1))
        with open(self.spool.path, "ab") as fh:
            fh.write(record[:cut])

    @rule()
    def replay_killed(self) -> None:
        for claim in Spool(self.directory).claim():
            claim.release()  # what SIGKILL does: the lock goes, the file stays
        self.elsewhere.update(self.live)
        self.live = []

    @rule(data=st.data())
    def replay_finished(self, data: st.DataObject) -> None:
        claims = Spool(self.directory).claim()
        claimed = Counter(r for c in claims for r in c.records)
        assert claimed == self.elsewhere + Counter(self.live)
        failed = data.draw(st.lists(st.sampled_from(sorted(claimed)), unique=True) if claimed else st.just([]))
        Spool(self.directory).append_many(failed)  # what the replay's close() spools again
        for claim in claims:
            claim.finish()
        self.live, self.elsewhere = list(failed), Counter()

    @invariant()
    def nothing_lost_nothing_invented(self) -> None:
        assert list(self.spool.read()) == self.live
        assert _everything(self.spool) == self.elsewhere + Counter(self.live)
        assert len(self.spool) == len(self.live) + sum(self.elsewhere.values())

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


SpoolMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_spool_state_machine = SpoolMachine.TestCase


def test_zero_bytes_left_by_a_crash_are_not_read_as_records(tmp_path):
    spool = Spool(tmp_path)
    spool.append(b"ws", b"event")
    with open(spool.path, "ab") as fh:
        fh.write(bytes(4096))
    assert list(spool.read()) == [(b"ws", b"event")]
    spool.append(b"ws", b"after")
    assert list(spool.read()) == [(b"ws", b"event"), (b"ws", b"after")]


def test_spool_files_are_private_to_the_user(tmp_path):
    Spool(tmp_path).append(b"ws", b"e")
    assert os.stat(Spool(tmp_path).path).st_mode & 0o077 == 0
