-- The cluster variant of ../0011_add_action_projection.sql, on the storage table of every node
-- (proposed, waiting in clickhouse/pending/ like the single-server file).
ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}'
    MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}' ADD PROJECTION IF NOT EXISTS by_action (
    SELECT action, occurred_at, id, workspace_id, actor_kind, actor_display, target_display, payload
    ORDER BY action, occurred_at, id
);

ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}' MATERIALIZE PROJECTION by_action;
