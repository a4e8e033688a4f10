"""The one settings object of the product.

Every knob is an environment variable with the ``AUDITLOG_`` prefix; nested
sections use a double underscore (``AUDITLOG_KAFKA__BOOTSTRAP_SERVERS``). A
``.env`` file in the working directory is read too. Settings are read once at
start-up (``get_settings()``) and passed down; no module reads the environment
on its own.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

# The published development secret: anyone can sign tokens with it, so only `development` may use it.
DEV_PLACEHOLDER_SECRET = "dev-only-insecure-secret-change-me-in-production"
_PLACEHOLDER_SECRETS = {"", "changethis", "changeme", "secret", DEV_PLACEHOLDER_SECRET}
# HMAC algorithms and the shortest key each takes outside development (RFC 7518 3.2: at least the hash size).
HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
# Public-key algorithms and the key type their PEM must hold.
PUBLIC_KEY_ALGORITHMS = {**{f"RS{n}": "RSA" for n in (256, 384, 512)}, **{f"PS{n}": "RSA" for n in (256, 384, 512)},
                         **{f"ES{n}": "EC" for n in (256, 384, 512)}}
CURSOR_SECRET_BYTES = 32
# Parquet export row groups (AUDITLOG_API__EXPORT_PARQUET_ROW_GROUP_ROWS), measured on 2M rows
# (docs/performance.md, "Parquet row groups"): 20,000-row groups grew the first export by +152 MB against
# +87-93 MB at 5,000-10,000, so the ceiling is the default; below the floor the writer's per-group metadata
# (~14 KB, kept until the footer: 28 MB for 2M rows in 1,000-row groups) outgrows what it saves.
PARQUET_ROW_GROUP_ROWS_RANGE = (1_000, 10_000)


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:19092"
    topic: str = "audit.events"
    dlq_topic: str = "audit.events.dlq"
    partitions: int = Field(default=4, ge=1)
    # Local broker managed by `auditlog kafka start|stop|status`.
    local_data_dir: Path = Path("var/kafka")
    local_jars_dir: Path = Path("var/kafka-lib")
    local_controller_port: int = 19093
    local_heap: str = "512m"


class ClickHouseSettings(BaseModel):
    # chdb:///absolute/path selects the in-process engine; http(s)://user:pass@host:8123 a server.
    # Default: var/auditlog/chdb under the directory the process starts in.
    dsn: str = Field(default_factory=lambda: f"chdb://{Path('var/auditlog/chdb').resolve()}")
    database: str = "audit"
    table: str = "events"
    # Empty: one server (clickhouse/NNNN_*.sql). A cluster name from the server's
    # remote_servers: `auditlog migrate` applies clickhouse/cluster/*.sql ON CLUSTER,
    # `table` becomes the Distributed table and `<table>_local` the replicated storage.
    cluster: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    # Rows older than this many days are dropped (TTL); 0 keeps everything.
    # `auditlog migrate` makes the table's TTL match it (docs/runbook.md, Retention).
    retention_days: int = Field(default=0, ge=0)
    # Embedded engine only (a server has its own uncompressed_cache_size): MiB of decompressed
    # column blocks kept for the reads that ask for it (pages, single events). Halved warm page
    # latency on the 10M benchmark (docs/performance.md); 0 turns it off.
    uncompressed_cache_mb: int = Field(default=256, ge=0)


class ProducerSettings(BaseModel):
    linger_ms: int = 5
    compression: str = "zstd"
    delivery_timeout_ms: int = Field(default=30_000, ge=1000)
    queue_max_messages: int = 1_000_000
    max_payload_bytes: int = Field(default=64 * 1024, ge=1024)
    spool_dir: Path = Path("var/spool")
    service_name: str = "unknown-service"


class ConsumerSettings(BaseModel):
    group_id: str = "auditlog-clickhouse"
    # Larger batches write fewer, larger parts, so each event goes through fewer merges (the merges rebuild the
    # search index, the ingest's largest cost): 100k against 20k halved the consumer's CPU per event
    # (docs/performance.md). A quiet topic still closes a batch after batch_max_seconds.
    batch_max_events: int = Field(default=100_000, ge=1)
    batch_max_seconds: float = Field(default=1.0, gt=0)
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=30.0, gt=0)
    # A store failing longer than this is fatal: the consumer exits non-zero (nothing committed past
    # stored rows) instead of retrying forever; its supervisor restarts it.
    outage_max_seconds: float = Field(default=900.0, gt=0)
    # Not ready (/readyz, auditlog_consumer_ready) when messages wait and nothing was stored for this long.
    stall_seconds: float = Field(default=60.0, gt=0)
    # A member that lost its partitions (a session timeout, a rebalance) and was given none again, not even
    # an empty assignment, within this long stops with a fatal error instead of idling (consumer/loop.py).
    rejoin_max_seconds: float = Field(default=120.0, gt=0)
    # How often the lag (high watermark - committed offset) is measured, apart from the loop.
    lag_interval_seconds: float = Field(default=5.0, gt=0)
    # The engine refuses an INSERT block spanning more monthly partitions than its
    # max_partitions_per_insert_block (100): a batch spanning more is inserted in groups of months.
    max_partitions_per_insert: int = Field(default=100, ge=1)
    # On a server, staging tables older than this are leftovers of killed consumers and are dropped at start.
    staging_leftover_seconds: int = Field(default=86_400, ge=60)
    # How long the group waits for a silent (crashed) consumer before giving its partitions to another.
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    # How long a request to a broker may hang before librdkafka drops the connection and reconnects
    # (its default is 60 s): a broker that was paused (SIGSTOP, a long GC) left the group coordinator's
    # request stuck that long, so the consumer rejoined more than a minute after the broker came back.
    socket_timeout_ms: int = Field(default=15_000, ge=1000)
    # Static group membership (group.instance.id): a restarted consumer with the same id gets its
    # partitions back at once instead of after the session timeout. Empty: dynamic membership.
    instance_id: str = ""
    metrics_port: int = 0  # 0: do not start a separate metrics HTTP server
    # Let ClickHouse parse the Avro bodies and check the catalog rules (consumer/engine_decode.py);
    # False decodes every message in Python (the reference path, ~5x slower).
    decode_in_engine: bool = True
    # Skip indexes the consumer's inserts leave to the engine's merges (the INSERT's
    # exclude_materialize_skip_indexes_on_insert): the search index (migration 0008) costs an insert
    # about as much as writing the rows, and every merge rebuilds it anyway. A part not merged yet has
    # no such index and is read whole by the queries that use it, so results are the same. Empty: every
    # index is built on insert. Ignored (with a warning) by an engine that lacks the setting.
    indexes_built_at_merge: tuple[str, ...] = ("idx_search",)

    @model_validator(mode="after")
    def _index_names(self) -> ConsumerSettings:
        for name in self.indexes_built_at_merge:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
                raise ValueError(f"consumer.indexes_built_at_merge: {name!r} is not an index name"
                                 " (letters, digits and _, not starting with a digit)")
        return self


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # HS256/384/512 verify with jwt_secret; RS*/PS* (RSA) and ES* (EC) with jwt_public_key (PEM).
    jwt_algorithm: str = "HS256"
    jwt_secret: str = DEV_PLACEHOLDER_SECRET
    jwt_public_key: str = ""
    jwt_issuer: str = "auditlog"
    cursor_secret: str = DEV_PLACEHOLDER_SECRET
    max_limit: int = 200
    # Free-text search ``q`` (query_api/search.py, README "Search"): the longest q in characters and the
    # most terms it may hold. Each term is one more substring test per row the index cannot skip.
    search_max_chars: int = Field(default=256, ge=1, le=10_000)
    search_max_terms: int = Field(default=8, ge=1, le=64)
    # Rows per export query: bounds the export's memory (1M rows, 10k-row chunks: +87 MB; 50k: +273 MB,
    # docs/performance.md).
    export_chunk_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    # Rows per row group of a Parquet export (at most; ~0.8x on average), independent of
    # export_chunk_rows: a Parquet export's chunk queries ask for this many rows and each chunk is written
    # at once as one row group. Within PARQUET_ROW_GROUP_ROWS_RANGE, else refused at start.
    export_parquet_row_group_rows: int = 10_000
    # Engine handles the API reads through (clickhouse/pool.py): pages and single events share
    # `page_handles`, exports their own smaller `export_handles`, so exports never take a page's
    # handle. Each runs one query at a time; a request waits up to `handle_wait_seconds` for one,
    # then gets 503. Sizes and thread counts measured in docs/performance.md ("Readers in parallel").
    page_handles: int = Field(default=8, ge=1, le=256)
    export_handles: int = Field(default=2, ge=1, le=64)
    handle_wait_seconds: float = Field(default=10.0, gt=0)
    # The engine's max_threads for one page query and one export chunk query: with many readers at
    # once, one thread each keeps every core busy without a query's threads queueing behind another's.
    page_max_threads: int = Field(default=1, ge=1, le=64)
    # ... and for a page read while no other page is: the idle cores make scattered reads (a rare
    # actor or term) faster without slowing anyone (measured on 2 cores: rare term 69 -> 46 ms).
    page_quiet_max_threads: int = Field(default=2, ge=1, le=64)
    export_max_threads: int = Field(default=1, ge=1, le=64)
    # The `service` of the audit events the API itself records (an export's WORKSPACE_AUDIT_EXPORTED).
    service_name: str = Field(default="auditlog-query-api", min_length=1, max_length=100)
    # The longest lifetime `auditlog token --ttl` issues (a development/script token, not an IdP's).
    token_max_ttl_seconds: int = Field(default=30 * 86400, gt=0)
    # Shows the "sign in as owner / admin / member" helper on the Audit page;
    # only the embedded run mode (`auditlog up`) turns it on.
    demo_sign_in: bool = False
    # The activity timeline shows a range in at most this many bars: the bucket size is the smallest
    # step of a fixed ladder (1 minute .. 10 years, query_api/timeline.py) that fits. 40 decades cover the
    # engine's whole range (1900..2299), hence the floor.
    timeline_max_buckets: int = Field(default=120, ge=40, le=2000)

    @field_validator("export_parquet_row_group_rows")
    @classmethod
    def _row_group_in_range(cls, rows: int) -> int:
        """Refused at start, naming the variable: a wrong size fails every Parquet export or its memory."""
        low, high = PARQUET_ROW_GROUP_ROWS_RANGE
        if not low <= rows <= high:
            raise ValueError(f"AUDITLOG_API__EXPORT_PARQUET_ROW_GROUP_ROWS must be between {low:,} and {high:,} "
                             f"rows, not {rows:,} (fewer: the row groups' metadata outgrows the data; more: one "
                             "row group's rows break the export's memory bound)")
        return rows


class DemoSettings(BaseModel):
    """The embedded run mode's reference workspace (``auditlog up``)."""

    workspace_id: str = "ws_reference"
    seed_events: int = Field(default=50_000, ge=0)
    seed_days: int = Field(default=180, ge=1)
    trickle_seconds: float = Field(default=2.0, gt=0)
    # `auditlog up` prints its banner once the seeded events are readable, waiting at most this long
    # (then it says how many are stored so far and starts anyway).
    seed_wait_seconds: float = Field(default=180.0, gt=0)


class SqlGatewaySettings(BaseModel):
    """Read-only ClickHouse SQL over HTTP on the embedded engine, for data teams (``auditlog up`` only).

    chDB lives inside the product's process, so clickhouse-connect, curl or Grafana reach it
    through this ClickHouse-compatible endpoint (clickhouse/http_gateway.py). A ClickHouse
    server needs none of it: give people the read-only role in clickhouse/access/.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8123, ge=0, le=65535)  # 0: not started
    user: str = Field(default="analyst", min_length=1)
    # Empty: generated on first start and kept in credentials_file (mode 0600).
    password: str = ""
    credentials_file: Path = Path("var/auditlog/sql-gateway-credentials.json")
    # Set on the engine handles before readonly = 1, so a query cannot raise them.
    max_execution_seconds: float = Field(default=60.0, gt=0)
    max_result_rows: int = Field(default=10_000_000, ge=1)
    max_result_bytes: int = Field(default=1_000_000_000, ge=1)
    max_memory_mb: int = Field(default=2048, ge=64)
    max_threads: int = Field(default=2, ge=1)
    # Queries that run at once (one engine handle each); more wait up to 10 s, then get code 202.
    concurrent_queries: int = Field(default=2, ge=1)


class TransparencySettings(BaseModel):
    """The tamper-evident log (transparency/, docs/verification.md): sequencing, checkpoints, keys."""

    # Run the sequencer next to the consumer (`auditlog up`, `auditlog consume`).
    enabled: bool = True
    # The Ed25519 private key (unencrypted PKCS#8 PEM) that signs checkpoints, as the PEM text itself
    # (a secret) ... or, when that is empty, the file holding it. Outside production a missing file is
    # created with a new key on first start; in production it must exist.
    signing_key: SecretStr = SecretStr("")
    signing_key_file: Path = Path("var/transparency/signing-key.pem")
    # PEM files of earlier signing keys' *public* keys: after a rotation, the checkpoints they signed
    # keep verifying and the API keeps serving them.
    previous_public_key_files: list[Path] = []
    # The current key's *public* key (PEM text), for processes that serve or check checkpoints without
    # signing them (the API, `auditlog verify`): a deployment gives the private key to its one sequencer only.
    public_key: str = ""
    # A workspace with new leaves gets a signed checkpoint at most this often.
    checkpoint_seconds: float = Field(default=10.0, gt=0)
    # Only events ingested at least this long ago (by the engine's clock) are sequenced: an insert
    # that started earlier has committed by then, so a late-visible row cannot land behind the log.
    settle_seconds: float = Field(default=5.0, ge=0)
    # Each round also re-reads this much before its watermark (rows already sequenced are skipped
    # in the engine), as a margin for an insert slower than settle_seconds.
    overlap_seconds: float = Field(default=5.0, ge=0)
    poll_seconds: float = Field(default=1.0, gt=0)
    max_events_per_round: int = Field(default=100_000, ge=1)
    # Every checkpoint is also published here (key = workspace), so a copy lives outside the table.
    topic: str = "audit.checkpoints"
    # `auditlog sequence` serves its Prometheus metrics here (0: none); the deployments' health checks use it.
    metrics_port: int = Field(default=0, ge=0, le=65535)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUDITLOG_",
        env_nested_delimiter="__",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
    )

    environment: str = "development"
    log_level: str = "INFO"
    kafka: KafkaSettings = KafkaSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    producer: ProducerSettings = ProducerSettings()
    consumer: ConsumerSettings = ConsumerSettings()
    api: ApiSettings = ApiSettings()
    demo: DemoSettings = DemoSettings()
    transparency: TransparencySettings = TransparencySettings()
    sql_gateway: SqlGatewaySettings = SqlGatewaySettings()

    @model_validator(mode="after")
    def _closed_by_default(self) -> Settings:
        """Outside ``development``, refuse to start with a secret anyone could know, or no way to verify.

        Checks the configured JWT algorithm's key (an HMAC secret that is a
        placeholder, empty or shorter than the hash; an RSA/EC public key that
        is missing, not PEM or of the wrong type; an unknown algorithm) and the
        cursor secret. Each message names the variable to set.
        """
        problems = jwt_key_problems(self.api)
        if self.environment != "development":
            problems += production_secret_problems(self.api)
        if problems:
            raise ValueError(f"refusing to start (AUDITLOG_ENVIRONMENT={self.environment}): " + "; ".join(problems))
        return self

    @property
    def events_table(self) -> str:
        return f"{self.clickhouse.database}.{self.clickhouse.table}"


def jwt_key_problems(api: ApiSettings) -> list[str]:
    """What makes token verification impossible in any environment: an unknown algorithm, a bad public key."""
    algorithm = api.jwt_algorithm
    if algorithm not in HMAC_KEY_BYTES and algorithm not in PUBLIC_KEY_ALGORITHMS:
        known = ", ".join([*HMAC_KEY_BYTES, *PUBLIC_KEY_ALGORITHMS])
        return [f"AUDITLOG_API__JWT_ALGORITHM={algorithm!r} is not supported; use one of {known}"]
    if algorithm in HMAC_KEY_BYTES:
        return []
    if not api.jwt_public_key.strip():
        return [f"AUDITLOG_API__JWT_PUBLIC_KEY must hold the issuer's {PUBLIC_KEY_ALGORITHMS[algorithm]} public key "
                f"(PEM) for {algorithm}"]
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(api.jwt_public_key.strip().encode())
    except (ValueError, TypeError):
        return [f"AUDITLOG_API__JWT_PUBLIC_KEY is not a PEM public key (-----BEGIN PUBLIC KEY-----) for {algorithm}"]
    wanted = PUBLIC_KEY_ALGORITHMS[algorithm]
    if (wanted == "RSA") != isinstance(key, rsa.RSAPublicKey) or (wanted == "EC") != isinstance(
            key, ec.EllipticCurvePublicKey):
        return [f"AUDITLOG_API__JWT_PUBLIC_KEY holds no {wanted} public key, which {algorithm} needs"]
    return []


def production_secret_problems(api: ApiSettings) -> list[str]:
    """Secrets that are placeholders, empty or too short: refused outside development."""
    problems = []
    if api.jwt_algorithm in HMAC_KEY_BYTES:
        need = HMAC_KEY_BYTES[api.jwt_algorithm]
        if api.jwt_secret.strip() in _PLACEHOLDER_SECRETS:
            problems.append(f"AUDITLOG_API__JWT_SECRET must be set to a real secret for {api.jwt_algorithm} "
                            "(it is empty or a published placeholder)")
        elif len(api.jwt_secret.encode()) < need:
            problems.append(f"AUDITLOG_API__JWT_SECRET must be at least {need} bytes for {api.jwt_algorithm}")
    if api.cursor_secret.strip() in _PLACEHOLDER_SECRETS:
        problems.append("AUDITLOG_API__CURSOR_SECRET must be set to a real secret (it is empty or a published "
                        "placeholder)")
    elif len(api.cursor_secret.encode()) < CURSOR_SECRET_BYTES:
        problems.append(f"AUDITLOG_API__CURSOR_SECRET must be at least {CURSOR_SECRET_BYTES} bytes")
    return problems


class SettingsUnreadable(ValueError):
    """An AUDITLOG_* variable that cannot be read as its setting's type (said with the variables to check)."""


_UNREADABLE_FIELD = re.compile(r'field "(\w+)"')


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    try:
        return Settings()
    except SettingsError as err:
        # pydantic-settings names only the section ("consumer"): name the variables to look at.
        found = _UNREADABLE_FIELD.search(str(err))
        prefix = f"AUDITLOG_{found.group(1).upper()}" if found else "AUDITLOG_"
        names = sorted(name for name in os.environ if name.upper().startswith(prefix))
        raise SettingsUnreadable(
            f"{err}: check {', '.join(names) or prefix + '*'} — a setting that holds a list takes JSON, e.g. "
            f"""'["a", "b"]' ({type(err.__cause__).__name__}: {err.__cause__})"""
        ) from err
