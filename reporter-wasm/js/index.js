// faultline-reporter: capture and the package's API. The WebAssembly module keeps the scope,
// builds and fits records (`record.rs`), folds and samples them (`gate.rs`) and delivers them
// (`outbox.rs`); the page's text goes to it scrubbed.
//
// Every entry point runs inside `guard`: nothing the reporter does can throw into the page.
// A fault inside the reporter (a Rust panic traps the wasm call) is reported once and
// switches the reporter off, detaching every listener and wrapper it installed.

import loadWasm, * as core from "./faultline_reporter.js";
import { noticeError, noticesFor, noticeUser } from "./notices.js";

export { onNotice } from "./notices.js";

/** Breadcrumbs kept per page, oldest dropped first. */
export const MAX_BREADCRUMBS = 30;
const LEVELS = {
  trace: "DEBUG",
  debug: "DEBUG",
  info: "INFO",
  log: "INFO",
  warn: "WARNING",
  warning: "WARNING",
  err: "ERROR",
  error: "ERROR",
  fatal: "CRITICAL",
  critical: "CRITICAL",
};
const EXTENSION = /^\s*(?:at .*?\(?)?[^\n]*?(?:chrome|moz|safari|safari-web|ms-browser)-extension:\/\//;
const DEFAULT_IGNORE = [/ResizeObserver loop/];
// URL secrets go with the schema's own rule, in the module (`core.scrub`); RegExp entries of
// `denyUrlParams` are tested here against every `?name=value` name (also after `&`, `#`).
const PARAM = /([?&#])([\w.%[\]-]+)=([^\s&#"'<>\\]*)/g;
// Without the module (it failed to load, or failed): credentials and every parameter's value.
const USERINFO = /\b([a-z][\w+.-]*:\/\/)[^\s/?#@"'<>\\]*@/gi;

let o = null; // options, once init has run
let box = null;
let ready = null; // resolves when the module is loaded (or failed to)
let wasm = false;
let dead = false;
let plain = false; // no module to scrub with: the simple rule (every parameter) applies
let busy = false; // inside the reporter: nested errors are not reported
// Before the module has loaded: scope changes, breadcrumbs (300 at most) and captures (100
// at most), replayed in order once it has (a raw user id is held in memory only until then).
const early = [];
let held = 0;
const counts = { captured: 0, folded: 0, ignored: 0, sampled: 0, capped: 0 };
const undo = []; // detaches listeners and restores wrapped functions
const seen = new WeakSet(); // error objects already reported (a boundary, then window.onerror)
let nativeFetch;

function guard(fn) {
  return function () {
    if (dead) return;
    try {
      return fn.apply(this, arguments);
    } catch (e) {
      fault(e);
    }
  };
}

// Delivery is the module's (`outbox.rs`); `flush` waits here.
const rustBox = {
  add: (rec, json) => core.outboxAdd(rec, json),
  async flush(timeoutMs) {
    const end = Date.now() + (timeoutMs ?? 10000);
    let w;
    while ((w = core.outboxWait()) >= 0 && Date.now() + w < end) {
      if (w) await new Promise((r) => setTimeout(r, w));
      await core.outboxSend();
    }
    return w === -1;
  },
  get stats() {
    const s = {};
    ["queued", "sent", "dropped", "retries", "beacons", "rejected"].forEach((k, i) => (s[k] = core.outboxStat(i)));
    return s;
  },
  close: () => core.outboxOn({ type: "close" }),
};

// Without the module (it failed to load, or failed): one request per record.
function fallback() {
  const stats = { sent: 0, dropped: 0, retries: 0, beacons: 0, rejected: 0 };
  const out = [];
  return {
    stats,
    add(rec, json) {
      const body = "[" + json + "]";
      const req = { method: "POST", headers: { "content-type": "text/plain" }, body, keepalive: true, credentials: "omit" };
      out.push(o.fetch(o.url, req).then((r) => r.status === 202 && ++stats.sent, () => !++stats.dropped));
      return true;
    },
    flush: () => Promise.all(out.splice(0)).then((r) => r.every(Boolean)),
    close() {},
  };
}

// A bug in the reporter: report it once, then switch everything off.
function fault(e) {
  if (dead) return;
  dead = plain = true;
  let message;
  try {
    message = core.panicked(); // a panic's report, kept by the module before its trap
  } catch {}
  message = message || "faultline reporter failed: " + (e && e.message ? e.message : String(e));
  detach();
  try {
    core.outboxOn({ type: "close" }); // the module's own listeners (a panic took them already)
  } catch {}
  try {
    if (box) {
      box = fallback(); // the module's outbox went with it
      const t = build(uuid(), new Date().toISOString(), "faultline.reporter", "ERROR", message, null, { error_type: "ReporterFault" });
      box.add(JSON.parse(t), t);
      box.flush();
    }
  } catch {}
}

function detach() {
  while (undo.length) {
    try {
      undo.pop()();
    } catch {}
  }
}

function listen(target, type, fn, capture) {
  target.addEventListener(type, fn, capture);
  undo.push(() => target.removeEventListener(type, fn, capture));
}

function wrap(obj, name, make) {
  const original = obj && obj[name];
  if (typeof original !== "function") return;
  obj[name] = make(original);
  undo.push(() => {
    obj[name] = original;
  });
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join("");
  return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
}

function clip(s, n) {
  s = String(s);
  return s.length > n ? s.slice(0, n) + "…" : s;
}

// Any value as short text: rejection reasons and console arguments can be anything.
function describe(v) {
  if (typeof v === "string") return v;
  if (v instanceof Error) return v.name + ": " + v.message;
  try {
    const s = JSON.stringify(v);
    if (s !== undefined) return s;
  } catch {}
  return String(v);
}

function decoded(name) {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

// Text (a URL, or a message that holds some) without credentials or secret parameter values.
// Before the module has loaded, text is kept as it is: records and breadcrumbs wait for it
// (`early`) and are scrubbed then. Without the module (it failed to load, or failed), every
// parameter's value goes.
function scrub(text) {
  text = String(text);
  if (!wasm || dead) return plain ? text.replace(USERINFO, "$1").replace(PARAM, "$1$2=[Filtered]") : text;
  text = core.scrub(text);
  return o.denyRe.length ? text.replace(PARAM, (all, sep, name) => (o.denyRe.some((r) => r.test(decoded(name))) ? sep + name + "=[Filtered]" : all)) : text;
}

// The record's JSON: the module adds the scope and frames and fits it (`record.rs`);
// without it, the stack as text only. `context` tags and extra apply to this record alone.
function build(id, ts, event, level, message, raw, meta, context) {
  const r = raw || {};
  const m = { ...meta, release: o.release, environment: o.environment, url: clip(scrub(location.href), 2048), user_agent: navigator.userAgent };
  // Event and message go to the module beside the fields, not in them.
  const rec = { id, ts, service: o.service, level, meta: m };
  const text = scrub(message || "(no message)");
  if (!wasm || dead) {
    if (r.stack) m.stack_text = clip(scrub(r.stack), 8000);
    return json({ ...rec, event, message: clip(text, 8000) });
  }
  const c = context || {};
  const scoped = c.tags || c.extra;
  if (scoped) {
    core.scopeSet(5, "", "");
    setTags(c.tags);
    for (const k in c.extra) setExtra(k, c.extra[k]);
  }
  try {
    return fitted(true, event, text, scrub(r.stack || ""), scrub(r.file || ""), json(rec), r.line >>> 0, r.col >>> 0);
  } finally {
    if (scoped) core.scopeSet(6, "", "");
  }
}

// `beforeSend` (its result fitted again by the module), then the outbox.
function send(text) {
  let rec = JSON.parse(text);
  if (o.beforeSend) {
    let out;
    const was = busy;
    busy = true;
    try {
      out = o.beforeSend(rec);
    } catch {
      out = null; // a failing filter must not leak what it was meant to scrub
    } finally {
      busy = was;
    }
    if (!out) {
      counts.ignored++;
      return false;
    }
    const f = (k) => (out[k] == null ? "" : String(out[k]));
    text = wasm && !dead ? fitted(false, f("event"), f("message"), "", "", json(out), 0, 0) : json(out);
    rec = JSON.parse(text);
  }
  if (rec.meta && rec.meta.user && (rec.level === "ERROR" || rec.level === "CRITICAL")) noticeError();
  return box.add(rec, text);
}

// The module's record(): the text in one string, NUL between the parts (a record keeps none:
// the schema makes it a space in the event, U+FFFD elsewhere; JSON escapes it).
function fitted(scoped, event, message, stack, file, fields, line, col) {
  const text = [event.replace(/\0/g, " "), message, stack, file].map((t) => t.replace(/\0/g, "\ufffd"));
  return core.record(scoped, text.join("\0") + "\0" + fields, line, col);
}

// JSON text of a value, "" for none (or a cycle). JSON.stringify writes a lone surrogate (text
// cut inside an emoji) as an escape the server's parser rejects, with the whole record: it
// becomes U+FFFD (the escapes are read in order, so an escaped backslash starts none).
function json(v) {
  try {
    const t = JSON.stringify(v) || "";
    return t.includes("\\ud") ? t.replace(/\\(ud[89a-f]..|[^])/g, (m, e) => (e[1] ? "\\ufffd" : m)) : t;
  } catch {
    return "";
  }
}

// Sets (or removes: "") a tag (0), an extra value (1) or a context (2) to `value(v)`, JSON.
function put(what, value) {
  return soon((k, v) => wasm && core.scopeSet(what, String(k), value(v)));
}

// Calls `f` now once the module is loaded (or failed to load); before, later, in order.
function soon(f) {
  return guard(function () {
    if (wasm || plain) f.apply(this, arguments);
    else if (early.length < 300 + held) early.push([f, arguments]);
  });
}

function matches(list, text) {
  return (list || []).some((p) => (typeof p === "string" ? text.includes(p) : p.test(text)));
}

// The one path of every error and message into the outbox.
function capture(event, level, message, raw, meta, context) {
  if (!o || busy || dead) return "";
  busy = true;
  try {
    const type = (meta && meta.error_type) || "";
    const text = type ? type + ": " + message : message;
    const where = (raw && (raw.file || "") + "\n" + (raw.stack || "").split("\n", 3).join("\n")) || "";
    if (
      (raw && /^Script error\.?$/.test(message) && !raw.file && !raw.stack) ||
      matches(DEFAULT_IGNORE, text) ||
      matches(o.ignoreErrors, text) ||
      (raw && (EXTENSION.test(where) || matches(o.denyUrls, where)))
    ) {
      counts.ignored++;
      return "";
    }
    const key = event + "\u0000" + text + "\u0000" + (raw ? where + raw.line + ":" + raw.col : "");
    const now = Date.now();
    const ts = new Date((raw && raw.ts) || now).toISOString();
    const make = (id) => build(id, ts, event, level, message, raw, meta, context);
    if (wasm || plain) return admit(key, now, make);
    // Before the module: kept as they come, folded and sampled when it loads.
    if (held >= 100) return counts.capped++, "";
    held++;
    const id = uuid();
    early.push([admit, [key, now, make, id]]);
    return id;
  } finally {
    busy = false;
  }
}

// Folding, sampling and the per-page cap are the module's (`gate.rs`); without it, only the
// cap applies. `make(id)` builds the record, only once it is to be sent. Returns the id of
// the record that carries the error (a repeat's is the one it folded into), "" if none.
function admit(key, now, make, id = uuid()) {
  const r = wasm ? core.admit(key, id, now, Math.random()) : counts.captured < o.maxPerPage ? id : "2";
  if (r.length > 1 && r !== id) return counts.folded++, r;
  if (r !== id) return (r === "1" ? counts.sampled++ : counts.capped++), "";
  counts.captured++;
  return send(make(id)) ? id : "";
}

function fromError(event, error, context, fallback) {
  if (error && typeof error === "object") {
    if (seen.has(error)) return "";
    seen.add(error);
  }
  let message;
  let raw = fallback || {};
  let type;
  if (error instanceof Error || (error && typeof error.stack === "string" && error.message !== undefined)) {
    type = error.name || "Error";
    message = String(error.message);
    raw = { ...raw, stack: error.stack };
  } else if (error == null && raw.message) {
    // No Error object (cross-origin scripts, old engines): the event's text is all there is.
    type = "Error";
    message = String(raw.message);
  } else if (event === "unhandledrejection") {
    type = "UnhandledRejection";
    message = "Non-Error promise rejection: " + clip(describe(error), 1000);
  } else {
    type = "Error";
    message = clip(describe(error), 2000);
  }
  const meta = { error_type: type };
  let level = "ERROR";
  if (context) {
    if (context.level) level = LEVELS[String(context.level).toLowerCase()] || level;
    if (context.componentStack) meta.component_stack = clip(context.componentStack, 4000);
    if (context.event) event = String(context.event);
  }
  return capture(event, level, message, raw, meta, context);
}

function crumb(category, message, level, data) {
  addCrumb(new Date().toISOString(), category, String(message), level, data ? json(data) : "");
}

// Scrubbed once the module is there (the scrub keeps JSON intact; a cycle drops the data).
const addCrumb = soon((ts, category, message, level, data) => {
  if (!wasm) return;
  const c = { ts, category, message: clip(scrub(message), 300), level: level || undefined };
  try {
    if (data) c.data = JSON.parse(scrub(data));
  } catch {}
  core.scopeSet(4, "", json(c));
});

// A request's URL in a breadcrumb.
function link(url) {
  return clip(scrub(url), 200);
}

// Where a click landed, as `input#pw[name=password] "Password"` or `button#save "Save"`:
// tag, id, name, role and a visible label. Never what was typed: no value of a form field,
// no text of anything editable; text only of buttons, links and labels.
function target(el) {
  if (!el || !el.tagName) return "";
  let s = el.tagName.toLowerCase();
  const attr = (n) => clip(el.getAttribute(n) || "", 40);
  if (el.id) s += "#" + clip(el.id, 40);
  for (const n of ["name", "role"]) if (attr(n)) s += "[" + n + "=" + attr(n) + "]";
  // Rendered text, unless something in it can be typed into (a label around a textarea).
  const text = (n) => (n && !n.isContentEditable && !n.querySelector("textarea,[contenteditable]") && n.innerText) || "";
  const t = (
    attr("aria-label") ||
    text(el.labels && el.labels[0]) ||
    (/^(BUTTON|A|LABEL|SUMMARY)$/.test(el.tagName) || /^(button|link|tab|menuitem)$/.test(attr("role")) ? text(el) : "")
  ).trim();
  return t ? s + ' "' + clip(t, 40) + '"' : s;
}

function hooks() {
  listen(window, "error", (e) => {
    fromError("window.onerror", e.error, null, { file: e.filename, line: e.lineno, col: e.colno, message: e.message });
  });
  listen(window, "unhandledrejection", (e) => fromError("unhandledrejection", e.reason));
  listen(document, "click", (e) => crumb("ui.click", target(e.target)), true);
  const nav = (to) => {
    crumb("navigation", String(to), null, { from: location.href });
  };
  listen(window, "popstate", () => crumb("navigation", location.href));
  wrap(history, "pushState", (f) => function (s, t, url) {
    if (url != null) guard(nav)(url);
    return f.apply(this, arguments);
  });
  wrap(history, "replaceState", (f) => function (s, t, url) {
    if (url != null) guard(nav)(url);
    return f.apply(this, arguments);
  });
  wrap(window, "fetch", (f) => function (input, init) {
    const p = f.apply(this, arguments);
    guard(() => {
      const url = String((input && input.url) || input);
      if (url.startsWith(o.endpoint)) return;
      const method = (init && init.method) || (input && input.method) || "GET";
      p.then(
        guard((res) => res.status >= 400 && crumb("fetch", method + " " + link(url) + " " + res.status, "error")),
        guard((err) => crumb("fetch", method + " " + link(url) + " failed: " + describe(err), "error")),
      );
    })();
    return p;
  });
  if (window.XMLHttpRequest) {
    const proto = XMLHttpRequest.prototype;
    wrap(proto, "open", (f) => function (method, url) {
      this.__faultline = [method, String(url)];
      return f.apply(this, arguments);
    });
    wrap(proto, "send", (f) => function () {
      const info = this.__faultline;
      if (info) {
        this.addEventListener(
          "loadend",
          guard(() => {
            if (this.status === 0 || this.status >= 400) crumb("xhr", info[0] + " " + link(info[1]) + " " + (this.status || "failed"), "error");
          }),
        );
      }
      return f.apply(this, arguments);
    });
  }
  for (const name of ["error", "warn"]) {
    wrap(console, name, (f) => function () {
      guard(() => {
        const args = Array.from(arguments);
        const text = args.map(describe).join(" ");
        if (name === "error" && o.captureConsole && !busy) {
          const err = args.find((a) => a instanceof Error);
          if (err) fromError("console.error", err, null, null);
          else capture("console.error", "ERROR", clip(text, 2000), null, { error_type: "ConsoleError" });
        }
        crumb("console", text, name === "warn" ? "warning" : "error");
      }).apply(this, arguments);
      return f.apply(this, arguments);
    });
  }
}

// Errors the inline snippet queued before the module loaded.
function takeOver() {
  const early = window.__faultline;
  if (!early || !Array.isArray(early.q)) return;
  try {
    early.off && early.off();
  } catch {}
  for (const [kind, ts, value, message, file, line, col] of early.q) {
    const extra = { extra: { early: true } };
    if (kind === "error") fromError("window.onerror", value, extra, { ts, file, line, col, message });
    else fromError("unhandledrejection", value, extra, { ts });
  }
  early.q.length = 0;
  delete window.__faultline;
}

function options(opts) {
  const d = {
    service: "ui",
    batchSize: 50,
    maxBatchBytes: 60000,
    flushIntervalMs: 5000,
    maxQueue: 1000,
    sampleRate: 1,
    foldWindowMs: 5000,
    maxPerPage: 500,
    maxBreadcrumbs: MAX_BREADCRUMBS,
    captureConsole: false,
  };
  const opt = { ...d, ...opts };
  const problems = [];
  if (!opt.endpoint) problems.push("endpoint is required (the server's URL, e.g. https://faultline.example.com)");
  if (!opt.key) problems.push("key is required (a public ingest key)");
  if (!/^[a-z0-9_.-]{1,64}$/.test(opt.service)) problems.push("service must be 1 to 64 chars of [a-z0-9_.-]");
  if (!(opt.sampleRate >= 0 && opt.sampleRate <= 1)) problems.push("sampleRate must be between 0 and 1");
  for (const k of ["batchSize", "maxBatchBytes", "flushIntervalMs", "maxQueue", "maxPerPage", "foldWindowMs", "maxBreadcrumbs"]) {
    if (!(Number.isFinite(opt[k]) && opt[k] >= 0)) problems.push(k + " must be a non-negative number");
  }
  const deny = [].concat(opt.denyUrlParams || []);
  opt.denyRe = deny.filter((p) => p instanceof RegExp);
  opt.denyNames = deny.filter((p) => !(p instanceof RegExp)).join("\n");
  return [opt, problems];
}

/**
 * Starts the reporter. Resolves to true once the module is loaded and capture is on, or to
 * false (with a console warning saying why) when the options are wrong.
 */
export function init(opts) {
  if (ready) return ready;
  try {
    const [opt, problems] = options(opts || {});
    if (problems.length) {
      console.warn("faultline: init ignored: " + problems.join("; "));
      return Promise.resolve(false);
    }
    o = opt;
    nativeFetch = window.fetch.bind(window);
    o.fetch = nativeFetch;
    if (Error.stackTraceLimit < 50) Error.stackTraceLimit = 50;
    // The server's root (an endpoint given with /logs/ingest works too): records and notices.
    o.base = o.endpoint.replace(/\/+$/, "").replace(/\/logs\/ingest$/, "");
    o.url = o.base + "/logs/ingest?key=" + encodeURIComponent(o.key);
    box = fallback();
    noticesFor(o);
    undo.push(() => noticeUser(undefined)); // no more reads once switched off
    hooks();
    takeOver();
  } catch (e) {
    fault(e);
    return Promise.resolve(false);
  }
  ready = loadWasm(o.wasmUrl ? { module_or_path: o.wasmUrl } : undefined)
    .then(
      guard(() => {
        wasm = true;
        core.scopeSet(7, o.salt || "", o.denyNames, o.maxBreadcrumbs);
        const key = "faultline:" + o.service + ":" + Math.random().toString(36).slice(2);
        // The module listens for the page-life events itself, through its guarded callback,
        // and detaches them on close(), a fault or a panic.
        core.outboxInit(key, o, guard(core.outboxOn));
        box = rustBox;
        for (const [f, a] of early.splice(0)) f(...a);
        return true;
      }),
      () => {
        // No WebAssembly (CSP without 'wasm-unsafe-eval', old browser): records go out
        // without parsed frames and without the scope (the module keeps it), never with the
        // raw id.
        plain = true;
        for (const [f, a] of early.splice(0)) f(...a);
        return true;
      },
    )
    .then((ok) => !dead && ok === true);
  return ready;
}

/** Reports an error (or any thrown value). `context`: `{ level, tags, extra, event, componentStack }`.
 * Returns the id of the record that carries it (for a repeat, the one it folded into; the
 * server stores the record under it), or "" when it is not sent (ignored, sampled, capped). */
export const captureException = guard((error, context) => fromError("captureException", error, context, null));

/** Reports a message at `level` (default `INFO`). `context` and the result as for captureException. */
export const captureMessage = guard((message, level, context) => {
  const l = LEVELS[String(level || "info").toLowerCase()] || "INFO";
  return capture((context && context.event) || "captureMessage", l, String(message), null, {}, context);
});

/**
 * Sets the current user. The raw id is anonymized by the module with the project's salt
 * (`"u_"` + 16 hex chars of SHA-256(salt || id)); only that is kept or sent. `null` clears.
 */
export const setUser = soon((id) => {
  if (wasm) noticeUser(core.scopeSet(3, "", id == null ? "" : String(id)) || undefined);
});

/** Adds a tag to every later record (`meta.tags`). */
export const setTag = put(0, (v) => json(String(v)));

/** Adds tags to every later record: `{ key: value, ... }`. */
export const setTags = guard((tags) => {
  for (const k in tags) setTag(k, tags[k]);
});

/** Adds a value to every later record's `meta.extra`; undefined removes it. */
export const setExtra = put(1, json);

/** Attaches a named object to every later record (`meta.contexts[name]`); null removes it. */
export const setContext = put(2, (v) => (v == null ? "" : json(v)));

const saveScope = soon((restore) => {
  if (!wasm) return;
  const user = core.scopeSet(restore ? 6 : 5, "", "");
  if (restore) noticeUser(user || undefined);
});

/** Runs `fn(scope)` with changes to the scope (through `scope.setTag`, `setTags`, `setExtra`,
 * `setContext`, `setUser`, or the module's functions) undone once it returns; returns its result. */
export function withScope(fn) {
  saveScope(false);
  try {
    return fn({ setTag, setTags, setExtra, setContext, setUser });
  } finally {
    saveScope(true);
  }
}

/** Adds a breadcrumb: `{ category, message, level, data }`. */
export const addBreadcrumb = guard((c) => {
  crumb(String(c.category || "manual"), String(c.message || ""), c.level, c.data);
});

/** Sends everything queued. Resolves to true when the server has confirmed it all. */
export function flush(timeoutMs) {
  if (!ready) return Promise.resolve(true);
  return ready.then(() => (box ? box.flush(timeoutMs) : true)).catch(() => false);
}

/** Flushes, then detaches every listener and wrapper; later calls do nothing. */
export function close(timeoutMs) {
  return flush(timeoutMs).then((ok) => {
    detach();
    dead = true;
    box && box.close();
    return ok;
  });
}

/** Counters: captured, folded, ignored, sampled, capped; the outbox's sent, dropped (queue
 * full), rejected, retries, beacons and queued; and whether the reporter is disabled. */
export function stats() {
  return { ...counts, queued: 0, ...(box && box.stats), disabled: dead };
}

/** Test hook: makes the WebAssembly module panic, as a bug in it would. */
export const __panic = guard(() => core.scopeSet(9, "", ""));
