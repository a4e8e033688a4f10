"""The one settings object of the product.

Every knob is an environment variable with the ``AUDITLOG_`` prefix; nested
sections use a double underscore (``AUDITLOG_KAFKA__BOOTSTRAP_SERVERS``). A
``.env`` file in the working directory is read too. Settings are read once at
start-up (``get_settings()``) and passed down; no module reads the environment
on its own.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRETS = {"", "changethis", "dev-only-insecure-secret-change-me-in-production"}


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
    batch_max_events: int = Field(default=20_000, ge=1)
    batch_max_seconds: float = Field(default=1.0, gt=0)
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    # How long the group waits for a silent (crashed) consumer before giving its partitions to another.
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    # Static group membership (group.instance.id): a restarted consumer with the same id gets its
    # partitions back at once instead of after the session timeout. Empty: dynamic membership.
    instance_id: str = ""
    metrics_port: int = 0  # 0: do not start a separate metrics HTTP server
    # Let ClickHouse parse the Avro bodies and check the catalog rules (consumer/engine_decode.py);
    # False decodes every message in Python (the reference path, ~5x slower).
    decode_in_engine: bool = True


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    jwt_algorithm: str = "HS256"
    jwt_secret: str = "dev-only-insecure-secret-change-me-in-production"
    jwt_public_key: str = ""  # PEM, for RS256
    jwt_issuer: str = "auditlog"
    cursor_secret: str = "dev-only-insecure-secret-change-me-in-production"
    max_limit: int = 200
    # Shows the "sign in as owner / admin / member" helper on the Audit page;
    # only the embedded run mode (`auditlog up`) turns it on.
    demo_sign_in: bool = False


class DemoSettings(BaseModel):
    """The embedded run mode's reference workspace (``auditlog up``)."""

    workspace_id: str = "ws_reference"
    seed_events: int = Field(default=50_000, ge=0)
    seed_days: int = Field(default=180, ge=1)
    trickle_seconds: float = Field(default=2.0, gt=0)


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

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        if self.api.jwt_algorithm == "HS256" and self.api.jwt_secret in _PLACEHOLDER_SECRETS:
            raise ValueError("AUDITLOG_API__JWT_SECRET must be set to a real secret in production")
        if self.api.cursor_secret in _PLACEHOLDER_SECRETS:
            raise ValueError("AUDITLOG_API__CURSOR_SECRET must be set to a real secret in production")
        return self

    @property
    def events_table(self) -> str:
        return f"{self.clickhouse.database}.{self.clickhouse.table}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
