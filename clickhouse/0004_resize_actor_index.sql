-- A sharper skip index for actor substring search (the "rare actor" page).
--
-- 0001's ngram bloom filter (1 KiB per 4 granules = 32k rows) saturated with a
-- workspace's actors: a search for one person seen once in 100k events still
-- read 64 of 252 granules of the biggest workspace (2M events). 4 KiB per
-- granule (8,192 rows) with 2 hashes leaves exactly the 22 granules that hold
-- the matches, for about 0.02 bytes per event (measured on the benchmark's 10M
-- events; docs/performance.md). Same expression, so the same queries use it.
ALTER TABLE {database}.{table} DROP INDEX IF EXISTS idx_actor_display;

ALTER TABLE {database}.{table} ADD INDEX IF NOT EXISTS idx_actor_ngrams
    lower(actor_display) TYPE ngrambf_v1(3, 4096, 2, 0) GRANULARITY 1;

-- Builds the index for the parts that exist already (a background mutation);
-- until it finishes, those parts are read without it, as with no index.
ALTER TABLE {database}.{table} MATERIALIZE INDEX idx_actor_ngrams;
