-- The audit events table. ReplacingMergeTree on the full sort key: a row
-- written twice (a retried batch, a replayed spool, a crash between insert and
-- commit) has the same (workspace_id, occurred_at, id) and merges into one;
-- reads collapse the not-yet-merged copies with LIMIT 1 BY.
CREATE TABLE IF NOT EXISTS {database}.{table}
(
    id UUID,
    workspace_id String,
    occurred_at DateTime64(6, 'UTC'),
    action LowCardinality(String),
    category LowCardinality(String),
    actor_kind LowCardinality(String),
    actor_id String,
    actor_display String,
    target_kind LowCardinality(String),
    target_id String,
    target_display String,
    -- {"before": {...}, "after": {...}} as JSON text; JSONExtract* reads it in SQL.
    payload String CODEC(ZSTD(3)),
    ip String DEFAULT '',
    user_agent String DEFAULT '',
    request_id String DEFAULT '',
    service LowCardinality(String) DEFAULT '',
    schema_version UInt16,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_actor_display lower(actor_display) TYPE ngrambf_v1(3, 1024, 2, 0) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, occurred_at, id)
SETTINGS non_replicated_deduplication_window = 10000;
