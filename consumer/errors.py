"""Errors of the consumer, classified by what the loop does about them.

- ``TransientError``: the store or broker may work again (unreachable, timeout,
  too busy). The loop retries the same batch with backoff and commits nothing
  past stored rows, up to ``consumer.outage_max_seconds``; then it becomes fatal.
- ``InvalidMessage``: permanent for one message. It goes to the dead-letter
  topic with the reason; the rest of the batch is stored.
- ``FatalError``: permanent for the process (fenced by the group, refused
  credentials, a missing table or topic). The loop stops, the command exits
  non-zero and says why; it never keeps running idle.
"""

from __future__ import annotations


class ConsumerError(Exception):
    """Base class for consumer failures."""


class TransientError(ConsumerError):
    """A failure that retrying later may cure (the store unreachable, a timeout, too busy)."""


class StoreUnavailable(TransientError):
    """The store did not take the write; nothing was committed past stored rows."""


class RowsRefused(ConsumerError):
    """The store refused these rows for what they are (too many partitions, a bad value): retrying the
    same rows can never succeed. The store splits the batch so only the rows at fault are dead-lettered."""


class FatalError(ConsumerError):
    """The consumer cannot go on; the process must stop with a non-zero exit and this message."""


class KafkaFatal(FatalError):
    """The broker or the group said this consumer can never continue (fenced, unauthorised, no topic)."""


class StoreMisconfigured(FatalError):
    """The store refuses every write of this consumer (credentials, a read-only user, a missing table)."""


class StoreOutageTooLong(FatalError):
    """The store stayed unavailable past ``consumer.outage_max_seconds``; a restart (or an operator) must decide."""


class InvalidMessage(ConsumerError):
    """A message that can never be stored: it goes to the dead-letter topic, never retried."""

    def __init__(self, partition: int, offset: int, reason: str) -> None:
        super().__init__(f"partition {partition} offset {offset}: {reason}")
        self.partition = partition
        self.offset = offset
        self.reason = reason


class DeadLetterFailed(TransientError):
    """The dead-letter topic did not acknowledge a poison message; the batch is not committed."""
