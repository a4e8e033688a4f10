-- Write-once ids. An event id, once stored, keeps its first content: the
-- consumer looks up every batch's ids here and stores a redelivery of the same
-- content as a no-op, but dead-letters a different event under a stored id
-- ("id conflict") instead of letting the ReplacingMergeTree keep the last
-- version (same sort key) or show both (another time or workspace).
--
-- The digest is 64 bits (cityHash64, several times cheaper than a 128-bit hash on every insert): it is
-- only ever compared between two events carrying the same id, where a collision is a 2^-64 chance.
--
-- Sorted by id: the ids of a batch (UUIDv7, so recent ones sit together) are
-- found by the primary key in a few granules. The digest is over the stored
-- columns that make the event (not schema_version or ingested_at), so the same
-- event re-encoded by a newer schema is still the same event. The expression is
-- clickhouse/events.py EVENT_DIGEST, word for word (a unit test checks it).
--
-- A materialized view fills it from every insert into the events table, in
-- the same statement, so no path (the consumer, a test fixture, an operator's
-- INSERT) can store an event without recording its id. An insert dropped by
-- its deduplication token does not reach the view either.
CREATE TABLE IF NOT EXISTS {database}.{table}_ids
(
    id UUID,
    workspace_id String,
    occurred_at DateTime64(6, 'UTC'),
    digest UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_ids_mv TO {database}.{table}_ids AS
SELECT id, workspace_id, occurred_at, cityHash64(workspace_id, toUnixTimestamp64Micro(occurred_at), toString(action), toString(category), toString(actor_kind), actor_id, actor_display, toString(target_kind), target_id, target_display, payload, ip, user_agent, request_id, toString(service)) AS digest
FROM {database}.{table};

-- Events stored before this migration (the view exists first, so nothing
-- inserted meanwhile is missed; a row recorded twice collapses by id).
INSERT INTO {database}.{table}_ids
SELECT id, workspace_id, occurred_at, cityHash64(workspace_id, toUnixTimestamp64Micro(occurred_at), toString(action), toString(category), toString(actor_kind), actor_id, actor_display, toString(target_kind), target_id, target_display, payload, ip, user_agent, request_id, toString(service)) AS digest
FROM {database}.{table};
