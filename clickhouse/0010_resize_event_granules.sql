-- Smaller granules for the events table (issue 19): 2,048 rows instead of 8,192.
--
-- A page that finds few rows spread over the history (a rare actor, a rare search term, a
-- narrow filter) reads, for each row it returns, the granule holding it from the granule's
-- start: every column of up to 8,192 rows decompressed and skipped to reach one row. Measured on
-- the benchmark's 10M events (docs/performance.md, "Migration 0010"): fetching the 15 columns of
-- the rare actor's 22 rows took ~50 of its ~75 ms, finding them ~12. With 2,048-row granules the
-- same pages cost ~25 % less CPU on average over the twelve page shapes (rare actor 31 -> 23 ms,
-- rare term 106 -> 69), for +1.4 % of storage and the skip indexes growing from 4.4 to 17.1 MB.
--
-- index_granularity cannot be altered, so the rows are copied into a table made like this one
-- (same columns, codecs, skip indexes, TTL and settings: CREATE TABLE ... AS) and the two are
-- swapped. Nothing written meanwhile is lost: a materialized view forwards every insert into
-- the old table to the new one before the copy starts, so a row is copied, forwarded, or both
-- (a copy with the same sort key collapses as any retried row does). The swap (EXCHANGE TABLES)
-- is atomic: writers and readers name the table, and from then on they reach the new one; the
-- views that read from it (the id table's, the daily summaries') follow the name too.
--
-- Cost: the copy reads and writes every event once (33 s for 10M events on two cores, 64 s of
-- CPU; the API and the consumer keep running), and the disk holds both tables until the old one
-- is dropped at the end. Safe to run again after a stop at any statement: it starts over from the
-- table named {table}, which holds every row at any point (before the swap the original, after
-- it the complete copy).

DROP VIEW IF EXISTS {database}.{table}_regranulate;

DROP TABLE IF EXISTS {database}.{table}_regranulated;

CREATE TABLE {database}.{table}_regranulated AS {database}.{table} SETTINGS index_granularity = 2048;

CREATE MATERIALIZED VIEW {database}.{table}_regranulate TO {database}.{table}_regranulated AS
SELECT * FROM {database}.{table};

-- Deduplication off: the copy's blocks are not retries, and a block that happened to equal
-- another must not be dropped. Any number of monthly partitions in one block (a history of years).
INSERT INTO {database}.{table}_regranulated
SETTINGS insert_deduplicate = 0, max_partitions_per_insert_block = 0
SELECT * FROM {database}.{table};

-- The one gap the view leaves: an INSERT that began before the view existed is not forwarded, and
-- if it ended after the copy read the table, its rows are in neither. Every row ingested from ten
-- minutes before the view was made is copied again (a row copied twice collapses); an insert
-- lasting longer than that is not expected of any writer.
INSERT INTO {database}.{table}_regranulated
SETTINGS insert_deduplicate = 0, max_partitions_per_insert_block = 0
SELECT * FROM {database}.{table}
WHERE ingested_at >= (
    SELECT toDateTime64(metadata_modification_time, 3, 'UTC') FROM system.tables
    WHERE database = '{database}' AND name = '{table}_regranulate'
) - INTERVAL 10 MINUTE;

-- The swap only if every event ingested in those ten minutes before the view (the ones it cannot
-- forward) is in the copy; otherwise the migration stops here with the original untouched.
-- (The view's time is made DateTime64 on purpose: compared as a DateTime, the minmax index on
-- ingested_at (0006) skips every granule for `ingested_at < time` in chDB 26.9, and the check
-- would compare nothing with nothing.)
WITH (
    SELECT toDateTime64(metadata_modification_time, 3, 'UTC') FROM system.tables
    WHERE database = '{database}' AND name = '{table}_regranulate'
) AS view_made
SELECT throwIf(
    (SELECT uniqExact(workspace_id, occurred_at, id) FROM {database}.{table}
     WHERE ingested_at >= view_made - INTERVAL 10 MINUTE AND ingested_at < view_made)
    > (SELECT uniqExact(workspace_id, occurred_at, id) FROM {database}.{table}_regranulated
       WHERE ingested_at >= view_made - INTERVAL 10 MINUTE AND ingested_at < view_made),
    'migration 0010: events ingested just before the copy began are missing from it. Nothing was swapped: run migrate again');

EXCHANGE TABLES {database}.{table} AND {database}.{table}_regranulated;

DROP VIEW {database}.{table}_regranulate;

DROP TABLE {database}.{table}_regranulated;
