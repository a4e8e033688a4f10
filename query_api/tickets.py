"""Download tickets for export links: signed, short-lived, single-use.

A ticket is HMAC-signed (``SignedJson``, a key derived from the cursor
secret), valid for ``TICKET_SECONDS``, bound to one user, workspace, format
and set of filters, and carries a random id (``jti``). The first download
claims the id; a second use gets 410. Used ids are kept in this process's
memory until their ticket expires: with several API replicas behind a load
balancer, a link could be used once per replica within its 60 s (see
docs/runbook.md); a shared store would close that.
"""

from __future__ import annotations

import threading
import time

from query_api.errors import LinkUsed, NotAuthenticated
from query_api.signing import SignedJson

TICKET_SECONDS = 60


class TicketSigner:
    """Signs and checks download tickets with a key of their own (derived from the cursor secret)."""

    def __init__(self, secret: str) -> None:
        self._tokens = SignedJson(secret, "auditlog-export-ticket")

    def issue(self, claims: dict[str, object]) -> str:
        return self._tokens.dumps(claims)

    def check(self, ticket: str, workspace_id: str) -> dict[str, object]:
        """The ticket's claims; raises NotAuthenticated if it is malformed, forged, expired or for elsewhere."""
        invalid = NotAuthenticated("This download link is not valid or has expired; press Export again.", "ticket")
        try:
            claims = self._tokens.loads(ticket)
        except ValueError:  # MalformedToken, ForgedToken
            raise invalid from None
        if not isinstance(claims, dict) or claims.get("ws") != workspace_id:
            raise invalid
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            raise invalid
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            raise invalid
        return claims


class UsedTickets:
    """Ticket ids already downloaded, kept until their tickets expire (this process only)."""

    def __init__(self) -> None:
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, ticket_id: str, expires_at: float) -> None:
        """Mark ``ticket_id`` used; raises LinkUsed if it was used before."""
        now = time.time()
        with self._lock:
            if len(self._used) > 1024:
                self._used = {k: v for k, v in self._used.items() if v >= now}
            if ticket_id in self._used:
                raise LinkUsed("This download link was already used; each link works once. Press Export again.",
                               "ticket")
            self._used[ticket_id] = expires_at

    def __len__(self) -> int:
        return len(self._used)
