-- The cluster variant of ../0009_resize_daily_actions_granules.sql: the storage table of every
-- shard is made again with 2,048-row granules (the Distributed table over it keeps its
-- columns and stays), and the refresh view that fills it.

DROP VIEW IF EXISTS {database}.{table}_daily_actions_refresh ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS {database}.{table}_daily_actions_local ON CLUSTER '{cluster}' SYNC;

CREATE TABLE IF NOT EXISTS {database}.{table}_daily_actions_local ON CLUSTER '{cluster}'
(
    action LowCardinality(String),
    day Date,
    category LowCardinality(String),
    workspace_id String,
    actor_kind LowCardinality(String),
    actor_id String,
    actor_display String,
    -- A role change's JSONExtractString(payload, 'before' / 'after', 'role'); empty for other actions.
    role_before LowCardinality(String),
    role_after LowCardinality(String),
    events UInt64
)
ENGINE = MergeTree
ORDER BY (action, day, workspace_id, actor_display)
SETTINGS index_granularity = 2048;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_daily_actions_refresh ON CLUSTER '{cluster}'
REFRESH EVERY 1 HOUR TO {database}.{table}_daily_actions_local AS
SELECT
    action, toDate(occurred_at) AS day, category, workspace_id, actor_kind, actor_id, actor_display,
    if(action = 'MEMBER_ROLE_CHANGED', JSONExtractString(payload, 'before', 'role'), '') AS role_before,
    if(action = 'MEMBER_ROLE_CHANGED', JSONExtractString(payload, 'after', 'role'), '') AS role_after,
    count() AS events
FROM {database}.{table}_local FINAL
GROUP BY action, day, category, workspace_id, actor_kind, actor_id, actor_display, role_before, role_after
SETTINGS do_not_merge_across_partitions_select_final = 1;
