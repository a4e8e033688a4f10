-- The cluster variant of ../0008_add_search_index.sql, on the storage table of every node.
ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}' ADD INDEX IF NOT EXISTS idx_search
    lowerUTF8(concat(action, '\n', actor_id, '\n', actor_display, '\n', target_kind, '\n', target_id, '\n', target_display, '\n', payload, '\n', request_id, '\n', ip, '\n', user_agent)) TYPE ngrambf_v1(3, 8192, 2, 0) GRANULARITY 1;

ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}' MATERIALIZE INDEX idx_search;
