"""KafkaSource classifies what librdkafka reports: fatal errors stop the consumer, the rest are logged."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError

from config.settings import Settings
from consumer.errors import KafkaFatal
from consumer.kafka import KafkaSource, consumer_config
from tests.conftest import NO_BROKER


class _Message:
    def __init__(self, error: KafkaError | None = None, partition: int = 0, offset: int = 0) -> None:
        self._error = error
        self._partition, self._offset = partition, offset

    def error(self) -> KafkaError | None:
        return self._error

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"


class _Consumer:
    def __init__(self, messages: list[_Message]) -> None:
        self.messages = messages

    def consume(self, num_messages: int, timeout: float) -> list[_Message]:
        out, self.messages = self.messages, []
        return out

    def close(self) -> None:
        pass


def _source(messages: list[_Message]) -> KafkaSource:
    settings = Settings.model_validate({"kafka": {"bootstrap_servers": NO_BROKER}})
    source = KafkaSource("t", consumer_config(settings.kafka, settings.consumer))
    source._consumer.close()
    fake: Any = _Consumer(messages)
    source._consumer = fake
    return source


@pytest.mark.parametrize("code", [KafkaError._FATAL, KafkaError._FENCED, KafkaError.UNKNOWN_TOPIC_OR_PART,
                                  KafkaError.TOPIC_AUTHORIZATION_FAILED])
def test_a_fatal_error_from_poll_raises_kafka_fatal_with_the_reason(code):
    # What librdkafka returned when a static member was fenced after the broker hung: code _FATAL,
    # fatal() False on the message error.
    source = _source([_Message(partition=0, offset=5),
                      _Message(KafkaError(code, "Fatal error: Broker: Static consumer fenced by other consumer"))])
    with pytest.raises(KafkaFatal, match="cannot go on"):
        source.poll(10, 0.0)


def test_partition_eof_and_transport_errors_are_not_fatal():
    source = _source([_Message(KafkaError(KafkaError._PARTITION_EOF, "eof")),
                      _Message(KafkaError(KafkaError._TRANSPORT, "broker down")),
                      _Message(partition=1, offset=7)])
    assert source.poll(10, 0.0) == [(1, 7, b"k", b"v")]


def test_a_fatal_error_reported_by_the_error_callback_stops_the_next_poll():
    source = _source([])
    source._on_error(KafkaError(KafkaError._FATAL, "Fatal error: fenced", fatal=True))
    with pytest.raises(KafkaFatal):
        source.poll(10, 0.0)
