-- The cluster variant of ../0005_create_event_ids.sql. The view runs on every
-- node over its {table}_local and writes to that node's {table}_ids_local, so
-- each id sits on the shard of its workspace; the consumer looks ids up
-- through the Distributed {table}_ids, which asks every shard (an id sent
-- again under another workspace is found too).
CREATE TABLE IF NOT EXISTS {database}.{table}_ids_local ON CLUSTER '{cluster}'
(
    id UUID,
    workspace_id String,
    occurred_at DateTime64(6, 'UTC'),
    digest UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}_ids_local', '{replica}')
ORDER BY id;

CREATE TABLE IF NOT EXISTS {database}.{table}_ids ON CLUSTER '{cluster}'
AS {database}.{table}_ids_local
ENGINE = Distributed('{cluster}', '{database}', '{table}_ids_local', sipHash64(workspace_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_ids_mv ON CLUSTER '{cluster}'
TO {database}.{table}_ids_local AS
SELECT id, workspace_id, occurred_at, cityHash64(workspace_id, toUnixTimestamp64Micro(occurred_at), toString(action), toString(category), toString(actor_kind), actor_id, actor_display, toString(target_kind), target_id, target_display, payload, ip, user_agent, request_id, toString(service)) AS digest
FROM {database}.{table}_local;

-- The backfill runs once, through the Distributed tables (an INSERT has no
-- ON CLUSTER): it reads every shard and writes each id to its workspace's shard.
INSERT INTO {database}.{table}_ids
SELECT id, workspace_id, occurred_at, cityHash64(workspace_id, toUnixTimestamp64Micro(occurred_at), toString(action), toString(category), toString(actor_kind), actor_id, actor_display, toString(target_kind), target_id, target_display, payload, ip, user_agent, request_id, toString(service)) AS digest
FROM {database}.{table};
