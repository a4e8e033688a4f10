"""Errors of the storage layer, and what a failed statement means for the caller.

``classify`` sorts an exception from clickhouse-connect (HTTP or chDB) into
three kinds, by the engine's error code where it gave one:

- ``transient``: the store may take the same statement later (unreachable,
  timeouts, too many parts or queries, memory pressure, a restarting server);
- ``data``: the statement can never succeed with these rows (too many
  partitions in one block, a value the engine cannot convert or parse);
- ``fatal``: nothing this process sends will succeed (credentials, a read-only
  user, a missing table or database).

Unknown codes count as transient: retrying a statement that cannot succeed
costs time (the caller caps it), while calling a passing outage permanent
would lose data.
"""

from __future__ import annotations

import re
from typing import Literal


class StoreError(Exception):
    """Base class for ClickHouse storage failures."""


class MigrationError(StoreError):
    """A migration file is missing, misnumbered, or failed to apply."""


FailureKind = Literal["transient", "data", "fatal"]

_CODE = re.compile(r"\bCode:\s*(\d+)")

# https://github.com/ClickHouse/ClickHouse/blob/master/src/Common/ErrorCodes.cpp
_DATA_CODES = {
    6,    # CANNOT_PARSE_TEXT
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,   # ATTEMPT_TO_READ_AFTER_EOF
    33,   # CANNOT_READ_ALL_DATA
    38,   # CANNOT_PARSE_DATE
    41,   # CANNOT_PARSE_DATETIME
    53,   # TYPE_MISMATCH
    69,   # ARGUMENT_OUT_OF_BOUND
    70,   # CANNOT_CONVERT_TYPE
    72,   # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    131,  # TOO_LARGE_STRING_SIZE
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    376,  # CANNOT_PARSE_UUID
    407,  # DECIMAL_OVERFLOW
}
_FATAL_CODES = {
    60,   # UNKNOWN_TABLE
    81,   # UNKNOWN_DATABASE
    164,  # READONLY
    192,  # UNKNOWN_USER
    193,  # WRONG_PASSWORD
    194,  # REQUIRED_PASSWORD
    195,  # IP_ADDRESS_NOT_ALLOWED
    497,  # ACCESS_DENIED
    516,  # AUTHENTICATION_FAILED
}
_TOO_MANY_PARTS = 252  # transient ("merges are slower than inserts"), except for one message below


def error_code(err: BaseException) -> int | None:
    """The engine's error code in ``err``'s message, if it has one."""
    code = getattr(err, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE.search(str(err))
    return int(match.group(1)) if match else None


def classify(err: BaseException) -> FailureKind:
    """What a failed statement means: retry it, split its rows, or stop (see the module docstring)."""
    code = error_code(err)
    if code == _TOO_MANY_PARTS:
        return "data" if "partitions for single INSERT block" in str(err) else "transient"
    if code in _DATA_CODES:
        return "data"
    if code in _FATAL_CODES:
        return "fatal"
    return "transient"
