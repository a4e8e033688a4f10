"""A local, append-only spool for events the broker did not take in time.

When delivery fails (broker down past the delivery timeout, local queue full,
a close() before the broker answered), the encoded message is appended here
instead of being dropped. ``auditlog spool replay`` sends the spooled messages
later with their original ids, so the consumer's dedup makes a replay harmless
even if some were delivered after all.

Format: each record is length-prefixed and followed by a CRC32, so a torn
final write (a crash mid-append) is detected and skipped, never misread. The
next append cuts such a torn tail off first, so records written after a crash
are never hidden behind it.

Crash safety of a replay: a replay *claims* the spool by renaming it to
``undelivered.replaying.<pid>-<nonce>`` and holds an exclusive ``flock`` on
that file until it is done; only then is the file removed. The kernel drops
the lock when the process dies, even by SIGKILL, so a claim file nobody locks
is an orphan of a killed replay: ``status`` counts it and the next replay
adopts it (taking the lock is the adoption, so two replays never take the same
file). Appenders from any process serialise on ``undelivered.lock`` and open
the spool by name under it, so none can write into a file a replay has just
claimed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from producers.errors import SpoolWriteFailed

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")  # key length, value length
_TRAILER = struct.Struct("<I")  # crc32 of key + value

Record = tuple[bytes, bytes]


def encode_record(key: bytes, value: bytes) -> bytes:
    """One spool record: lengths, key, value, CRC32 of key + value.

    Raises:
        ValueError: an empty value (an encoded event never is; the reader takes one for garbage).
    """
    if not value:
        raise ValueError("a spool record needs a value: an encoded event is never empty")
    return _HEADER.pack(len(key), len(value)) + key + value + _TRAILER.pack(zlib.crc32(key + value))


def parse_records(data: bytes, start: int = 0) -> tuple[list[Record], int]:
    """The intact records of ``data`` from ``start``, and the offset where the intact part ends.

    Parsing stops at the first record that is cut short, fails its CRC or has
    an empty value: what follows cannot be framed reliably. (An empty key and
    value have CRC 0, so a run of zero bytes, which a crash can leave, would
    otherwise read as records.) ``end < len(data)`` means a torn tail.
    """
    records: list[Record] = []
    pos = start
    while pos + _HEADER.size <= len(data):
        klen, vlen = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + klen + vlen + _TRAILER.size
        if vlen == 0 or end > len(data):
            break
        key = data[pos + _HEADER.size : pos + _HEADER.size + klen]
        value = data[pos + _HEADER.size + klen : end - _TRAILER.size]
        (crc,) = _TRAILER.unpack_from(data, end - _TRAILER.size)
        if crc != zlib.crc32(key + value):
            break
        records.append((key, value))
        pos = end
    return records, pos


def read_records(path: Path) -> tuple[list[Record], int]:
    """The intact records of the file at ``path`` and the number of torn bytes after them."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    records, end = parse_records(data)
    if end < len(data):
        logger.warning("spool_torn_tail path=%s offset=%d bytes=%d", path, end, len(data) - end)
    return records, len(data) - end


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    """What a spool directory holds: every event in it is still waiting for a replay."""

    spooled: int  # records in the live spool file
    orphaned: int  # records in claim files of replays that died (picked up by the next replay)
    replaying: int  # records claimed by a replay that is running now
    damaged_files: int  # claim files set aside because bytes in them could not be read

    @property
    def total(self) -> int:
        return self.spooled + self.orphaned + self.replaying


class SpoolClaim:
    """A spool file a replay owns: locked until ``finish()`` removes it or ``release()`` leaves it.

    Records are read once, on claiming. If the process dies before ``finish()``
    the file stays, unlocked, and the next status or replay finds it.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self.records, self.torn_bytes = read_records(path)

    def finish(self) -> None:
        """Every record has an outcome elsewhere (delivered, or spooled again): drop the file.

        A file with unreadable bytes is kept as ``*.damaged.*`` for a person to look at.
        """
        try:
            if self.torn_bytes:
                damaged = self.path.with_name(self.path.name.replace(".replaying.", ".damaged.", 1))
                os.replace(self.path, damaged)
                logger.error("spool_damaged_file_kept path=%s unreadable_bytes=%d", damaged, self.torn_bytes)
            else:
                self.path.unlink(missing_ok=True)
        finally:
            self.release()

    def release(self) -> None:
        """Let go without removing the file: the next status or replay finds it complete."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Spool:
    """Append-only file of (key, value) messages, safe to share between threads and processes.

    Args:
        directory: where the spool lives (``AUDITLOG_PRODUCER__SPOOL_DIR``).
        name: the live spool file; claim, damaged and lock files are named after its stem.
    """

    def __init__(self, directory: Path, name: str = "undelivered.spool") -> None:
        self.directory = Path(directory)
        self.path = self.directory / name
        stem = self.path.stem
        self._lock_path = self.directory / f"{stem}.lock"
        self._claim_glob = f"{stem}.replaying.*"
        self._damaged_glob = f"{stem}.damaged.*"
        self._claim_prefix = f"{stem}.replaying."
        self._lock = threading.Lock()
        # The live file this instance last appended to, kept open so that its inode cannot be reused by a
        # new file (a finished replay removes it), and where our last append ended: the next append parses
        # only what other writers added after that.
        self._held_fd = -1
        self._held_end = 0

    # -- writing ---------------------------------------------------------------

    def append(self, key: bytes, value: bytes) -> None:
        """Append one message, fsynced before returning.

        Raises:
            SpoolWriteFailed: the spool cannot be written (disk full, permissions).
        """
        self.append_many([(key, value)])

    def append_many(self, records: Iterable[Record]) -> int:
        """Append messages with one write and one fsync; returns how many.

        Raises:
            SpoolWriteFailed: nothing of this call is in the spool (a partial write is cut off).
        """
        batch = list(records)
        if not batch:
            return 0
        blob = b"".join(encode_record(k, v) for k, v in batch)
        try:
            with self._locked():
                self._write(blob)
        except OSError as err:
            raise SpoolWriteFailed(len(batch), self.path, str(err)) from err
        return len(batch)

    def _write(self, blob: bytes) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        good_end = -1
        try:
            size = os.fstat(fd).st_size
            good_end = self._intact_end(fd, size)
            if good_end < size:
                logger.warning("spool_torn_tail_cut path=%s offset=%d bytes=%d", self.path, good_end,
                               size - good_end)
                os.ftruncate(fd, good_end)
            written = 0
            while written < len(blob):
                written += os.write(fd, blob[written:])
            os.fsync(fd)
        except OSError:
            # Leave no half record behind: the next append would have to cut it anyway.
            if good_end >= 0:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, good_end)
            os.close(fd)
            self._hold(-1, 0)
            raise
        if size == 0:
            self._fsync_directory()
        self._hold(fd, good_end + len(blob))

    def _intact_end(self, fd: int, size: int) -> int:
        """Where the last intact record of the live file ends; parses only what others appended."""
        start = 0
        if self._held_fd >= 0 and _same_file(self._held_fd, fd) and self._held_end <= size:
            start = self._held_end
            if start == size:
                return size
        data = os.pread(fd, size - start, start)
        _records, end = parse_records(data)
        return start + end

    def _hold(self, fd: int, end: int) -> None:
        if self._held_fd >= 0 and self._held_fd != fd:
            os.close(self._held_fd)
        self._held_fd, self._held_end = fd, end

    def __del__(self) -> None:
        if self._held_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._held_fd)

    def _fsync_directory(self) -> None:
        with contextlib.suppress(OSError):
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """This process's threads, then other processes (flock on the lock file)."""
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(lock_fd)  # closing drops the flock

    # -- reading ---------------------------------------------------------------

    def read(self) -> Iterator[Record]:
        """Every intact record of the live spool file, oldest first; a torn tail is logged and skipped."""
        records, _torn = read_records(self.path)
        yield from records

    def __len__(self) -> int:
        """Every event waiting for a replay: the live spool and all claim files, orphaned or not."""
        return self.status().total

    def status(self) -> SpoolStatus:
        """Count the live spool and every claim file, telling orphans from running replays."""
        spooled = len(read_records(self.path)[0])
        orphaned = replaying = 0
        for path in self._claim_files():
            count = len(read_records(path)[0])
            if self._is_locked(path):
                replaying += count
            else:
                orphaned += count
        damaged = len(list(self.directory.glob(self._damaged_glob))) if self.directory.exists() else 0
        return SpoolStatus(spooled, orphaned, replaying, damaged)

    # -- replaying -------------------------------------------------------------

    def claim(self) -> list[SpoolClaim]:
        """Take the live spool and every orphaned claim file for a replay; new failures go to a fresh file.

        Claim files locked by a running replay are left to it. The caller must
        ``finish()`` or ``release()`` every claim returned.
        """
        claims: list[SpoolClaim] = []
        with self._locked():
            if self.path.exists():
                fd = os.open(self.path, os.O_RDONLY)
                fcntl.flock(fd, fcntl.LOCK_EX)  # nobody locks the live file itself: this does not wait
                target = self.directory / f"{self._claim_prefix}{os.getpid()}-{uuid.uuid4().hex[:12]}"
                os.rename(self.path, target)
                self._hold(-1, 0)
                claims.append(SpoolClaim(target, fd))
        for path in self._claim_files():
            if any(c.path == path for c in claims):
                continue
            adopted = self._adopt(path)
            if adopted is not None:
                logger.warning("spool_orphan_adopted path=%s records=%d", path, len(adopted.records))
                claims.append(adopted)
        return claims

    def _claim_files(self) -> list[Path]:
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob(self._claim_glob))

    @staticmethod
    def _adopt(path: Path) -> SpoolClaim | None:
        """Lock an orphaned claim file; None if a live replay holds it or it is gone."""
        fd = _try_lock(path, fcntl.LOCK_EX)
        return None if fd is None else SpoolClaim(path, fd)

    @staticmethod
    def _is_locked(path: Path) -> bool:
        """A running replay holds it (or it was finished just now)."""
        fd = _try_lock(path, fcntl.LOCK_SH)
        if fd is None:
            return True
        os.close(fd)
        return False


def _same_file(a: int, b: int) -> bool:
    sa, sb = os.fstat(a), os.fstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _try_lock(path: Path, mode: int) -> int | None:
    """An open descriptor of ``path`` holding an flock, or None if another holds it or the file is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        # Finished and removed by its owner between our open and our lock: not ours to take.
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    return fd
