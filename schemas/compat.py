"""Schema evolution rules, checked by the test suite for every shipped version.

A new version must be readable both ways with every older one: new readers
read old events (added fields need defaults) and old readers read new events
(fields they do not know are skipped; changed types break them). The check
encodes a representative event with one version and resolves it with the
other, which is exactly what consumers do in production.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import fastavro

from schemas.codec import SchemaVersion


class IncompatibleSchema(Exception):
    """Two schema versions cannot read each other's events."""


def sample_record() -> dict[str, Any]:
    """An event exercising every v1 field, optional parts included."""
    return {
        "id": "01890000-0000-7000-8000-000000000000",
        "workspace_id": "ws_compat",
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "action": "MEMBER_ROLE_CHANGED",
        "category": "members",
        "actor": {"kind": "user", "id": "u1", "display": "alex@example.com"},
        "target": {"kind": "user", "id": "u2", "display": "sam@example.com"},
        "payload": {"before": {"role": "member", "scopes": ["a"]}, "after": {"role": "admin", "n": 1}},
        "context": {"ip": "192.0.2.1", "user_agent": "ua", "request_id": "r1", "service": "svc"},
    }


def _defaults_for(schema: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The sample completed with each top-level field's default (so newer writers can encode it)."""
    filled = dict(record)
    for field in schema["fields"]:
        if field["name"] not in filled and "default" in field:
            filled[field["name"]] = field["default"]
    return filled


def check_pair(writer: SchemaVersion, reader: SchemaVersion) -> None:
    """Raise IncompatibleSchema unless ``reader`` reads what ``writer`` writes."""
    record = _defaults_for(writer.raw, sample_record())
    buf = io.BytesIO()
    try:
        fastavro.schemaless_writer(buf, writer.parsed, record)
        buf.seek(0)
        decoded = fastavro.schemaless_reader(buf, writer.parsed, reader.parsed)
    except Exception as err:
        raise IncompatibleSchema(
            f"v{reader.version} cannot read events written with v{writer.version}: {type(err).__name__}: {err}"
        ) from err
    if not isinstance(decoded, dict) or str(decoded.get("id")) != record["id"]:
        raise IncompatibleSchema(f"v{reader.version} misreads events written with v{writer.version}")


def check_evolution(versions: list[SchemaVersion]) -> None:
    """Every version reads every other's events, both ways."""
    ordered = sorted(versions, key=lambda v: v.version)
    for i, older in enumerate(ordered):
        for newer in ordered[i + 1:]:
            check_pair(older, newer)
            check_pair(newer, older)
