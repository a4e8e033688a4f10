"""Sending spooled events again (``auditlog spool replay``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from config.settings import Settings
from producers.metrics import PRODUCER_REPLAYED
from producers.producer import AuditProducer
from producers.spool import Spool

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What one replay did: ``sent`` acknowledged by the broker, ``respooled`` back in the spool."""

    sent: int
    respooled: int
    files: int  # spool files replayed: the live spool and any orphans of killed replays


def replay_spool(settings: Settings, timeout: float = 60.0) -> tuple[int, int]:
    """Send every spooled message with its original bytes; returns (sent, still_spooled)."""
    result = replay(settings, timeout)
    return result.sent, result.respooled


def replay(settings: Settings, timeout: float = 60.0, *, on_progress: Callable[[int, int], None] | None = None
           ) -> ReplayResult:
    """Send every spooled message, including those of replays that were killed; crash-safe.

    ``on_progress(handed, total)`` is called after each message is handed to the producer
    (``auditlog spool replay`` draws its progress from it).

    The spool and any orphaned claim files are claimed (locked, see
    producers/spool.py) and stay on disk until every message in them has an
    outcome: delivered, or appended to the live spool again by the producer's
    close(). A replay killed at any point leaves them complete for the next
    status or replay; at worst some events are sent twice, and the consumer's
    dedup by id makes that harmless.

    Raises:
        SpoolWriteFailed: messages could be neither delivered nor spooled again;
            the claimed files are left in place, so nothing is lost.
    """
    spool = Spool(settings.producer.spool_dir)
    claims = spool.claim()
    if not claims:
        return ReplayResult(0, 0, 0)
    try:
        producer = AuditProducer.from_settings(settings)
        try:
            total = sum(len(claim.records) for claim in claims)
            handed = 0
            for claim in claims:
                for key, value in claim.records:
                    producer.produce_encoded(key, value)
                    handed += 1
                    if on_progress is not None:
                        on_progress(handed, total)
        finally:
            outcomes = producer.close(timeout)
    except BaseException:
        for claim in claims:
            claim.release()
        raise
    for claim in claims:
        claim.finish()
    PRODUCER_REPLAYED.inc(outcomes.delivered)
    logger.info("spool_replayed files=%d sent=%d respooled=%d", len(claims), outcomes.delivered, outcomes.spooled)
    return ReplayResult(outcomes.delivered, outcomes.spooled, len(claims))
