// The activity timeline above the rows: event counts per bucket for the page's filters
// (GET .../audit/timeline), drawn as an SVG bar chart with no library.
// Narrowing: click a bar, or drag across bars, to set since/until to those buckets (the URL follows).
// Keyboard: the chart is one tab stop; arrow keys move between bars, Shift+arrows widen the selection,
// Home/End jump to the ends, Enter narrows, Escape drops the selection. Each bar is a button whose
// label says its range and count; a text summary above says what the chart shows.
"use strict";

(() => {
  const page = window.auditPage;
  if (!page) return;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 10;      // viewBox units per bar (the SVG stretches to the chart's width)
  const HEIGHT = 64;
  const BUCKET_NAMES = { "1m": "1 minute", "5m": "5 minutes", "15m": "15 minutes", "1h": "1 hour",
                         "6h": "6 hours", "1d": "1 day", "1w": "1 week", "1mo": "1 month",
                         "3mo": "3 months", "1y": "1 year", "10y": "10 years" };
  let seq = 0;
  let answer = null;
  let focus = 0;             // the bar with the tab stop
  let anchor = null;         // the selection: anchor..focus (bar indexes), null when none
  let dragging = false;

  const number = (n) => n.toLocaleString("en-US");

  // Bucket starts are UTC; a label shows as much of the time as the bucket size makes meaningful.
  function when(iso, size) {
    const t = iso.replace(/\.\d+/, "").replace("+00:00", "Z");
    const day = t.slice(0, 10);
    if (["1m", "5m", "15m", "1h", "6h"].includes(size)) return `${day} ${t.slice(11, 16)}`;
    if (["1mo", "3mo"].includes(size)) return day.slice(0, 7);
    if (["1y", "10y"].includes(size)) return day.slice(0, 4);
    return day;
  }

  const rangeLabel = (b, size) => {
    const last = new Date(new Date(b.end).getTime() - 1).toISOString();
    const from = when(b.start, size);
    const to = when(last, size);
    return from === to ? `${from} UTC` : `${from} to ${to} UTC`;
  };

  // since/until for buckets i..j: their first moment and the last microsecond before the next one,
  // kept inside the range the answer covers (the first and last buckets may stick out of it).
  function bounds(i, j) {
    const lo = Math.min(i, j);
    const hi = Math.max(i, j);
    let since = iso(answer.buckets[lo].start);
    let until = new Date(Date.parse(answer.buckets[hi].end) - 1000).toISOString().replace(".000Z", ".999999Z");
    if (answer.since && Date.parse(since) < Date.parse(answer.since)) since = iso(answer.since);
    if (answer.until && Date.parse(until) >= Date.parse(answer.until)) until = iso(answer.until);
    return { since, until };
  }
  const iso = (text) => text.replace("+00:00", "Z");

  function narrow(i, j) {
    const range = bounds(i, j);
    anchor = null;
    page.narrow(range);
  }

  function selection() {
    if (anchor === null) return [focus, focus];
    return [Math.min(anchor, focus), Math.max(anchor, focus)];
  }

  function paintSelection() {
    const [lo, hi] = selection();
    const chosen = anchor !== null || dragging;
    for (const bar of $("timeline-chart").querySelectorAll(".bar")) {
      const i = Number(bar.dataset.index);
      bar.classList.toggle("selected", chosen && i >= lo && i <= hi);
      bar.setAttribute("tabindex", i === focus ? "0" : "-1");
    }
  }

  function moveFocus(index, extend) {
    if (!answer || !answer.buckets.length) return;
    const next = Math.max(0, Math.min(answer.buckets.length - 1, index));
    if (extend && anchor === null) anchor = focus;
    if (!extend) anchor = null;
    focus = next;
    paintSelection();
    $("timeline-chart").querySelector(`.bar[data-index="${focus}"]`)?.focus();
  }

  function draw() {
    const chart = $("timeline-chart");
    const buckets = answer.buckets;
    const max = Math.max(1, ...buckets.map((b) => b.count));
    const size = answer.bucket;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${buckets.length * WIDTH} ${HEIGHT}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "group");
    svg.setAttribute("aria-label", `Events per ${BUCKET_NAMES[size] || size}, ${buckets.length} bars`);
    svg.setAttribute("aria-describedby", "timeline-summary timeline-help");
    buckets.forEach((b, i) => {
      const g = document.createElementNS(SVG, "g");
      g.setAttribute("class", "bar");
      g.setAttribute("role", "button");
      g.setAttribute("tabindex", i === focus ? "0" : "-1");
      g.setAttribute("aria-label", `${rangeLabel(b, size)}: ${number(b.count)} event${b.count === 1 ? "" : "s"}`);
      g.dataset.index = String(i);
      const hit = document.createElementNS(SVG, "rect");
      hit.setAttribute("class", "hit");
      hit.setAttribute("x", String(i * WIDTH));
      hit.setAttribute("y", "0");
      hit.setAttribute("width", String(WIDTH));
      hit.setAttribute("height", String(HEIGHT));
      const h = b.count ? Math.max(2, (b.count / max) * (HEIGHT - 4)) : 0;
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("class", "fill");
      bar.setAttribute("x", String(i * WIDTH + 1));
      bar.setAttribute("y", String(HEIGHT - h));
      bar.setAttribute("width", String(WIDTH - 2));
      bar.setAttribute("height", String(h));
      const title = document.createElementNS(SVG, "title");
      title.textContent = g.getAttribute("aria-label");
      g.append(title, hit, bar);
      svg.append(g);
    });
    chart.replaceChildren(svg);
    $("timeline-from").textContent = `${when(buckets[0].start, size)} UTC`;
    $("timeline-to").textContent = `${when(buckets[buckets.length - 1].start, size)} UTC`;
  }

  function summary() {
    const a = answer;
    if (!a.buckets.length) return "No events yet in this workspace.";
    const busiest = a.buckets.reduce((m, b) => (b.count > m.count ? b : m), a.buckets[0]);
    const from = when(a.since, "1m");
    const to = when(a.until, "1m");
    const peak = busiest.count ? `; busiest ${rangeLabel(busiest, a.bucket)} with ${number(busiest.count)}` : "";
    return `${number(a.total)} event${a.total === 1 ? "" : "s"} from ${from} to ${to} UTC, ` +
      `in ${a.buckets.length} bars of ${BUCKET_NAMES[a.bucket] || a.bucket}${peak}.`;
  }

  function setView(name) {
    $("timeline").dataset.state = name;
    $("timeline").setAttribute("aria-busy", name === "loading" ? "true" : "false");
    $("timeline-error").hidden = name !== "error";
    $("timeline-empty").hidden = name !== "empty";
    const hasChart = name === "ready";
    $("timeline-chart").hidden = !hasChart;
    $("timeline-help").hidden = !hasChart;
    document.querySelector(".timeline-axis").hidden = !hasChart;
  }

  async function load(filters) {
    const mine = ++seq;
    const params = new URLSearchParams(Object.entries(filters));
    $("timeline").hidden = false;
    $("timeline-reset").hidden = !(filters.since || filters.until);
    setView("loading");
    let body;
    try {
      body = await page.api(`${page.eventsPath()}/timeline?${params}`);
    } catch (err) {
      if (mine !== seq) return;
      if (err.status === 401 || err.status === 403) {
        $("timeline").hidden = true;  // the list says why; the chart shows nothing of the workspace
        return;
      }
      $("timeline-error-message").textContent = `Could not load the activity timeline: ${err.message}`;
      $("timeline-summary").textContent = "";
      setView("error");
      return;
    }
    if (mine !== seq) return;  // a newer question was asked meanwhile
    answer = body;
    focus = Math.max(0, body.buckets.length - 1);
    anchor = null;
    $("timeline-summary").textContent = summary();
    if (!body.total) {
      $("timeline-chart").replaceChildren();
      setView("empty");
      return;
    }
    draw();
    setView("ready");
  }

  let last = {};
  page.on("question", (filters) => { last = filters; load(filters); });
  $("timeline-retry").addEventListener("click", () => load(last));
  $("timeline-reset").addEventListener("click", () => page.narrow({ since: null, until: null }));

  const chart = $("timeline-chart");
  const barAt = (e) => e.target.closest && e.target.closest(".bar");
  chart.addEventListener("pointerdown", (e) => {
    const bar = barAt(e);
    if (!bar || e.button !== 0) return;
    e.preventDefault();
    dragging = true;
    focus = Number(bar.dataset.index);
    anchor = focus;
    paintSelection();
  });
  chart.addEventListener("pointermove", (e) => {
    if (!dragging) return;
    // The pointer is captured by nothing: find the bar under it, wherever the drag started.
    const under = document.elementFromPoint(e.clientX, e.clientY);
    const bar = under && under.closest && under.closest(".bar");
    if (bar) { focus = Number(bar.dataset.index); paintSelection(); }
  });
  window.addEventListener("pointerup", () => {
    if (!dragging) return;
    dragging = false;
    const [lo, hi] = selection();
    narrow(lo, hi);
  });
  chart.addEventListener("keydown", (e) => {
    if (!barAt(e) || !answer) return;
    const keys = { ArrowRight: focus + 1, ArrowLeft: focus - 1, Home: 0, End: answer.buckets.length - 1 };
    if (e.key in keys) {
      e.preventDefault();
      moveFocus(keys[e.key], e.shiftKey);
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      const [lo, hi] = selection();
      narrow(lo, hi);
    } else if (e.key === "Escape" && anchor !== null) {
      e.preventDefault();
      anchor = null;
      paintSelection();
    }
  });
})();
