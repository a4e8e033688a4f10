"""The unit-test guard blocks what it claims to block (tests/conftest.py)."""

from __future__ import annotations

import pytest

from config.settings import Settings


def test_an_unmarked_test_cannot_open_the_engine():
    from clickhouse.client import get_client

    with pytest.raises(pytest.fail.Exception, match="reached a real service"):
        get_client("chdb:///tmp/auditlog-guard-never-created")


def test_an_unmarked_test_cannot_make_a_kafka_client():
    from consumer.kafka import KafkaSource, consumer_config

    settings = Settings()
    with pytest.raises(pytest.fail.Exception, match="reached a real service"):
        KafkaSource("t", consumer_config(settings.kafka, settings.consumer))


def test_an_unmarked_test_cannot_make_a_producer():
    from producers.producer import AuditProducer

    with pytest.raises(pytest.fail.Exception, match="reached a real service"):
        AuditProducer.from_settings(Settings())
