// Delivery: batches by count, bytes and time; one request in flight; retries with backoff,
// jitter and Retry-After; localStorage while failing or hidden; sendBeacon on the way out.
//
// A record stays in the outbox, and in storage once persisted, until a 202 confirms it.
// Every record carries its own id, so a replay (after a beacon whose fate is unknown, a
// retry, or the next page load) is stored once by the server.

const BEACON_BYTES = 60000; // under the 64 KiB the browser allows for beacons and keepalive
const MAX_BACKOFF_MS = 60000;
const STORE_BYTES = 256000; // localStorage budget for unsent records

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
  const storeKey = "faultline:" + o.service;
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
    if (!queue.length) return Promise.resolve();
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
      queue = queue.filter((r) => !ids.includes(r.id));
      bytes = queue.reduce((s, r) => s + text(r).length, 0);
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

  // Unconfirmed records to storage, newest dropped first when over budget.
  function persist() {
    try {
      let list = queue.map(text);
      let size = list.reduce((s, j) => s + j.length, 0);
      while (size > STORE_BYTES && list.length) size -= list.pop().length;
      if (list.length) localStorage.setItem(storeKey, "[" + list.join(",") + "]");
      else localStorage.removeItem(storeKey);
    } catch {
      // Storage full or forbidden (private mode): memory only.
    }
  }

  function restore() {
    try {
      const saved = JSON.parse(localStorage.getItem(storeKey) || "[]");
      // Another tab may have stored the same records: each id once.
      const ids = new Set(queue.map((r) => r.id));
      for (const r of saved) if (r && r.id && !ids.has(r.id) && ids.add(r.id)) push(r, JSON.stringify(r));
    } catch {
      // A corrupt entry is dropped rather than breaking start-up.
      try {
        localStorage.removeItem(storeKey);
      } catch {}
    }
  }

  // The page may be going away: hand everything to beacons, keep it stored until confirmed.
  // Offline, a beacon can only fail (or slip out unpredictably as the page closes): the
  // stored copy goes out on `online` or the next load instead.
  function leave() {
    persist();
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
      flush();
    }
  }
  function onOnline() {
    retryAt = 0;
    flush();
  }
  addEventListener("pagehide", leave);
  addEventListener("online", onOnline);
  document.addEventListener("visibilitychange", onVisibility);
  restore();
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
      while (queue.length && !closed) {
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
      removeEventListener("pagehide", leave);
      removeEventListener("online", onOnline);
      document.removeEventListener("visibilitychange", onVisibility);
      persist();
    },
  };
}
