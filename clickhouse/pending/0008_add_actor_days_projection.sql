-- Migration 0008 (waiting in clickhouse/pending/ until 0007 lands: the loader refuses gaps).
--
-- Actor days: for each part, the distinct (workspace, lowercased actor, UTC day) it holds. An
-- actor search on a page (query_api/queries.py, EventReader._days_seen) first asks on which days a
-- matching actor appears; the engine answers from these few rows per part instead of evaluating
-- the ngram index over every granule of the workspace, and the page then reads only those days.
-- The page keeps its substring filter on the table's rows, so its rows are the same with or
-- without this projection (without it the same question is answered from the table, slower).
-- Storage and speed measured in docs/performance.md ("Rare actor").
--
-- A projection, not a materialized view into a table of its own: it is written in the same part
-- as the rows, so no insert, retry or deduplicated block can leave a day out of it.
-- A ReplacingMergeTree accepts projections only with deduplicate_merge_projection_mode =
-- 'rebuild': a merge that drops duplicate rows rebuilds that part's projection.
ALTER TABLE {database}.{table} MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE {database}.{table} ADD PROJECTION IF NOT EXISTS actor_days (
    SELECT workspace_id, lower(actor_display), toDate(occurred_at)
    GROUP BY workspace_id, lower(actor_display), toDate(occurred_at)
);

-- Builds the projection for the parts that exist already (a background mutation); until it
-- finishes, those parts answer the days question from the table itself.
ALTER TABLE {database}.{table} MATERIALIZE PROJECTION actor_days;
