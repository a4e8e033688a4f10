-- Daily summaries for the data team's questions across workspaces (issue 15).
--
-- Questions over a long time range of all workspaces ("events per day and category
-- over a year", "top actors of every workspace", "distinct active actors per month",
-- "role changes per week", "tokens minted per actor") read every event of the range
-- in the events table. These two tables hold the same counts per day: a few rows per
-- workspace and day instead of every event (0.045 and 0.15 rows per event on the
-- benchmark's 10M events, ~1.5 bytes per event together; docs/performance.md).
-- Analysts query them directly (docs/data-teams.md, "Questions across workspaces:
-- the daily summaries"); clickhouse/data_teams/*.sql has the tested examples.
--
-- Filled by refreshable materialized views, not by insert-time views or projections:
-- those cost every insert of the consumer its aggregation and a part more to write
-- (measured: the insert statement 1.5-3x slower), where a refresh costs one read of
-- the table an hour, off the ingest path (~20 s of one core at 10M events).
-- So a summary is up to an hour behind the events (its refresh time is in
-- system.view_refreshes); the current day is partial until the next refresh.
--
-- Exact counts: each refresh reads the events with FINAL, which collapses copies of an
-- event not yet merged (a re-formed batch after a crash), so `events` counts distinct
-- events, as uniqExact(id) on the table does. Each refresh replaces the whole table
-- atomically, so the table's TTL (retention) reaches the summaries at the next refresh.
-- The day is toDate(occurred_at), in UTC.

-- Per action, day, workspace and actor (with the roles of a role change): sorted by
-- action first, so a question about one action reads a few granules.
CREATE TABLE IF NOT EXISTS {database}.{table}_daily_actions
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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_daily_actions_refresh
REFRESH EVERY 1 HOUR TO {database}.{table}_daily_actions AS
SELECT
    action, toDate(occurred_at) AS day, category, workspace_id, actor_kind, actor_id, actor_display,
    if(action = 'MEMBER_ROLE_CHANGED', JSONExtractString(payload, 'before', 'role'), '') AS role_before,
    if(action = 'MEMBER_ROLE_CHANGED', JSONExtractString(payload, 'after', 'role'), '') AS role_after,
    count() AS events
FROM {database}.{table} FINAL
GROUP BY action, day, category, workspace_id, actor_kind, actor_id, actor_display, role_before, role_after
SETTINGS do_not_merge_across_partitions_select_final = 1;

-- Per day, workspace and actor: sorted by day first, for "the last N days" of every workspace.
CREATE TABLE IF NOT EXISTS {database}.{table}_daily_actors
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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_daily_actors_refresh
REFRESH EVERY 1 HOUR TO {database}.{table}_daily_actors AS
SELECT toDate(occurred_at) AS day, workspace_id, actor_kind, actor_id, actor_display, count() AS events
FROM {database}.{table} FINAL
GROUP BY day, workspace_id, actor_kind, actor_id, actor_display
SETTINGS do_not_merge_across_partitions_select_final = 1;
