"""Where the integration tests get real Kafka and ClickHouse.

In order: an address given in the environment (AUDITLOG_TEST_KAFKA_BOOTSTRAP,
AUDITLOG_TEST_CLICKHOUSE_DSN); testcontainers, when a Docker engine answers;
otherwise the local services: Kafka from its Maven Central jars on test
ports, and the chDB engine in-process. ``describe()`` says which ran.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USED: dict[str, str] = {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextmanager
def kafka_service(workdir: Path) -> Iterator[str]:
    """A Kafka bootstrap address; a local broker keeps its data under ``workdir``."""
    given = os.environ.get("AUDITLOG_TEST_KAFKA_BOOTSTRAP")
    if given:
        USED["kafka"] = f"given ({given})"
        yield given
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.0").with_kraft() as container:
            USED["kafka"] = "testcontainers apache/kafka"
            yield container.get_bootstrap_server()
        return
    from deploy.local_kafka import LocalKafka, LocalKafkaConfig

    repo = Path(__file__).resolve().parents[2]
    data_dir = workdir
    # Free ports, so that several test runs (CI, a developer, helpers) can share a machine.
    broker_port, controller_port = _free_port(), _free_port()
    kafka = LocalKafka(
        LocalKafkaConfig(
            bootstrap_servers=f"127.0.0.1:{broker_port}",
            controller_port=controller_port,
            data_dir=data_dir,
            jars_dir=Path(os.environ.get("AUDITLOG_KAFKA__LOCAL_JARS_DIR", repo / "var" / "kafka-lib")),
            heap="768m",
            partitions=4,
        )
    )
    kafka.start()
    USED["kafka"] = f"local Kafka from Maven Central jars (pid {kafka.pid()}, {data_dir})"
    try:
        yield kafka.config.bootstrap_servers
    finally:
        kafka.stop()


@contextmanager
def clickhouse_service(workdir: Path) -> Iterator[str]:
    """A ClickHouse DSN; the embedded engine keeps its data under ``workdir``."""
    given = os.environ.get("AUDITLOG_TEST_CLICKHOUSE_DSN")
    if given:
        USED["clickhouse"] = "given server"
        yield given
        return
    if docker_engine_answers():
        from testcontainers.clickhouse import ClickHouseContainer

        with ClickHouseContainer("clickhouse/clickhouse-server:25.8") as container:
            USED["clickhouse"] = "testcontainers clickhouse-server"
            host = container.get_container_host_ip()
            port = container.get_exposed_port(8123)
            yield f"http://{container.username}:{container.password}@{host}:{port}"
        return
    # chDB opens one data path per process: the whole test session shares it,
    # and each test gets its own database.
    path = str(workdir)
    USED["clickhouse"] = f"chDB in-process ({path})"
    yield f"chdb://{path}"


def describe() -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(USED.items()))
