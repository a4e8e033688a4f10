-- Storage: ZSTD instead of the default LZ4 on the string columns that took
-- most of the bytes and that no page filters or sorts on (docs/performance.md,
-- "After migration 0003"). Measured on the benchmark's 1M realistic events:
-- 87 -> 61 bytes per event (PostgreSQL's audit table: 670).
--
-- ZSTD(1) decodes about 2x slower than LZ4 (measured: 28 vs 13 ms per 1M
-- values of actor_display on one core), so columns that reads scan stay on
-- LZ4: id (sort key, read by every page, and random: ZSTD saves 5 %) and
-- actor_display (the actor substring filter decompresses it over whole
-- workspaces). The ZSTD columns are read only for the rows a page or an
-- export returns. occurred_at (sort key, read by every page) gets T64, LZ4:
-- 7.2 -> 5.0 bytes per event and faster to decode than plain LZ4 (7.7 vs
-- 10.3 ms per 1M values), where Delta, ZSTD(1) was as small but 50 % slower.
--
-- Only codecs change (no type, no default): this is a metadata change. New
-- parts are written with the new codecs; existing parts are recompressed as
-- they merge, or at once by an operator at a quiet time with
-- OPTIMIZE TABLE ... FINAL (it rewrites the table). Answers do not change.
--
-- Not done here, measured (docs/performance.md): a projection sorted by action
-- for the data team's questions costs 13-21 bytes per event, which would break
-- the storage target; a projection with WHERE (only the rare actions' rows)
-- is small, but a part with no matching row gets no projection part and then
-- cannot merge with parts that have one (ClickHouse 26.9: "Parts have
-- different projection sets"), which a stream of small inserts hits at once.
ALTER TABLE {database}.{table}
    MODIFY COLUMN occurred_at CODEC(T64, LZ4),
    MODIFY COLUMN actor_id CODEC(ZSTD(1)),
    MODIFY COLUMN target_id CODEC(ZSTD(1)),
    MODIFY COLUMN target_display CODEC(ZSTD(1)),
    MODIFY COLUMN ip CODEC(ZSTD(1)),
    MODIFY COLUMN user_agent CODEC(ZSTD(1)),
    MODIFY COLUMN request_id CODEC(ZSTD(1));
