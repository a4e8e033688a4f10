"""The limits of the event contract, stated once for both ends of the pipeline.

The producer checks them in Python (``schemas.event.validate_record``) before
anything is sent; the consumer checks the same limits in the engine
(``consumer/rules.py`` binds these values as query parameters) on every decode
path, and dead-letters what breaks them with the reason. A property test
(``tests/integration/ingestion/test_contract_agreement.py``) holds the two to the same
verdicts.

Decisions a producer should know:

- ``occurred_at`` lies in [1900-01-01, 2300-01-01) UTC: the range the events
  table's ``DateTime64(6)`` holds. Anything outside cannot be stored faithfully.
- ``workspace_id`` is 1-128 characters of ``A-Z a-z 0-9 _ . : -``: exactly the
  ids the query API serves, so every stored event can be read back.
- Strings are valid UTF-8 (Python ``str`` with lone surrogates cannot be
  encoded and is refused; bytes from another producer are checked by the
  consumer).
- Payload numbers are finite: NaN and ±Infinity have no JSON form and are
  refused. ``-0.0`` is written as ``0`` (JSON and RFC 8785 have one zero). A
  float with an integral value comes back as a JSON integer (``1.0`` → ``1``),
  as JavaScript and RFC 8785 write it; large integers stay exact.
- An empty ``before``/``after`` map means nothing was recorded: it is stored
  and returned as ``null``, like an absent one.
- Context fields (ip, user agent, request id, service) that are absent or empty
  are stored and returned as ``""``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

OCCURRED_AT_MIN = datetime(1900, 1, 1, tzinfo=UTC)
OCCURRED_AT_END = datetime(2300, 1, 1, tzinfo=UTC)  # exclusive

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OCCURRED_AT_MIN_MICROS = int((OCCURRED_AT_MIN - _EPOCH).total_seconds()) * 1_000_000
OCCURRED_AT_END_MICROS = int((OCCURRED_AT_END - _EPOCH).total_seconds()) * 1_000_000

WORKSPACE_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
WORKSPACE_ID_RE = re.compile(WORKSPACE_ID_PATTERN)

# The canonical (lower-case, hyphenated) UUID text every stored id has.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

ACTOR_KINDS = frozenset({"user", "api_token", "service", "agent"})
