-- Proposed migration 0011 (waiting in clickhouse/pending/: applied, it takes storage past
-- the target, docs/performance.md). Measured with `python -m benchmarks.run --action-projection
-- clickhouse/pending/0011_add_action_projection.sql` (docs/performance.md).
--
-- The data team's questions that filter one action across all workspaces ("role changes
-- per week", "tokens minted per actor") read nearly every granule of a table sorted by
-- (workspace_id, occurred_at, id): the action is in almost every granule. A projection
-- sorted by (action, occurred_at, id) gives them the access path of PostgreSQL's
-- (action, occurred_at) b-tree; the engine picks it when it reads fewer marks, so
-- workspace-first reads (pages, exports) keep the table's own order. It holds the
-- columns those questions read, payload included (the role is in it).
--
-- A ReplacingMergeTree accepts projections only with deduplicate_merge_projection_mode
-- = 'rebuild': a merge that drops duplicate rows rebuilds that part's projection, so the
-- projection never holds a row the table no longer has.
ALTER TABLE {database}.{table} MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE {database}.{table} ADD PROJECTION IF NOT EXISTS by_action (
    SELECT action, occurred_at, id, workspace_id, actor_kind, actor_display, target_display, payload
    ORDER BY action, occurred_at, id
);

-- Builds the projection for the parts that exist already (a background mutation); until it
-- finishes, those parts answer from the table's own order, as before.
ALTER TABLE {database}.{table} MATERIALIZE PROJECTION by_action;
