"""A batch: raw messages and the offset range per partition they came from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

RawMessage = tuple[int, int, bytes | None, bytes | None]  # partition, offset, key, value


@dataclass
class Batch:
    """Messages taken from the broker since the last seal, in the order they came."""

    raw: list[RawMessage] = field(default_factory=list)
    first: dict[int, int] = field(default_factory=dict)
    last: dict[int, int] = field(default_factory=dict)
    opened_at: float = 0.0

    def add(self, message: RawMessage, now: float) -> None:
        partition, offset = message[0], message[1]
        if not self.first:
            self.opened_at = now
        if partition not in self.first:
            self.first[partition] = offset
        self.last[partition] = offset
        self.raw.append(message)

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def messages(self) -> int:
        return sum(self.last[p] - self.first[p] + 1 for p in self.last)

    def dedup_token(self, topic: str) -> str:
        """The same for the same messages, so a retried insert is dropped by the engine."""
        ranges = ",".join(f"{p}:{self.first[p]}-{self.last[p]}" for p in sorted(self.first))
        return hashlib.sha256(f"{topic}|{ranges}".encode()).hexdigest()[:32]

    def next_offsets(self) -> dict[int, int]:
        """The offsets to commit once this batch is stored."""
        return {p: last + 1 for p, last in self.last.items()}
