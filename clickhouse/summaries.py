"""The daily summaries of the events table (migration `create_daily_summaries`): their names, and a refresh on demand.

Each summary ``<table>_<name>`` is filled by the refreshable materialized view
``<table>_<name>_refresh`` every hour, off the ingest path, so it is up to an
hour behind the events. ``refresh_summaries`` brings them up to date now: for
a benchmark or a test that has just loaded events, or an operator after a
bulk import.
"""

from __future__ import annotations

import logging
import time

from clickhouse_connect.driver.client import Client

logger = logging.getLogger(__name__)

SUMMARIES = ("daily_actions", "daily_actors")


def summary_tables(table: str) -> list[str]:
    """The summary tables' names (in the events table's database): ``<table>_daily_actions``, ..."""
    return [f"{table}_{name}" for name in SUMMARIES]


def refresh_summaries(client: Client, database: str, table: str) -> float:
    """Refresh every summary from the events as they are now and wait for it; returns the seconds taken.

    The refresh reads the whole events table (with FINAL) and replaces the summary atomically; readers
    see the old summary until then.
    """
    t0 = time.perf_counter()
    for summary in summary_tables(table):
        view = f"{database}.{summary}_refresh"
        client.command(f"SYSTEM REFRESH VIEW {view}")
        client.command(f"SYSTEM WAIT VIEW {view}")
    seconds = time.perf_counter() - t0
    logger.info("summaries_refreshed database=%s table=%s seconds=%.1f", database, table, seconds)
    return seconds
