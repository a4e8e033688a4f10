-- Free-text search (q, query_api/search.py): a skip index over every searched column.
--
-- A term matches when it is a case-insensitive substring of one searched column, so the index is
-- an ngram one, over the expression the reads test (clickhouse/events.py: SEARCH_TEXT, word for
-- word; the engine only uses an index for a WHERE written with its expression). A rare term (a
-- request id, one person) then reads the few granules that may hold it instead of the whole
-- workspace; a common one fills its page from the newest granules either way.
--
-- Measured on chDB 26.9 (benchmarks/search_index.py; docs/performance.md, "Search"): 8 KiB of bloom
-- filter per granule (8,192 rows), 2 hashes, costs ~0.44 bytes/event and keeps 4 of 58 granules for a
-- rare term, as many as 32 KiB does (2.0 bytes/event). The text index with an ngrams(3) tokenizer
-- prunes the same and costs ~179 bytes/event, three times the whole table: out of the storage budget.
-- tokenbf_v1 only helps whole-token searches, which is not what a term means. Until MATERIALIZE has
-- run, parts written before this migration are read without the index (same rows, slower).
ALTER TABLE {database}.{table} ADD INDEX IF NOT EXISTS idx_search
    lowerUTF8(concat(action, '\n', actor_id, '\n', actor_display, '\n', target_kind, '\n', target_id, '\n', target_display, '\n', payload, '\n', request_id, '\n', ip, '\n', user_agent)) TYPE ngrambf_v1(3, 8192, 2, 0) GRANULARITY 1;

ALTER TABLE {database}.{table} MATERIALIZE INDEX idx_search;
