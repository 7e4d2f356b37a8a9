// Delivery: batches by count, bytes and time; one request in flight; retries with backoff,
// jitter and Retry-After; localStorage while failing or hidden; sendBeacon on the way out.
//
// A record stays in the outbox, and in storage once persisted, until a 202 confirms it.
// Every record carries its own id, so a replay (after a beacon whose fate is unknown, a
// retry, or the next page load) is stored once by the server.
//
// Each page keeps its records under its own key, `faultline:<service>:<page>`, as
// {"at": last write, "left": 1 if written while hidden or going away, "records": [...]}:
// pages (tabs) never overwrite each other's. A page claims the entries of pages that left
// (closed, or hidden and maybe killed, as mobile browsers do without a pagehide) or that have
// not written for STALE_MS (crashed, frozen), when it loads and when it comes back online:
// it stores them under its own key first, then replaces theirs with {"at", "claimed": 1}. A
// frozen page that wakes up to that mark drops what it had stored: the claimer sends those.
// (An entry that is simply missing, as after localStorage.clear(), is written again.)

const BEACON_BYTES = 60000; // under the 64 KiB the browser allows for beacons and keepalive
const MAX_BACKOFF_MS = 60000;
const STORE_BYTES = 256000; // localStorage budget for a page's unsent records
const STALE_MS = 600000; // a page that has not rewritten its entry for this long is gone

export function outbox(o) {
  // queue: { id, rec, json } in capture order; `json` is null after a fold changed `rec`.
  let queue = [];
  let flying = [];
  let beaconed = new Set(); // ids handed to a beacon since the page was last visible
  let bytes = 0;
  let inFlight = null;
  let timer = 0;
  let retryAt = 0;
  let failures = 0;
  let closed = false;
  // From pagehide to pageshow no request starts: the way out is the beacons and the stored
  // entry (which the next page claims), and a request started now would race that claim.
  let gone = false;
  const prefix = "faultline:" + o.service; // also the one key all pages shared in earlier versions
  const storeKey = prefix + ":" + Math.random().toString(36).slice(2);
  let stored = new Set(); // ids of the records this page last wrote to its entry
  const base = o.endpoint.replace(/\/+$/, "");
  const url = (/\/logs\/ingest$/.test(base) ? base : base + "/logs/ingest") + "?key=" + encodeURIComponent(o.key);
  const send = o.fetch || fetch;
  const stats = { sent: 0, dropped: 0, retries: 0, beacons: 0, rejected: 0 };

  function push(rec, json) {
    if (queue.length >= o.maxQueue) {
      stats.dropped++;
      return false;
    }
    queue.push({ id: rec.id, rec, json });
    bytes += json.length;
    return true;
  }

  const text = (r) => r.json || (r.json = JSON.stringify(r.rec));

  function keep(test) {
    queue = queue.filter(test);
    bytes = queue.reduce((s, r) => s + text(r).length, 0);
  }

  function schedule(ms) {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = 0;
      flush();
    }, ms);
  }

  // The first records that fit one request.
  function batch(limit) {
    let n = 0;
    let size = 2;
    while (n < queue.length && n < o.batchSize) {
      const next = size + text(queue[n]).length + 1;
      if (n > 0 && next > limit) break;
      size = next;
      n++;
    }
    return n;
  }

  function body(n) {
    return "[" + queue.slice(0, n).map(text).join(",") + "]";
  }

  function flush() {
    if (inFlight) return inFlight;
    claimed();
    if (!queue.length || gone) return Promise.resolve();
    const wait = retryAt - Date.now();
    if (wait > 0) {
      schedule(wait);
      return Promise.resolve();
    }
    const n = batch(o.maxBatchBytes);
    const ids = (flying = queue.slice(0, n).map((r) => r.id));
    inFlight = send(url, {
      method: "POST",
      // text/plain needs no CORS preflight: one round trip per batch.
      headers: { "content-type": "text/plain" },
      body: body(n),
      keepalive: bytes < BEACON_BYTES,
      credentials: "omit",
    })
      .then(
        (res) => settle(ids, res.status, res.headers.get("retry-after")),
        () => settle(ids, 0, null),
      )
      .finally(() => {
        inFlight = null;
        flying = [];
        if (queue.length && !closed) schedule(retryAt > Date.now() ? retryAt - Date.now() : 0);
      });
    return inFlight;
  }

  function settle(ids, status, retryAfter) {
    const done = status === 202 || (status >= 400 && status < 500 && status !== 408 && status !== 429);
    if (done) {
      // Confirmed, or refused for good (a 4xx other than 408/429 will never succeed).
      keep((r) => !ids.includes(r.id));
      if (status === 202) stats.sent += ids.length;
      else stats.rejected += ids.length;
      failures = 0;
      retryAt = 0;
      persist();
      return;
    }
    stats.retries++;
    failures++;
    const hinted = Number(retryAfter) * 1000;
    const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (failures - 1));
    retryAt = Date.now() + (hinted > 0 ? hinted : backoff * (0.5 + Math.random() / 2));
    persist();
  }

  // Unconfirmed records to this page's entry, newest dropped first when over budget.
  // `left` (the page is going away), or hidden: another page may claim them.
  function persist(left) {
    try {
      claimed();
      let list = queue.map(text);
      let size = list.reduce((s, j) => s + j.length, 0);
      while (size > STORE_BYTES && list.length) size -= list.pop().length;
      stored = new Set(queue.slice(0, list.length).map((r) => r.id));
      if (list.length) localStorage.setItem(storeKey, '{"at":' + Date.now() + (left || document.visibilityState === "hidden" ? ',"left":1' : "") + ',"records":[' + list.join(",") + "]}");
      else localStorage.removeItem(storeKey);
    } catch {
      // Storage full or forbidden (private mode): memory only.
    }
  }

  // Whether another page claimed this one's entry (it looked gone): those records are its.
  function claimed() {
    try {
      if (stored.size && /"claimed":1}$/.test(localStorage.getItem(storeKey))) {
        keep((r) => !stored.has(r.id));
        stored = new Set();
      }
    } catch {}
  }

  // Takes over the entries of pages that are gone, and the shared entry of older versions.
  // Ours first: a page that claimed ours holds them in its entry, which we may take.
  function claim() {
    try {
      claimed();
      const taken = [];
      const ids = new Set(queue.map((r) => r.id));
      for (const k of Object.keys(localStorage)) {
        if (k === storeKey || (k !== prefix && !k.startsWith(prefix + ":"))) continue;
        let v;
        try {
          v = JSON.parse(localStorage.getItem(k));
        } catch {} // a corrupt entry is taken, with nothing in it
        const old = Array.isArray(v);
        const stale = !(Date.now() - (v && v.at) < STALE_MS);
        if (v && v.claimed) {
          if (stale) localStorage.removeItem(k); // its page never came back
          continue;
        }
        if (v && !old && !v.left && !stale) continue; // a live page's
        taken.push(k);
        // push() stops at maxQueue (counting the rest as dropped); persist() at STORE_BYTES.
        for (const r of (old ? v : v && v.records) || []) if (r && r.id && !ids.has(r.id) && ids.add(r.id)) push(r, JSON.stringify(r));
      }
      if (!taken.length) return;
      // Ours first: a page that closes now leaves the records stored twice, never nowhere.
      persist();
      for (const k of taken) localStorage.setItem(k, '{"at":' + Date.now() + ',"claimed":1}');
    } catch {}
  }

  // The page may be going away: hand everything to beacons, keep it stored until confirmed.
  // Offline, a beacon can only fail (or slip out unpredictably as the page closes): the
  // stored copy goes out on `online` or the next load instead.
  function leave() {
    persist(true);
    const all = queue.filter((r) => !beaconed.has(r.id));
    if (!all.length || !navigator.sendBeacon || navigator.onLine === false) return;
    let start = 0;
    let size = 0;
    for (let i = 0; i <= all.length; i++) {
      const len = i < all.length ? text(all[i]).length + 1 : 0;
      if (i === all.length || (i > start && size + len > BEACON_BYTES)) {
        const blob = new Blob(["[" + all.slice(start, i).map(text).join(",") + "]"], { type: "text/plain" });
        try {
          if (navigator.sendBeacon(url, blob)) {
            stats.beacons++;
            for (const r of all.slice(start, i)) beaconed.add(r.id);
          }
        } catch {}
        start = i;
        size = 0;
      }
      size += len;
    }
  }

  function onVisibility() {
    if (document.visibilityState === "hidden") leave();
    else {
      // Back from hidden: beacons may or may not have arrived; ids make a resend safe.
      beaconed = new Set();
      onShow();
      flush();
    }
  }
  function onHide() {
    gone = true;
    leave();
  }
  function onOnline() {
    if (gone) return;
    retryAt = 0;
    claim();
    flush();
  }
  // Visible again, or back from the back/forward cache: the entry is this page's again
  // (unless another page claimed it meanwhile).
  function onShow() {
    gone = false;
    if (stored.size) persist();
  }
  addEventListener("pagehide", onHide);
  addEventListener("pageshow", onShow);
  addEventListener("online", onOnline);
  document.addEventListener("visibilitychange", onVisibility);
  claim();
  if (queue.length) schedule(0);

  return {
    stats,
    // Queues a record (`json`: its serialization, when the caller has it); false when the
    // outbox is full (the record is counted as dropped).
    add(rec, json) {
      if (!push(rec, json || JSON.stringify(rec))) return false;
      if (queue.length >= o.batchSize || bytes >= o.maxBatchBytes) {
        clearTimeout(timer);
        timer = 0;
        flush();
      } else schedule(o.flushIntervalMs);
      return true;
    },
    // Folds a repeat into a queued record that no request carries yet.
    bump(id) {
      if (flying.includes(id)) return false;
      const r = queue.find((r) => r.id === id);
      if (!r) return false;
      r.rec.meta.count = (r.rec.meta.count || 1) + 1;
      r.json = null;
      return true;
    },
    // Sends until the outbox is empty, honoring Retry-After, for at most `timeoutMs`;
    // true when everything was confirmed.
    async flush(timeoutMs) {
      const end = Date.now() + (timeoutMs ?? 10000);
      while (queue.length && !closed && !gone) {
        const wait = Math.max(0, retryAt - Date.now());
        if (Date.now() + wait >= end) break;
        if (wait) await new Promise((r) => setTimeout(r, wait));
        await flush();
      }
      return !queue.length;
    },
    size: () => queue.length,
    close() {
      closed = true;
      clearTimeout(timer);
      removeEventListener("pagehide", onHide);
      removeEventListener("pageshow", onShow);
      removeEventListener("online", onOnline);
      document.removeEventListener("visibilitychange", onVisibility);
      persist();
    },
  };
}
