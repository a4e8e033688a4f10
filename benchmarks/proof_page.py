"""What the Audit page's in-browser checks cost (query_api/static/proof.js), in headless Chromium.

``.venv/bin/python -m benchmarks.proof_page`` loads proof.js alone on a routed
https origin (no app, no engine: only the browser's work is timed) and reports,
each as the median of several runs:

- the checkpoint check: import the Ed25519 key, rebuild the signed text, verify;
- the leaf of one event: RFC 8785 text of a realistic event (the synthetic
  generator's) plus SHA-256, per event over a batch;
- folding an inclusion proof of a 2M-leaf log (21 hashes; the 2M-event
  workspace of the 10M benchmark) and a consistency proof of similar depth.

The network round trips (keys, checkpoint, proof) are the API's and are
measured by benchmarks/transparency.py, not here.
"""

# ruff: noqa: T201  (a benchmark prints its numbers)

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Route, sync_playwright

from producers.synthetic import EventGenerator
from transparency.checkpoint import Signer, public_pem

PROOF_JS = Path(__file__).resolve().parents[1] / "query_api" / "static" / "proof.js"
ORIGIN = "https://proof.bench"
CHROMIUM = "/usr/bin/chromium"
DEPTH_2M = 21  # ceil(log2(2_000_000))

TIMED_JS = """async ([events, cp, keys, depth, runs]) => {
  const P = AuditProof;
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const time = async (f) => { const t = performance.now(); await f(); return performance.now() - t; };
  const hash = () => crypto.getRandomValues(new Uint8Array(32));
  const out = { checkpoint_ms: [], leaf_us_per_event: [], inclusion_ms: [], consistency_ms: [] };
  for (let r = 0; r < runs; r++) {
    out.checkpoint_ms.push(await time(async () => P.verifyCheckpoint(cp, await P.importKeys(keys), cp.workspace_id)));
    const parsed = events.map((e) => JSON.parse(e));
    const ms = await time(() => Promise.all(parsed.map((e) => P.leafHash(new TextEncoder().encode(P.leafText(e))))));
    out.leaf_us_per_event.push(ms * 1000 / events.length);
    const path = Array.from({ length: depth }, hash);
    out.inclusion_ms.push(await time(() => P.rootFromPath(hash(), 2 ** depth - 3, 2 ** depth - 1, path)));
    out.consistency_ms.push(await time(() =>
      P.verifyConsistency(2 ** (depth - 1) + 5, 2 ** depth - 1, hash(), hash(), path).catch(() => null)));
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, median(v)]));
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events canonicalised and hashed per run")
    parser.add_argument("--runs", type=int, default=7, help="runs; the median is reported")
    args = parser.parse_args()

    now = datetime.now(UTC)
    events = EventGenerator(seed=5).history(["ws_bench"], args.events, now - timedelta(days=30), now)
    # Each event as the API returns it: occurred_at as text, context always an object.
    records = [e.to_record() for e in events]
    texts = [json.dumps({**r, "occurred_at": r["occurred_at"].astimezone(UTC).isoformat(),
                         "context": r["context"] or {}}) for r in records]
    signer = Signer.generate()
    cp = signer.sign("ws_bench", 2_000_000, os.urandom(32)).to_json()
    keys = [{"key_id": signer.key_id, "public_key_pem": public_pem(signer.public_key)}]

    def fulfil(route: Route) -> None:
        if route.request.url.endswith("/proof.js"):
            route.fulfill(body=PROOF_JS.read_text("utf-8"), content_type="text/javascript")
        else:
            route.fulfill(body='<!doctype html><script src="/proof.js"></script>', content_type="text/html")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route(f"{ORIGIN}/**", fulfil)
            page.goto(f"{ORIGIN}/")
            result = page.evaluate(TIMED_JS, [texts, cp, keys, DEPTH_2M, args.runs])
        finally:
            browser.close()
    print(json.dumps({"events": args.events, "runs": args.runs, "load_average": os.getloadavg(),
                      **{k: round(v, 3) for k, v in result.items()}}, indent=2))


if __name__ == "__main__":
    main()
