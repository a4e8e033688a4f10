-- The cluster variant of ../0002_set_retention_ttl.sql: expired rows leave by
-- whole parts. The TTL follows AUDITLOG_CLICKHOUSE__RETENTION_DAYS and is set
-- by `auditlog migrate` on {table}_local ON CLUSTER (TTL lives on the storage
-- table; the Distributed table has none).
ALTER TABLE {database}.{table}_local ON CLUSTER '{cluster}' MODIFY SETTING ttl_only_drop_parts = 1;
