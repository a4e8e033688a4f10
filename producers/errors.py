"""What the producer library refuses, and why."""

from __future__ import annotations

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
