"""The consumer as its own process (``auditlog consume``): SIGKILL at random moments, SIGTERM mid-batch.

chDB opens a data path in one process only, so the consumer processes get their own
path, and the table is read afterwards by a short-lived verification process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from config.settings import Settings
from tests.support.consumer_checks import caught_up, make_events
from tests.support.pipeline import produce

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

REPO = Path(__file__).resolve().parents[2]


def _env(settings: Settings, dsn: str, **consumer: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLOG_")}
    env.update({
        "AUDITLOG_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "AUDITLOG_KAFKA__TOPIC": settings.kafka.topic,
        "AUDITLOG_KAFKA__DLQ_TOPIC": settings.kafka.dlq_topic,
        "AUDITLOG_CLICKHOUSE__DSN": dsn,
        "AUDITLOG_CLICKHOUSE__DATABASE": settings.clickhouse.database,
        "AUDITLOG_CLICKHOUSE__TABLE": settings.clickhouse.table,
        "AUDITLOG_CONSUMER__GROUP_ID": settings.consumer.group_id,
        "AUDITLOG_CONSUMER__SESSION_TIMEOUT_MS": "6000",
        "AUDITLOG_CONSUMER__INSTANCE_ID": f"{settings.consumer.group_id}-1",
        "AUDITLOG_API__JWT_SECRET": settings.api.jwt_secret,
        "AUDITLOG_API__CURSOR_SECRET": settings.api.cursor_secret,
    })
    env.update({f"AUDITLOG_CONSUMER__{k.upper()}": v for k, v in consumer.items()})
    return env


def _auditlog(*args: str, env: dict[str, str], stderr: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "auditlog.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr or subprocess.DEVNULL)


VERIFY = """
import json, sys
from config.settings import get_settings
from clickhouse.client import get_client
from tests.support.consumer_checks import api_ids, table_facts
s = get_settings()
facts = table_facts(get_client(s.clickhouse.dsn), s.events_table)
json.dump({"facts": facts, "api": api_ids(s)}, sys.stdout)
"""


def _verify(env: dict[str, str], expected_ids: list[str]) -> None:
    from tests.support.consumer_checks import check_facts

    done = subprocess.run([sys.executable, "-c", VERIFY], cwd=REPO, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    result = json.loads(done.stdout)
    check_facts(result["facts"], result["api"], expected_ids)


def kill_consumers_while_producing(env: dict[str, str], producing: threading.Thread, *, kills: int,
                                   alive: tuple[float, float]) -> int:
    """Start `auditlog consume` and SIGKILL it after a random time in ``alive`` seconds, again and again,
    at least ``kills`` times and until ``producing`` ends; returns how many were killed."""
    rng = random.Random()
    done = 0
    while done < kills or producing.is_alive():
        consumer = _auditlog("consume", env=env)
        time.sleep(rng.uniform(*alive))
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(30)
        done += 1
        assert done < 40, "the producer never finished"
    return done


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


@contextmanager
def final_consumer(settings: Settings, env: dict[str, str], log: Path) -> Iterator[Path]:
    """The consumer that survives the kills: started, running and caught up when the block begins; stopped
    with SIGTERM after it, which must exit 0. Yields its log (stderr)."""
    with log.open("wb") as stderr:
        final = _auditlog("consume", env=env, stderr=stderr)
    try:
        # The killed consumers may have caught up already: wait until this one runs, so that
        # the SIGTERM below tests a graceful stop and not a process still starting up.
        _wait(lambda: b"consumer_started" in log.read_bytes(), 60, "the last consumer to start")
        _wait(lambda: caught_up(settings), 240, "the last consumer to catch up")
        yield log
    finally:
        final.send_signal(signal.SIGTERM)
        assert final.wait(60) == 0


@pytest.mark.slow
def test_sigkill_at_random_moments_converges_to_each_event_exactly_once(settings, tmp_path):
    dsn = f"chdb://{tmp_path / 'chdb'}"
    env = _env(settings, dsn, batch_max_events="5000", batch_max_seconds="0.5")
    assert _auditlog("migrate", env=env).wait(120) == 0
    events = make_events(100_000, seed=8)
    ids: list[str] = []
    producing = threading.Thread(target=lambda: ids.extend(produce(settings, events)), daemon=True)
    producing.start()
    kill_consumers_while_producing(env, producing, kills=5, alive=(1.0, 4.0))
    with final_consumer(settings, env, tmp_path / "final-consumer.log"):
        pass
    assert len(ids) == len(events)
    _verify(env, ids)


def test_sigterm_during_a_batch_stores_it_commits_and_exits_0(settings, tmp_path):
    dsn = f"chdb://{tmp_path / 'chdb'}"
    # A batch that closes neither by size nor by time within the test: SIGTERM must close it.
    env = _env(settings, dsn, batch_max_events="1000000", batch_max_seconds="600")
    assert _auditlog("migrate", env=env).wait(120) == 0
    ids = produce(settings, make_events(3000, seed=9))
    log = tmp_path / "consumer.log"
    with log.open("wb") as stderr:
        consumer = _auditlog("consume", env=env, stderr=stderr)
        try:
            _wait(lambda: b"partitions_assigned" in log.read_bytes(), 60, "the consumer to join")
            time.sleep(3)  # it reads all 3000 into the open batch
            assert not caught_up(settings), "the batch was committed before SIGTERM; the test proves nothing"
        finally:
            consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(60) == 0, log.read_text()[-2000:]
    assert caught_up(settings)
    _verify(env, ids)
