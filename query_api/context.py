"""What the API needs at hand for every request, built once at start-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from clickhouse.pool import ClientSource
from config.settings import Settings
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
    # Where pages and single events lease their engine handles (the reader reads through it).
    pages: ClientSource
    # Where exports lease their engine handles: a share of its own, so an export never holds one a page needs.
    exports: ClientSource
    verifier: TokenVerifier
    cursors: CursorCodec
    catalog: Catalog
    # Records exports as audit events; None where the API runs without a broker.
    audit_producer: AuditProducer | None = None
    # Parts running in this process that /readyz must ask, by name: each returns (ready, state, detail).
    # The embedded mode adds its consumer, so readiness tells whether events are being stored.
    readiness: dict[str, Callable[[], tuple[bool, str, str]]] = field(default_factory=dict)
    # Export-link tickets already downloaded (single use; this process only).
    used_tickets: UsedTickets = field(default_factory=UsedTickets)
