"""Helpers shared by the consumer fault tests: offsets, reads the way the API reads (not a test module)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from clickhouse.client import get_client
from config.settings import Settings
from producers.synthetic import EventGenerator
from schemas.event import AuditEvent

WORKSPACES = ["ws_f1", "ws_f2", "ws_f3"]


def make_events(n: int, seed: int = 1) -> list[AuditEvent]:
    gen = EventGenerator(seed=seed)
    return list(gen.history(WORKSPACES, n, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)))


def committed_and_end(bootstrap: str, group: str, topic: str, partitions: int) -> tuple[int, int]:
    """(messages committed by ``group``, messages in ``topic``), summed over partitions; joins no group."""
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        committed = sum(max(tp.offset, 0) for tp in probe.committed(tps, timeout=10))
        end = sum(probe.get_watermark_offsets(tp, timeout=10)[1] for tp in tps)
    finally:
        probe.close()
    return committed, end



def caught_up(settings: Settings) -> bool:
    """The consumer group has committed every message of the topic (and the topic has some)."""
    try:
        committed, end = committed_and_end(settings.kafka.bootstrap_servers, settings.consumer.group_id,
                                           settings.kafka.topic, settings.kafka.partitions)
    except KafkaException:  # the group's coordinator is still loading: not caught up yet
        return False
    return end > 0 and committed == end

SHOWN = (
    "SELECT id FROM {t} ORDER BY workspace_id, occurred_at DESC, id DESC LIMIT 1 BY workspace_id, occurred_at, id"
)


def table_facts(client: Any, table: str) -> dict[str, Any]:
    """Raw counts and the duplicates a reader would see when reading the way the API reads."""
    rows, unique = client.query(f"SELECT count(), uniqExact(id) FROM {table}").result_rows[0]
    shown_dups = client.query(
        f"SELECT id, count() AS c FROM ({SHOWN.format(t=table)}) GROUP BY id HAVING c > 1"
    ).result_rows
    shown = client.query(f"SELECT toString(id) FROM ({SHOWN.format(t=table)})").result_rows
    return {"rows": int(rows), "unique": int(unique), "shown_duplicates": len(shown_dups),
            "shown_ids": [r[0] for r in shown]}


def api_ids(settings: Settings) -> dict[str, Any]:
    """Ids through the export of every workspace, and through every page of the smallest one."""
    from tests.support.pipeline import all_pages, api_client, bearer

    client = api_client(settings)
    exported: list[str] = []
    for ws in WORKSPACES:
        response = client.get(f"/v1/workspaces/{ws}/audit/export", headers=bearer(settings, ws),
                              params={"format": "jsonl"})
        assert response.status_code == 200, response.text
        exported += [json.loads(line)["id"] for line in response.text.splitlines() if line]
    paged = [e["id"] for e in all_pages(client, f"/v1/workspaces/{WORKSPACES[0]}/audit/events",
                                        bearer(settings, WORKSPACES[0]), {"limit": 200})]
    return {"exported": exported, "paged_ws0": paged}


def assert_exactly_once_as_read(settings: Settings, expected_ids: list[str]) -> None:
    """The table read the way the API reads it, the export and the pages hold each id once."""
    facts = table_facts(get_client(settings.clickhouse.dsn), settings.events_table)
    check_facts(facts, api_ids(settings), expected_ids)


def check_facts(facts: dict[str, Any], api: dict[str, Any], expected_ids: list[str]) -> None:
    expected = set(expected_ids)
    assert facts["shown_duplicates"] == 0, f"{facts['shown_duplicates']} ids shown twice"
    assert len(facts["shown_ids"]) == len(expected) and set(facts["shown_ids"]) == expected
    assert facts["unique"] == len(expected)
    assert len(api["exported"]) == len(expected), "the export lost or repeated events"
    assert set(api["exported"]) == expected
    assert len(api["paged_ws0"]) == len(set(api["paged_ws0"])), "a page showed an event twice"
