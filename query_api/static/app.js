// The Audit page: reads only through the query API's JSON endpoints.
// State lives in the URL (workspace + filters), so a filtered view can be bookmarked
// and shared; the bearer token lives in this tab's sessionStorage, never in a URL.
"use strict";

(() => {
  const TOKEN_KEY = "auditlog.token";
  const FILTERS = ["category", "actor", "target_kind", "action", "since", "until", "q"];  // q: search.js
  const PAGE_SIZE = 50;
  const EXPORT_FORMATS = ["jsonl", "csv", "parquet"]; // the export links in index.html: #export-<format>

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  };

  const state = {
    workspace: "",
    filters: {},
    cursors: [],       // cursors of the pages before the current one (empty on the newest page)
    cursor: null,      // the cursor of the current page (null: newest)
    nextCursor: null,
    catalog: null,
    demo: null,
    seq: 0,
    asked: null,       // the filters of the last question asked (a query string): one request per change
    highlights: [],    // the terms of q the last page's rows hold (search.js marks them)
  };

  // Hooks for the page's other parts (timeline.js, actions.js), which load after this file:
  // "question" fires with the filters whenever they change (not when paging), "catalog" once it loaded,
  // "read" callbacks add their field's value when the form is read.
  const hooks = { question: [], catalog: [], read: [] };
  const emit = (name, ...args) => { for (const fn of hooks[name]) fn(...args); };

  // ---- token -------------------------------------------------------------------------------------
  const getToken = () => sessionStorage.getItem(TOKEN_KEY);
  const setToken = (t) => sessionStorage.setItem(TOKEN_KEY, t);
  const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

  function claims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    } catch (_err) {
      return {};
    }
  }

  // ---- URL ---------------------------------------------------------------------------------------
  function readUrl() {
    const params = new URLSearchParams(location.search);
    state.workspace = params.get("workspace") || "";
    state.filters = {};
    for (const key of FILTERS) {
      const value = (params.get(key) || "").trim();
      if (value && !(key === "category" && value === "all")) state.filters[key] = value;
    }
  }

  function filterQuery(extra = {}) {
    const params = new URLSearchParams();
    for (const key of FILTERS) if (state.filters[key]) params.set(key, state.filters[key]);
    for (const [k, v] of Object.entries(extra)) if (v !== null && v !== undefined) params.set(k, v);
    return params;
  }

  function writeUrl(push) {
    const params = new URLSearchParams({ workspace: state.workspace });
    for (const [k, v] of filterQuery()) params.set(k, v);
    const url = `${location.pathname}?${params}`;
    if (url !== location.pathname + location.search) history[push ? "pushState" : "replaceState"](null, "", url);
  }

  // ---- API ---------------------------------------------------------------------------------------
  class ApiFailure extends Error {
    constructor(status, body) {
      super((body && body.message) || `The server answered ${status}.`);
      this.status = status;
      this.code = body && body.code;
    }
  }

  async function api(path, { method = "GET", auth = true } = {}) {
    const headers = { Accept: "application/json" };
    if (auth) headers.Authorization = `Bearer ${getToken()}`;
    let response;
    try {
      response = await fetch(path, { method, headers });
    } catch (_err) {
      throw new ApiFailure(0, { message: "The audit log service cannot be reached. Check your connection." });
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_err) {
      body = null;
    }
    if (!response.ok) throw new ApiFailure(response.status, body);
    return body;
  }

  const eventsPath = () => `/v1/workspaces/${encodeURIComponent(state.workspace)}/audit`;

  // ---- views -------------------------------------------------------------------------------------
  function show(view) {
    for (const id of ["signin", "noaccess", "audit"]) $(id).hidden = id !== view;
    const token = getToken();
    $("session").hidden = !token;
    if (token) {
      const c = claims(token);
      const role = c.roles && state.workspace ? c.roles[state.workspace] : null;
      $("session-who").textContent = `${c.email || c.sub || "signed in"}${role ? ` · ${role}` : ""}`;
    }
    $("workspace-label").textContent = state.workspace;
    document.dispatchEvent(new CustomEvent("audit:view", { detail: { view, workspace: state.workspace } }));
  }

  function showSignIn(reason) {
    $("signin-reason").textContent = reason || "";
    $("signin-reason").hidden = !reason;
    $("workspace-input").value = state.workspace || (state.demo ? state.demo.workspace_id : "");
    const demo = state.demo;
    $("demo-signin").hidden = !demo;
    if (demo) {
      $("demo-ws").textContent = demo.workspace_id;
      const buttons = $("demo-buttons");
      buttons.replaceChildren(
        ...demo.accounts.map((a) =>
          el("button", { type: "button", class: a.role === "member" ? "secondary" : "primary",
                         "data-role": a.role, text: `${a.role[0].toUpperCase()}${a.role.slice(1)} · ${a.email}` })),
      );
    }
    show("signin");
  }

  function setState(name) {
    $("audit").dataset.state = name;
    $("table").setAttribute("aria-busy", name === "loading" ? "true" : "false");
    $("state-loading").hidden = name !== "loading" || $("rows").childElementCount > 0;
    $("state-empty").hidden = name !== "empty";
    $("state-error").hidden = name !== "error";
  }

  function renderChips() {
    const active = state.filters.category || "all";
    const chips = [{ key: "all", label: "All" }, ...state.catalog.categories];
    $("chips").replaceChildren(
      ...chips.map((c) =>
        el("button", { type: "button", class: "chip", "data-category": c.key,
                       "aria-pressed": String(c.key === active), text: c.label })),
    );
  }

  // The date inputs show a day; a range narrowed on the timeline is finer (a datetime). The input shows
  // its day, and reading the form keeps the finer value while the input still shows that day.
  const dayOf = (value) => (value || "").slice(0, 10);
  const keepFiner = (key, shown) => (shown && shown === dayOf(state.filters[key]) ? state.filters[key] : shown);

  function renderFilterForm() {
    $("f-actor").value = state.filters.actor || "";
    $("f-target").value = state.filters.target_kind || "";
    $("f-since").value = dayOf(state.filters.since);
    $("f-until").value = dayOf(state.filters.until);
    $("f-q").value = state.filters.q || "";
    for (const format of EXPORT_FORMATS) {
      $(`export-${format}`).href = `${eventsPath()}/export?${filterQuery({ format })}`;
    }
  }

  const targetLabel = (key) => {
    const kind = state.catalog && state.catalog.target_kinds.find((k) => k.key === key);
    return kind ? kind.label : key;
  };

  function formatTime(iso) {
    const at = new Date(iso);
    return {
      local: at.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric",
                                            hour: "2-digit", minute: "2-digit", second: "2-digit" }),
      utc: `${at.toISOString().replace("T", " ").replace(/\.\d+Z$/, "")} UTC`,
    };
  }

  function renderValue(value) {
    if (value === null) return el("span", { class: "null", text: "null" });
    if (Array.isArray(value)) {
      if (!value.length) return el("span", { class: "null", text: "[ ]" });
      return el("span", {}, value.map((v) => el("span", { class: "scope", text: String(v) })));
    }
    return document.createTextNode(typeof value === "string" ? value : JSON.stringify(value));
  }

  function renderSide(name, values, other, keys) {
    const side = el("section", { class: `side ${name}`, "aria-label": name }, el("h3", { text: name }));
    if (!values) {
      side.append(el("div", { class: "none", text: name === "before" ? "nothing (created)" : "nothing (removed)" }));
      return side;
    }
    const list = el("dl");
    for (const key of keys) {
      if (!(key in values)) continue;
      const changed = !other || JSON.stringify(values[key]) !== JSON.stringify(other[key]);
      const cls = changed ? "changed" : null;
      list.append(el("dt", { class: cls, "data-key": key, text: key }),
                  el("dd", { class: cls, "data-key": key }, renderValue(values[key])));
    }
    if (!list.childElementCount) side.append(el("div", { class: "none", text: "no fields" }));
    else side.append(list);
    return side;
  }

  function renderDetail(event) {
    const before = event.payload.before;
    const after = event.payload.after;
    const keys = [...new Set([...Object.keys(before || {}), ...Object.keys(after || {})])].sort();
    const ctx = event.context || {};
    const id = (label, value, field) =>
      (value ? el("span", {}, `${label} `, el("code", { text: value, "data-search": field })) : null);
    return el(
      "div", { class: "detail", role: "region", "aria-label": `Payload of ${event.action}` },
      el("div", { class: "ids" },
         id("event", event.id), id(`actor ${event.actor.kind}`, event.actor.id, "actor_id"),
         id(`target ${event.target.kind}`, event.target.id, "target_id"),
         id("request", ctx.request_id, "request_id"), id("ip", ctx.ip, "ip"), id("service", ctx.service)),
      el("div", { class: "diff", "data-search": "payload" },
         renderSide("before", before, after, keys), renderSide("after", after, before, keys)),
    );
  }

  function renderRow(event) {
    const time = formatTime(event.occurred_at);
    const row = el(
      "div", { class: "tr", role: "row", tabindex: "0", "aria-expanded": "false" },
      el("span", { class: "cell c-actor", role: "cell", title: event.actor.display },
         el("span", { "data-search": "actor_display", text: event.actor.display }),
         el("span", { class: "sub", text: event.actor.kind })),
      el("span", { class: "cell c-action action", role: "cell", "data-search": "action", text: event.action }),
      el("span", { class: "cell c-target", role: "cell", title: `${event.target.display} (${event.target.id})` },
         el("span", { class: "kind", text: targetLabel(event.target.kind) }),
         el("span", { "data-search": "target_display", text: event.target.display })),
      el("span", { class: "cell c-time", role: "cell" },
         el("time", { datetime: event.occurred_at, title: time.utc, text: time.local })),
    );
    const wrapper = el("div", { class: "event", "data-id": event.id }, row);
    wrapper._event = event;
    return wrapper;
  }

  function toggle(wrapper) {
    const row = wrapper.firstElementChild;
    const open = row.getAttribute("aria-expanded") !== "true";
    row.setAttribute("aria-expanded", String(open));
    wrapper.classList.toggle("open", open);
    const existing = wrapper.querySelector(".detail");
    if (existing) existing.remove();
    if (open) {
      const detail = AuditSearch.mark(renderDetail(wrapper._event), state.highlights);
      wrapper.append(detail);
      document.dispatchEvent(new CustomEvent("audit:expanded", { detail: { event: wrapper._event, element: detail } }));
    }
  }

  // ---- loading -----------------------------------------------------------------------------------
  async function load() {
    const seq = ++state.seq;
    renderFilterForm();
    setState("loading");
    $("older").hidden = true;
    $("summary").textContent = "";
    const params = filterQuery({ limit: PAGE_SIZE, cursor: state.cursor });
    let page;
    try {
      page = await api(`${eventsPath()}/events?${params}`);
    } catch (err) {
      if (seq !== state.seq) return;
      handleFailure(err);
      return;
    }
    if (seq !== state.seq) return;  // a newer question was asked meanwhile
    show("audit");
    state.highlights = page.highlights || [];
    $("rows").replaceChildren(...page.data.map((e) => AuditSearch.mark(renderRow(e), state.highlights)));
    state.nextCursor = page.next_cursor;
    $("older").hidden = !page.next_cursor;
    $("newest").hidden = state.cursors.length === 0;
    const pageNo = state.cursors.length + 1;  // one cursor kept for each page before this one
    $("page-label").textContent = page.data.length ? `Page ${pageNo}` : "";
    if (page.data.length) {
      const first = formatTime(page.data[0].occurred_at).local;
      const last = formatTime(page.data[page.data.length - 1].occurred_at).local;
      $("summary").textContent = `${page.data.length} actions, ${first} → ${last}` +
        (page.next_cursor ? " · older actions on the next page" : "");
    }
    setState(page.data.length ? "ready" : "empty");
  }

  function handleFailure(err) {
    if (err.status === 401) {
      clearToken();
      showSignIn(err.message);
    } else if (err.status === 403) {
      // Never a partial view: rows, filters and exports all go away.
      $("rows").replaceChildren();
      $("noaccess-message").textContent = err.message;
      show("noaccess");
    } else {
      show("audit");
      $("rows").replaceChildren();
      $("error-message").textContent = err.message;
      setState("error");
    }
  }

  // Asks the question in state.filters, unless it is the one already asked: a date input's change
  // followed by Apply, or a debounced keystroke followed by Enter, is one question and one request.
  function ask(push = true) {
    const question = filterQuery().toString();
    if (question === state.asked) return;
    state.asked = question;
    state.cursors = [];
    state.cursor = null;
    writeUrl(push);
    renderChips();
    load();
    emit("question", { ...state.filters });
  }

  // ---- wiring ------------------------------------------------------------------------------------
  function readForm() {
    const value = (id) => $(id).value.trim();
    const next = { category: state.filters.category, actor: value("f-actor"), target_kind: value("f-target"),
                   action: state.filters.action, since: keepFiner("since", value("f-since")),
                   until: keepFiner("until", value("f-until")), q: value("f-q") };
    for (const read of hooks.read) Object.assign(next, read());
    state.filters = Object.fromEntries(Object.entries(next).filter(([, v]) => v));
  }

  function wire() {
    $("chips").addEventListener("click", (e) => {
      const chip = e.target.closest(".chip");
      if (!chip) return;
      readForm();
      if (chip.dataset.category === "all") delete state.filters.category;
      else state.filters.category = chip.dataset.category;
      ask();
    });
    let typing = null;
    $("filters").addEventListener("submit", (e) => {
      e.preventDefault();
      clearTimeout(typing);
      readForm();
      ask();
    });
    $("f-actor").addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => { readForm(); ask(false); }, 350);
    });
    // A change asks at once; Apply right after finds the same question and asks nothing (ask()).
    for (const id of ["f-target", "f-since", "f-until"]) {
      $(id).addEventListener("change", () => { clearTimeout(typing); readForm(); ask(); });
    }
    $("clear-filters").addEventListener("click", () => { state.filters = {}; ask(); });
    AuditSearch.wire($("search-form"), $("f-q"), (push) => { readForm(); ask(push); });
    $("retry").addEventListener("click", () => load());
    $("older").addEventListener("click", () => {
      state.cursors.push(state.cursor);
      state.cursor = state.nextCursor;
      load().then(() => $("rows").firstElementChild?.firstElementChild.focus({ preventScroll: true }));
      window.scrollTo({ top: 0 });
    });
    $("newest").addEventListener("click", () => { state.cursors = []; state.cursor = null; load(); });

    $("rows").addEventListener("click", (e) => {
      const row = e.target.closest(".event > .tr");
      if (row) toggle(row.parentElement);
    });
    $("rows").addEventListener("keydown", (e) => {
      const row = e.target.closest(".event > .tr");
      if (!row) return;
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        toggle(row.parentElement);
      } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const sibling = e.key === "ArrowDown" ? row.parentElement.nextElementSibling
                                              : row.parentElement.previousElementSibling;
        sibling?.firstElementChild.focus();
      }
    });

    for (const format of EXPORT_FORMATS) {
      $(`export-${format}`).addEventListener("click", (e) => { e.preventDefault(); exportView(format); });
    }

    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const token = $("token-input").value.trim().replace(/^Bearer\s+/i, "");
      if (!token) return;
      setToken(token);
      $("token-input").value = "";
      state.workspace = $("workspace-input").value.trim() || defaultWorkspace(token);
      start();
    });
    $("demo-buttons").addEventListener("click", async (e) => {
      const button = e.target.closest("button[data-role]");
      if (!button) return;
      try {
        const session = await api(`/v1/demo/sign-in?role=${button.dataset.role}`, { method: "POST", auth: false });
        setToken(session.token);
        state.workspace = session.workspace_id;
        start();
      } catch (err) {
        showSignIn(err.message);
      }
    });
    $("sign-out").addEventListener("click", () => { clearToken(); showSignIn(""); });
    window.addEventListener("popstate", () => { readUrl(); state.cursors = []; state.cursor = null; start(); });

    window.auditPage = {
      // A part whose script ran after the catalog or the first question arrived gets them at once.
      on(name, fn) {
        hooks[name].push(fn);
        if (name === "catalog" && state.catalog) fn(state.catalog);
        if (name === "question" && state.asked !== null) fn({ ...state.filters });
      },
      api,
      eventsPath,
      filters: () => ({ ...state.filters }),
      catalog: () => state.catalog,
      // Sets (or, with null, removes) some filters and asks the question.
      narrow(patch) {
        clearTimeout(typing);
        readForm();
        for (const [key, value] of Object.entries(patch)) {
          if (value === null || value === undefined || value === "") delete state.filters[key];
          else state.filters[key] = value;
        }
        ask();
      },
      handleFailure,
    };
  }

  // The export streams straight to disk: ask (with the bearer header) for a short-lived,
  // filter-bound download link, then let the browser download it. The href stays the plain
  // API URL with the filters, for scripts that send their own header.
  async function exportView(format) {
    try {
      const link = await api(`${eventsPath()}/export-links?${filterQuery({ format })}`, { method: "POST" });
      const a = el("a", { href: link.url, download: "" });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) {
      handleFailure(err);
    }
  }

  function defaultWorkspace(token) {
    const roles = claims(token).roles || {};
    const readable = Object.keys(roles).filter((ws) => roles[ws] === "owner" || roles[ws] === "admin");
    return readable[0] || Object.keys(roles)[0] || (state.demo ? state.demo.workspace_id : "");
  }

  function start() {
    const token = getToken();
    if (!token) {
      showSignIn(state.demo ? "" : "Paste a bearer token for a workspace where you are an owner or admin.");
      return;
    }
    if (!state.workspace) state.workspace = defaultWorkspace(token);
    if (!state.workspace) {
      showSignIn("Say which workspace to read.");
      return;
    }
    writeUrl(false);
    renderChips();
    show("audit");
    state.asked = filterQuery().toString();
    load();
    emit("question", { ...state.filters });
  }

  async function boot() {
    readUrl();
    wire();
    try {
      state.catalog = await api("/v1/audit/catalog", { auth: false });
    } catch (err) {
      show("audit");
      $("error-message").textContent = err.message;
      setState("error");
      return;
    }
    const kinds = state.catalog.target_kinds.map((k) => el("option", { value: k.key, text: k.label }));
    $("f-target").append(...kinds);
    emit("catalog", state.catalog);
    try {
      state.demo = await api("/v1/demo/sign-in", { auth: false });
    } catch (_err) {
      state.demo = null;  // not the embedded run mode: no demo accounts
    }
    start();
  }

  window.AuditPage = { api };  // for the page's other scripts (proof.js)
  boot();
})();
