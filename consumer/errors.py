"""Errors of the consumer."""

from __future__ import annotations


class ConsumerError(Exception):
    """Base class for consumer failures."""


class InvalidMessage(ConsumerError):
    """A message that can never be stored: it goes to the dead-letter topic, never retried."""

    def __init__(self, partition: int, offset: int, reason: str) -> None:
        super().__init__(f"partition {partition} offset {offset}: {reason}")
        self.partition = partition
        self.offset = offset
        self.reason = reason


class DeadLetterFailed(ConsumerError):
    """The dead-letter topic did not acknowledge a poison message; the batch is not committed."""
