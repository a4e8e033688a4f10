-- The cluster variant of ../0004_resize_actor_index.sql, on the storage table of every node.
ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}' DROP INDEX IF EXISTS idx_actor_display;

ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}' ADD INDEX IF NOT EXISTS idx_actor_ngrams
    lower(actor_display) TYPE ngrambf_v1(3, 4096, 2, 0) GRANULARITY 1;

ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}' MATERIALIZE INDEX idx_actor_ngrams;
