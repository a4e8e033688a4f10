-- Read-only access for data teams (docs/data-teams.md). Not a migration: an
-- operator applies it once per server or cluster, after `auditlog migrate`,
-- with admin rights (access management):
--
--   sed -e 's/{database}/audit/g' -e 's/{on_cluster}//g' clickhouse/access/readonly_role.sql \
--     | clickhouse-client --multiquery
--
-- On a cluster use -e "s/{on_cluster}/ON CLUSTER 'audit_cluster'/g".
-- A person or a BI tool then gets a user with the role (see the end of the file).

-- The role: SELECT on the audit database and nothing else (no INSERT, ALTER,
-- DROP, no other database). `{database}.*` covers the Distributed table and its
-- `_local` storage on a cluster, where the query reaches the shards as this user.
CREATE ROLE IF NOT EXISTS auditlog_reader {on_cluster};
GRANT {on_cluster} SELECT ON {database}.* TO auditlog_reader;

-- Guard rails that keep an ad-hoc query from hurting the consumer and the API.
-- readonly = 2: reads only, but the client may still set per-query settings
-- (clickhouse-connect and most BI drivers do); it cannot lower readonly itself.
CREATE SETTINGS PROFILE IF NOT EXISTS auditlog_readonly {on_cluster}
SETTINGS readonly = 2,
         max_execution_time = 120 MAX 600,
         max_memory_usage = 8000000000 MAX 16000000000,
         max_result_rows = 10000000,
         result_overflow_mode = 'throw',
         max_threads = 4 MAX 8
TO auditlog_reader;

CREATE QUOTA IF NOT EXISTS auditlog_readonly_quota {on_cluster}
FOR INTERVAL 1 hour MAX queries = 2000, execution_time = 3600
TO auditlog_reader;

-- One user per person or tool; the password's SHA-256 in hex:
--   echo -n 'the password' | sha256sum
-- CREATE USER IF NOT EXISTS jane_analyst {on_cluster}
--   IDENTIFIED WITH sha256_hash BY '<sha256 hex>'
--   DEFAULT ROLE auditlog_reader SETTINGS PROFILE 'auditlog_readonly';
CREATE USER IF NOT EXISTS auditlog_analyst {on_cluster}
IDENTIFIED WITH sha256_hash BY '{analyst_password_sha256}'
DEFAULT ROLE auditlog_reader
SETTINGS PROFILE 'auditlog_readonly';
