"""The activity timeline: how many events matched, per time bucket, for any filters.

A person looks at a picture before reading 50 rows ("when did the spike of
LOGIN_FAILED happen?"), so the answer must stay a picture at any range: the
bucket size is chosen from a fixed ladder (1 minute … 10 years) as the
smallest step that covers the range in at most ``max_buckets`` buckets. The
ladder is fixed (not "range / N") so that bars land on boundaries people read
(whole hours, days, Mondays, months, years) and two views of nearby ranges
share their buckets.

Buckets are aligned in UTC exactly as the engine's ``toStartOfInterval`` aligns
them (minutes and hours on the Unix epoch, days at midnight, weeks on Monday,
months and years on the calendar counted from 1970); ``align`` here is the
same rule in Python, so the answer's bounds can be checked, and the tests
compare the two. The engine groups by that expression (with its extended-range results, so
1900..2299 buckets correctly) over the sort key's
``(workspace_id, occurred_at)`` range and ``WITH FILL`` emits the empty buckets
as zeros; the counts use the page's own WHERE (``queries.build_where``), so
every filter -- and any later one, such as a search -- composes the same way
as on the list, and the buckets sum to the list's total.

Copies of an event that the ReplacingMergeTree has not merged yet share its
whole sort key, so ``FINAL`` collapses them and ``count()`` counts each event
once. The engine merges only the key ranges where parts overlap (the newest
ones) and reads the rest as it is: on a 2.77M-row workspace with 0.77M unmerged
copies (CPU time per query, docs/performance.md, "Activity timeline") ``FINAL``
+ ``count()`` took 219 ms of CPU, ``uniqExact(id)`` 401 ms, a plain ``count()``
(which counts copies) 95 ms.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from clickhouse.events import as_utc
from query_api.filters import EventFilters
from query_api.queries import ENGINE_MAX, ENGINE_MIN, PAGE_SETTINGS, build_where, ch_time

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Without it, toStartOfInterval answers Date/DateTime, which saturate outside 1970..2149 / 2106: every
# event of 1900..1969 would land in 1970's bucket. With it, Date32 / DateTime64, the column's whole range.
TIMELINE_SETTINGS = {**PAGE_SETTINGS, "enable_extended_results_for_datetime_functions": 1}


@dataclass(frozen=True)
class BucketSize:
    """One rung of the ladder: ``count`` units of ``unit`` (the engine's INTERVAL unit)."""

    label: str
    count: int
    unit: str  # MINUTE, HOUR, DAY, WEEK, MONTH or YEAR

    @property
    def months(self) -> int:
        """The step in calendar months (0 for the fixed-length steps)."""
        return {"MONTH": 1, "YEAR": 12}.get(self.unit, 0) * self.count

    @property
    def fixed(self) -> timedelta:
        """The step as a duration (only for the fixed-length steps)."""
        minutes = {"MINUTE": 1, "HOUR": 60, "DAY": 1440, "WEEK": 10080}[self.unit]
        return timedelta(minutes=minutes * self.count)

    @property
    def interval(self) -> str:
        """The engine's ``INTERVAL n UNIT`` for this step (from the fixed ladder, never from input)."""
        return f"INTERVAL {self.count} {self.unit}"

    def align(self, moment: datetime) -> datetime:
        """The start of the bucket that holds ``moment``: ``toStartOfInterval(moment, interval)``."""
        m = moment.astimezone(UTC)
        if self.months:
            index = (m.year - 1970) * 12 + m.month - 1
            index -= index % self.months  # Python's % floors, like the engine, before 1970 too
            return datetime(1970 + index // 12, index % 12 + 1, 1, tzinfo=UTC)
        if self.unit == "WEEK":
            day = datetime(m.year, m.month, m.day, tzinfo=UTC)
            return day - timedelta(days=day.weekday())
        step = self.fixed
        return _EPOCH + ((m - _EPOCH) // step) * step

    def after(self, start: datetime) -> datetime:
        """The start of the bucket following the aligned ``start`` (the end of ``start``'s bucket)."""
        if self.months:
            index = (start.year - 1970) * 12 + start.month - 1 + self.months
            return datetime(1970 + index // 12, index % 12 + 1, 1, tzinfo=UTC)
        return start + self.fixed

    def buckets(self, lo: datetime, hi: datetime) -> int:
        """How many buckets of this size the range ``lo..hi`` (both inclusive) touches."""
        first, last = self.align(lo), self.align(hi)
        if self.months:
            return ((last.year - first.year) * 12 + last.month - first.month) // self.months + 1
        return (last - first) // self.fixed + 1


# Smallest first. The last rung must cover the engine's whole range (1900..2299, 40 decades) in
# ``ApiSettings.timeline_max_buckets``'s lowest allowed value.
LADDER: tuple[BucketSize, ...] = (
    BucketSize("1m", 1, "MINUTE"), BucketSize("5m", 5, "MINUTE"), BucketSize("15m", 15, "MINUTE"),
    BucketSize("1h", 1, "HOUR"), BucketSize("6h", 6, "HOUR"), BucketSize("1d", 1, "DAY"),
    BucketSize("1w", 1, "WEEK"), BucketSize("1mo", 1, "MONTH"), BucketSize("3mo", 3, "MONTH"),
    BucketSize("1y", 1, "YEAR"), BucketSize("10y", 10, "YEAR"),
)


def bucket_expression(size: BucketSize) -> str:
    """The engine's bucket start of ``occurred_at`` for ``size`` (run with ``TIMELINE_SETTINGS``).

    toStartOfSecond first: on a DateTime64 before 1970 with a fraction, the engine's toStartOfInterval
    rounds the second up (1969-12-31 23:59:59.5 -> 1970-01-01 for a day); toStartOfSecond floors it.
    """
    return f"toDateTime64(toStartOfInterval(toStartOfSecond(occurred_at), {size.interval}), 0, 'UTC')"


def choose_bucket(lo: datetime, hi: datetime, max_buckets: int) -> BucketSize:
    """The smallest rung of ``LADDER`` that shows ``lo..hi`` in at most ``max_buckets`` buckets.

    Raises:
        ValueError: ``hi`` is before ``lo``, or no rung fits (``max_buckets`` too small for the range).
    """
    if hi < lo:
        raise ValueError(f"the range ends ({hi.isoformat()}) before it starts ({lo.isoformat()})")
    for size in LADDER:
        if size.buckets(lo, hi) <= max_buckets:
            return size
    raise ValueError(f"no bucket size shows {lo.isoformat()}..{hi.isoformat()} in {max_buckets} buckets")


@dataclass(frozen=True)
class Bucket:
    start: datetime  # inclusive, aligned
    end: datetime  # exclusive: the next bucket's start
    count: int


@dataclass(frozen=True)
class Timeline:
    """The answer: the range shown (inclusive bounds), the bucket size, the buckets oldest first."""

    since: datetime | None
    until: datetime | None
    size: BucketSize | None
    buckets: list[Bucket]

    @property
    def total(self) -> int:
        return sum(b.count for b in self.buckets)


def _clamp(moment: datetime) -> datetime:
    """``moment`` moved inside the engine's range (nothing is stored outside it)."""
    return min(max(moment, ENGINE_MIN), ENGINE_MAX)


class TimelineReader:
    """Bucket counts of one events table through one client."""

    def __init__(self, client: Client, table: str, max_buckets: int) -> None:
        self._client = client
        self._table = table
        self._max_buckets = max_buckets

    def _extent(self, workspace_id: str) -> tuple[datetime, datetime] | None:
        """The workspace's first and last event, read from the ends of its sort-key range; None if quiet."""
        sql = (
            f"SELECT (SELECT occurred_at FROM {self._table} WHERE workspace_id = {{ws:String}}"
            " ORDER BY occurred_at LIMIT 1),"
            f" (SELECT occurred_at FROM {self._table} WHERE workspace_id = {{ws:String}}"
            " ORDER BY occurred_at DESC LIMIT 1),"
            f" (SELECT count() FROM (SELECT 1 FROM {self._table} WHERE workspace_id = {{ws:String}} LIMIT 1))"
        )
        first, last, any_rows = self._client.query(sql, parameters={"ws": workspace_id},
                                                   settings=PAGE_SETTINGS).result_rows[0]
        if not any_rows:
            return None
        return as_utc(first), as_utc(last)

    def range_of(self, workspace_id: str, filters: EventFilters) -> tuple[datetime, datetime] | None:
        """The inclusive range to show: the filters' bounds, a missing one taken from the workspace's
        first/last event; None when a bound is missing and the workspace has no events."""
        lo, hi = filters.since, filters.until
        if lo is None or hi is None:
            extent = self._extent(workspace_id)
            if extent is None:
                return None
            lo = lo if lo is not None else extent[0]
            hi = hi if hi is not None else extent[1]
        lo, hi = _clamp(lo), _clamp(hi)
        # ``since`` after the last event (or after ``until``): one empty bucket at ``since``.
        return lo, max(lo, hi)

    def timeline(self, workspace_id: str, filters: EventFilters) -> Timeline:
        """The bucket counts for ``filters`` over their range, empty buckets included as zeros."""
        shown = self.range_of(workspace_id, filters)
        if shown is None:
            return Timeline(filters.since, filters.until, None, [])
        lo, hi = shown
        size = choose_bucket(lo, hi, self._max_buckets)
        # WITH FILL's TO is exclusive; past the engine's last moment it cannot be written, and there
        # the engine's last moment (inside the last bucket) does the same.
        first, stop = size.align(lo), size.after(size.align(hi))
        query = build_where(workspace_id, filters)
        params: dict[str, Any] = {**query.parameters, "fill_from": ch_time(first),
                                  "fill_to": ch_time(min(stop, ENGINE_MAX))}
        bucket = bucket_expression(size)
        sql = (
            f"SELECT {bucket} AS bucket, count() AS events FROM {self._table} FINAL WHERE {query.where}"
            " GROUP BY bucket ORDER BY bucket WITH FILL"
            " FROM toDateTime64({fill_from:DateTime64(6, 'UTC')}, 0, 'UTC')"
            " TO toDateTime64({fill_to:DateTime64(6, 'UTC')}, 0, 'UTC')"
            f" STEP {size.interval}"
        )
        rows = self._client.query(sql, parameters=params, settings=TIMELINE_SETTINGS).result_rows
        buckets = [Bucket(as_utc(start), size.after(as_utc(start)), int(count)) for start, count in rows]
        logger.debug("timeline workspace=%s bucket=%s buckets=%d", workspace_id, size.label, len(buckets))
        return Timeline(lo, hi, size, buckets)
