"""Wiring the transparency log into a running process: keys from settings, the checkpoint topic, the sequencer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from config.settings import Settings
from transparency.checkpoint import Checkpoint, Keyring, Signer, key_id, load_public_key
from transparency.errors import SigningKeyError
from transparency.sequencer import Sequencer

logger = logging.getLogger(__name__)


def load_signer(settings: Settings, *, generate: bool | None = None) -> Signer:
    """The checkpoint signing key: the secret if set, else the key file.

    A missing file is created with a new key outside production (``generate``
    overrides that); in production a missing key is an error, never a silent
    new identity.

    Raises:
        SigningKeyError: no usable key.
    """
    cfg = settings.transparency
    secret = cfg.signing_key.get_secret_value()
    if secret:
        return Signer.from_pem(secret)
    path = cfg.signing_key_file
    if generate is None:
        generate = settings.environment != "production"
    if not path.exists() and not generate:
        raise SigningKeyError(
            f"no checkpoint signing key: set AUDITLOG_TRANSPARENCY__SIGNING_KEY or create {path} "
            "(an Ed25519 private key, PKCS#8 PEM)"
        )
    existed = path.exists()
    signer = Signer.load_or_generate(path)
    if not existed:
        logger.warning("transparency_key_generated path=%s key_id=%s", path, signer.key_id)
    return signer


def load_keyring(settings: Settings, signer: Signer | None = None) -> Keyring:
    """The public keys checkpoints are verified with: the current key's and every previous one's.

    The current one comes from the signing key where this process holds it,
    and from ``public_key`` where it does not (the API next to a separate
    sequencer).
    """
    ring = Keyring()
    if signer is None:
        try:
            signer = load_signer(settings, generate=False)
        except SigningKeyError:
            signer = None
    if signer is not None:
        ring.add(signer.public_key)
    if settings.transparency.public_key:
        ring.add(load_public_key(settings.transparency.public_key.encode()))
    for path in settings.transparency.previous_public_key_files:
        try:
            ring.add(load_public_key(path.read_bytes()))
        except OSError as err:
            raise SigningKeyError(f"cannot read the previous public key {path}: {err.strerror}") from err
    return ring


def current_key_id(settings: Settings) -> str | None:
    """The key id new checkpoints are signed with: the signing key's, else the configured public key's."""
    try:
        return load_signer(settings, generate=False).key_id
    except SigningKeyError:
        pem = settings.transparency.public_key
        return key_id(load_public_key(pem.encode())) if pem else None


class KafkaCheckpointPublisher:
    """Publishes checkpoints on the checkpoint topic (key = workspace id, value = the signed JSON)."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._topic = topic
        self._producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True,
                                   "acks": "all", "linger.ms": 5})

    def __call__(self, checkpoints: Sequence[Checkpoint]) -> list[Checkpoint]:
        """Send and wait for delivery; returns the checkpoints that were not delivered."""
        delivered: set[int] = set()

        def reporter(n: int) -> Callable[[KafkaError | None, Message], None]:
            def on_delivery(err: KafkaError | None, _msg: Message) -> None:
                if err is None:
                    delivered.add(n)
            return on_delivery

        for n, cp in enumerate(checkpoints):
            self._producer.produce(self._topic, key=cp.workspace_id.encode(), value=cp.dumps().encode(),
                                   on_delivery=reporter(n))
            self._producer.poll(0)
        self._producer.flush(10)
        return [cp for n, cp in enumerate(checkpoints) if n not in delivered]


def read_published(bootstrap_servers: str, topic: str, workspace_id: str | None = None,
                   timeout: float = 10.0) -> list[Checkpoint]:
    """Every checkpoint on the topic (of one workspace, or all), read from the start to the current end."""
    import uuid

    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"auditlog-verify-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    out: list[Checkpoint] = []
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        if meta.topics[topic].error is not None:
            return []
        parts = [TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions]
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=timeout)[1] for p in parts}
        todo = {p: end for p, end in ends.items() if end > 0}
        consumer.assign(parts)
        while todo:
            msg = consumer.poll(timeout)
            if msg is None:
                break
            if msg.error():
                continue
            partition, offset = msg.partition() or 0, msg.offset() or 0
            if offset >= todo.get(partition, 0) - 1:
                todo.pop(partition, None)
            key = (msg.key() or b"").decode()
            if workspace_id is None or key == workspace_id:
                out.append(Checkpoint.loads(msg.value() or b""))
    finally:
        consumer.close()
    return out


def build_sequencer(settings: Settings, *, publish: bool = True) -> Sequencer:
    """The sequencer for these settings: the engine client, the signing key, the checkpoint topic."""
    from clickhouse.client import get_client

    ch = settings.clickhouse
    signer = load_signer(settings)
    publisher = KafkaCheckpointPublisher(settings.kafka.bootstrap_servers, settings.transparency.topic) \
        if publish else None
    return Sequencer(get_client(ch.dsn, ch.uncompressed_cache_mb), settings, signer, publisher)


def start_sequencer(settings: Settings, stop: threading.Event) -> threading.Thread | None:
    """Run the sequencer in a daemon thread until ``stop`` (None when the log is turned off)."""
    if not settings.transparency.enabled:
        return None
    try:
        load_signer(settings)
    except SigningKeyError as err:
        # Ingestion goes on without the log rather than stopping: verify then names every event without a
        # leaf. Production deployments give the key to exactly one sequencer (docs/verification.md).
        logger.error("transparency_log_not_running reason=%s", err)
        return None
    from consumer.topics import ensure_topics

    try:
        ensure_topics(settings.kafka.bootstrap_servers, [settings.transparency.topic], 1)
    except Exception:  # publication retries every round; the log itself does not need the topic
        logger.warning("checkpoint_topic_not_ensured topic=%s", settings.transparency.topic, exc_info=True)
    sequencer = build_sequencer(settings)
    thread = threading.Thread(target=sequencer.run, args=(stop,), name="auditlog-sequencer", daemon=True)
    thread.start()
    return thread
