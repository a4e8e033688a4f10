"""What the producer library refuses, and why."""

from __future__ import annotations

from pathlib import Path

from schemas.errors import InvalidEvent


class ProducerError(Exception):
    """Base class for producer failures that are not about the event itself."""


class PayloadTooLarge(InvalidEvent):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the encoded event is {size} bytes, over the {limit}-byte limit "
            "(AUDITLOG_PRODUCER__MAX_PAYLOAD_BYTES); keep before/after to the fields that changed"
        )
        self.size = size
        self.limit = limit


class ProducerClosed(ProducerError):
    def __init__(self) -> None:
        super().__init__("emit() called on a closed AuditProducer")


class SpoolWriteFailed(ProducerError):
    """Events the broker did not take could not be written to the spool either (disk full, permissions).

    ``records`` holds the (key, value) bytes that are now nowhere else: the
    caller's last chance to keep them (another disk, its own logs).
    """

    def __init__(self, count: int, path: Path, reason: str, records: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(
            f"{count} audit event(s) were not delivered and could not be written to the spool {path} "
            f"({reason}); free space or fix the permissions of the spool directory "
            "(AUDITLOG_PRODUCER__SPOOL_DIR): these events are not saved anywhere else"
        )
        self.count = count
        self.path = path
        self.reason = reason
        self.records = records or []
