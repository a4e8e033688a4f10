-- The cluster variant of ../0006_create_transparency_log.sql (read its comments).
-- Each table is replicated storage in <name>_local on every node and a
-- Distributed table <name> sharded by workspace, like the events: a
-- workspace's leaves, nodes and checkpoints live on the shard of its events.
CREATE TABLE IF NOT EXISTS {database}.transparency_leaves_local ON CLUSTER '{cluster}'
(
    workspace_id LowCardinality(String),
    leaf_index UInt64 CODEC(Delta, ZSTD(1)),
    event_id UUID,
    leaf_hash FixedString(32),
    ingested_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    sequenced_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1)),
    INDEX idx_ingested_at ingested_at TYPE minmax GRANULARITY 1,
    PROJECTION by_event (SELECT workspace_id, event_id, leaf_index ORDER BY event_id)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/transparency_leaves_local', '{replica}')
ORDER BY (workspace_id, leaf_index)
SETTINGS deduplicate_merge_projection_mode = 'rebuild';

CREATE TABLE IF NOT EXISTS {database}.transparency_leaves ON CLUSTER '{cluster}'
AS {database}.transparency_leaves_local
ENGINE = Distributed('{cluster}', '{database}', 'transparency_leaves_local', sipHash64(workspace_id));

CREATE TABLE IF NOT EXISTS {database}.transparency_nodes_local ON CLUSTER '{cluster}'
(
    workspace_id String,
    level UInt8,
    node_index UInt64,
    hash FixedString(32)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/transparency_nodes_local', '{replica}')
ORDER BY (workspace_id, level, node_index);

CREATE TABLE IF NOT EXISTS {database}.transparency_nodes ON CLUSTER '{cluster}'
AS {database}.transparency_nodes_local
ENGINE = Distributed('{cluster}', '{database}', 'transparency_nodes_local', sipHash64(workspace_id));

CREATE TABLE IF NOT EXISTS {database}.transparency_checkpoints_local ON CLUSTER '{cluster}'
(
    workspace_id String,
    tree_size UInt64,
    root_hash FixedString(32),
    timestamp DateTime64(6, 'UTC'),
    key_id LowCardinality(String),
    signature String,
    checkpoint String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/transparency_checkpoints_local', '{replica}')
ORDER BY (workspace_id, tree_size, timestamp);

CREATE TABLE IF NOT EXISTS {database}.transparency_checkpoints ON CLUSTER '{cluster}'
AS {database}.transparency_checkpoints_local
ENGINE = Distributed('{cluster}', '{database}', 'transparency_checkpoints_local', sipHash64(workspace_id));

ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}'
    ADD INDEX IF NOT EXISTS idx_ingested_at ingested_at TYPE minmax GRANULARITY 1;

ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}' MATERIALIZE INDEX idx_ingested_at;
