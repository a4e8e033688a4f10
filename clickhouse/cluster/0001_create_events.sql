-- The cluster variant of ../0001_create_events.sql, for a deployment that
-- outgrows one server. Same columns, same sort key, same partitioning.
--
-- {table}_local on every node: the rows, replicated within a shard through
-- ClickHouse Keeper (the {shard} and {replica} macros come from each server's
-- config). {table}: a Distributed table over them, sharded by workspace, so
-- the consumer inserts into it and the API reads from it under the same name
-- as on one server.
--
-- Sharding by sipHash64(workspace_id) keeps every row of a workspace, and so
-- every copy of a row, on one shard: the reads' `LIMIT 1 BY occurred_at, id`
-- and a shard's ReplacingMergeTree merges still see all copies of an event.
CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS {database}.{table}_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}_local', '{replica}')
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, occurred_at, id)
-- A retried batch carries the same insert_deduplication_token; replicated
-- tables remember the last N block ids in Keeper.
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER '{cluster}'
AS {database}.{table}_local
ENGINE = Distributed('{cluster}', '{database}', '{table}_local', sipHash64(workspace_id));
