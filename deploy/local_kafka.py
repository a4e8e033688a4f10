"""A real single-node Apache Kafka (KRaft, broker + controller) on 127.0.0.1.

The broker's jars come from Maven Central only (``deploy/kafka/pom.xml``
resolved with Maven); the machine's Java 17+ runs ``kafka.Kafka``. The broker
runs in the background, tracked by a pid file in its data directory, and is
stopped by that pid. Starting it twice is harmless.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from confluent_kafka import KafkaException, Producer

logger = logging.getLogger(__name__)


class LocalKafkaError(Exception):
    """The local broker could not be fetched, started or stopped."""


@dataclass(frozen=True)
class LocalKafkaConfig:
    bootstrap_servers: str
    controller_port: int
    data_dir: Path
    jars_dir: Path
    heap: str = "512m"
    partitions: int = 4

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.bootstrap_servers.split(",")[0].rpartition(":")
        return host or "127.0.0.1", int(port)


def pom_path() -> Path:
    return Path(str(resources.files("deploy").joinpath("kafka/pom.xml")))


def fetch_jars(jars_dir: Path) -> None:
    """Resolve the broker and its dependencies from Maven Central into ``jars_dir`` (once)."""
    if any(jars_dir.glob("kafka_2.13-*.jar")):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError("Maven (mvn) is not installed; install it (apt-get install maven) to fetch Kafka")
    jars_dir.mkdir(parents=True, exist_ok=True)
    logger.info("kafka_fetching_jars dir=%s", jars_dir)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom_path()), "dependency:copy-dependencies",
         f"-DoutputDirectory={jars_dir.resolve()}", "-DincludeScope=runtime"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0 or not any(jars_dir.glob("kafka_2.13-*.jar")):
        raise LocalKafkaError(f"Maven could not fetch the Kafka jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


class LocalKafka:
    def __init__(self, config: LocalKafkaConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir
        self.log_dir = self.data_dir / "logs"
        self.pid_file = self.data_dir / "kafka.pid"
        self.properties = self.data_dir / "server.properties"
        self.console_log = self.data_dir / "kafka.out"

    # -- state ----------------------------------------------------------------

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def accepts_produce(self, timeout: float = 5.0) -> bool:
        """Whether the broker acknowledges an *idempotent* produce within ``timeout`` seconds.

        Idempotent, as the product's producers are: the probe waits out the broker's first producer-id
        allocation ("Coordinator load in progress" for a few seconds after a start), so by the time
        ``start()`` returns, a producer gets its id at once instead of logging librdkafka's
        "Failed to acquire idempotence PID" warning. ``log_level`` 0 keeps the probe's own retries quiet.
        """
        producer = Producer({
            "bootstrap.servers": self.config.bootstrap_servers,
            "enable.idempotence": True,
            "message.timeout.ms": int(timeout * 1000),
            "socket.connection.setup.timeout.ms": 2000,
            "log_level": 0,
        })
        delivered: list[bool] = []
        try:
            producer.produce("__auditlog_ready", b"ping", on_delivery=lambda err, _m: delivered.append(err is None))
        except (BufferError, KafkaException):
            return False
        producer.flush(timeout + 1)
        return bool(delivered and delivered[0])

    # -- lifecycle --------------------------------------------------------------

    def start(self, wait_seconds: float = 120.0) -> bool:
        """Start the broker unless it runs; returns False if it was already running."""
        existing = self.pid()
        if existing is not None:
            logger.info("kafka_already_running pid=%d", existing)
            self.wait_ready(wait_seconds)
            return False
        java = shutil.which("java")
        if java is None:
            raise LocalKafkaError("Java is not installed; Kafka 4.x needs Java 17 or newer")
        fetch_jars(self.config.jars_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_properties()
        if not (self.log_dir / "meta.properties").exists():
            self._format_storage(java)
        classpath = f"{self.config.jars_dir.resolve()}/*"
        log4j = Path(str(resources.files("deploy").joinpath("kafka/log4j2.properties")))
        with open(self.console_log, "ab") as out:
            process = subprocess.Popen(
                [java, f"-Xmx{self.config.heap}", f"-Xms{self.config.heap}", "-XX:+UseG1GC",
                 f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={self.data_dir}",
                 "-cp", classpath, "kafka.Kafka", str(self.properties)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        logger.info("kafka_started pid=%d bootstrap=%s", process.pid, self.config.bootstrap_servers)
        self.wait_ready(wait_seconds, process)
        return True

    def wait_ready(self, wait_seconds: float, process: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise LocalKafkaError(f"Kafka exited with code {process.returncode}:\n{self._log_tail()}")
            if self.accepts_produce():
                return
            time.sleep(0.5)
        raise LocalKafkaError(f"Kafka did not accept a produce within {wait_seconds:.0f}s:\n{self._log_tail()}")

    def stop(self, wait_seconds: float = 30.0) -> bool:
        """Stop the broker by its pid; returns False if it was not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and self.pid() is not None:
            _reap(pid)
            time.sleep(0.2)
        if self.pid() is not None:
            logger.warning("kafka_kill pid=%d (did not stop in %.0fs)", pid, wait_seconds)
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        logger.info("kafka_stopped pid=%d", pid)
        return True

    # -- internals ----------------------------------------------------------

    def _write_properties(self) -> None:
        host, port = self.config.host_port
        ctl = self.config.controller_port
        self.properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers={host}:{ctl}",
                    f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{ctl}",
                    f"advertised.listeners=PLAINTEXT://{host}:{port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.log_dir.resolve()}",
                    f"num.partitions={self.config.partitions}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )

    def _format_storage(self, java: str) -> None:
        cluster_id = new_cluster_id()
        result = subprocess.run(
            [java, "-cp", f"{self.config.jars_dir.resolve()}/*", "kafka.tools.StorageTool", "format",
             "--standalone", "-t", cluster_id, "-c", str(self.properties)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise LocalKafkaError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")

    def _log_tail(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return "(no log)"


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding.

    Like Kafka's own Uuid.randomUuid, it never starts with '-': the storage tool's argument
    parser would take such an id for an option (a formatting failure about 1 start in 32).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
