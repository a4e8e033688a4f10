// Tamper evidence on the Audit page (docs/verification.md, "What the Audit page checks").
//
// The banner: the workspace's latest signed checkpoint, its Ed25519 signature checked here with
// WebCrypto against the keys the service lists. On an expanded event: its leaf hash computed here
// from the event exactly as the API returned it (RFC 8785 canonical JSON, SHA-256), its inclusion
// proof fetched and folded up to a root (RFC 9162 §2.1.3.2), that root compared with the checkpoint
// verified here. Nothing the server says about hashes is believed: it only supplies the audit path.
// Across visits: the last checkpoint verified is kept in localStorage, and the next one must extend
// it (an RFC 9162 consistency proof checked here), so a rewritten, re-signed history shows.
//
// Where the browser cannot reproduce a step byte for byte (no Ed25519 in WebCrypto, no WebCrypto at
// all outside a secure context, a value JSON cannot carry exactly), the page says it cannot check,
// never "not verified": a false alarm would teach people to ignore the real one.
//
// Hooks into app.js: window.AuditPage.api (the authenticated fetch) and two DOM events,
// "audit:view" (the audit view is shown for a workspace) and "audit:expanded" (a row's detail
// was rendered).
"use strict";

(() => {
  const KEYS_PATH = "/v1/audit/transparency/keys";
  const CHECKPOINT_FORMAT = "auditlog-checkpoint/v1";
  const LEAF_FORMAT = "v1";
  const ED25519_SPKI_PREFIX = "302a300506032b6570032100"; // SubjectPublicKeyInfo header of a raw 32-byte key
  const KEY_ID_HEX_DIGITS = 16;
  const SEEN_PREFIX = "auditlog.checkpoint."; // localStorage: the last checkpoint verified, per workspace
  const CHECKPOINT_MAX_AGE_MS = 10_000; // an expanded event older than this re-reads the latest checkpoint
  const PARTY_KEYS = ["kind", "id", "display"];
  const CONTEXT_KEYS = ["ip", "user_agent", "request_id", "service"];

  /** The browser cannot reproduce a step exactly; the event or checkpoint is neither verified nor refuted. */
  class CannotCheck extends Error {}

  /** A check ran and failed: the thing shown is not what the log signed. */
  class NotVerified extends Error {}

  const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);
  const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

  // ---- RFC 8785 (JCS), byte-identical with transparency/canonical.py ----------------------------
  // JSON.stringify of a string or a finite number is exactly JCS's spelling of it (RFC 8785 §3.2.2
  // was written from ECMAScript's); what it cannot carry is refused here first.
  function writeJcs(value, out) {
    if (value === null || value === true || value === false) {
      out.push(String(value));
    } else if (typeof value === "number") {
      if (!Number.isFinite(value)) throw new CannotCheck(`the number ${value} is not a JSON number`);
      out.push(JSON.stringify(value)); // -0 → "0", 1e21 → "1e+21", as ECMAScript's Number::toString
    } else if (typeof value === "string") {
      if (/\p{Cs}/u.test(value)) throw new CannotCheck("a string holds a lone surrogate");
      out.push(JSON.stringify(value));
    } else if (Array.isArray(value)) {
      out.push("[");
      value.forEach((item, i) => {
        if (i) out.push(",");
        writeJcs(item, out);
      });
      out.push("]");
    } else if (typeof value === "object") {
      out.push("{");
      // Array.prototype.sort compares strings by UTF-16 code units: JCS's member order (§3.2.3).
      Object.keys(value).sort().forEach((key, i) => {
        if (i) out.push(",");
        writeJcs(key, out);
        out.push(":");
        writeJcs(value[key], out);
      });
      out.push("}");
    } else {
      throw new CannotCheck(`a ${typeof value} is not a JSON value`);
    }
  }

  function jcs(value) {
    const out = [];
    writeJcs(value, out);
    return out.join("");
  }

  // ---- the leaf object (transparency/canonical.py leaf_object) ----------------------------------
  function canonicalId(value) {
    if (typeof value !== "string") throw new CannotCheck("the event id is not a string");
    const hex = value.replaceAll("urn:", "").replaceAll("uuid:", "").replace(/^[{}]+|[{}]+$/g, "")
      .replaceAll("-", "");
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new CannotCheck(`the event id ${value} is not a UUID`);
    const h = hex.toLowerCase();
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  const pad = (n, width) => String(n).padStart(width, "0");

  // occurred_at in leaf form, YYYY-MM-DDTHH:MM:SS.ffffffZ in UTC, computed on the text: Date keeps
  // only milliseconds, the leaf has microseconds.
  function canonicalTime(value) {
    const m = typeof value === "string" &&
      /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|([+-])(\d{2}):(\d{2}))$/.exec(value);
    if (!m) throw new CannotCheck(`occurred_at ${JSON.stringify(value)} is not a time this page can read`);
    const [, y, mo, d, h, mi, s, frac = "", zone, sign, oh, om] = m;
    const at = new Date(0);
    at.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
    at.setUTCHours(Number(h), Number(mi), Number(s), 0);
    const exact = at.getUTCFullYear() === Number(y) && at.getUTCMonth() === Number(mo) - 1 &&
      at.getUTCDate() === Number(d) && at.getUTCHours() === Number(h) && at.getUTCMinutes() === Number(mi) &&
      at.getUTCSeconds() === Number(s);
    if (!exact) throw new CannotCheck(`occurred_at ${value} is not a calendar time`);
    if (zone !== "Z") {
      const minutes = Number(oh) * 60 + Number(om);
      if (Number(oh) > 23 || Number(om) > 59) throw new CannotCheck(`occurred_at ${value} has no valid offset`);
      at.setTime(at.getTime() - (sign === "+" ? 1 : -1) * minutes * 60_000);
    }
    const year = at.getUTCFullYear();
    if (year < 1000 || year > 9999) throw new CannotCheck(`occurred_at ${value} is outside years 1000-9999`);
    return `${year}-${pad(at.getUTCMonth() + 1, 2)}-${pad(at.getUTCDate(), 2)}T${pad(at.getUTCHours(), 2)}:` +
      `${pad(at.getUTCMinutes(), 2)}:${pad(at.getUTCSeconds(), 2)}.${frac.padEnd(6, "0")}Z`;
  }

  function pick(value, keys, name, fallback) {
    if (!isObject(value)) throw new CannotCheck(`${name} is not an object`);
    const out = {};
    for (const key of keys) {
      if (hasOwn(value, key)) out[key] = value[key];
      else if (fallback !== undefined) out[key] = fallback;
      else throw new CannotCheck(`${name} has no ${key}`);
    }
    return out;
  }

  /** The object a leaf is the JCS of: the covered keys, normalised as docs/verification.md §2 says. */
  function leafObject(event) {
    if (!isObject(event)) throw new CannotCheck("the event is not an object");
    for (const key of ["id", "workspace_id", "occurred_at", "action", "category", "actor", "target", "payload",
                       "context"]) {
      if (!hasOwn(event, key)) throw new CannotCheck(`the event has no ${key}`);
    }
    let payload = event.payload === null ? {} : event.payload;
    if (!isObject(payload)) throw new CannotCheck("payload is not an object");
    payload = Object.fromEntries(Object.entries(payload)); // own data properties, "__proto__" included
    for (const side of ["before", "after"]) if (!hasOwn(payload, side)) payload[side] = null;
    return {
      id: canonicalId(event.id),
      workspace_id: event.workspace_id,
      occurred_at: canonicalTime(event.occurred_at),
      action: event.action,
      category: event.category,
      actor: pick(event.actor, PARTY_KEYS, "actor"),
      target: pick(event.target, PARTY_KEYS, "target"),
      payload,
      context: pick(event.context, CONTEXT_KEYS, "context", ""),
    };
  }

  /** The leaf text of an event as the API returned it (parsed JSON); CannotCheck if not reproducible. */
  const leafText = (event) => jcs(leafObject(event));

  // ---- hashing (RFC 9162 §2.1.1) -----------------------------------------------------------------
  function subtle() {
    if (!globalThis.crypto || !globalThis.crypto.subtle) {
      throw new CannotCheck("this page is not in a secure context (HTTPS), so the browser offers no WebCrypto");
    }
    return globalThis.crypto.subtle;
  }

  const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  function fromHex(hex, length, what) {
    if (typeof hex !== "string" || !new RegExp(`^[0-9a-f]{${length * 2}}$`).test(hex)) {
      throw new NotVerified(`${what} is not ${length * 2} lowercase hex digits`);
    }
    return Uint8Array.from(hex.match(/../g), (b) => parseInt(b, 16));
  }

  async function sha256(...parts) {
    const total = parts.reduce((n, p) => n + p.length, 0);
    const buf = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      buf.set(p, at);
      at += p.length;
    }
    return new Uint8Array(await subtle().digest("SHA-256", buf));
  }

  const LEAF_PREFIX = Uint8Array.of(0);
  const NODE_PREFIX = Uint8Array.of(1);
  const leafHash = (bytes) => sha256(LEAF_PREFIX, bytes);
  const nodeHash = (left, right) => sha256(NODE_PREFIX, left, right);

  const half = (n) => Math.floor(n / 2);

  /**
   * The climb RFC 9162 §2.1.3.2 and §2.1.4.2 share: from node ``fn`` of a level whose last node is
   * ``sn``, each proof hash joins on the left (``left``: the node is a right child, or the last of
   * its level) or on the right (``right``); the path must end exactly at the root (sn = 0).
   */
  async function climb(fn, sn, hashes, what, left, right) {
    for (const c of hashes) {
      if (sn === 0) throw new NotVerified(`the ${what} proof is longer than the tree is deep`);
      if (fn % 2 === 1 || fn === sn) {
        await left(c);
        while (fn !== 0 && fn % 2 === 0) {
          fn = half(fn);
          sn = half(sn);
        }
      } else {
        await right(c);
      }
      fn = half(fn);
      sn = half(sn);
    }
    if (sn !== 0) throw new NotVerified(`the ${what} proof is shorter than the tree is deep`);
  }

  /** RFC 9162 §2.1.3.2: the root an audit path leads to from ``leaf`` at ``index`` of ``size``. */
  async function rootFromPath(leaf, index, size, path) {
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size)) {
      throw new CannotCheck("the tree is larger than this browser's integers hold exactly");
    }
    if (!(index >= 0 && index < size)) throw new NotVerified(`leaf ${index} is not in a tree of ${size}`);
    let r = leaf;
    await climb(index, size - 1, path, "inclusion", async (p) => { r = await nodeHash(p, r); },
                async (p) => { r = await nodeHash(r, p); });
    return r;
  }

  const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  function isPowerOfTwo(n) {
    let m = n;
    while (m > 1 && m % 2 === 0) m /= 2;
    return m === 1;
  }

  /** RFC 9162 §2.1.4.2: throws NotVerified unless the tree (newSize, newRoot) extends (oldSize, oldRoot). */
  async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
    if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize)) {
      throw new CannotCheck("the tree is larger than this browser's integers hold exactly");
    }
    if (!(oldSize >= 1 && oldSize <= newSize)) throw new NotVerified(`the log shrank from ${oldSize} to ${newSize}`);
    if (oldSize === newSize) {
      if (proof.length || !sameBytes(oldRoot, newRoot)) {
        throw new NotVerified(`two different roots were signed for the same ${oldSize} events`);
      }
      return;
    }
    if (!proof.length) throw new NotVerified("the consistency proof is empty");
    const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
    let fn = oldSize - 1;
    let sn = newSize - 1;
    while (fn % 2 === 1) {
      fn = half(fn);
      sn = half(sn);
    }
    let fr = path[0];
    let sr = path[0];
    await climb(fn, sn, path.slice(1), "consistency", async (c) => {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
    }, async (c) => { sr = await nodeHash(sr, c); });
    if (!sameBytes(fr, oldRoot) || !sameBytes(sr, newRoot)) {
      throw new NotVerified("the consistency proof does not join the two signed roots");
    }
  }

  // ---- checkpoints (docs/verification.md §1) -----------------------------------------------------
  function checkpointText(cp) {
    if (!Number.isSafeInteger(cp.tree_size)) throw new CannotCheck("the tree size is beyond this browser's integers");
    if (/\n/.test(String(cp.workspace_id))) throw new NotVerified("the workspace id holds a line feed");
    return `${CHECKPOINT_FORMAT}\nworkspace ${cp.workspace_id}\nsize ${cp.tree_size}\nroot ${cp.root_hash}\n` +
      `time ${cp.timestamp}\nleaf-format ${LEAF_FORMAT}\nkey ${cp.key_id}\n`;
  }

  function base64Bytes(text, what) {
    try {
      return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    } catch (_err) {
      throw new NotVerified(`${what} is not base64`);
    }
  }

  const isUnsupported = (err) => err && (err.name === "NotSupportedError" ||
    (err.name === "TypeError" && /algorithm/i.test(err.message)));

  /** The listed keys by the key id computed here from each raw key (the server's key_id is not believed). */
  async function importKeys(listed) {
    const ring = new Map();
    for (const key of listed) {
      const der = base64Bytes(String(key.public_key_pem).replace(/-----[^-]+-----|\s+/g, ""), "a public key");
      if (der.length !== 44 || toHex(der.slice(0, 12)) !== ED25519_SPKI_PREFIX) continue; // not Ed25519
      const raw = der.slice(12);
      const kid = toHex(await sha256(raw)).slice(0, KEY_ID_HEX_DIGITS);
      let cryptoKey;
      try {
        cryptoKey = await subtle().importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
      } catch (err) {
        if (isUnsupported(err)) throw new CannotCheck("this browser cannot check Ed25519 signatures");
        throw err;
      }
      ring.set(kid, cryptoKey);
    }
    return ring;
  }

  /** Checks one checkpoint's shape and signature; throws NotVerified or CannotCheck, else returns it. */
  async function verifyCheckpoint(cp, ring, workspace) {
    if (!isObject(cp)) throw new NotVerified("the checkpoint is not an object");
    if (cp.format !== CHECKPOINT_FORMAT) throw new NotVerified(`the checkpoint format is ${cp.format}`);
    if (cp.leaf_format !== LEAF_FORMAT) throw new NotVerified(`the leaf format is ${cp.leaf_format}`);
    if (cp.workspace_id !== workspace) throw new NotVerified(`the checkpoint is of workspace ${cp.workspace_id}`);
    fromHex(cp.root_hash, 32, "the root hash");
    const key = ring.get(cp.key_id);
    if (!key) throw new NotVerified(`it is signed by key ${cp.key_id}, which the service does not list`);
    const signature = base64Bytes(String(cp.signature), "the signature");
    if (signature.length !== 64) throw new NotVerified("the signature is not 64 bytes");
    const text = new TextEncoder().encode(checkpointText(cp));
    let ok;
    try {
      ok = await subtle().verify({ name: "Ed25519" }, key, signature, text);
    } catch (err) {
      if (isUnsupported(err)) throw new CannotCheck("this browser cannot check Ed25519 signatures");
      throw err;
    }
    if (!ok) throw new NotVerified(`its Ed25519 signature does not verify with key ${cp.key_id}`);
    return cp;
  }

  // ---- the page ----------------------------------------------------------------------------------
  const page = { workspace: "", checked: null, checkedAt: 0 };
  const $ = (id) => document.getElementById(id);
  const api = (path) => window.AuditPage.api(path);
  const logPath = () => `/v1/workspaces/${encodeURIComponent(page.workspace)}/audit`;

  function formatWhen(iso) {
    const at = new Date(String(iso).replace(/(\.\d{3})\d*Z$/, "$1Z"));
    if (Number.isNaN(at.getTime())) return String(iso);
    return at.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit",
                                          minute: "2-digit", second: "2-digit" });
  }

  const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;

  // The last checkpoint this browser verified, per workspace (localStorage is per origin): the next
  // visit proves the log grew from it (RFC 9162 consistency proof), so a history rewritten and
  // re-signed between two visits shows, which no single checkpoint can show.
  const seenKey = (workspace) => `${SEEN_PREFIX}${workspace}`;

  function remembered(workspace) {
    try {
      const seen = JSON.parse(localStorage.getItem(seenKey(workspace)));
      return isObject(seen) && Number.isSafeInteger(seen.tree_size) ? seen : null;
    } catch (_err) {
      return null;
    }
  }

  function remember(workspace, cp) {
    const { tree_size, root_hash, timestamp, key_id } = cp;
    try {
      localStorage.setItem(seenKey(workspace), JSON.stringify({ tree_size, root_hash, timestamp, key_id }));
    } catch (_err) {
      // storage full or disabled: the next visit simply has nothing to compare with
    }
  }

  /** Checks that the verified ``cp`` extends the checkpoint seen on an earlier visit; returns that one. */
  async function extendsSeen(cp, workspace) {
    const seen = remembered(workspace);
    if (seen) {
      const earlier = `the checkpoint this browser verified on ${formatWhen(seen.timestamp)} ` +
        `(${plural(seen.tree_size, "event")})`;
      if (seen.tree_size > cp.tree_size) {
        throw new NotVerified(`the log shrank: the latest checkpoint has ${plural(cp.tree_size, "event")}, ${earlier}` +
          " had more");
      }
      let proof = [];
      if (seen.tree_size < cp.tree_size) {
        try {
          const answer = await api(`${logPath()}/consistency?from=${seen.tree_size}&to=${cp.tree_size}`);
          proof = (answer.proof || []).map((h, i) => fromHex(h, 32, `consistency proof hash ${i}`));
        } catch (err) {
          if (err && err.status === 404) throw new NotVerified(`the service no longer has ${earlier}`);
          throw err;
        }
      }
      try {
        await verifyConsistency(seen.tree_size, cp.tree_size, fromHex(seen.root_hash, 32, "the remembered root"),
                                fromHex(cp.root_hash, 32, "the root hash"), proof);
      } catch (err) {
        if (err instanceof NotVerified) {
          throw new NotVerified(`history was rewritten: the latest checkpoint does not extend ${earlier}: ${err.message}`);
        }
        throw err;
      }
    }
    remember(workspace, cp);
    return seen;
  }

  /**
   * The latest checkpoint, checked here: {state: "verified", checkpoint} or {state, reason} with
   * state "failed" (did not verify), "unsupported" (cannot check here), "none" (nothing signed yet)
   * or "error" (could not be fetched).
   */
  async function checkLatest() {
    const workspace = page.workspace;
    try {
      const [keys, cp] = await Promise.all([api(KEYS_PATH), api(`${logPath()}/checkpoints/latest`)]);
      const ring = await importKeys(keys.keys || []);
      await verifyCheckpoint(cp, ring, workspace);
      const seen = await extendsSeen(cp, workspace);
      return { state: "verified", checkpoint: cp, seen, workspace };
    } catch (err) {
      if (err instanceof CannotCheck) return { state: "unsupported", reason: err.message, workspace };
      if (err instanceof NotVerified) return { state: "failed", reason: err.message, workspace };
      if (err && err.status === 404) return { state: "none", reason: err.message, workspace };
      return { state: "error", reason: (err && err.message) || String(err), workspace };
    }
  }

  function renderBanner(result) {
    const banner = $("log-proof");
    banner.dataset.state = result.state;
    banner.setAttribute("role", result.state === "failed" ? "alert" : "status");
    const mark = { verified: "✓", failed: "✗", unsupported: "!", none: "…", error: "!" }[result.state];
    let title;
    let detail;
    if (result.state === "verified") {
      const cp = result.checkpoint;
      title = `Log verified up to ${formatWhen(cp.timestamp)}, ${plural(cp.tree_size, "event")}`;
      detail = `Checkpoint signed with Ed25519 key ${cp.key_id}, signature checked in this browser.`;
      if (result.seen) {
        detail += ` It extends the checkpoint this browser verified on ${formatWhen(result.seen.timestamp)} ` +
          `(${plural(result.seen.tree_size, "event")}): consistency proof checked.`;
      }
    } else if (result.state === "failed") {
      title = "Log not verified: the latest checkpoint failed its check";
      detail = `${result.reason[0].toUpperCase()}${result.reason.slice(1)}. Do not rely on this log until ` +
        "this is explained (auditlog verify, with a public key obtained out of band, checks it offline).";
    } else if (result.state === "unsupported") {
      title = "Log not checked in this browser";
      detail = `${result.reason}. Use a current browser, or auditlog verify with the public key.`;
    } else if (result.state === "none") {
      title = "No signed checkpoint yet";
      detail = "This workspace's log has not been sequenced yet; events are checkpointed seconds after storage.";
    } else {
      title = "Could not check the log";
      detail = result.reason;
    }
    banner.replaceChildren(
      Object.assign(document.createElement("span"), { className: "mark", textContent: mark }),
      Object.assign(document.createElement("strong"), { textContent: title }),
      Object.assign(document.createElement("span"), { className: "muted small", textContent: detail }),
    );
    banner.firstChild.setAttribute("aria-hidden", "true");
    banner.hidden = false;
  }

  /** The checked latest checkpoint, re-read when older than CHECKPOINT_MAX_AGE_MS (one fetch at a time). */
  function latest(force = false) {
    const fresh = page.checked && Date.now() - page.checkedAt < CHECKPOINT_MAX_AGE_MS;
    if (!force && fresh) return page.checked;
    page.checkedAt = Date.now();
    page.checked = checkLatest().then((result) => {
      if (result.workspace === page.workspace) renderBanner(result);
      return result;
    });
    return page.checked;
  }

  /** An expanded event's proof: {state, text} with state verified / not-verified / pending / cannot-check. */
  async function checkEvent(event) {
    let text;
    try {
      text = leafText(event);
    } catch (err) {
      if (err instanceof CannotCheck) return { state: "cannot-check", text: `Cannot check this event in the browser: ${err.message}.` };
      throw err;
    }
    const head = await latest();
    if (head.state === "failed") {
      return { state: "not-verified", text: "Not verified: the log's latest checkpoint did not verify, so " +
        "nothing can be checked against it." };
    }
    if (head.state !== "verified") {
      const why = head.state === "none" ? "the log has no signed checkpoint yet" : head.reason;
      return { state: "cannot-check", text: `Cannot check this event in the browser: ${why}.` };
    }
    const cp = head.checkpoint;
    let proof;
    try {
      proof = await api(`${logPath()}/events/${encodeURIComponent(event.id)}/proof?tree_size=${cp.tree_size}`);
    } catch (err) {
      if (err && err.status === 404) {
        return { state: "pending", text: `Not in the signed log yet: the latest checkpoint ` +
          `(${formatWhen(cp.timestamp)}, ${plural(cp.tree_size, "event")}) does not cover this event. ` +
          "Events are checkpointed seconds after they are stored; one that stays uncovered was added " +
          "behind the log's back (auditlog verify names it)." };
      }
      throw err;
    }
    try {
      if (proof.tree_size !== cp.tree_size) throw new NotVerified("the proof is for another tree size");
      const path = (proof.audit_path || []).map((h, i) => fromHex(h, 32, `proof hash ${i}`));
      const root = fromHex(cp.root_hash, 32, "the root hash");
      const mine = await leafHash(new TextEncoder().encode(text));
      const reached = await rootFromPath(mine, proof.leaf_index, cp.tree_size, path);
      if (!sameBytes(reached, root)) {
        const logged = await rootFromPath(fromHex(proof.leaf_hash, 32, "the logged leaf hash"), proof.leaf_index,
                                          cp.tree_size, path);
        throw new NotVerified(sameBytes(logged, root)
          ? `this event differs from what the log signed at leaf ${proof.leaf_index}: it was changed after it was logged`
          : `its inclusion proof does not lead to the signed root (leaf ${proof.leaf_index})`);
      }
      return { state: "verified", text: `Verified: leaf ${proof.leaf_index.toLocaleString()} of the log, its ` +
        `inclusion proof checked in this browser against the checkpoint of ${formatWhen(cp.timestamp)} ` +
        `(${plural(cp.tree_size, "event")}).` };
    } catch (err) {
      if (err instanceof NotVerified) return { state: "not-verified", text: `Not verified: ${err.message}.` };
      if (err instanceof CannotCheck) return { state: "cannot-check", text: `Cannot check this event in the browser: ${err.message}.` };
      throw err;
    }
  }

  async function showProof(event, detail) {
    const line = Object.assign(document.createElement("p"), { className: "proof" });
    line.dataset.proof = "checking";
    line.setAttribute("role", "status");
    line.textContent = "Checking this event against the signed log…";
    detail.prepend(line);
    let result;
    try {
      result = await checkEvent(event);
    } catch (err) {
      result = { state: "error", text: `Could not check this event: ${(err && err.message) || err}` };
    }
    line.dataset.proof = result.state;
    const mark = { verified: "✓", "not-verified": "✗" }[result.state];
    line.replaceChildren(result.text);
    if (mark) {
      const icon = Object.assign(document.createElement("span"), { className: "mark", textContent: mark });
      icon.setAttribute("aria-hidden", "true");
      line.prepend(icon);
    }
    if (result.state === "not-verified") line.setAttribute("role", "alert");
  }

  document.addEventListener("audit:view", (e) => {
    const workspace = e.detail.workspace;
    if (e.detail.view !== "audit" || !workspace) return;
    if (workspace !== page.workspace) {
      page.workspace = workspace;
      page.checked = null;
      $("log-proof").hidden = true;
    }
    latest();
  });
  document.addEventListener("audit:expanded", (e) => showProof(e.detail.event, e.detail.element));

  // For tests and for the curious (docs/verification.md): the same functions the page uses.
  window.AuditProof = { CannotCheck, NotVerified, jcs, leafObject, leafText, leafHash, rootFromPath,
                        verifyConsistency, checkpointText, importKeys, verifyCheckpoint, toHex };
})();
