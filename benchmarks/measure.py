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
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from clickhouse_connect.driver.client import Client

from benchmarks.postgres import PostgresServer
from benchmarks.shapes import PAGE_SIZE, QUESTIONS, Shape, pg_page_sql
from query_api.export import EventExporter, ExportProgress
from query_api.filters import EventFilters
from query_api.queries import EventReader

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


def _rss_reset() -> None:
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
    """``EventExporter.chunks`` over a whole workspace, bytes discarded; rows/s and peak RSS."""
    base_mb = _status_kb("self", "VmRSS") / 1024
    _rss_reset()
    progress = ExportProgress()  # rows as the exporter counts them: lines for JSONL/CSV, row groups' for Parquet
    t0 = time.perf_counter()
    for _ in exporter.chunks(workspace_id, EventFilters(), fmt, progress):
        pass
    seconds = time.perf_counter() - t0
    rows, size = progress.rows, progress.bytes
    return {"rows": rows, "bytes": size, "seconds": seconds, "rows_per_s": rows / seconds,
            "peak_rss_mb": _status_kb("self", "VmHWM") / 1024, "rss_before_mb": base_mb}


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


def _ch_rows(client: Client, sql: str) -> int:
    return len(client.query(sql).result_rows)


def _pg_rows(conn: psycopg.Connection[Any], sql: str) -> int:
    return len(conn.execute(sql).fetchall())


def questions(client: Client, conn: psycopg.Connection[Any], table: str, end_iso: str,
              reps: int) -> dict[str, dict[str, Any]]:
    """The data team's questions: best of ``reps`` warm runs on each engine, and the result sizes."""
    out: dict[str, dict[str, Any]] = {}
    for name, (ch_sql, pg_sql) in QUESTIONS.items():
        ch_q = ch_sql.format(table=table, end=end_iso)
        pg_q = pg_sql.format(end=end_iso)
        ch_ms, ch_rows = _best_of(partial(_ch_rows, client, ch_q), reps)
        pg_ms, pg_rows = _best_of(partial(_pg_rows, conn, pg_q), reps)
        out[name] = {"ch_ms": ch_ms, "pg_ms": pg_ms, "ch_rows": ch_rows, "pg_rows": pg_rows}
        logger.info("bench_question name=%s ch_ms=%.1f pg_ms=%.1f", name, ch_ms, pg_ms)
    return out


def ch_storage(client: Client, database: str, table: str) -> dict[str, Any]:
    """The table's bytes on disk (all parts) and, within them, each skip index's compressed bytes."""
    row = client.query(
        "SELECT sum(bytes_on_disk), sum(data_compressed_bytes), sum(data_uncompressed_bytes), count()"
        " FROM system.parts WHERE active AND database = {db:String} AND table = {t:String}",
        parameters={"db": database, "t": table},
    ).result_rows[0]
    skip = client.query(
        "SELECT name, sum(data_compressed_bytes) FROM system.data_skipping_indices"
        " WHERE database = {db:String} AND table = {t:String} GROUP BY name ORDER BY name",
        parameters={"db": database, "t": table},
    ).result_rows
    return {"total_bytes": int(row[0]), "compressed_bytes": int(row[1]), "uncompressed_bytes": int(row[2]),
            "parts": int(row[3]), "skip_index_bytes": {str(name): int(size) for name, size in skip}}


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
