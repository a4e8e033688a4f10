"""The query API under load: the real app on a loopback port, clients in another process.

chDB opens one data path per process, so the API runs in the benchmark's own
process (uvicorn in a thread, sharing the engine that holds the data) and the
load generator (``benchmarks.loadgen``) runs as a child process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn

from benchmarks.postgres import free_port
from benchmarks.shapes import PAGE_SIZE, Shape
from clickhouse.pool import SharedClient
from config.settings import Settings
from query_api.app import build_context, create_app
from query_api.context import ApiContext
from query_api.cursor import Cursor
from query_api.queries import EventReader
from query_api.security import issue_token

logger = logging.getLogger(__name__)


def _urls(shapes: list[Shape], settings: Settings, workspaces: list[str]) -> list[str]:
    """One URL per shape and workspace; the deep-cursor shape uses a signed cursor, as the page sends it."""
    ctx_codec = build_context(settings).cursors
    urls = []
    for shape in shapes:
        for ws in workspaces if shape.after is None else [shape.workspace_id]:
            base = f"/v1/workspaces/{ws}/audit/events"
            if shape.after is not None:
                cursor = ctx_codec.encode(Cursor(ws, shape.filters, PAGE_SIZE, shape.after))
                urls.append(f"{base}?{urlencode({'cursor': cursor})}")
            else:
                params = {k: v for k, v in shape.query_string().items()}
                urls.append(f"{base}?{urlencode(params)}" if params else base)
    return urls


def one_client_context(settings: Settings) -> ApiContext:
    """The API's parts as they were before the reader pools: one client for pages and exports alike."""
    context = build_context(settings)
    client = context.client
    context.pages = context.exports = SharedClient(client)
    context.reader = EventReader(context.pages, settings.events_table)
    return context


def load_scenarios(settings: Settings, shapes: list[Shape], workspaces: list[str], seconds: float,
                   concurrency: int, workdir: Path, export_workspace: str) -> dict[str, dict[str, Any]]:
    """The load test three ways, side by side: the API as built (reader pools), the same with an export
    running alongside, and one shared client for everything (before the pools)."""
    return {
        "pools": load_test(settings, shapes, workspaces, seconds, concurrency, workdir),
        "pools, export alongside": load_test(settings, shapes, workspaces, seconds, concurrency, workdir,
                                             export_workspace=export_workspace),
        "one shared client (before)": load_test(settings, shapes, workspaces, seconds, concurrency, workdir,
                                                context=one_client_context(settings)),
    }


def load_test(settings: Settings, shapes: list[Shape], workspaces: list[str], seconds: float,
              concurrency: int, workdir: Path, export_workspace: str | None = None,
              context: ApiContext | None = None) -> dict[str, Any]:
    """Requests/s, p50/p99 and errors of ``concurrency`` clients for ``seconds`` against the running API.

    ``export_workspace``: one more client exports that workspace (JSONL) again and again meanwhile.
    ``context``: the API's parts, when not built from ``settings`` (the benchmark's "one shared client").
    """
    port = free_port()
    app = create_app(context or build_context(settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, name="bench-api", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    token = issue_token(settings.api, user_id="usr_bench", email="bench@example.com",
                        roles=dict.fromkeys(workspaces, "owner"))
    urls = _urls(shapes, settings, workspaces)
    # One request per URL first: every shape answers 200 before the clock starts.
    for url in urls[: len(shapes) * 2]:
        httpx.get(base_url + url, headers={"Authorization": f"Bearer {token}"}, timeout=30).raise_for_status()
    spec = workdir / "loadgen.json"
    export_url = f"/v1/workspaces/{export_workspace}/audit/export?format=jsonl" if export_workspace else None
    spec.write_text(json.dumps({"base_url": base_url, "token": token, "urls": urls, "seconds": seconds,
                                "concurrency": concurrency, "export_url": export_url}))
    cpu0 = time.process_time()  # this process: the API's Python threads and the engine's threads alike
    try:
        out = subprocess.run([sys.executable, "-m", "benchmarks.loadgen", str(spec)], check=True,
                             capture_output=True, text=True, timeout=seconds + 120)
        result: dict[str, Any] = json.loads(out.stdout)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    # CPU per request says what the API costs whatever else runs on the machine (the export's share included).
    result["api_cpu_ms_per_request"] = (time.process_time() - cpu0) * 1000 / max(result["requests"], 1)
    result["concurrency"] = concurrency
    result["load_average"] = os.getloadavg()
    logger.info("bench_api_load requests_per_s=%.1f p99_ms=%.1f errors=%d exports=%s load=%s",
                result["requests_per_s"], result["p99_ms"] or -1, result["errors"], result.get("exports"),
                result["load_average"])
    return result
