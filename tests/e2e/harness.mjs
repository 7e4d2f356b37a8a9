// The pieces every browser test runs against: a real `faultline serve` on loopback, a
// static server for the pages and the built package (another origin, as in production),
// and headless Chromium through playwright-core.

import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const PKG = process.env.FAULTLINE_PKG || path.join(ROOT, "reporter-wasm/pkg");
export const BIN = process.env.FAULTLINE_BIN || path.join(ROOT, "target/debug/faultline");
export const ADMIN = "adm_e2e_0123456789abcdef";
export const PUBLIC_KEY = "pk_e2e_panel";
export const SALT = "e2e-public-salt";

const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".html": "text/html", ".json": "application/json" };

/** Serves `pages` (path -> HTML) and files under `dirs` (URL prefix -> folder). */
export function staticServer(pages, dirs) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (pages.has(url.pathname)) {
      res.writeHead(200, { "content-type": "text/html", "cache-control": "no-store" });
      return res.end(pages.get(url.pathname));
    }
    for (const [prefix, dir] of Object.entries(dirs)) {
      if (!url.pathname.startsWith(prefix)) continue;
      const file = path.join(dir, path.normalize(url.pathname.slice(prefix.length)));
      if (!file.startsWith(dir) || !fs.existsSync(file)) break;
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" });
      return fs.createReadStream(file).pipe(res);
    }
    res.writeHead(404).end("not found");
  });
  return listen(server);
}

function listen(server) {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      server.base = "http://127.0.0.1:" + server.address().port;
      resolve(server);
    });
  });
}

/** A TCP port free right now on loopback (for a server that must know its own origin). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts `faultline serve` with a fresh data dir and a public key for `origin`.
 * Options: `config` (TOML text, written to a file and passed as `--config`), and
 * `selfOrigin` (listen on a chosen free port and allow the server's own origin for the
 * public key too, so the demo panel it serves at `/panel` can report). */
export async function startFaultline(origin, { config, selfOrigin = false } = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "faultline-e2e-"));
  const port = selfOrigin ? await freePort() : 0;
  const origins = [origin, selfOrigin && "http://127.0.0.1:" + port].filter(Boolean).join(",");
  const env = { ...process.env };
  delete env.DATABASE_URL;
  Object.assign(env, {
    FAULTLINE_LOG: "warn",
    FAULTLINE_ADMIN_TOKEN: ADMIN,
    FAULTLINE_INGEST_KEY: "sk_e2e_secret",
    FAULTLINE_PUBLIC_KEY: PUBLIC_KEY,
    FAULTLINE_CORS_ORIGINS: origins,
    FAULTLINE_USER_SALT: SALT,
    FAULTLINE_HMAC_KEY: "e2e-hmac-secret-0123456789",
  });
  const args = ["serve", "--listen", "127.0.0.1:" + port, "--data-dir", dataDir];
  if (config) {
    const file = path.join(dataDir, "faultline.toml");
    fs.writeFileSync(file, config);
    args.push("--config", file);
  }
  const child = spawn(BIN, args, { env, stdio: ["ignore", "pipe", "inherit"] });
  const base = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("faultline printed no address in 60 s: " + out)), 60000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error("faultline exited with " + code + ": " + out)));
  });
  child.stdout.resume();
  return {
    base,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** `faultline serve` on the embedded default as `cargo xtask run` starts it (the shipped
 * rules, the demo panel allowed to report), without the Redis probe: with no Redis it would
 * fire redis_down 20 s in, which no browser test is about. */
export async function startEmbeddedDefault() {
  process.env.FAULTLINE_ALERTS_PROBES_REDIS_ENABLED = "false";
  try {
    return await startFaultline(undefined, { selfOrigin: true });
  } finally {
    delete process.env.FAULTLINE_ALERTS_PROBES_REDIS_ENABLED;
  }
}

/** Clicks `n` of the demo panel's error buttons (TypeError and setTimeout error in turn),
 * each once the previous error shows in its list. */
export async function raisePanelErrors(page, n) {
  for (let i = 0; i < n; i++) {
    const top = () => document.querySelector("#raised li")?.dataset.tag ?? null;
    const was = await page.evaluate(top);
    await page.click("#raise-" + (i % 2 ? "timeout" : "type-error"));
    await page.waitForFunction((t) => (document.querySelector("#raised li")?.dataset.tag ?? null) !== t, was);
  }
}

/** Makes `page` look hidden (or visible again) to its scripts, as when another tab comes to
 * the front (headless tabs never hide), and tells them with a `visibilitychange`. */
export function setHidden(page, hidden) {
  return page.evaluate((hidden) => {
    if (hidden) {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    } else {
      delete document.hidden;
      delete document.visibilityState;
    }
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}

/** Records matching `query` (URLSearchParams fields), newest first. */
export async function recent(base, query) {
  const qs = new URLSearchParams({ limit: "1000", ...query });
  const res = await fetch(base + "/logs/recent?" + qs, { headers: { authorization: "Bearer " + ADMIN } });
  if (!res.ok) throw new Error("/logs/recent answered " + res.status + ": " + (await res.text()));
  return (await res.json()).records;
}

/** Polls until `recent` returns at least `n` records for `q`, then waits `settleMs` more and
 * returns what is there (so a late duplicate would show). */
export async function waitFor(base, q, n = 1, timeoutMs = 15000, settleMs = 500) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await recent(base, { q });
    if (got.length >= n) {
      await new Promise((r) => setTimeout(r, settleMs));
      return recent(base, { q });
    }
    if (Date.now() > end) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A proxy in front of the server: `answer(n)` decides for the n-th POST (from 1) whether to
 * answer itself (`{ status, headers }`) or forward (`null`). Counts every POST. */
export async function proxy(target, origin, answer) {
  const seen = [];
  const server = http.createServer(async (req, res) => {
    const cors = { "access-control-allow-origin": origin, "access-control-expose-headers": "retry-after", vary: "Origin" };
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    if (req.method === "POST") seen.push({ at: Date.now(), body: body.toString() });
    const own = req.method === "POST" ? answer(seen.length) : null;
    if (own) {
      res.writeHead(own.status, { ...cors, ...own.headers, "content-type": "application/json" });
      return res.end(JSON.stringify({ error: "test proxy answer " + own.status }));
    }
    const upstream = await fetch(target + req.url, { method: req.method, headers: { ...req.headers, host: undefined }, body: req.method === "POST" ? body : undefined });
    const headers = {};
    upstream.headers.forEach((v, k) => (headers[k] = v));
    delete headers["content-length"];
    delete headers["content-encoding"];
    res.writeHead(upstream.status, headers);
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await listen(server);
  server.seen = seen;
  return server;
}

/** Headless Chromium as this machine can run it. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
}

/** A page that loads the package from the static server and calls `init` with `options`.
 * `head` goes first in <head> (the early-error snippet); `body` follows the page's button;
 * `before` runs as a classic script before the module (early errors). */
export function page({ endpoint, options = {}, head = "", body = "", before = "" }) {
  const opts = JSON.stringify({ endpoint, key: PUBLIC_KEY, salt: SALT, flushIntervalMs: 200, ...options });
  return `<!doctype html><html><head><meta charset="utf-8">${head}<title>e2e</title></head><body>
<button id="go" class="primary">Go</button>
${body}
<script>
function thrower(tag) { null.explode(tag); }
function throwType(message) { throw new TypeError(message); }
</script>
${before ? `<script>${before}</script>` : ""}
<script type="module">
import * as F from "/pkg/index.js";
window.F = F;
window.ready = F.init(${opts});
</script></body></html>`;
}

export function snippet() {
  return "<script>" + fs.readFileSync(path.join(PKG, "snippet.js"), "utf8") + "</script>";
}
