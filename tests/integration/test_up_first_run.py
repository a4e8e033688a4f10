"""``auditlog up``'s first run: the banner comes once the seeded workspace is readable, not before.

The real composition (``run_embedded``: migrations, consumer, producer, seed) runs against the test
broker and engine; only the API server's blocking ``run()`` is replaced, by a probe that looks at the
store at the moment the server would start serving, right after the banner.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import uvicorn

from auditlog.embedded import readable_events, run_embedded
from config.settings import Settings, SqlGatewaySettings
from producers.synthetic import reference_history

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

SEED_EVENTS = 2000


def _up_settings(settings: Settings, **demo: float) -> Settings:
    return settings.model_copy(update={
        "sql_gateway": SqlGatewaySettings(port=0),
        "demo": settings.demo.model_copy(update={"seed_events": SEED_EVENTS, **demo}),
    })


def _seed_size(settings: Settings) -> int:
    now = datetime.now(UTC)
    return sum(1 for _ in reference_history(settings.demo.workspace_id, SEED_EVENTS, now - timedelta(days=30), now))


def test_the_banner_is_printed_only_once_the_seed_is_readable(settings: Settings, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the run's own files (secrets, signing key) go to ./var
    settings = _up_settings(settings)
    seen: dict[str, object] = {}

    def serving(_server: object) -> None:
        seen["stdout"] = capsys.readouterr().out
        seen["readable"] = readable_events(settings, settings.demo.workspace_id)

    monkeypatch.setattr(uvicorn.Server, "run", serving)
    assert run_embedded(settings, start_kafka=False, seed=True) == 0

    expected = _seed_size(settings)
    out = str(seen["stdout"])
    assert seen["readable"] == expected, "the banner was printed before every seeded event was readable"
    seeding, seeded, banner = (out.find(s) for s in ("Seeding ws_reference", f"Seeded ws_reference: {expected:,} "
                                                     "events readable", "Audit log is up"))
    assert -1 < seeding < seeded < banner, out


def test_a_seed_slower_than_the_wait_says_so_and_starts_anyway(settings: Settings, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # The consumer holds its first batch for 30 s, so nothing is readable within the 1 s wait.
    settings = _up_settings(settings, seed_wait_seconds=1.0).model_copy(update={
        "consumer": settings.consumer.model_copy(update={"batch_max_events": 100_000, "batch_max_seconds": 30.0}),
    })
    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda _server: seen.setdefault("stdout", capsys.readouterr().out))
    assert run_embedded(settings, start_kafka=False, seed=True) == 0

    out = str(seen["stdout"])
    assert f"Still storing ws_reference: 0 of {_seed_size(settings):,} events readable" in out, out
    assert "starting anyway" in out and "AUDITLOG_DEMO__SEED_WAIT_SECONDS=1" in out
    assert out.find("Still storing") < out.find("Audit log is up")
