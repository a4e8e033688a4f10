"""Storing one batch: stage, check, keep ids write-once, insert, and split what the engine refuses.

For each writer schema in the batch (usually one):

1. stage the messages in the engine (consumer/staging.py); bodies the engine
   cannot parse are found in Python and dead-lettered, the rest staged again;
2. one query returns every row's verdict under the contract (consumer/rules.py)
   and whether the rows line up with the messages;
3. ids are write-once: ids already stored (or seen earlier in the batch) with the
   same content are skipped, with other content dead-lettered as ``id conflict``;
4. one ``INSERT … SELECT`` with the batch's deduplication token copies the rest
   into the events table; a batch spanning more monthly partitions than the
   engine takes in one block is inserted in groups of months, and rows the engine
   refuses for what they are are split by halves down to one row, so every good
   row is stored and only the row at fault is dead-lettered with the engine's
   message.

Failures are classified (clickhouse/errors.py): transient ones raise
``StoreUnavailable`` (the caller retries the whole group, which is idempotent:
stored rows are found by id and skipped, and sub-inserts repeat their tokens),
fatal ones ``StoreMisconfigured``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from clickhouse.errors import classify
from clickhouse.events import AVRO_RECORD_TO_ROW, COLUMNS, EVENT_DIGEST, PAYLOAD_JSON_SETTINGS
from consumer.batch import RawMessage
from consumer.errors import RowsRefused, StoreMisconfigured, StoreUnavailable
from consumer.metrics import ENGINE_SPLITS, ID_CONFLICTS, REDELIVERED_SKIPPED
from consumer.rules import REJECTION_REASON, rule_parameters
from consumer.staging import StagingTable, find_unparseable
from schemas.catalog import Catalog
from schemas.codec import HEADER_LENGTH, EventCodec, SchemaVersion
from schemas.errors import DecodeError

logger = logging.getLogger(__name__)

ROW_SELECT = ", ".join(f"{expr} AS {column}" for column, expr in AVRO_RECORD_TO_ROW)
ID_CONFLICT = "id conflict"
# The engine's per-INSERT list of skip indexes not to build (merges build them); ClickHouse 25.x+.
INDEX_DEFERRAL_SETTING = "exclude_materialize_skip_indexes_on_insert"
# The ReplacingMergeTree would collapse rows of one key within each inserted block: a second sort-and-merge
# pass over every column (~20 % of the INSERT, docs/performance.md). The write-once step leaves at most one
# row per id in what is inserted, so there is nothing to collapse; merges and FINAL still collapse across parts.
INSERT_WITHOUT_COLLAPSE = {"optimize_on_insert": 0}


@dataclass
class StoreResult:
    """What became of a batch's messages: stored or skipped (a redelivery), or dead-lettered."""

    stored: int = 0
    skipped: int = 0
    dead_letters: list[tuple[RawMessage, str]] = field(default_factory=list)


# How messages are checked before the engine parses them (the decode path): unparseable positions -> reason.
BodyCheck = Callable[[SchemaVersion, Sequence[bytes]], dict[int, str]]


def engine_decode(_writer: SchemaVersion, _messages: Sequence[bytes]) -> dict[int, str]:
    """The fast path: the engine parses first; Python looks only when it could not."""
    return {}


def python_decode(writer: SchemaVersion, messages: Sequence[bytes]) -> dict[int, str]:
    """The reference path: every body read in Python before the engine sees it."""
    return _unparseable(writer, messages)


def _unparseable(writer: SchemaVersion, messages: Sequence[bytes]) -> dict[int, str]:
    return find_unparseable(writer, [m[HEADER_LENGTH:] for m in messages])


def _raise_classified(err: Exception, what: str, staging: str = "") -> None:
    kind = classify(err)
    if kind == "fatal" and staging and staging.split(".")[-1] in str(err):
        kind = "transient"  # the staging table went away (a server restart): the retry re-creates it
    if kind == "fatal":
        raise StoreMisconfigured(f"the store refuses to {what}: {str(err)[:300]}") from err
    if kind == "data":
        raise RowsRefused(str(err)[:500]) from err
    raise StoreUnavailable(f"could not {what}: {type(err).__name__}: {str(err)[:300]}") from err


@dataclass(frozen=True)
class _Check:
    rejected: dict[int, str]
    months: list[int]
    repeated_ids: bool


class EventStore:
    """Stores batches of raw messages in the events table (see the module docstring)."""

    def __init__(self, client: Client, *, database: str, events_table: str, codec: EventCodec,
                 catalog: Catalog, check: BodyCheck = engine_decode, max_partitions: int = 100,
                 indexes_built_at_merge: Sequence[str] = ()) -> None:
        self._client = client
        self._events = events_table
        self._ids = f"{events_table}_ids"
        self._codec = codec
        self._versions = {v.version: v for v in codec.versions}
        self._check = check
        self._params = rule_parameters(catalog)
        self._max_partitions = max_partitions
        self.staging = StagingTable(client, database)
        self._staged = 0  # rows in the staging table
        self._built_at_merge = tuple(indexes_built_at_merge)
        self._index_deferral: dict[str, str] | None = None  # the INSERT's settings for it, once known

    def store(self, messages: Sequence[RawMessage], token: str) -> StoreResult:
        """Store ``messages`` (one batch) under ``token``; raises StoreUnavailable / StoreMisconfigured."""
        result = StoreResult()
        groups: dict[int, list[RawMessage]] = {}
        versions: dict[bytes, int] = {}  # header -> writer version: a batch has one or a few headers
        for message in messages:
            value = message[3] or b""
            header = value[:HEADER_LENGTH]
            version = versions.get(header)
            if version is None:
                try:
                    version = versions[header] = self._codec.writer_of(value).version
                except DecodeError as err:
                    result.dead_letters.append((message, f"{type(err).__name__}: {err}"))
                    continue
            groups.setdefault(version, []).append(message)
        for version, group in sorted(groups.items()):
            group_token = token if len(groups) == 1 else f"{token}:v{version}"
            self._store_group(self._versions[version], group, group_token, result)
        return result

    def close(self) -> None:
        try:
            self.staging.drop()
        except Exception:
            logger.warning("staging_drop_failed table=%s", self.staging.name, exc_info=True)

    # -- one writer schema ------------------------------------------------------

    def _store_group(self, writer: SchemaVersion, group: list[RawMessage], token: str, result: StoreResult) -> None:
        values = [m[3] or b"" for m in group]
        unparseable = self._check(writer, values)
        keep = [i for i in range(len(group)) if i not in unparseable]
        keep, check = self._stage(writer, values, keep, unparseable)
        for i, reason in sorted(unparseable.items()):
            result.dead_letters.append((group[i], reason))
        if not keep:
            return
        # Staged row _seq = position in ``keep``.
        rejected, months = check.rejected, check.months
        for seq, reason in rejected.items():
            result.dead_letters.append((group[keep[seq]], reason))
        excluded = set(rejected)
        skipped, conflicts = self._write_once(excluded, check.repeated_ids)
        for seq in conflicts:
            result.dead_letters.append((group[keep[seq]], conflicts[seq]))
        excluded |= skipped | set(conflicts)
        result.skipped += len(skipped)
        if skipped:
            REDELIVERED_SKIPPED.inc(len(skipped))
        if conflicts:
            ID_CONFLICTS.inc(len(conflicts))
        refused = self._insert(writer, len(keep), excluded, months, token)
        for seq, reason in refused.items():
            result.dead_letters.append((group[keep[seq]], reason))
        result.stored += len(keep) - len(excluded) - len(refused)

    def _stage(self, writer: SchemaVersion, values: list[bytes], keep: list[int],
               unparseable: dict[int, str]) -> tuple[list[int], _Check]:
        """Stage ``keep``'s messages, moving to ``unparseable`` any the engine cannot read; returns ``keep``
        and what one query over the staged rows says of them."""
        check = _Check({}, [], False)
        while keep:
            try:
                self.staging.stage(writer, values if len(keep) == len(values) else [values[i] for i in keep])
                aligned, check = self._inspect(len(keep))
                if aligned:
                    return keep, check
                failure: Exception = RowsRefused(f"the engine's rows do not line up with the {len(keep)} bodies")
            except Exception as err:  # classified below: transient and fatal failures leave at once
                if classify(err) != "data" and not _looks_like_parse_error(err):
                    _raise_classified(err, "stage the batch", self.staging.name)
                failure = err
            found = _unparseable(writer, [values[i] for i in keep])
            if not found:
                # Python reads every body, the engine does not: find the ones it refuses, one by one.
                found = self._engine_refused(writer, [values[i] for i in keep])
                if not found:
                    _raise_classified(failure, "stage the batch", self.staging.name)
            ENGINE_SPLITS.inc()
            for position, reason in found.items():
                unparseable[keep[position]] = reason
            keep = [i for j, i in enumerate(keep) if j not in found]
        return keep, check

    def _inspect(self, n: int) -> tuple[bool, _Check]:
        """One pass over the staged rows: do they line up with the ``n`` bodies (``_seq`` = 0..n-1), which
        does the contract refuse (by _seq, with the reason), which months do the valid ones fall in, and
        does an id repeat among them."""
        try:
            count, lo, hi, distinct, rejected, months, repeats = self._client.query(
                "SELECT count(), min(_seq), max(_seq), uniqExact(_seq), groupArrayIf((_seq, reason), reason != ''), "
                "groupUniqArrayIf(toYYYYMM(fromUnixTimestamp64Micro(occurred_at, 'UTC')), reason = ''), "
                "countIf(reason = '') - uniqExactIf(id, reason = '') "
                f"FROM (SELECT _seq, id, occurred_at, {REJECTION_REASON} AS reason FROM {self.staging.name})",
                parameters=self._params,
            ).result_rows[0]
        except Exception as err:
            _raise_classified(err, "check the batch", self.staging.name)
            raise  # unreachable: _raise_classified always raises
        aligned = count == distinct == n and lo == 0 and hi == n - 1
        self._staged = n
        check = _Check({int(seq): str(reason) for seq, reason in rejected}, sorted(int(m) for m in months),
                       repeats > 0)
        return aligned, check

    def _engine_refused(self, writer: SchemaVersion, messages: list[bytes]) -> dict[int, str]:
        """Messages the engine cannot parse alone (bisecting), with its message."""
        refused: dict[int, str] = {}

        def visit(lo: int, hi: int) -> None:
            try:
                self.staging.stage(writer, messages[lo:hi])
                (count,) = self._client.query(f"SELECT count() FROM {self.staging.name}").result_rows[0]
                if count == hi - lo:
                    return
                problem = f"the engine read {count} rows from {hi - lo} bodies"
            except Exception as err:
                if classify(err) == "fatal":
                    _raise_classified(err, "stage the batch", self.staging.name)
                problem = str(err)[:400]
            if hi - lo == 1:
                refused[lo] = f"DecodeError: the engine cannot read this body: {problem}"
                return
            mid = (lo + hi) // 2
            visit(lo, mid)
            visit(mid, hi)

        visit(0, len(messages))
        return refused

    def _write_once(self, excluded: set[int], may_repeat: bool) -> tuple[set[int], dict[int, str]]:
        """Rows to skip (their id is stored, or earlier in the batch, with the same content) and id conflicts."""
        repeated: list[str] = []
        try:
            stored = self._client.query(
                f"SELECT toString(id), groupUniqArray(digest) FROM {self._ids} "
                f"WHERE id IN (SELECT toUUIDOrZero(id) FROM {self.staging.name}) GROUP BY id"
            ).result_rows
            if may_repeat:
                (repeated,) = self._client.query(
                    f"SELECT groupArray(id) FROM (SELECT id FROM {self.staging.name} "
                    f"WHERE NOT has({{excluded:Array(Int64)}}, _seq) GROUP BY id HAVING count() > 1)",
                    parameters={"excluded": sorted(excluded)},
                ).result_rows[0]
        except Exception as err:
            _raise_classified(err, "look up the batch's ids", self.staging.name)
            raise
        if not stored and not repeated:
            return set(), {}
        known: dict[str, list[int]] = {str(i): list(d) for i, d in stored}
        suspects = sorted(set(known) | {str(i) for i in repeated})
        try:
            rows = self._client.query(
                f"SELECT _seq, toString(id), {EVENT_DIGEST} FROM (SELECT _seq, {ROW_SELECT} FROM "
                f"(SELECT * FROM {self.staging.name} WHERE NOT has({{excluded:Array(Int64)}}, _seq) "
                f"AND has({{ids:Array(String)}}, id))) ORDER BY _seq",
                parameters={"excluded": sorted(excluded), "ids": suspects, "version": 0},
                settings=PAYLOAD_JSON_SETTINGS,
            ).result_rows
        except Exception as err:
            _raise_classified(err, "compare the batch's ids", self.staging.name)
            raise
        skipped: set[int] = set()
        conflicts: dict[int, str] = {}
        for seq, event_id, digest in rows:
            first = known.get(event_id)
            if first is None:
                known[event_id] = [digest]  # the first of this id in the batch is stored
            elif digest in first:
                skipped.add(int(seq))
            else:
                conflicts[int(seq)] = (f"{ID_CONFLICT}: event {event_id} is already stored with other content;"
                                       " ids are write-once and the stored event is kept")
        return skipped, conflicts

    def _insert(self, writer: SchemaVersion, n: int, excluded: set[int], months: list[int],
                token: str) -> dict[int, str]:
        """Insert the staged rows not ``excluded``; returns rows the engine refused (by _seq, with why)."""
        if len(excluded) >= n:
            return {}
        refused: dict[int, str] = {}
        if len(months) <= self._max_partitions:
            self._insert_range(writer, excluded, None, 0, n, token, refused)
            return refused
        ENGINE_SPLITS.inc()
        logger.info("batch_split_by_month rows=%d months=%d", n - len(excluded), len(months))
        for start in range(0, len(months), self._max_partitions):
            chunk = months[start:start + self._max_partitions]
            self._insert_range(writer, excluded, chunk, 0, n, f"{token}:m{chunk[0]}", refused)
        return refused

    def _insert_range(self, writer: SchemaVersion, excluded: set[int], months: list[int] | None,
                      lo: int, hi: int, token: str, refused: dict[int, str]) -> None:
        conditions = []
        if lo > 0 or hi < self._staged:
            conditions.append("_seq >= {lo:Int64} AND _seq < {hi:Int64}")
        if excluded:
            conditions.append("NOT has({excluded:Array(Int64)}, _seq)")
        if months is not None:
            conditions.append("has({months:Array(UInt32)}, toYYYYMM(fromUnixTimestamp64Micro(occurred_at, 'UTC')))")
        # The common case (every staged row, no split) reads the staging table as it is, with no filter.
        source = (f"(SELECT * FROM {self.staging.name} WHERE {' AND '.join(conditions)})" if conditions
                  else self.staging.name)
        try:
            self._client.command(
                f"INSERT INTO {self._events} ({', '.join(COLUMNS)}) SELECT {ROW_SELECT} FROM {source}",
                parameters={**self._params, "version": writer.version, "lo": lo, "hi": hi,
                            "excluded": sorted(excluded), "months": months or []},
                settings={**PAYLOAD_JSON_SETTINGS, **self._deferral(), **INSERT_WITHOUT_COLLAPSE,
                          "insert_deduplicate": 1, "insert_deduplication_token": token},
            )
            return
        except Exception as err:
            try:
                _raise_classified(err, "insert the batch", self.staging.name)
            except RowsRefused as refusal:
                reason = str(refusal)
        live = [s for s in range(lo, hi) if s not in excluded]
        if not live:
            return
        if len(live) == 1:
            refused[live[0]] = f"RowsRefused: the engine refuses this event: {reason}"
            logger.warning("row_refused_by_engine seq=%d reason=%s", live[0], reason[:200])
            return
        ENGINE_SPLITS.inc()
        mid = live[len(live) // 2]
        self._insert_range(writer, excluded, months, lo, mid, f"{token}:{lo}-{mid}", refused)
        self._insert_range(writer, excluded, months, mid, hi, f"{token}:{mid}-{hi}", refused)


    def _deferral(self) -> dict[str, str]:
        """The INSERT setting that leaves ``indexes_built_at_merge`` to the merges, if the engine has it.

        Asked once: an older server refuses an unknown setting, which would fail every insert, so
        there the indexes are built on insert as before (and a warning says so). On a cluster the
        indexes are on each shard's ``<table>_local``, where the Distributed insert carries the setting.
        """
        if self._index_deferral is None:
            deferral: dict[str, str] = {}
            if self._built_at_merge:
                database, table = self._events.rsplit(".", 1)
                known, indexes = self._client.query(
                    "SELECT (SELECT count() FROM system.settings WHERE name = {name:String}), "
                    "(SELECT groupArray(name) FROM system.data_skipping_indices "
                    "WHERE database = {db:String} AND table IN ({table:String}, {table:String} || '_local'))",
                    parameters={"name": INDEX_DEFERRAL_SETTING, "db": database, "table": table},
                ).result_rows[0]
                unknown = [name for name in self._built_at_merge if name not in indexes]
                if unknown:
                    logger.warning("index_to_build_at_merge_unknown table=%s indexes=%s", self._events,
                                   ",".join(unknown))
                named = [name for name in self._built_at_merge if name in indexes]
                if known and named:
                    deferral = {INDEX_DEFERRAL_SETTING: ", ".join(named)}
                elif named:
                    logger.warning("indexes_built_on_insert reason=engine_lacks_setting setting=%s indexes=%s",
                                   INDEX_DEFERRAL_SETTING, ",".join(named))
            self._index_deferral = deferral
        return self._index_deferral


def _looks_like_parse_error(err: Exception) -> bool:
    text = str(err)
    return any(word in text for word in ("Avro", "parse", "Cannot read", "avro"))
