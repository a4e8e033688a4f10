"""Turning a Kafka message into a table row, or into a reason it can never be one."""

from __future__ import annotations

from typing import Any

from clickhouse.events import record_to_row
from consumer.errors import InvalidMessage
from schemas.catalog import Catalog
from schemas.codec import EventCodec
from schemas.errors import SchemaError
from schemas.event import validate_record


class MessageDecoder:
    """Decodes single-object Avro, validates against the catalog, maps to a row."""

    def __init__(self, codec: EventCodec, catalog: Catalog) -> None:
        self._codec = codec
        self._catalog = catalog

    def to_row(self, value: bytes | None, partition: int, offset: int) -> tuple[Any, ...]:
        """The row for one message; raises InvalidMessage for anything undecodable or invalid."""
        if not value:
            raise InvalidMessage(partition, offset, "empty message")
        try:
            writer = self._codec.writer_of(value)
            record = self._codec.decode(value)
            validate_record(record, self._catalog)
        except SchemaError as err:
            raise InvalidMessage(partition, offset, f"{type(err).__name__}: {err}") from err
        return record_to_row(record, writer.version)
