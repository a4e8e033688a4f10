"""Load generator for the query API: N concurrent clients, mixed page shapes, bounded in time.

Runs in its own process (``python -m benchmarks.loadgen spec.json``) so that
the clients do not share the API server's interpreter. Loopback only. Prints
one JSON object: requests, errors, requests/s, p50/p99 in milliseconds.

With ``export_url`` in the spec, one more client streams that export over and
over (reading and dropping the bytes) while the pages run; the page figures
leave it out, and ``exports`` / ``export_mb`` / ``export_errors`` report it.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx


async def _client(http: httpx.AsyncClient, urls: list[str], deadline: float, seed: int,
                  latencies: list[float], errors: list[str]) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        url = rng.choice(urls)
        t0 = time.perf_counter()
        try:
            response = await http.get(url)
            if response.status_code != 200:
                errors.append(f"{response.status_code} {url}")
        except httpx.HTTPError as err:
            errors.append(f"{type(err).__name__} {url}")
        latencies.append((time.perf_counter() - t0) * 1000)


async def _exporter(http: httpx.AsyncClient, url: str, deadline: float, done: dict[str, int]) -> None:
    """Streams the export at ``url`` again and again until the deadline (an export cut by it is not counted)."""
    while time.monotonic() < deadline:
        received = 0
        try:
            async with http.stream("GET", url, timeout=600.0) as response:
                if response.status_code != 200:
                    done["errors"] += 1
                    continue
                async for piece in response.aiter_bytes():
                    received += len(piece)
                    if time.monotonic() >= deadline:
                        break
                else:
                    done["exports"] += 1
        except httpx.HTTPError:
            done["errors"] += 1
        done["bytes"] += received


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    export = {"exports": 0, "bytes": 0, "errors": 0}
    connections = spec["concurrency"] + 1
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {spec['token']}"}
    async with httpx.AsyncClient(base_url=spec["base_url"], headers=headers, limits=limits,
                                 timeout=30.0) as http:
        t0 = time.monotonic()
        deadline = t0 + spec["seconds"]
        tasks = [_client(http, spec["urls"], deadline, i, latencies, errors) for i in range(spec["concurrency"])]
        if spec.get("export_url"):
            tasks.append(_exporter(http, spec["export_url"], deadline, export))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - t0
    ordered = sorted(latencies)
    extra: dict[str, Any] = {}
    if spec.get("export_url"):
        extra = {"exports": export["exports"], "export_mb": export["bytes"] / 1e6,
                 "export_errors": export["errors"]}
    return {
        **extra,
        "requests": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:5],
        "seconds": elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) if ordered else None,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else None,
    }


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(asyncio.run(run(spec))))  # noqa: T201 - the result is this program's output


if __name__ == "__main__":
    main()
