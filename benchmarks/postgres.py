"""A throwaway PostgreSQL server for the comparison: Debian's binaries, a temp data dir, loopback only.

``initdb`` refuses to run as root, so the server runs as the ``postgres``
system user (created by the Debian package). The data directory and the unix
socket live in a temporary folder; the server listens on a free 127.0.0.1
port and is stopped by its pid when the benchmark ends. Missing binaries are
installed with ``apt-get install -y postgresql``.

The table is what a PostgreSQL expert would build for this audit log: the
same columns, ``jsonb`` payload, a primary key on ``id``, b-trees on
``(workspace_id, occurred_at DESC, id DESC)`` and on the category / target
kind / action filters composed with it, trigram GIN indexes for actor
substring search and for free-text search (``q``) over the searched columns; loaded with COPY, then ``VACUUM ANALYZE``.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.cgroup import MemoryCgroup
from query_api.search import SEARCH_FIELDS

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE events (
    id uuid NOT NULL,
    workspace_id text NOT NULL,
    occurred_at timestamptz NOT NULL,
    action text NOT NULL,
    category text NOT NULL,
    actor_kind text NOT NULL,
    actor_id text NOT NULL,
    actor_display text NOT NULL,
    target_kind text NOT NULL,
    target_id text NOT NULL,
    target_display text NOT NULL,
    payload jsonb NOT NULL,
    ip text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    request_id text NOT NULL DEFAULT '',
    service text NOT NULL DEFAULT '',
    schema_version smallint NOT NULL
);
"""

# The free-text search's text (query_api/search.py: the same columns as ours, the payload as jsonb prints it)
# and the trigram GIN index over it: PostgreSQL's index for case-insensitive substring search, which is what
# q means. (Its tsvector full-text search answers a different question -- whole, stemmed words: `git`
# would not find `int_github`.)
PG_SEARCH_TEXT = "lower(" + " || E'\\n' || ".join(
    "payload::text" if c == "payload" else c for c in SEARCH_FIELDS) + ")"

INDEXES = (
    "ALTER TABLE events ADD PRIMARY KEY (id)",
    "CREATE INDEX events_ws_time ON events (workspace_id, occurred_at DESC, id DESC)",
    "CREATE INDEX events_ws_category_time ON events (workspace_id, category, occurred_at DESC, id DESC)",
    "CREATE INDEX events_ws_target_kind_time ON events (workspace_id, target_kind, occurred_at DESC, id DESC)",
    "CREATE INDEX events_action_time ON events (action, occurred_at)",
    "CREATE INDEX events_actor_trgm ON events USING gin (lower(actor_display) gin_trgm_ops)",
    f"CREATE INDEX events_search_trgm ON events USING gin (({PG_SEARCH_TEXT}) gin_trgm_ops)",
    # For the analytic questions (a time range across all workspaces): what an expert adds so that
    # PostgreSQL answers them from an index-only scan of the range instead of reading the heap.
    "CREATE INDEX events_time_covering ON events (occurred_at)"
    " INCLUDE (category, workspace_id, actor_id, actor_display)",
)

CONFIG = {
    "listen_addresses": "'127.0.0.1'",
    "shared_buffers": "'1GB'",
    "effective_cache_size": "'8GB'",
    "work_mem": "'64MB'",
    "maintenance_work_mem": "'1GB'",
    "max_wal_size": "'8GB'",
    "checkpoint_timeout": "'30min'",
    "wal_level": "'minimal'",
    "max_wal_senders": "0",
    "synchronous_commit": "'off'",
    "random_page_cost": "1.1",
    "timezone": "'UTC'",
    "jit": "off",
    "max_parallel_workers_per_gather": "2",
    "logging_collector": "off",
}


class PostgresError(RuntimeError):
    """The comparison server could not be installed, initialised or started."""


def find_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory, installing Debian's package if none is."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        logger.info("bench_postgres_install reason=missing")
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One server on a temporary data directory; ``start``/``restart``/``stop`` by pid."""

    def __init__(self, workdir: Path, cgroup: MemoryCgroup | None = None) -> None:
        self.bin = find_bin_dir()
        # Where the server's processes run: pg_ctl joins it before it starts, so the postmaster and every
        # backend it forks are charged there (benchmarks/crossing.py limits their memory that way).
        self.cgroup = cgroup
        self.dir = workdir / "pg"
        self.data = self.dir / "data"
        self.port = free_port()
        self._pid: int | None = None
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        def demote() -> None:
            if self.cgroup is not None:
                self.cgroup.join()
            if self._user is not None:
                os.setgid(self._user.pw_gid)
                os.setuid(self._user.pw_uid)

        done = subprocess.run(list(args), preexec_fn=demote, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, cwd=self.dir)
        if done.returncode != 0:
            raise PostgresError(f"{Path(args[0]).name} failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")

    def init(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
            self.dir.chmod(0o755)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C.UTF-8")
        with (self.data / "postgresql.conf").open("a") as conf:
            for key, value in {**CONFIG, "port": str(self.port), "unix_socket_directories": f"'{self.dir}'"}.items():
                conf.write(f"{key} = {value}\n")

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"),
                  "-w", "-t", "120", "start")
        self._pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        logger.info("bench_postgres_started pid=%d port=%d", self._pid, self.port)

    def stop(self) -> None:
        """Fast shutdown of the server we started, by its pid; waits until it is gone."""
        if self._pid is None:
            return
        try:
            os.kill(self._pid, signal.SIGINT)
        except ProcessLookupError:
            self._pid = None
            return
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                os.kill(self._pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self._pid = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                               autocommit=True)


def load(conn: psycopg.Connection[Any], csv_path: Path) -> dict[str, float]:
    """Schema, COPY of the CSV, indexes, VACUUM ANALYZE; the seconds each step took."""
    took: dict[str, float] = {}
    conn.execute(SCHEMA)
    t0 = time.perf_counter()
    with conn.cursor() as cur, cur.copy("COPY events FROM STDIN (FORMAT csv)") as copy, csv_path.open("rb") as f:
        while block := f.read(1 << 20):
            copy.write(block)
    took["copy_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for statement in INDEXES:
        conn.execute(statement)
    took["indexes_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    conn.execute("VACUUM ANALYZE events")
    took["vacuum_analyze_s"] = time.perf_counter() - t0
    return took


def storage(conn: psycopg.Connection[Any]) -> dict[str, int]:
    row = conn.execute(
        "SELECT pg_total_relation_size('events'), pg_table_size('events'), pg_indexes_size('events')"
    ).fetchone()
    assert row is not None
    return {"total_bytes": int(row[0]), "table_bytes": int(row[1]), "index_bytes": int(row[2])}
