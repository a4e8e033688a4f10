"""Timing helpers and the measurements that run the same way on both engines.

"Cold" means: the OS page cache dropped (``/proc/sys/vm/drop_caches``, when
the kernel lets us) and the engine's own caches emptied before *each* cold
sample -- for ClickHouse every ``SYSTEM DROP ... CACHE`` (marks, primary index,
uncompressed blocks, query condition, mmap, page cache), for PostgreSQL a
server restart (shared buffers are gone). If the page cache cannot be
dropped, the result says so and "cold" only means "engine caches empty".
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from clickhouse_connect.driver.client import Client

from benchmarks.postgres import PostgresServer
from benchmarks.shapes import PAGE_SIZE, QUESTIONS, Question, Shape, pg_page_sql, pg_timeline_sql
from clickhouse.summaries import summary_tables
from query_api.export import EventExporter, ExportProgress
from query_api.filters import EventFilters
from query_api.queries import EventReader
from query_api.timeline import TimelineReader, choose_bucket

logger = logging.getLogger(__name__)

CH_CACHES = ("MARK", "INDEX MARK", "PRIMARY INDEX", "UNCOMPRESSED", "INDEX UNCOMPRESSED", "QUERY CONDITION", "MMAP",
             "PAGE", "QUERY")


@dataclass
class Latency:
    """Samples in milliseconds, and the rows the last sample returned (to check both engines agree)."""

    samples: list[float] = field(default_factory=list)
    rows: int = 0

    def pct(self, p: float) -> float:
        if not self.samples:
            return float("nan")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def p99(self) -> float:
        return self.pct(99)

    def as_dict(self) -> dict[str, Any]:
        return {"p50_ms": self.p50, "p99_ms": self.p99, "n": len(self.samples), "rows": self.rows}


def drop_os_cache() -> bool:
    """Write back and drop the page cache; False where the kernel does not allow it."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return True
    except OSError:
        return False


def drop_ch_caches(client: Client) -> None:
    for cache in CH_CACHES:
        client.command(f"SYSTEM DROP {cache} CACHE")


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    t0 = time.perf_counter()
    rows = fn()
    return (time.perf_counter() - t0) * 1000, rows


def ch_pages(client: Client, reader: EventReader, shapes: list[Shape], warm: int, cold: int,
             page_cache: bool) -> dict[str, dict[str, Latency]]:
    """p50/p99 of ``EventReader.page`` for every shape, cold then warm."""
    out: dict[str, dict[str, Latency]] = {}
    for shape in shapes:
        def run(s: Shape = shape) -> int:
            return len(reader.page(s.workspace_id, s.filters, PAGE_SIZE, s.after)[0])

        cold_lat, warm_lat = Latency(), Latency()
        for _ in range(cold):
            if page_cache:
                drop_os_cache()
            drop_ch_caches(client)
            reader.densities.clear()  # cold: a first visit, no density remembered from earlier pages
            ms, cold_lat.rows = timed(run)
            cold_lat.samples.append(ms)
        for _ in range(min(3, warm)):
            run()
        for _ in range(warm):
            ms, warm_lat.rows = timed(run)
            warm_lat.samples.append(ms)
        out[shape.name] = {"cold": cold_lat, "warm": warm_lat}
        logger.info("bench_ch_page shape=%s cold_p50=%.1f warm_p50=%.2f warm_p99=%.2f rows=%d", shape.name,
                    cold_lat.p50, warm_lat.p50, warm_lat.p99, warm_lat.rows)
    return out


def _pg_page(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> int:
    return min(len(conn.execute(sql, params).fetchall()), PAGE_SIZE)


def pg_pages(server: PostgresServer, shapes: list[Shape], warm: int, cold: int,
             page_cache: bool) -> dict[str, dict[str, Latency]]:
    """The same pages on PostgreSQL; a cold sample runs on a freshly restarted server."""
    out: dict[str, dict[str, Latency]] = {}
    for shape in shapes:
        sql, params = pg_page_sql(shape)

        cold_lat, warm_lat = Latency(), Latency()
        for _ in range(cold):
            server.stop()
            if page_cache:
                drop_os_cache()
            server.start()
            with server.connect() as conn:
                ms, cold_lat.rows = timed(partial(_pg_page, conn, sql, params))
            cold_lat.samples.append(ms)
        with server.connect() as conn:
            def run(c: psycopg.Connection[Any] = conn, q: str = sql, a: dict[str, Any] = params) -> int:
                return _pg_page(c, q, a)

            for _ in range(min(3, warm)):
                run()
            for _ in range(warm):
                ms, warm_lat.rows = timed(run)
                warm_lat.samples.append(ms)
        out[shape.name] = {"cold": cold_lat, "warm": warm_lat}
        logger.info("bench_pg_page shape=%s cold_p50=%.1f warm_p50=%.2f warm_p99=%.2f rows=%d", shape.name,
                    cold_lat.p50, warm_lat.p50, warm_lat.p99, warm_lat.rows)
    return out


def _sampled(run: Callable[[], int], warm: int) -> Latency:
    """``warm`` timed runs after a few untimed ones; ``rows`` is what the last run returned."""
    lat = Latency()
    for _ in range(min(3, warm)):
        run()
    for _ in range(warm):
        ms, lat.rows = timed(run)
        lat.samples.append(ms)
    return lat


def ch_timelines(reader: TimelineReader, shapes: list[Shape], warm: int) -> dict[str, dict[str, Any]]:
    """Warm p50/p99 of ``TimelineReader.timeline`` (the endpoint's whole engine work) for every shape;
    ``rows`` is the events counted, ``buckets`` and ``bucket`` what it answered."""
    out: dict[str, dict[str, Any]] = {}
    for shape in shapes:
        def run(s: Shape = shape) -> int:
            return reader.timeline(s.workspace_id, s.filters).total

        lat = _sampled(run, warm)
        answer = reader.timeline(shape.workspace_id, shape.filters)
        out[shape.name] = {**lat.as_dict(), "bucket": answer.size.label if answer.size else None,
                           "buckets": len(answer.buckets)}
        logger.info("bench_ch_timeline shape=%s warm_p50=%.2f warm_p99=%.2f events=%d bucket=%s", shape.name,
                    lat.p50, lat.p99, lat.rows, out[shape.name]["bucket"])
    return out


def _pg_timeline(conn: psycopg.Connection[Any], shape: Shape, max_buckets: int) -> int:
    """The same answer on PostgreSQL: the range (the workspace's first/last event from its index when a
    bound is missing), the same bucket size, then the grouped count. Returns the events counted."""
    lo, hi = shape.filters.since, shape.filters.until
    if lo is None or hi is None:
        row = conn.execute("SELECT min(occurred_at), max(occurred_at) FROM events WHERE workspace_id = %s",
                           (shape.workspace_id,)).fetchone()
        if row is None or row[0] is None:
            return 0
        lo, hi = lo or row[0], hi or row[1]
    size = choose_bucket(lo, hi, max_buckets)
    sql, params = pg_timeline_sql(shape, size, size.align(lo), size.align(hi))
    return sum(int(r[1]) for r in conn.execute(sql, params).fetchall())


def pg_timelines(server: PostgresServer, shapes: list[Shape], warm: int,
                 max_buckets: int) -> dict[str, dict[str, Any]]:
    """Warm p50/p99 of the timeline on PostgreSQL (date_bin / date_trunc GROUP BY on its index)."""
    out: dict[str, dict[str, Any]] = {}
    with server.connect() as conn:
        for shape in shapes:
            lat = _sampled(partial(_pg_timeline, conn, shape, max_buckets), warm)
            out[shape.name] = lat.as_dict()
            logger.info("bench_pg_timeline shape=%s warm_p50=%.2f warm_p99=%.2f events=%d", shape.name,
                        lat.p50, lat.p99, lat.rows)
    return out


def rss_mb() -> float:
    """This process's resident set now, MB."""
    return _status_kb("self", "VmRSS") / 1024


def status_mb(key: str) -> float:
    """A /proc/self/status memory line (VmRSS, RssAnon, RssFile, VmHWM, ...), MB."""
    return _status_kb("self", key) / 1024


def peak_rss_mb() -> float:
    """This process's peak resident set since the last ``rss_reset()``, MB."""
    return _status_kb("self", "VmHWM") / 1024


def rss_reset() -> None:
    """Reset this process's peak RSS (VmHWM) so the next reading covers only what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5\n")
    except OSError:
        logger.warning("bench_rss_reset_unavailable", exc_info=True)


def _status_kb(pid: int | str, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def ch_export(exporter: EventExporter, workspace_id: str, fmt: str) -> dict[str, Any]:
    """``EventExporter.chunks`` over a whole workspace, bytes discarded; rows/s and peak RSS.

    ``growth_by_rows`` follows the process's RSS over the export (rows exported -> MB above the start,
    sampled at 10k, 20k, 40k, ... rows): a step at the start is the first use of the code and the engine's
    arenas, a slope with the rows would be memory held per row or per chunk.
    """
    base_mb = _status_kb("self", "VmRSS") / 1024
    rss_reset()
    progress = ExportProgress()  # rows as the exporter counts them: lines for JSONL/CSV, row groups' for Parquet
    growth: dict[int, float] = {}
    mark = 10_000
    t0 = time.perf_counter()
    for _ in exporter.chunks(workspace_id, EventFilters(), fmt, progress):
        if progress.rows >= mark:
            growth[progress.rows] = round(_status_kb("self", "VmRSS") / 1024 - base_mb, 1)
            mark *= 2
    seconds = time.perf_counter() - t0
    rows, size = progress.rows, progress.bytes
    growth[rows] = round(_status_kb("self", "VmRSS") / 1024 - base_mb, 1)
    return {"rows": rows, "bytes": size, "seconds": seconds, "rows_per_s": rows / seconds,
            "peak_rss_mb": _status_kb("self", "VmHWM") / 1024, "rss_before_mb": base_mb,
            "growth_by_rows": growth}


def twice(export: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """The second of two runs of an export, with the first run's rows/s kept as ``first_rows_per_s``."""
    first = export(*args)
    second = export(*args)
    return {**second, "first_rows_per_s": first["rows_per_s"]}


def pg_export(server: PostgresServer, workspace_id: str) -> dict[str, Any]:
    """PostgreSQL's fastest export of the same rows: ``COPY (SELECT ...) TO STDOUT (FORMAT csv)``."""
    with server.connect() as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert backend is not None
        rows = size = 0
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
            "COPY (SELECT * FROM events WHERE workspace_id = %s ORDER BY occurred_at DESC, id DESC)"
            " TO STDOUT (FORMAT csv, HEADER)", (workspace_id,)
        ) as copy:
            for block in copy:
                rows += bytes(block).count(b"\n")
                size += len(block)
        seconds = time.perf_counter() - t0
        peak = _status_kb(backend[0], "VmHWM") / 1024
    rows -= 1
    return {"rows": rows, "bytes": size, "seconds": seconds, "rows_per_s": rows / seconds,
            "backend_peak_rss_mb": peak}


def _best_of(fn: Callable[[], int], reps: int) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(reps):
        ms, rows = timed(fn)
        best = min(best, ms)
    return best, rows


def _ch_rows(client: Client, sql: str, parameters: dict[str, Any]) -> int:
    return len(client.query(sql, parameters=parameters).result_rows)


def _pg_rows(conn: psycopg.Connection[Any], sql: str, parameters: dict[str, Any]) -> int:
    return len(conn.execute(sql, parameters or None).fetchall())


def question_parameters(question: Question, ch_sql: str, end: datetime) -> dict[str, Any]:
    """The ``from_day`` a question's window starts on, if either engine's SQL takes one."""
    if "from_day" in ch_sql or "from_day" in question.pg_sql:
        return {"from_day": question.from_day(end.astimezone(UTC).date())}
    return {}


def ch_questions(client: Client, table: str, end: datetime, reps: int) -> dict[str, dict[str, Any]]:
    """Ours: the documented example where there is one (what an analyst runs); best of ``reps`` warm runs."""
    out: dict[str, dict[str, Any]] = {}
    for name, question in QUESTIONS.items():
        sql = question.ch_query(table)
        params = question_parameters(question, sql, end)
        ms, rows = _best_of(partial(_ch_rows, client, sql, params), reps)
        out[name] = {"ms": ms, "rows": rows, "from_day": params.get("from_day")}
    return out


def pg_questions(conn: psycopg.Connection[Any], table: str, end: datetime, reps: int) -> dict[str, dict[str, Any]]:
    """PostgreSQL's SQL for the same questions, from the same day; best of ``reps`` warm runs."""
    out: dict[str, dict[str, Any]] = {}
    for name, question in QUESTIONS.items():
        params = question_parameters(question, question.ch_query(table), end)
        ms, rows = _best_of(partial(_pg_rows, conn, question.pg_sql, params), reps)
        out[name] = {"ms": ms, "rows": rows}
    return out


def questions(client: Client, conn: psycopg.Connection[Any], table: str, end: datetime,
              reps: int) -> dict[str, dict[str, Any]]:
    """The data team's questions on both engines, and the result sizes (they must agree)."""
    ours, theirs = ch_questions(client, table, end, reps), pg_questions(conn, table, end, reps)
    out: dict[str, dict[str, Any]] = {}
    for name in QUESTIONS:
        out[name] = {"ch_ms": ours[name]["ms"], "pg_ms": theirs[name]["ms"], "ch_rows": ours[name]["rows"],
                     "pg_rows": theirs[name]["rows"], "from_day": ours[name]["from_day"]}
        logger.info("bench_question name=%s ch_ms=%.1f pg_ms=%.1f", name, out[name]["ch_ms"], out[name]["pg_ms"])
    return out


def ch_storage(client: Client, database: str, table: str) -> dict[str, Any]:
    """The events table's parts on disk, plus its daily summaries, which count as its storage."""
    rows = client.query(
        "SELECT table, sum(bytes_on_disk), sum(data_compressed_bytes), sum(data_uncompressed_bytes), count(),"
        " sum(rows) FROM system.parts WHERE active AND database = {db:String}"
        " AND (table = {t:String} OR table IN {summaries:Array(String)}) GROUP BY table",
        parameters={"db": database, "t": table, "summaries": summary_tables(table)},
    ).result_rows
    summaries = {str(r[0]): {"bytes": int(r[1]), "rows": int(r[5])} for r in rows if r[0] != table}
    skip = client.query(
        "SELECT name, sum(data_compressed_bytes) FROM system.data_skipping_indices"
        " WHERE database = {db:String} AND table = {t:String} GROUP BY name ORDER BY name",
        parameters={"db": database, "t": table},
    ).result_rows
    return {"total_bytes": sum(int(r[1]) for r in rows), "compressed_bytes": sum(int(r[2]) for r in rows),
            "uncompressed_bytes": sum(int(r[3]) for r in rows), "parts": sum(int(r[4]) for r in rows),
            "summaries": summaries, "skip_index_bytes": {str(name): int(size) for name, size in skip}}


class _Recorder:
    """Stands in for the client: passes every query on and keeps the last one the reader sent."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.sent: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def query(self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
              **kwargs: Any) -> Any:
        self.sent.append((sql, dict(parameters or {}), dict(settings or {})))
        return self._client.query(sql, parameters=parameters, settings=settings, **kwargs)


def explain(client: Client, shape: Shape, table: str) -> str:
    """``EXPLAIN indexes = 1`` of exactly the SQL ``EventReader.page`` sends for this shape (its first query)."""
    recorder = _Recorder(client)
    EventReader(recorder, table).page(shape.workspace_id, shape.filters, PAGE_SIZE,  # type: ignore[arg-type]
                                      shape.after)
    sql, params, settings = recorder.sent[0]
    rows = client.query(f"EXPLAIN indexes = 1 {sql}", parameters=params, settings=settings).result_rows
    return "\n".join(str(r[0]) for r in rows)
