"""The printed result: Markdown tables with ours / PostgreSQL for every figure.

For latencies and bytes a ratio below 1 means ours is smaller (better); for
rows/s it means ours is slower. ``render`` takes the dict ``benchmarks.run``
builds (also written with ``--json``) so the docs can be regenerated from it.
"""

from __future__ import annotations

from typing import Any


def num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _load(values: Any) -> str:
    return " / ".join(f"{v:.1f}" for v in values) if values else "-"


def ratio(ours: Any, theirs: Any) -> str:
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float) or not theirs:
        return "-"
    r = ours / theirs
    return f"{r:.2f}" if r < 10 else f"{r:.0f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _pages(r: dict[str, Any]) -> str:
    ours, pg = r.get("ch_pages", {}), r.get("pg_pages", {})
    header = ["page shape (50 rows)"]
    for mode in ("warm", "cold"):
        for p in ("p50", "p99"):
            header += [f"{mode} {p} ours ms", "PG ms", "ours/PG"]
    rows = []
    for shape, modes in ours.items():
        row = [shape]
        for mode in ("warm", "cold"):
            for p in ("p50", "p99"):
                o = modes[mode][f"{p}_ms"]
                t = pg.get(shape, {}).get(mode, {}).get(f"{p}_ms")
                row += [num(o, 2), num(t, 2), ratio(o, t)]
        rows.append(row)
    return table(header, rows)


def _timeline(r: dict[str, Any]) -> str:
    ours, pg = r.get("ch_timeline", {}), r.get("pg_timeline", {})
    rows = []
    for shape, o in ours.items():
        t = pg.get(shape, {})
        rows.append([shape, f"{o.get('bucket')} x {o.get('buckets')}", num(o["p50_ms"], 2), num(t.get("p50_ms"), 2),
                     ratio(o["p50_ms"], t.get("p50_ms")), num(o["p99_ms"], 2), num(t.get("p99_ms"), 2),
                     ratio(o["p99_ms"], t.get("p99_ms")), f"{num(o.get('rows'))} / {num(t.get('rows'))}"])
    return table(["timeline", "buckets", "p50 ours ms", "PG ms", "ours/PG", "p99 ours ms", "PG ms", "ours/PG",
                   "events counted ours / PG"], rows)


def render(r: dict[str, Any]) -> str:
    """All tables of one run, Markdown."""
    m = r.get("machine", {})
    parts = [
        f"## auditlog benchmark — {r.get('date')}",
        f"`{r.get('command')}` on {m.get('cores')} cores / {m.get('memory_gib')} GiB ({m.get('cpu')}); "
        f"chDB {r.get('chdb_version', '?')}, PostgreSQL {r.get('pg_version', '-')}; "
        f"{num(r.get('events'))} events over {r.get('workspaces')} workspaces; pages and export on the biggest "
        f"workspace ({num(r.get('big_workspace_rows'))} events). Cold: {r.get('cold_means')}. Load average "
        f"(1/5/15 min) at the start {_load(m.get('load_average_at_start'))}, at the end "
        f"{_load(m.get('load_average_at_end'))}.",
    ]
    ingest = r.get("ingest")
    if ingest:
        rows = [[str(k), num(v)] for k, v in (ingest.get("figures") or {}).items()]
        rows += [[f"FAILED: {f['command']} (exit {f['returncode']})", f["stderr_tail"][-200:].replace("\n", " ")]
                 for f in ingest.get("failures", [])]
        parts += [f"### Ingest (benchmarks.consumer, {num(ingest.get('events'))} events; PostgreSQL: not measured)",
                  table(["figure", "value"], rows)]
    if r.get("ch_pages"):
        parts += ["### Pages (EventReader.page, real query code)", _pages(r)]
    if r.get("ch_timeline"):
        parts += ["### Activity timeline (TimelineReader.timeline, warm; PG: date_bin / date_trunc GROUP BY on "
                  "its index, generate_series for empty buckets)", _timeline(r)]
    ex, pex = r.get("ch_export", {}), r.get("pg_export", {})
    rows = []
    for fmt in ("jsonl", "csv") if ex else ():
        e = ex.get(fmt, {})
        rows.append([f"ours {fmt} (EventExporter) rows/s", num(e.get("rows_per_s")), num(pex.get("rows_per_s")),
                     ratio(e.get("rows_per_s"), pex.get("rows_per_s"))])
        rows.append([f"{fmt} peak RSS MB (ours: whole process incl. engine; PG: backend)",
                     num(e.get("peak_rss_mb")), num(pex.get("backend_peak_rss_mb")),
                     ratio(e.get("peak_rss_mb"), pex.get("backend_peak_rss_mb"))])
        growth = (e.get("peak_rss_mb") or 0) - (e.get("rss_before_mb") or 0)
        rows.append([f"{fmt} RSS growth during export MB (ours)", num(growth), "", ""])
        rows.append([f"{fmt} first of the two runs, rows/s (the figure above is the second)",
                     num(e.get("first_rows_per_s")), num(pex.get("first_rows_per_s")),
                     ratio(e.get("first_rows_per_s"), pex.get("first_rows_per_s"))])
    if ex:
        rows.append(["rows exported", num(ex.get("jsonl", {}).get("rows")), num(pex.get("rows")), ""])
        parts += ["### Export of the biggest workspace (PG: COPY (SELECT ...) TO STDOUT CSV)",
                  table(["figure", "ours", "PostgreSQL", "ours/PG"], rows)]
    cs, ps = r.get("ch_storage", {}), r.get("pg_storage", {})
    events = r.get("events") or 1
    rows = [
        ["bytes per event (all, with indexes)", num(cs.get("total_bytes", 0) / events), num(ps.get("total_bytes", 0)
                                                                                           / events if ps else None),
         ratio(cs.get("total_bytes"), ps.get("total_bytes"))],
        ["total MB", num(cs.get("total_bytes", 0) / 1e6), num(ps.get("total_bytes", 0) / 1e6 if ps else None),
         ratio(cs.get("total_bytes"), ps.get("total_bytes"))],
        ["of which the daily summaries, bytes per event",
         num(sum(v["bytes"] for v in cs.get("summaries", {}).values()) / events), "", ""],
        ["PG heap / indexes MB", "", f"{num(ps.get('table_bytes', 0) / 1e6)} / {num(ps.get('index_bytes', 0) / 1e6)}"
         if ps else "-", ""],
        *([f"of which skip index {name}, bytes per event", num(size / events), "", ""]
          for name, size in cs.get("skip_index_bytes", {}).items()),
    ]
    parts += ["### Storage", table(["figure", "ours", "PostgreSQL", "ours/PG"], rows)]
    q = r.get("questions")
    if q:
        rows = [[name, num(v["ch_ms"]), num(v["pg_ms"]), ratio(v["ch_ms"], v["pg_ms"]),
                 ratio(v["pg_ms"], v["ch_ms"]) + "x", f"{v['ch_rows']} / {v['pg_rows']}"] for name, v in q.items()]
        parts += ["### Data-team SQL (best of warm runs)",
                  table(["question", "ours ms", "PG ms", "ours/PG", "speed-up", "result rows ours / PG"], rows)]
    loads = r.get("api_load") or {}
    if loads and "requests" in loads:  # a results file from before the scenarios
        loads = {"one shared client": loads}
    if loads:
        first = next(iter(loads.values()))
        rows = [[name, num(a.get("requests")), num(a.get("requests_per_s")), num(a.get("p50_ms")), num(a.get("p99_ms")),
                 num(a.get("errors")), _exports(a), num(a.get("api_cpu_ms_per_request"), 1),
                 " / ".join(num(x, 1) for x in a.get("load_average", ()))]
                for name, a in loads.items()]
        parts += [f"### Query API under load ({first.get('concurrency')} clients, mixed shapes, "
                  f"{num(first.get('seconds'))} s, loopback; target: >= 120 requests/s, p99 <= 500 ms, "
                  "p99 <= 1 s with an export alongside)",
                  table(["scenario", "requests", "requests/s", "p50 ms", "p99 ms", "errors",
                          "exports done / MB / errors", "API CPU ms / request", "load average"], rows)]
    load = r.get("load", {})
    pl = r.get("pg_load", {})
    parts += ["### Loading (setup, not a target)",
              table(["step", "seconds"],
                     [["ours: generate pool + expand + OPTIMIZE FINAL",
                       f"{num(load.get('pool_s'))} + {num(load.get('expand_s'))} + {num(load.get('optimize_s'))}"],
                      ["ours: refresh the daily summaries (hourly when running)", num(load.get("summaries_refresh_s"))],
                      ["PG: COPY / indexes / VACUUM ANALYZE",
                       f"{num(pl.get('copy_s'))} / {num(pl.get('indexes_s'))} / {num(pl.get('vacuum_analyze_s'))}"
                       if pl else "-"]])]
    for shape, plan in (r.get("ch_explain") or {}).items():
        parts += [f"### EXPLAIN indexes=1 — {shape} (warm p99 over 20 ms)", "```", plan, "```"]
    parts += _projection(r)
    return "\n\n".join(parts)


def _exports(a: dict[str, Any]) -> str:
    if "exports" not in a:
        return "-"
    return f"{a['exports']} / {num(a.get('export_mb'))} / {a.get('export_errors', 0)}"


def _projection(r: dict[str, Any]) -> list[str]:
    """Before / after ``--action-projection``: storage, our warm pages, the questions."""
    w = r.get("with_projection")
    if not w:
        return []
    events = max(r.get("events", 1), 1)
    before, after = r.get("ch_storage", {}), w.get("ch_storage", {})
    pg_total = r.get("pg_storage", {}).get("total_bytes")
    rows = [["bytes per event", num(before.get("total_bytes", 0) / events), num(after.get("total_bytes", 0) / events)],
            ["ours/PG bytes", ratio(before.get("total_bytes"), pg_total), ratio(after.get("total_bytes"), pg_total)]]
    for shape, modes in w.get("ch_pages", {}).items():
        old = r.get("ch_pages", {}).get(shape, {}).get("warm", {})
        rows.append([f"page '{shape}' warm p50 / p99 ms", f"{num(old.get('p50_ms'), 2)} / {num(old.get('p99_ms'), 2)}",
                     f"{num(modes['warm'].get('p50_ms'), 2)} / {num(modes['warm'].get('p99_ms'), 2)}"])
    for name, q in w.get("questions", {}).items():
        old = r.get("questions", {}).get(name, {})
        rows.append([f"{name} ms (PG {num(q.get('pg_ms'))})", num(old.get("ch_ms")), num(q.get("ch_ms"))])
    return [f"### With {w.get('file')} (built in {num(w.get('build_s'))} s)",
            table(["figure", "before", "after"], rows)]


# Leaves that say how a figure was taken rather than what it is.
_NOT_FIGURES = {"n", "concurrency", "date", "command", "machine", "load_average_at_start"}


def figures(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every number of a run, by its path in the results (``ch_pages/rare actor/warm/p99_ms``)."""
    out: dict[str, float] = {}
    for key, value in result.items():
        if str(key) in _NOT_FIGURES:
            continue
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(figures(value, path))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[path] = float(value)
    return out


def comparison(result: dict[str, Any], reference: dict[str, Any]) -> str:
    """Every figure of this run next to the same figure of a reference run (the ones both have)."""
    now, then = figures(result), figures(reference)
    rows = [[path, num(then[path]), num(value), ratio(value, then[path])]
            for path, value in now.items() if path in then]
    missing = sorted(set(then) - set(now))
    ref = reference.get("command", "?")
    parts = [f"## Next to the reference run ({reference.get('date')}, `{ref}`)",
             "now/then below 1: smaller now (better for times and bytes, worse for rates).",
             table(["figure", "then", "now", "now/then"], rows)]
    if missing:
        parts.append(f"Not measured in this run ({len(missing)}): " + ", ".join(missing[:20])
                     + (" ..." if len(missing) > 20 else ""))
    return "\n\n".join(parts)
