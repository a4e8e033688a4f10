"""Prometheus counters of the producer library (one registry per process)."""

from prometheus_client import Counter

PRODUCER_EMITTED = Counter("auditlog_producer_emitted_total", "Events accepted by emit()")
PRODUCER_DELIVERED = Counter("auditlog_producer_delivered_total", "Events acknowledged by the broker")
PRODUCER_FAILED = Counter("auditlog_producer_delivery_failed_total", "Events the broker did not acknowledge in time")
PRODUCER_SPOOLED = Counter("auditlog_producer_spooled_total", "Events written to the local spool")
PRODUCER_REPLAYED = Counter("auditlog_producer_replayed_total", "Spooled events sent again by a replay")
PRODUCER_SPOOL_FAILED = Counter(
    "auditlog_producer_spool_failed_total", "Undelivered events the spool could not take either (close() raises)"
)
