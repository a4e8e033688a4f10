"""The printed result: Markdown tables with ours / PostgreSQL for every figure.

For latencies and bytes a ratio below 1 means ours is smaller (better); for
rows/s it means ours is slower. ``render`` takes the dict ``benchmarks.run``
builds (also written with ``--json``) so the docs can be regenerated from it.
"""

from __future__ import annotations

from typing import Any


def _n(value: Any, digits: int = 1) -> str:
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


def _ratio(ours: Any, theirs: Any) -> str:
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float) or not theirs:
        return "-"
    r = ours / theirs
    return f"{r:.2f}" if r < 10 else f"{r:.0f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
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
                row += [_n(o, 2), _n(t, 2), _ratio(o, t)]
        rows.append(row)
    return _table(header, rows)


def _timeline(r: dict[str, Any]) -> str:
    ours, pg = r.get("ch_timeline", {}), r.get("pg_timeline", {})
    rows = []
    for shape, o in ours.items():
        t = pg.get(shape, {})
        rows.append([shape, f"{o.get('bucket')} x {o.get('buckets')}", _n(o["p50_ms"], 2), _n(t.get("p50_ms"), 2),
                     _ratio(o["p50_ms"], t.get("p50_ms")), _n(o["p99_ms"], 2), _n(t.get("p99_ms"), 2),
                     _ratio(o["p99_ms"], t.get("p99_ms")), f"{_n(o.get('rows'))} / {_n(t.get('rows'))}"])
    return _table(["timeline", "buckets", "p50 ours ms", "PG ms", "ours/PG", "p99 ours ms", "PG ms", "ours/PG",
                   "events counted ours / PG"], rows)


def render(r: dict[str, Any]) -> str:
    """All tables of one run, Markdown."""
    m = r.get("machine", {})
    parts = [
        f"## auditlog benchmark — {r.get('date')}",
        f"`{r.get('command')}` on {m.get('cores')} cores / {m.get('memory_gib')} GiB ({m.get('cpu')}); "
        f"chDB {r.get('chdb_version', '?')}, PostgreSQL {r.get('pg_version', '-')}; "
        f"{_n(r.get('events'))} events over {r.get('workspaces')} workspaces; pages and export on the biggest "
        f"workspace ({_n(r.get('big_workspace_rows'))} events). Cold: {r.get('cold_means')}. Load average "
        f"(1/5/15 min) at the start {_load(m.get('load_average_at_start'))}, at the end "
        f"{_load(m.get('load_average_at_end'))}.",
    ]
    ingest = r.get("ingest")
    if ingest:
        rows = [[str(k), _n(v)] for k, v in (ingest.get("figures") or {}).items()]
        rows += [[f"FAILED: {f['command']} (exit {f['returncode']})", f["stderr_tail"][-200:].replace("\n", " ")]
                 for f in ingest.get("failures", [])]
        parts += [f"### Ingest (benchmarks.consumer, {_n(ingest.get('events'))} events; PostgreSQL: not measured)",
                  _table(["figure", "value"], rows)]
    if r.get("ch_pages"):
        parts += ["### Pages (EventReader.page, real query code)", _pages(r)]
    if r.get("ch_timeline"):
        parts += ["### Activity timeline (TimelineReader.timeline, warm; PG: date_bin / date_trunc GROUP BY on "
                  "its index, generate_series for empty buckets)", _timeline(r)]
    ex, pex = r.get("ch_export", {}), r.get("pg_export", {})
    rows = []
    for fmt in ("jsonl", "csv") if ex else ():
        e = ex.get(fmt, {})
        rows.append([f"ours {fmt} (EventExporter) rows/s", _n(e.get("rows_per_s")), _n(pex.get("rows_per_s")),
                     _ratio(e.get("rows_per_s"), pex.get("rows_per_s"))])
        rows.append([f"{fmt} peak RSS MB (ours: whole process incl. engine; PG: backend)",
                     _n(e.get("peak_rss_mb")), _n(pex.get("backend_peak_rss_mb")),
                     _ratio(e.get("peak_rss_mb"), pex.get("backend_peak_rss_mb"))])
        growth = (e.get("peak_rss_mb") or 0) - (e.get("rss_before_mb") or 0)
        rows.append([f"{fmt} RSS growth during export MB (ours)", _n(growth), "", ""])
        rows.append([f"{fmt} first of the two runs, rows/s (the figure above is the second)",
                     _n(e.get("first_rows_per_s")), _n(pex.get("first_rows_per_s")),
                     _ratio(e.get("first_rows_per_s"), pex.get("first_rows_per_s"))])
    if ex:
        rows.append(["rows exported", _n(ex.get("jsonl", {}).get("rows")), _n(pex.get("rows")), ""])
        parts += ["### Export of the biggest workspace (PG: COPY (SELECT ...) TO STDOUT CSV)",
                  _table(["figure", "ours", "PostgreSQL", "ours/PG"], rows)]
    cs, ps = r.get("ch_storage", {}), r.get("pg_storage", {})
    events = r.get("events") or 1
    rows = [
        ["bytes per event (all, with indexes)", _n(cs.get("total_bytes", 0) / events), _n(ps.get("total_bytes", 0)
                                                                                           / events if ps else None),
         _ratio(cs.get("total_bytes"), ps.get("total_bytes"))],
        ["total MB", _n(cs.get("total_bytes", 0) / 1e6), _n(ps.get("total_bytes", 0) / 1e6 if ps else None),
         _ratio(cs.get("total_bytes"), ps.get("total_bytes"))],
        ["of which the daily summaries, bytes per event",
         _n(sum(v["bytes"] for v in cs.get("summaries", {}).values()) / events), "", ""],
        ["PG heap / indexes MB", "", f"{_n(ps.get('table_bytes', 0) / 1e6)} / {_n(ps.get('index_bytes', 0) / 1e6)}"
         if ps else "-", ""],
        *([f"of which skip index {name}, bytes per event", _n(size / events), "", ""]
          for name, size in cs.get("skip_index_bytes", {}).items()),
    ]
    parts += ["### Storage", _table(["figure", "ours", "PostgreSQL", "ours/PG"], rows)]
    q = r.get("questions")
    if q:
        rows = [[name, _n(v["ch_ms"]), _n(v["pg_ms"]), _ratio(v["ch_ms"], v["pg_ms"]),
                 _ratio(v["pg_ms"], v["ch_ms"]) + "x", f"{v['ch_rows']} / {v['pg_rows']}"] for name, v in q.items()]
        parts += ["### Data-team SQL (best of warm runs)",
                  _table(["question", "ours ms", "PG ms", "ours/PG", "speed-up", "result rows ours / PG"], rows)]
    loads = r.get("api_load") or {}
    if loads and "requests" in loads:  # a results file from before the scenarios
        loads = {"one shared client": loads}
    if loads:
        first = next(iter(loads.values()))
        rows = [[name, _n(a.get("requests")), _n(a.get("requests_per_s")), _n(a.get("p50_ms")), _n(a.get("p99_ms")),
                 _n(a.get("errors")), _exports(a), _n(a.get("api_cpu_ms_per_request"), 1),
                 " / ".join(_n(x, 1) for x in a.get("load_average", ()))]
                for name, a in loads.items()]
        parts += [f"### Query API under load ({first.get('concurrency')} clients, mixed shapes, "
                  f"{_n(first.get('seconds'))} s, loopback; target: >= 120 requests/s, p99 <= 500 ms, "
                  "p99 <= 1 s with an export alongside)",
                  _table(["scenario", "requests", "requests/s", "p50 ms", "p99 ms", "errors",
                          "exports done / MB / errors", "API CPU ms / request", "load average"], rows)]
    load = r.get("load", {})
    pl = r.get("pg_load", {})
    parts += ["### Loading (setup, not a target)",
              _table(["step", "seconds"],
                     [["ours: generate pool + expand + OPTIMIZE FINAL",
                       f"{_n(load.get('pool_s'))} + {_n(load.get('expand_s'))} + {_n(load.get('optimize_s'))}"],
                      ["ours: refresh the daily summaries (hourly when running)", _n(load.get("summaries_refresh_s"))],
                      ["PG: COPY / indexes / VACUUM ANALYZE",
                       f"{_n(pl.get('copy_s'))} / {_n(pl.get('indexes_s'))} / {_n(pl.get('vacuum_analyze_s'))}"
                       if pl else "-"]])]
    for shape, plan in (r.get("ch_explain") or {}).items():
        parts += [f"### EXPLAIN indexes=1 — {shape} (warm p99 over 20 ms)", "```", plan, "```"]
    parts += _projection(r)
    return "\n\n".join(parts)


def _exports(a: dict[str, Any]) -> str:
    if "exports" not in a:
        return "-"
    return f"{a['exports']} / {_n(a.get('export_mb'))} / {a.get('export_errors', 0)}"


def _projection(r: dict[str, Any]) -> list[str]:
    """Before / after ``--action-projection``: storage, our warm pages, the questions."""
    w = r.get("with_projection")
    if not w:
        return []
    events = max(r.get("events", 1), 1)
    before, after = r.get("ch_storage", {}), w.get("ch_storage", {})
    pg_total = r.get("pg_storage", {}).get("total_bytes")
    rows = [["bytes per event", _n(before.get("total_bytes", 0) / events), _n(after.get("total_bytes", 0) / events)],
            ["ours/PG bytes", _ratio(before.get("total_bytes"), pg_total), _ratio(after.get("total_bytes"), pg_total)]]
    for shape, modes in w.get("ch_pages", {}).items():
        old = r.get("ch_pages", {}).get(shape, {}).get("warm", {})
        rows.append([f"page '{shape}' warm p50 / p99 ms", f"{_n(old.get('p50_ms'), 2)} / {_n(old.get('p99_ms'), 2)}",
                     f"{_n(modes['warm'].get('p50_ms'), 2)} / {_n(modes['warm'].get('p99_ms'), 2)}"])
    for name, q in w.get("questions", {}).items():
        old = r.get("questions", {}).get(name, {})
        rows.append([f"{name} ms (PG {_n(q.get('pg_ms'))})", _n(old.get("ch_ms")), _n(q.get("ch_ms"))])
    return [f"### With {w.get('file')} (built in {_n(w.get('build_s'))} s)",
            _table(["figure", "before", "after"], rows)]
