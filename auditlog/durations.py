"""Durations as people type them on the command line: ``90s``, ``15m``, ``1h``, ``7d``, ``1h30m``.

A bare number is seconds, so the scripts written when ``--ttl`` took an integer
keep working. The units are written out in every ``--help`` that takes one
(``DURATION_HELP``).
"""

from __future__ import annotations

import re
from datetime import timedelta

# Seconds per unit, largest first: format_duration writes the largest units it can.
UNIT_SECONDS: dict[str, int] = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}

DURATION_HELP = "a number with a unit: s (seconds), m (minutes), h (hours), d (days), w (weeks), e.g. 90s, 15m, 1h, " \
                "7d, 1h30m; a bare number is seconds"

# At most 12 digits per part (far beyond any sensible duration); the sum must fit a timedelta.
_PART = re.compile(r"([0-9]{1,12})([wdhms])")  # ASCII digits only: \d also takes other scripts' digits
_SECONDS_ONLY = re.compile(r"[0-9]{1,12}")
_MAX_SECONDS = timedelta.max.days * 86400  # whole days: total_seconds() rounds up past the limit


class InvalidDuration(ValueError):
    """The text is not a duration; the message says what was expected."""


def parse_duration(text: str) -> timedelta:
    """The duration ``text`` names.

    Args:
        text: ``<number><unit>`` parts with units w, d, h, m, s, largest first
            (``1h30m``), or a bare whole number of seconds.

    Returns:
        A non-negative whole number of seconds as a timedelta; bounds are the caller's.

    Raises:
        InvalidDuration: empty, negative, fractional, an unknown unit, or units out of order.
    """
    spoken = text.strip().lower()
    if _SECONDS_ONLY.fullmatch(spoken):
        return timedelta(seconds=int(spoken))
    seconds = 0
    position = 0
    previous_unit = -1
    order = list(UNIT_SECONDS)
    for match in _PART.finditer(spoken):
        unit = order.index(match.group(2))
        if match.start() != position or unit <= previous_unit:
            break
        seconds += int(match.group(1)) * UNIT_SECONDS[match.group(2)]
        position, previous_unit = match.end(), unit
    else:
        if spoken and position == len(spoken) and seconds <= _MAX_SECONDS:
            return timedelta(seconds=seconds)
    raise InvalidDuration(f"{text!r} is not a duration: expected {DURATION_HELP}")


def format_duration(duration: timedelta) -> str:
    """``duration`` written the way parse_duration reads it, in days and smaller, largest first (``5400 s`` →
    ``1h30m``).

    Raises:
        InvalidDuration: a negative duration or one with a fraction of a second (no such text exists).
    """
    if duration < timedelta(0) or duration.microseconds:
        raise InvalidDuration(f"{duration} has no text form: only whole, non-negative seconds do")
    left = int(duration.total_seconds())
    if left == 0:
        return "0s"
    parts = []
    for unit, size in UNIT_SECONDS.items():
        if unit == "w":
            continue  # "90d" reads better than "12w6d"; weeks are accepted, not written
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
