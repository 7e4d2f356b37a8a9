// Notices: what a rule with the `notice` action says about this page's user (the shipped
// `ui_user_errors`: ten errors from one user in ten minutes), read with `POST /notices`
// `{"user": "u_…"}`, the public key and the anonymized id the records carry. The raw id
// never leaves the page; the server answers only for the id asked about.
//
// No listener or no user, no request. Otherwise one read when the user is set (a notice
// still firing shows after a reload), one when an error of theirs has had time to arrive
// (flushIntervalMs + 1 s, the pending read kept if sooner), and one a minute while a
// notice shows, to see it end. Listeners hear the list when it changes.

const AFTER_MS = 1000;
const WHILE_SHOWN_MS = 60000;

const listeners = new Set();
let shown = []; // what listeners last heard
let cfg = null; // where to ask, once init has run
let user; // the anonymized id asked about
let timer = 0;
let due = 0;

function tell(list) {
  shown = list;
  for (const fn of listeners) {
    try {
      fn(list);
    } catch {}
  }
}

function schedule(ms) {
  if (!cfg || !user || !listeners.size) return;
  const at = Date.now() + ms;
  if (timer && due <= at) return;
  clearTimeout(timer);
  due = at;
  timer = setTimeout(read, ms);
}

const same = (a, b) => a.length === b.length && a.every((n, i) => n.rule === b[i].rule && n.since === b[i].since);

async function read() {
  timer = 0;
  const asked = user;
  let list = null;
  try {
    // text/plain: no preflight, as for the batches.
    const res = await cfg.fetch(cfg.url, { method: "POST", body: JSON.stringify({ user: asked }), headers: { "content-type": "text/plain" } });
    if (res.ok) list = (await res.json()).notices;
  } catch {}
  if (asked !== user) return;
  if (Array.isArray(list) && !same(list, shown)) tell(list);
  if (shown.length) schedule(WHILE_SHOWN_MS);
}

/** Called by init: where to ask, with which key, and how long a record may wait. */
export function noticesFor(o) {
  cfg = { url: o.base + "/notices?key=" + encodeURIComponent(o.key), wait: o.flushIntervalMs + AFTER_MS, fetch: o.fetch };
  schedule(0);
}

/** The current user's anonymized id changed (`undefined`: none): their notices, not another's. */
export function noticeUser(id) {
  if (id === user) return;
  user = id;
  clearTimeout(timer);
  timer = 0;
  if (shown.length) tell([]);
  schedule(0);
}

/** An error of the current user was queued: ask once it has had time to arrive. */
export function noticeError() {
  if (cfg) schedule(cfg.wait);
}

/** Calls `fn(notices)` with the current user's notices now (if any) and whenever they
 * change (`[]` when they end or the user changes). Returns a function that stops it. */
export function onNotice(fn) {
  if (typeof fn !== "function") return () => {};
  listeners.add(fn);
  if (shown.length) {
    try {
      fn(shown);
    } catch {}
  } else schedule(0);
  return () => listeners.delete(fn);
}
