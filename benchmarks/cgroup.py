"""A memory-limited control group for one engine's processes (cgroup v2 or v1, Linux, as root).

The crossing benchmark puts each engine in its own group with the same
``memory.max`` (v2) / ``memory.limit_in_bytes`` (v1). The kernel charges a
group for its processes' memory *and* for the page cache their reads fill, so
a limited group keeps only that much of its data in RAM: exactly the
situation of a table much larger than the machine's memory.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
_SIZE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]?)i?B?$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class CgroupUnavailable(RuntimeError):
    """This machine (or this user) cannot create a memory-limited control group."""


def parse_size(text: str) -> int:
    """Bytes from ``512M``, ``2G``, ``1.5GiB``, ``1048576``; ValueError naming the text otherwise."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"not a size: {text!r} (expected e.g. 512M, 2G, 1048576)")
    size = int(float(match["n"]) * _UNITS[match["unit"].upper()])
    if size < 64 << 20:
        raise ValueError(f"size {text!r} is below 64 MiB: no engine starts in that")
    return size


class MemoryCgroup:
    """One group under the memory controller; processes join it by pid and it is removed at the end."""

    def __init__(self, name: str, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        if (ROOT / "cgroup.controllers").exists():  # v2: one unified hierarchy
            self.v2 = True
            self.path = ROOT / name
        elif (ROOT / "memory").is_dir():
            self.v2 = False
            self.path = ROOT / "memory" / name
        else:
            raise CgroupUnavailable(f"no memory controller under {ROOT}")
        try:
            self.path.mkdir(exist_ok=True)
            if self.v2:
                (self.path / "memory.max").write_text(f"{limit_bytes}\n")
                (self.path / "memory.swap.max").write_text("0\n")
            else:
                (self.path / "memory.limit_in_bytes").write_text(f"{limit_bytes}\n")
        except OSError as exc:
            raise CgroupUnavailable(f"cannot create the memory-limited group {self.path}: {exc}"
                                    " (run as root on a machine with the memory controller)") from exc
        logger.info("bench_cgroup_created path=%s limit_bytes=%d", self.path, limit_bytes)

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def join(self) -> None:
        """Move the calling process into the group (children it forks afterwards stay in it).

        Safe in a ``preexec_fn``: a single write, no locks taken.
        """
        self.procs.write_text(f"{os.getpid()}\n")

    def peak_bytes(self) -> int:
        """The most the group held (memory and page cache) since it was created."""
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        try:
            return int((self.path / name).read_text().strip())
        except (OSError, ValueError):
            return -1

    def oom_kills(self) -> int:
        """How many of the group's processes the kernel killed for memory."""
        if self.v2:
            events = (self.path / "memory.events").read_text()
            match = re.search(r"^oom_kill (\d+)$", events, re.MULTILINE)
            return int(match[1]) if match else 0
        control = (self.path / "memory.oom_control").read_text()
        match = re.search(r"^oom_kill (\d+)$", control, re.MULTILINE)
        return int(match[1]) if match else 0

    def remove(self, timeout: float = 30.0) -> None:
        """Remove the group once its processes are gone (it cannot be removed before)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.2)
        logger.warning("bench_cgroup_left path=%s reason=processes still in it", self.path)
