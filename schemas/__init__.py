"""The event contract: Avro schemas (every version kept), the action catalog, the codec."""

from schemas.catalog import ActionSpec, Catalog, load_catalog
from schemas.codec import EventCodec, default_codec, shipped_versions
from schemas.errors import DecodeError, InvalidEvent, SchemaError, UnknownAction, UnknownSchemaFingerprint
from schemas.event import Actor, AuditEvent, RequestContext, Target, uuid7, validate_record

__all__ = [
    "ActionSpec",
    "Actor",
    "AuditEvent",
    "Catalog",
    "DecodeError",
    "EventCodec",
    "InvalidEvent",
    "RequestContext",
    "SchemaError",
    "Target",
    "UnknownAction",
    "UnknownSchemaFingerprint",
    "default_codec",
    "load_catalog",
    "shipped_versions",
    "uuid7",
    "validate_record",
]
