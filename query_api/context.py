"""What the API needs at hand for every request, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from auditlog.settings import Settings
from producers.producer import AuditProducer
from query_api.cursor import CursorCodec
from query_api.queries import EventReader
from query_api.security import TokenVerifier
from query_api.tickets import UsedTickets
from schemas.catalog import Catalog


@dataclass
class ApiContext:
    settings: Settings
    client: Client
    reader: EventReader
    verifier: TokenVerifier
    cursors: CursorCodec
    catalog: Catalog
    # Records exports as audit events; None where the API runs without a broker.
    audit_producer: AuditProducer | None = None
    ready: bool = True
    # Export-link tickets already downloaded (single use; this process only).
    used_tickets: UsedTickets = field(default_factory=UsedTickets)
