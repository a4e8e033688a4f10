-- Storage: ZSTD instead of the default LZ4 on the columns that took most of
-- the bytes (docs/performance.md, "After migration 0003"). On the benchmark's
-- realistic rows the biggest columns were id, request_id, target_display, ip,
-- target_id, occurred_at and user_agent, all on LZ4. ZSTD(1) decodes about as
-- fast as LZ4 and is cheap to write; occurred_at is sorted within a workspace,
-- so its deltas compress far better than its values. Measured on 1M events:
-- 87 -> 57 bytes per event (PostgreSQL's audit table: 670).
--
-- Only codecs change (no type, no default): this is a metadata change. New
-- parts are written with the new codecs; existing parts are recompressed as
-- they merge, or at once by an operator at a quiet time with
-- OPTIMIZE TABLE ... FINAL (it rewrites the table). Reads do not change.
--
-- Not done here, measured (docs/performance.md): a projection sorted by action
-- for the data team's questions costs 13-21 bytes per event, which would break
-- the storage target; a projection with WHERE (only the rare actions' rows)
-- is small, but a part with no matching row gets no projection part and then
-- cannot merge with parts that have one (ClickHouse 26.9: "Parts have
-- different projection sets"), which a stream of small inserts hits at once.
ALTER TABLE {database}.{table}
    MODIFY COLUMN id CODEC(ZSTD(1)),
    MODIFY COLUMN occurred_at CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN actor_id CODEC(ZSTD(1)),
    MODIFY COLUMN actor_display CODEC(ZSTD(1)),
    MODIFY COLUMN target_id CODEC(ZSTD(1)),
    MODIFY COLUMN target_display CODEC(ZSTD(1)),
    MODIFY COLUMN ip CODEC(ZSTD(1)),
    MODIFY COLUMN user_agent CODEC(ZSTD(1)),
    MODIFY COLUMN request_id CODEC(ZSTD(1));
