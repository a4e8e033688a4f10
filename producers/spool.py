"""A local, append-only spool for events the broker did not take in time.

When delivery fails (broker down past the delivery timeout, local queue full),
the encoded message is appended here instead of being dropped. ``auditlog
spool replay`` sends the spooled messages later with their original ids, so
the consumer's dedup makes a replay harmless even if some were delivered after
all. Each record is length-prefixed and followed by a CRC32 so a torn final
write (a crash mid-append) is detected and skipped, never misread.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")  # key length, value length
_TRAILER = struct.Struct("<I")  # crc32 of key + value


class Spool:
    """Append-only file of (key, value) messages, safe to share between threads."""

    def __init__(self, directory: Path, name: str = "undelivered.spool") -> None:
        self.path = Path(directory) / name
        self._lock = threading.Lock()

    def append(self, key: bytes, value: bytes) -> None:
        record = _HEADER.pack(len(key), len(value)) + key + value + _TRAILER.pack(zlib.crc32(key + value))
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as fh:
                fh.write(record)
                fh.flush()
                os.fsync(fh.fileno())

    def __len__(self) -> int:
        return sum(1 for _ in self.read())

    def read(self) -> Iterator[tuple[bytes, bytes]]:
        """Every intact record, oldest first; a torn tail is logged and skipped."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            data = fh.read()
        pos = 0
        while pos < len(data):
            if pos + _HEADER.size > len(data):
                logger.warning("spool_torn_tail path=%s offset=%d", self.path, pos)
                return
            klen, vlen = _HEADER.unpack_from(data, pos)
            end = pos + _HEADER.size + klen + vlen + _TRAILER.size
            if end > len(data):
                logger.warning("spool_torn_tail path=%s offset=%d", self.path, pos)
                return
            key = data[pos + _HEADER.size : pos + _HEADER.size + klen]
            value = data[pos + _HEADER.size + klen : end - _TRAILER.size]
            (crc,) = _TRAILER.unpack_from(data, end - _TRAILER.size)
            if crc != zlib.crc32(key + value):
                logger.warning("spool_corrupt_record path=%s offset=%d", self.path, pos)
                return
            yield key, value
            pos = end

    def take(self) -> Path | None:
        """Atomically move the spool aside for replay; new failures go to a fresh file."""
        with self._lock:
            if not self.path.exists():
                return None
            taken = self.path.with_suffix(f".replaying.{os.getpid()}")
            os.replace(self.path, taken)
            return taken
