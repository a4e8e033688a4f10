"""One way to reach ClickHouse: clickhouse-connect, whatever the DSN.

``chdb:///path`` opens the in-process engine (one data path per process, so
the client is shared), ``http(s)://user:pass@host:port`` a server. Nothing
else in the product branches on which one it is.
"""

from __future__ import annotations

import threading

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from urllib3 import PoolManager

_clients: dict[str, Client] = {}
_lock = threading.Lock()


def get_client(dsn: str, uncompressed_cache_mb: int = 0) -> Client:
    """The process-wide client for ``dsn`` (created on first use).

    ``uncompressed_cache_mb`` sizes the embedded engine's cache of decompressed
    blocks; the engine starts once per process, so the first call decides it.
    A server ignores it (its cache is server configuration).
    """
    with _lock:
        client = _clients.get(dsn)
        if client is None:
            client = open_client(dsn, uncompressed_cache_mb)
            _clients[dsn] = client
        return client


def open_client(dsn: str, uncompressed_cache_mb: int = 0, http_pool: PoolManager | None = None) -> Client:
    """A new client of its own for ``dsn``: on chDB its own handle (and lock) on the process's one engine.

    For the reader pools (``clickhouse/pool.py``). ``http_pool`` is the urllib3 pool a
    server's clients share (None: clickhouse-connect's default one); chDB ignores it.
    """
    if is_embedded(dsn):
        _ensure_chdb_dir(dsn)
        return clickhouse_connect.get_client(dsn=dsn, chdb_options=_chdb_options(uncompressed_cache_mb))
    # No HTTP session: a session serialises queries, and the API queries from many threads at once.
    return clickhouse_connect.get_client(dsn=dsn, autogenerate_session_id=False, pool_mgr=http_pool)


def http_pool(connections: int) -> PoolManager:
    """One urllib3 pool for a server's reader clients, keeping ``connections`` connections open."""
    from clickhouse_connect.driver.httputil import get_pool_manager

    pool: PoolManager = get_pool_manager(maxsize=connections)
    return pool


def _chdb_options(uncompressed_cache_mb: int) -> dict[str, str]:
    return {"uncompressed_cache_size": str(uncompressed_cache_mb * 1024 * 1024)}


def engine_connection_string(dsn: str, uncompressed_cache_mb: int = 0) -> str:
    """chDB's connection string for the embedded engine ``dsn`` names, as the product's client opens it.

    For code that needs its own handles on the process's one engine (the SQL gateway's
    read-only handles): the same path and options as ``get_client``.
    """
    from clickhouse_connect.driver._chdbclient import build_connection_string

    if not is_embedded(dsn):
        raise ValueError(f"not an embedded engine DSN: {dsn.split('://', 1)[0]}://...")
    return build_connection_string(dsn.removeprefix("chdb://"), _chdb_options(uncompressed_cache_mb))


def _ensure_chdb_dir(dsn: str) -> None:
    from pathlib import Path

    path = dsn.removeprefix("chdb://")
    if path and path not in {"", ":memory:"}:
        Path(path).mkdir(parents=True, exist_ok=True)


def is_embedded(dsn: str) -> bool:
    return dsn.startswith("chdb://")
