// The browser reporter end to end: the built npm package in headless Chromium, sending to a
// real `faultline serve`; every case checked in /logs/recent, with parsed frames.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import * as esbuild from "esbuild";
import { PKG, launch, page, proxy, recent, snippet, startFaultline, staticServer, waitFor } from "./harness.mjs";

const pages = new Map();
let web;
let server;
let browser;
const bodies = []; // every request body the pages sent to the server
const RAW_USER = "alice.raw-id@example.com";

before(async () => {
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), "faultline-bundle-"));
  await esbuild.build({
    entryPoints: [path.join(import.meta.dirname, "fixtures/react-app.jsx")],
    bundle: true,
    format: "esm",
    minify: true,
    keepNames: true, // component names in the component stack, as with source maps
    outfile: path.join(bundle, "app.js"),
    alias: { "faultline-reporter": PKG },
    // The package's `react` import resolves to this folder's copy.
    nodePaths: [path.join(import.meta.dirname, "node_modules")],
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "warning",
  });
  // The glue finds the module next to the script that loaded it.
  fs.copyFileSync(path.join(PKG, "faultline_reporter_bg.wasm"), path.join(bundle, "faultline_reporter_bg.wasm"));
  web = await staticServer(pages, { "/pkg/": PKG, "/bundle/": bundle });
  server = await startFaultline(web.base);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  web?.close();
  // Privacy: the raw user id never left any page, in any request.
  assert.ok(bodies.length > 0);
  for (const b of bodies) assert.ok(!b.includes(RAW_USER), "raw user id sent: " + b.slice(0, 300));
});

let n = 0;
/** A fresh page (own context: own storage) at a new path; returns it and a unique tag. */
async function open(html, contextOptions) {
  const name = "/page/" + ++n;
  pages.set(name, typeof html === "function" ? html(name) : html);
  const context = await browser.newContext(contextOptions);
  const p = await context.newPage();
  const pageErrors = [];
  p.on("pageerror", (e) => pageErrors.push(e));
  p.on("request", (r) => {
    if (r.method() === "POST" && r.url().includes("/logs/ingest")) bodies.push(r.postData() || "");
  });
  await p.goto(web.base + name);
  await p.waitForFunction(() => window.ready);
  assert.equal(await p.evaluate(() => window.ready), true, "init resolved to true");
  return { p, context, pageErrors, tag: "t" + n + "x" + Math.random().toString(36).slice(2, 8) };
}

function frames(rec) {
  assert.ok(Array.isArray(rec.meta.stack) && rec.meta.stack.length > 0, "parsed frames: " + JSON.stringify(rec.meta));
  const top = rec.meta.stack[0];
  assert.ok(top.file && top.line > 0 && top.column > 0, "top frame has a place: " + JSON.stringify(top));
  return rec.meta.stack;
}

test("a thrown error arrives with parsed frames, an anonymized user and breadcrumbs", async () => {
  // The page's own window.onerror, installed before the reporter, keeps running.
  const before = "window.onerror = function () { window.prior = (window.prior || 0) + 1; };";
  const { p, context, tag } = await open(page({ endpoint: server.base, before }));
  await p.click("#go");
  await p.evaluate(
    ([tag, user]) => {
      F.setUser(user);
      F.setTag("plan", "pro");
      setTimeout(() => thrower(tag));
      setTimeout(() => throwType("thrown " + tag));
    },
    [tag, RAW_USER],
  );
  await p.evaluate(() => new Promise((r) => setTimeout(r, 50)));
  assert.equal(await p.evaluate(() => F.flush()), true);
  const [rec] = await waitFor(server.base, "thrown " + tag);
  assert.equal(rec.event, "window.onerror");
  assert.equal(rec.level, "ERROR");
  assert.equal(rec.service, "ui");
  assert.equal(rec.meta.error_type, "TypeError");
  assert.equal(rec.meta.tags.plan, "pro");
  assert.ok(rec.meta.url.includes("/page/"));
  const stack = frames(rec);
  assert.ok(stack[0].file.startsWith(web.base + "/page/"), JSON.stringify(stack[0]));
  assert.ok(rec.meta.breadcrumbs.some((c) => c.category === "ui.click" && c.message.includes("button#go.primary")));
  const other = (await recent(server.base, { q: "explode" })).find((r) => r.meta.url === rec.meta.url);
  assert.ok(other, "the TypeError from null.explode arrived");
  assert.equal(frames(other)[0].function, "thrower");
  // The server finds both by the raw id: the page anonymized it with the server's salt.
  assert.match(rec.meta.user, /^u_[0-9a-f]{16}$/);
  const byUser = (await recent(server.base, { raw_user: RAW_USER })).map((r) => r.id);
  assert.ok(byUser.includes(rec.id) && byUser.includes(other.id), JSON.stringify(byUser));
  assert.equal(stack[0].function, "throwType");
  assert.equal(await p.evaluate(() => window.prior), 2, "the page's own handler saw both errors");
  await context.close();
});

test("a rejected promise with a non-Error reason", async () => {
  const { p, context, tag } = await open(page({ endpoint: server.base }));
  await p.evaluate((tag) => {
    Promise.reject({ code: 42, why: "nope " + tag });
  }, tag);
  await p.evaluate(() => new Promise((r) => setTimeout(r, 50)));
  assert.equal(await p.evaluate(() => F.flush()), true);
  const recs = await waitFor(server.base, tag);
  assert.equal(recs.length, 1);
  assert.equal(recs[0].event, "unhandledrejection");
  assert.equal(recs[0].meta.error_type, "UnhandledRejection");
  assert.ok(recs[0].message.startsWith("Non-Error promise rejection: "), recs[0].message);
  assert.ok(recs[0].message.includes('"code":42'), recs[0].message);
  await context.close();
});

test("an error raised before the module loaded is taken over on init", async () => {
  const html = page({ endpoint: server.base, head: snippet(), before: "function early(){ throw new Error('early ' + location.pathname) } early();" });
  const { p, context } = await open(html);
  const where = await p.evaluate(() => location.pathname);
  assert.equal(await p.evaluate(() => F.flush()), true);
  const recs = await waitFor(server.base, "early " + where);
  assert.equal(recs.length, 1);
  assert.equal(recs[0].meta.extra.early, true);
  assert.equal(frames(recs[0])[0].function, "early");
  assert.equal(await p.evaluate(() => window.__faultline), undefined, "the snippet handed over");
  await context.close();
});

test("an error followed by an immediate navigation is delivered by beacon", async () => {
  // A long flush interval: only the page's way out can deliver it.
  const { p, context, tag } = await open(page({ endpoint: server.base, options: { flushIntervalMs: 600000 } }));
  await p.evaluate((tag) => {
    setTimeout(() => {
      throw new Error("leaving " + tag);
    });
    setTimeout(() => (location.href = "/nowhere"), 5);
  }, tag);
  await p.waitForURL("**/nowhere");
  const recs = await waitFor(server.base, "leaving " + tag);
  assert.equal(recs.length, 1);
  frames(recs[0]);
  await context.close();
});

test("offline, then online: delivered once", async () => {
  const { p, context, tag } = await open(page({ endpoint: server.base }));
  await context.setOffline(true);
  await p.evaluate((tag) => {
    setTimeout(() => {
      throw new Error("offline " + tag);
    });
  }, tag);
  await p.evaluate(() => new Promise((r) => setTimeout(r, 50)));
  assert.equal(await p.evaluate(() => F.flush(300)), false, "nothing can be confirmed offline");
  const stored = await p.evaluate(() => localStorage.getItem("faultline:ui") || "");
  assert.ok(stored.includes("offline "), "kept in localStorage while offline");
  assert.equal((await recent(server.base, { q: tag })).length, 0);
  await context.setOffline(false);
  const recs = await waitFor(server.base, "offline " + tag, 1, 15000, 1500);
  assert.equal(recs.length, 1);
  frames(recs[0]);
  await p.waitForFunction(() => !localStorage.getItem("faultline:ui"));
  await context.close();
});

test("a 429 then 202: delivered once, after Retry-After", async () => {
  const front = await proxy(server.base, web.base, (i) => (i === 1 ? { status: 429, headers: { "retry-after": "1" } } : null));
  const { p, context, tag } = await open(page({ endpoint: front.base }));
  await p.evaluate((tag) => {
    setTimeout(() => {
      throw new Error("limited " + tag);
    });
  }, tag);
  await p.evaluate(() => new Promise((r) => setTimeout(r, 50)));
  assert.equal(await p.evaluate(() => F.flush(10000)), true);
  const recs = await waitFor(server.base, "limited " + tag);
  assert.equal(recs.length, 1);
  frames(recs[0]);
  const posts = front.seen.filter((s) => s.body.includes(tag));
  assert.equal(posts.length, 2, "one refused, one accepted");
  assert.ok(posts[1].at - posts[0].at >= 950, "waited for Retry-After: " + (posts[1].at - posts[0].at) + " ms");
  assert.equal(await p.evaluate(() => F.stats().retries), 1);
  front.close();
  await context.close();
});

test("500 identical errors fold into a count", async () => {
  const { p, context, tag } = await open(page({ endpoint: server.base }));
  await p.evaluate((tag) => {
    for (let i = 0; i < 500; i++)
      setTimeout(() => {
        throw new Error("loop " + tag);
      });
  }, tag);
  await p.evaluate(() => new Promise((r) => setTimeout(r, 200)));
  assert.equal(await p.evaluate(() => F.flush()), true);
  const recs = await waitFor(server.base, "loop " + tag);
  assert.ok(recs.length >= 1 && recs.length <= 3, recs.length + " records");
  assert.equal(recs.reduce((s, r) => s + (r.meta.count || 1), 0), 500);
  frames(recs[0]);
  await context.close();
});

test("a React render error through ErrorBoundary, with the component stack", async () => {
  const html = (name) => `<!doctype html><html><body><div id="root"></div><script>window.CONFIG=${JSON.stringify({ endpoint: server.base, key: "pk_e2e_panel", salt: "e2e-public-salt", flushIntervalMs: 200, wasmUrl: web.base + "/bundle/faultline_reporter_bg.wasm", tag: "react " + name })}</script><script type="module" src="/bundle/app.js"></script></body></html>`;
  const { p, context, pageErrors } = await open(html);
  const where = await p.evaluate(() => location.pathname);
  await p.click("#boom");
  await p.waitForSelector("#fallback");
  assert.equal(await p.evaluate(() => window.F.flush()), true);
  const recs = await waitFor(server.base, "react " + where);
  assert.equal(recs.length, 1, JSON.stringify(recs.map((r) => r.event)));
  assert.equal(recs[0].event, "react.error_boundary");
  assert.ok(recs[0].meta.component_stack.includes("Bomb"), recs[0].meta.component_stack);
  frames(recs[0]);
  assert.equal(pageErrors.length, 0);
  await context.close();
});

test("a panic inside the module is reported once and switches the reporter off", async () => {
  const { p, context, pageErrors, tag } = await open(page({ endpoint: server.base }));
  await p.evaluate(() => F.__panic());
  assert.equal(await p.evaluate(() => F.stats().disabled), true);
  await p.evaluate((tag) => {
    F.captureMessage("after the panic " + tag);
    return F.flush();
  }, tag);
  const where = await p.evaluate(() => location.pathname);
  const recs = await waitFor(server.base, "panicked");
  assert.equal(recs.filter((r) => r.event === "faultline.reporter" && r.meta.url.endsWith(where)).length, 1);
  assert.equal((await recent(server.base, { q: "after the panic " + tag })).length, 0);
  assert.equal(pageErrors.length, 0, "nothing escaped into the page: " + pageErrors.join("; "));
  // The page's own functions work as before the reporter came.
  assert.equal(await p.evaluate(() => typeof fetch("/nowhere").then), "function");
  await context.close();
});

test("records kept offline are sent by the next page load, once", async () => {
  const html = page({ endpoint: server.base });
  const { p, context, tag } = await open(html);
  await context.setOffline(true);
  await p.evaluate((tag) => setTimeout(() => throwType("reloaded " + tag)), tag);
  await p.evaluate(() => new Promise((r) => setTimeout(r, 50)));
  assert.equal(await p.evaluate(() => F.flush(300)), false);
  await p.close(); // the page is gone; its record is only in localStorage now
  await context.setOffline(false);
  assert.equal((await recent(server.base, { q: tag })).length, 0);
  const next = await context.newPage();
  await next.goto(p.url());
  await next.waitForFunction(() => window.ready);
  const recs = await waitFor(server.base, "reloaded " + tag, 1, 15000, 1500);
  assert.equal(recs.length, 1);
  assert.equal(frames(recs[0])[0].function, "throwType");
  await context.close();
});

test("a failing beforeSend drops the record without reporting itself or reaching the page", async () => {
  // The page's own filter throws for one record: that record is dropped (it may hold what
  // the filter was meant to scrub) and the filter's error is neither reported nor thrown.
  const filtered = page({ endpoint: server.base }).replace(
    /F\.init\((\{.*\})\);/,
    (_, o) =>
      `F.init({...${o}, beforeSend(r) { window.calls = (window.calls || 0) + 1; if (r.message.includes("secret")) throw new Error("filter broke"); return r; }});`,
  );
  assert.ok(filtered.includes("beforeSend"));
  const { p, context, pageErrors, tag } = await open(filtered);
  await p.evaluate((tag) => {
    F.captureMessage("secret " + tag);
    F.captureMessage("public " + tag);
  }, tag);
  assert.equal(await p.evaluate(() => F.flush()), true);
  assert.equal((await waitFor(server.base, "public " + tag)).length, 1);
  assert.equal((await recent(server.base, { q: "secret " + tag })).length, 0);
  assert.equal((await recent(server.base, { q: "filter broke" })).length, 0, "the filter's error was not reported");
  assert.equal(await p.evaluate(() => window.calls), 2);
  assert.equal(await p.evaluate(() => F.stats().ignored), 1);
  assert.equal(pageErrors.length, 0);
  await context.close();
});
