-- The transparency log (transparency/, docs/verification.md): each workspace's
-- events as the leaves of an RFC 9162 Merkle tree, the complete-subtree hashes
-- that make a proof cost O(log n) reads, and the signed tree heads.
--
-- Written only by the sequencer (transparency/sequencer.py), one writer per
-- deployment, in this order per round: leaves, then nodes, then checkpoints. A
-- crash between two writes leaves a prefix the next run completes: the tree
-- size is read back from the leaves, missing node hashes are recomputed from
-- the level below, a checkpoint is signed for whatever is not yet covered.
--
-- ReplacingMergeTree everywhere: rewriting a row with the same key and the same
-- value (a repaired node, a re-signed checkpoint of the same size) is harmless.
-- A row with the same key and *another* value is tampering; `auditlog verify`
-- reads without FINAL and reports it, and after a merge hid it the signed roots
-- no longer match.

-- One row per leaf: leaf_hash = SHA-256(0x00 || JCS(event)). ingested_at is the
-- event's own ingested_at when it was sequenced: the sequencer's watermark (its
-- minmax index lets a round skip all but the newest parts). The
-- by_event projection answers "has this event a leaf, and where" (dedupe and
-- inclusion proofs by event id) without reading the whole log. The hash and the
-- id do not compress (~48 of the ~75 bytes a leaf takes with its projection);
-- the index and the times do, with delta codecs.
CREATE TABLE IF NOT EXISTS {database}.transparency_leaves
(
    workspace_id LowCardinality(String),
    leaf_index UInt64 CODEC(Delta, ZSTD(1)),
    event_id UUID,
    leaf_hash FixedString(32),
    ingested_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    sequenced_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1)),
    INDEX idx_ingested_at ingested_at TYPE minmax GRANULARITY 1,
    PROJECTION by_event (SELECT workspace_id, event_id, leaf_index ORDER BY event_id)
)
ENGINE = ReplacingMergeTree
ORDER BY (workspace_id, leaf_index)
SETTINGS deduplicate_merge_projection_mode = 'rebuild';

-- Complete-subtree hashes at levels 4, 8, 12, ... (level 0 is leaf_hash above):
-- the subtree at (level, node_index) covers leaves [node_index * 2^level,
-- (node_index + 1) * 2^level). Levels in between are recomputed from at most 8
-- hashes of the stored level below (the tile idea of Go's sumdb/tlog), so the
-- log stores ~1.07 hashes per leaf instead of 2.
CREATE TABLE IF NOT EXISTS {database}.transparency_nodes
(
    workspace_id String,
    level UInt8,
    node_index UInt64,
    hash FixedString(32)
)
ENGINE = ReplacingMergeTree
ORDER BY (workspace_id, level, node_index);

-- Signed tree heads. `checkpoint` is the JSON exactly as published on the
-- checkpoint topic (AUDITLOG_TRANSPARENCY__TOPIC), the copy outside this table.
CREATE TABLE IF NOT EXISTS {database}.transparency_checkpoints
(
    workspace_id String,
    tree_size UInt64,
    root_hash FixedString(32),
    timestamp DateTime64(6, 'UTC'),
    key_id LowCardinality(String),
    signature String,
    checkpoint String
)
ENGINE = ReplacingMergeTree
ORDER BY (workspace_id, tree_size, timestamp);

-- The sequencer reads the events ingested since its watermark; ingested_at is
-- not in the sort key, but rows arrive in ingest order, so a part's min/max
-- ingested_at is narrow and this index skips all but the newest parts.
ALTER TABLE {database}.{table} ADD INDEX IF NOT EXISTS idx_ingested_at ingested_at TYPE minmax GRANULARITY 1;

ALTER TABLE {database}.{table} MATERIALIZE INDEX idx_ingested_at;
