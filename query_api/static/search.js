// Free-text search on the Audit page: the search box and the marks on matches.
//
// The grammar lives on the server (query_api/search.py); the page sends q as typed and
// marks the terms each page's answer lists in `highlights` ({text, fields}). A term is
// marked only inside elements that show one of its fields (`data-search="<column>"`, set
// by app.js), by splitting text nodes around <mark> elements: no HTML is ever parsed
// from data.
"use strict";

window.AuditSearch = (() => {
  const TYPING_MS = 400;

  // Case-insensitive positions of `needle` (already lower-cased) in `text`, left to right, not overlapping.
  function ranges(text, needles) {
    const lower = text.toLowerCase();
    if (lower.length !== text.length) return [];  // a case mapping that changes lengths: positions would drift
    const found = [];
    for (const needle of needles) {
      if (!needle) continue;
      for (let at = lower.indexOf(needle); at >= 0; at = lower.indexOf(needle, at + needle.length)) {
        found.push([at, at + needle.length]);
      }
    }
    found.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    const merged = [];
    for (const r of found) {
      const last = merged[merged.length - 1];
      if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
      else merged.push([r[0], r[1]]);
    }
    return merged;
  }

  function markText(node, needles) {
    const spans = ranges(node.data, needles);
    if (!spans.length) return;
    const parts = [];
    let pos = 0;
    for (const [start, end] of spans) {
      if (start > pos) parts.push(document.createTextNode(node.data.slice(pos, start)));
      const mark = document.createElement("mark");
      mark.textContent = node.data.slice(start, end);
      parts.push(mark);
      pos = end;
    }
    if (pos < node.data.length) parts.push(document.createTextNode(node.data.slice(pos)));
    node.replaceWith(...parts);
  }

  // Marks every highlight inside `root` where an element shows one of the highlight's fields; returns root.
  function mark(root, highlights) {
    if (!highlights || !highlights.length) return root;
    const holders = root.matches("[data-search]") ? [root] : [];
    holders.push(...root.querySelectorAll("[data-search]"));
    for (const holder of holders) {
      const field = holder.dataset.search;
      const needles = highlights.filter((h) => h.fields.includes(field)).map((h) => h.text);
      if (!needles.length) continue;
      const walker = document.createTreeWalker(holder, NodeFilter.SHOW_TEXT);
      const nodes = [];
      while (walker.nextNode()) {
        if (!walker.currentNode.parentElement.closest("mark")) nodes.push(walker.currentNode);
      }
      for (const node of nodes) markText(node, needles);
    }
    return root;
  }

  // Enter (or the button) asks at once and adds a history entry; typing asks after a pause and
  // replaces the entry, so Back goes to the previous search, not to every keystroke.
  function wire(form, input, ask) {
    let typing = null;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      clearTimeout(typing);
      ask(true);
    });
    input.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => ask(false), TYPING_MS);
    });
  }

  return { mark, wire };
})();
