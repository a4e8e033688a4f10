-- The cluster variant of ../0003_set_column_codecs.sql (read its comments):
-- the same codecs on {table}_local, the replicated storage of every shard.
-- The Distributed table {table} holds no data and keeps its columns as they
-- are (only codecs change, no types).
ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}'
    MODIFY COLUMN occurred_at CODEC(T64, LZ4),
    MODIFY COLUMN actor_id CODEC(ZSTD(1)),
    MODIFY COLUMN target_id CODEC(ZSTD(1)),
    MODIFY COLUMN target_display CODEC(ZSTD(1)),
    MODIFY COLUMN ip CODEC(ZSTD(1)),
    MODIFY COLUMN user_agent CODEC(ZSTD(1)),
    MODIFY COLUMN request_id CODEC(ZSTD(1));
