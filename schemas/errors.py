"""Errors of the event contract. Each says, for a person, what is wrong."""

from __future__ import annotations


class SchemaError(Exception):
    """Base class for everything the event contract refuses."""


class InvalidEvent(SchemaError):
    """An event that does not satisfy the contract (unknown action, empty actor, ...)."""


class UnknownAction(InvalidEvent):
    def __init__(self, action: str) -> None:
        super().__init__(
            f"unknown action {action!r}: add it to schemas/catalog.json before emitting it"
        )
        self.action = action


class DecodeError(SchemaError):
    """Bytes that cannot be read as an audit event."""


class UnknownSchemaFingerprint(DecodeError):
    def __init__(self, fingerprint: bytes) -> None:
        super().__init__(
            f"no shipped schema has the fingerprint {fingerprint.hex()}: the event was written "
            "with a schema this build does not know (deploy the newer schemas/ first)"
        )
        self.fingerprint = fingerprint
