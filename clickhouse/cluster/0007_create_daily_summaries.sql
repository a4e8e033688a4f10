-- The cluster variant of ../NNNN_create_daily_summaries.sql, same number (read its comments).
-- On every node, each summary is a plain MergeTree {table}_daily_*_local refreshed
-- from that node's own {table}_local (replicas hold the same events, so they compute
-- the same summary; the refresh is not replicated, or each replica would add its
-- copy), and {table}_daily_* is a Distributed table over them: a query asks one
-- replica of each shard, and workspaces do not span shards.

-- Per action, day, workspace and actor (with the roles of a role change): sorted by
-- action first, so a question about one action reads a few granules.
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
ORDER BY (action, day, workspace_id, actor_display);

CREATE TABLE IF NOT EXISTS {database}.{table}_daily_actions ON CLUSTER '{cluster}'
AS {database}.{table}_daily_actions_local
ENGINE = Distributed('{cluster}', '{database}', '{table}_daily_actions_local', sipHash64(workspace_id));

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

-- Per day, workspace and actor: sorted by day first, for "the last N days" of every workspace.
CREATE TABLE IF NOT EXISTS {database}.{table}_daily_actors_local ON CLUSTER '{cluster}'
(
    day Date,
    workspace_id String,
    actor_kind LowCardinality(String),
    actor_id String,
    actor_display String,
    events UInt64
)
ENGINE = MergeTree
ORDER BY (day, workspace_id, actor_id);

CREATE TABLE IF NOT EXISTS {database}.{table}_daily_actors ON CLUSTER '{cluster}'
AS {database}.{table}_daily_actors_local
ENGINE = Distributed('{cluster}', '{database}', '{table}_daily_actors_local', sipHash64(workspace_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_daily_actors_refresh ON CLUSTER '{cluster}'
REFRESH EVERY 1 HOUR TO {database}.{table}_daily_actors_local AS
SELECT toDate(occurred_at) AS day, workspace_id, actor_kind, actor_id, actor_display, count() AS events
FROM {database}.{table}_local FINAL
GROUP BY day, workspace_id, actor_kind, actor_id, actor_display
SETTINGS do_not_merge_across_partitions_select_final = 1;
