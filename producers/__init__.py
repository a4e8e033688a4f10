"""The producer library: ``AuditProducer`` records audit events without blocking the caller.

Example::

    from config.settings import get_settings
    from producers import Actor, AuditProducer

    with AuditProducer.from_settings(get_settings()) as audit:
        audit.emit(workspace_id="ws_42", action="MEMBER_ROLE_CHANGED",
                   actor=Actor("user", "u_1", "alex@example.com"),
                   target_id="u_7", target_display="sam@example.com",
                   before={"role": "member"}, after={"role": "admin"})
"""

from producers.errors import PayloadTooLarge, ProducerClosed, ProducerError, SpoolWriteFailed
from producers.producer import AuditProducer, DeliveryReport, ProducerOutcomes
from schemas.errors import InvalidEvent, UnknownAction
from schemas.event import Actor, RequestContext

__all__ = [
    "Actor",
    "AuditProducer",
    "DeliveryReport",
    "InvalidEvent",
    "PayloadTooLarge",
    "ProducerClosed",
    "ProducerError",
    "ProducerOutcomes",
    "RequestContext",
    "SpoolWriteFailed",
    "UnknownAction",
]
