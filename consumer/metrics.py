"""Prometheus metrics of the consumer."""

from prometheus_client import Counter, Gauge, Histogram

CONSUMER_LAG = Gauge("auditlog_consumer_lag", "Messages not yet stored, per partition", ["partition"])
BATCH_SIZE = Histogram(
    "auditlog_consumer_batch_size",
    "Messages per stored batch",
    buckets=(1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000),
)
INSERT_LATENCY = Histogram(
    "auditlog_consumer_insert_seconds",
    "Time of one attempt to store a batch (staging, the contract check, the id lookup, the insert)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ROWS_INSERTED = Counter("auditlog_consumer_rows_inserted_total", "Rows written to ClickHouse")
DLQ_MESSAGES = Counter("auditlog_consumer_dlq_total", "Messages sent to the dead-letter topic", ["reason_kind"])
INSERT_RETRIES = Counter("auditlog_consumer_insert_retries_total", "Failed inserts that were retried")
COMMITS = Counter("auditlog_consumer_commits_total", "Offset commits after a stored batch")
ENGINE_FALLBACKS = Counter(
    "auditlog_consumer_engine_fallbacks_total",
    "Batches (per schema version) the engine path declined and Python decoded instead",
)
ENGINE_SPLITS = Counter(
    "auditlog_consumer_splits_total",
    "Times a group was split: unparseable bodies set aside, months inserted in groups, refused rows bisected",
)
ID_CONFLICTS = Counter(
    "auditlog_consumer_id_conflicts_total", "Events dead-lettered because their id is stored with other content"
)
REDELIVERED_SKIPPED = Counter(
    "auditlog_consumer_redelivered_skipped_total", "Events skipped because the same event is already stored"
)
CONSUMER_READY = Gauge(
    "auditlog_consumer_ready", "1 while the consumer makes progress (or has nothing to do), 0 otherwise"
)
CONSUMER_STATE = Gauge(
    "auditlog_consumer_state", "The consumer's state (1 for the current one)", ["state"]
)
LAST_PROGRESS = Gauge(
    "auditlog_consumer_last_progress_timestamp_seconds", "When the consumer last stored a batch or caught up"
)
