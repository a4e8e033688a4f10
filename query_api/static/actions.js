// The action filter: a type-ahead over the catalog's actions, grouped by category, following the
// WAI-ARIA combobox pattern (an input with role=combobox, a listbox popup, aria-activedescendant).
// Keys: ArrowDown/ArrowUp open and move, Enter picks, Escape closes (a second Escape clears),
// Tab leaves. Picking sets the API's `action` filter (exact name) through app.js's hooks; an empty
// input removes it.
"use strict";

(() => {
  const page = window.auditPage;
  if (!page) return;
  const input = document.getElementById("f-action");
  const list = document.getElementById("f-action-list");
  let actions = [];      // [{name, category, label, description}] in catalog order
  let shown = [];        // the options currently listed, in display order
  let active = -1;       // index into shown of the highlighted option

  // "member role" and "member_role" both find MEMBER_ROLE_CHANGED.
  const normal = (text) => text.trim().toUpperCase().replace(/[\s-]+/g, "_");

  page.on("catalog", (catalog) => {
    const labels = Object.fromEntries(catalog.categories.map((c) => [c.key, c.label]));
    const order = Object.fromEntries(catalog.categories.map((c, i) => [c.key, i]));
    actions = catalog.actions
      .map((a) => ({ ...a, label: labels[a.category] || a.category }))
      .sort((a, b) => (order[a.category] ?? 99) - (order[b.category] ?? 99) || a.name.localeCompare(b.name));
  });
  page.on("question", (filters) => { input.value = filters.action || ""; close(); });
  // Apply reads the field: an exact action name sets the filter, an empty field removes it, and
  // anything else (a half-typed name) leaves the filter as it was.
  page.on("read", () => {
    const typed = normal(input.value);
    if (!typed) return { action: undefined };
    return actions.some((a) => a.name === typed) ? { action: typed } : {};
  });

  function matches(text) {
    const typed = normal(text);
    if (!typed) return actions;
    const starts = actions.filter((a) => a.name.startsWith(typed));
    const inside = actions.filter((a) => !a.name.startsWith(typed) && a.name.includes(typed));
    return [...starts, ...inside];
  }

  function render() {
    shown = matches(input.value);
    const groups = new Map();
    shown.forEach((a, i) => {
      if (!groups.has(a.category)) groups.set(a.category, { label: a.label, items: [] });
      groups.get(a.category).items.push([a, i]);
    });
    const nodes = [];
    for (const [key, group] of groups) {
      const head = document.createElement("div");
      head.className = "combo-group-label";
      head.id = `f-action-group-${key}`;
      head.setAttribute("role", "presentation");
      head.textContent = group.label;
      const box = document.createElement("div");
      box.setAttribute("role", "group");
      box.setAttribute("aria-labelledby", head.id);
      for (const [a, i] of group.items) {
        const option = document.createElement("div");
        option.id = `f-action-opt-${i}`;
        option.className = "combo-option";
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", String(i === active));
        option.dataset.index = String(i);
        option.dataset.name = a.name;
        option.title = a.description || "";
        option.textContent = a.name;
        box.append(option);
      }
      nodes.push(head, box);
    }
    if (!shown.length) {
      const none = document.createElement("div");
      none.className = "combo-empty";
      none.textContent = "No action matches";
      nodes.push(none);
    }
    list.replaceChildren(...nodes);
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    highlight(Math.min(active, shown.length - 1));
  }

  function highlight(index) {
    active = index;
    for (const option of list.querySelectorAll("[role=option]")) {
      option.setAttribute("aria-selected", String(Number(option.dataset.index) === index));
    }
    const current = index >= 0 ? document.getElementById(`f-action-opt-${index}`) : null;
    if (current) {
      input.setAttribute("aria-activedescendant", current.id);
      current.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function close() {
    list.hidden = true;
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function pick(name) {
    input.value = name;
    close();
    page.narrow({ action: name });
  }

  // After Apply (app.js's submit handler runs first), show the filter in force: a half-typed name
  // that Apply did not take goes back to the action that is applied.
  document.getElementById("filters").addEventListener("submit", () => {
    input.value = page.filters().action || "";
    close();
  });
  input.addEventListener("input", () => { active = -1; render(); });
  input.addEventListener("focus", () => { if (!input.value) render(); });
  input.addEventListener("blur", () => setTimeout(close, 120));
  input.addEventListener("keydown", (e) => {
    const open = !list.hidden;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!open) { render(); }
      if (!shown.length) return;
      const step = e.key === "ArrowDown" ? 1 : -1;
      highlight(active < 0 ? (step > 0 ? 0 : shown.length - 1) : (active + step + shown.length) % shown.length);
    } else if (e.key === "Enter") {
      if (open && active >= 0) {
        e.preventDefault();  // picking an option is not Apply
        pick(shown[active].name);
      } else if (!normal(input.value)) {
        e.preventDefault();
        close();
        page.narrow({ action: null });
      } else {
        close();  // Apply (the form's submit) reads the typed name
      }
    } else if (e.key === "Escape") {
      if (open) { e.preventDefault(); close(); }
      else if (input.value) { e.preventDefault(); input.value = ""; }
    } else if (e.key === "Home" || e.key === "End") {
      if (open && shown.length && e.altKey) {
        e.preventDefault();
        highlight(e.key === "Home" ? 0 : shown.length - 1);
      }
    }
  });
  // mousedown, not click: the input keeps its focus (and its blur does not close the list first).
  list.addEventListener("mousedown", (e) => {
    const option = e.target.closest("[role=option]");
    if (!option) return;
    e.preventDefault();
    pick(option.dataset.name);
  });
})();
