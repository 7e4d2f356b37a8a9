// The real `@sentry/browser` in headless Chromium, its DSN pointed at a real `faultline
// serve`: an uncaught error and an unhandled rejection from a page on another origin reach
// POST /api/{project}/envelope/ (the SDK's own fetch, ?sentry_key=, CORS) and are stored
// once each, under the public key's one service (ui), with their frames innermost first,
// level, type, release, tags and a re-keyed user; no raw user id is stored.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import * as esbuild from "esbuild";
import { PUBLIC_KEY, launch, recent, startFaultline, staticServer } from "./harness.mjs";

const APP = `
export function applyCoupon(code) {
  return code.discount.percent;
}
export function onCheckout() {
  applyCoupon({ code: "SAVE10" });
}
export async function chargeCard() {
  throw new Error("card declined for order o-19");
}
`;

let dir;
const pages = new Map();
let site;
let server;
let browser;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "faultline-sentry-"));
  fs.writeFileSync(path.join(dir, "app.mjs"), APP);
  fs.writeFileSync(
    path.join(dir, "entry.mjs"),
    `import * as Sentry from "@sentry/browser";
import { onCheckout, chargeCard } from "./app.mjs";
window.Sentry = Sentry;
window.onCheckout = onCheckout;
window.chargeCard = chargeCard;`,
  );
  // One unminified bundle, as an app ships the SDK (names kept, so frames read).
  await esbuild.build({
    entryPoints: [path.join(dir, "entry.mjs")],
    bundle: true,
    format: "iife",
    outfile: path.join(dir, "out/app.js"),
    nodePaths: [path.join(import.meta.dirname, "node_modules")],
    logLevel: "error",
  });
  site = await staticServer(pages, { "/static/": path.join(dir, "out") });
  server = await startFaultline(site.base);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  site?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function waitForRecords(service, n, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await recent(server.base, { service });
    if (got.length >= n || Date.now() > end) {
      await new Promise((r) => setTimeout(r, 500));
      return recent(server.base, { service });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("@sentry/browser: an uncaught error and an unhandled rejection, stored once each", async () => {
  const host = server.base.replace("http://", "");
  const dsn = `http://${PUBLIC_KEY}@${host}/5`;
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>shop</title>
<script src="/static/app.js"></script>
<script>
Sentry.init({ dsn: ${JSON.stringify(dsn)}, release: "web@3.1.0", environment: "e2e" });
Sentry.setUser({ id: "user-8841", email: "ann@example.com" });
Sentry.setTag("page", "cart");
console.log("cart opened");
</script></head><body><p>shop</p></body></html>`;
  // Another origin than the server's: the one the public key allows.
  pages.set("/shop", html);
  const context = await browser.newContext();
  const tab = await context.newPage();
  const posts = [];
  tab.on("request", (r) => r.url().includes("/envelope/") && posts.push(r.url()));
  const answers = [];
  tab.on("response", (r) => r.url().includes("/envelope/") && answers.push(r.status()));
  const failures = [];
  tab.on("requestfailed", (r) => failures.push(r.url() + " " + r.failure()?.errorText));
  await tab.goto(site.base + "/shop");
  // An error no code of the SDK wraps (a script of the page): window.onerror reports it.
  await tab.evaluate(() => {
    const script = document.createElement("script");
    script.textContent = "onCheckout()";
    document.body.append(script);
  });
  await waitForRecords("ui", 1);
  // A promise rejected with nobody to catch it.
  await tab.evaluate(() => {
    window.chargeCard();
  });
  const stored = await waitForRecords("ui", 2);
  await context.close();
  assert.deepEqual(failures, []);
  assert.ok(posts.every((u) => u.includes("sentry_key=")), posts.join("\n"));
  assert.ok(answers.length >= 2 && answers.every((s) => s === 200), JSON.stringify(answers));
  // The default integrations' session (release health) was accepted, counted, not stored.
  const metrics = await (await fetch(server.base + "/metrics")).text();
  assert.match(metrics, /faultline_sentry_items_total\{type="session",outcome="ignored"\} [1-9]/);
  assert.equal(stored.length, 2, JSON.stringify(stored, null, 1));

  const uncaught = stored.find((r) => r.event === "window.onerror");
  assert.ok(uncaught, JSON.stringify(stored.map((r) => r.event)));
  assert.equal(uncaught.level, "ERROR");
  assert.equal(uncaught.meta.error_type, "TypeError");
  assert.match(uncaught.message, /^TypeError: Cannot read properties of undefined/);
  assert.equal(uncaught.meta.release, "web@3.1.0");
  assert.equal(uncaught.meta.environment, "e2e");
  assert.equal(uncaught.meta.tags.page, "cart");
  assert.equal(uncaught.meta.sdk.name, "sentry.javascript.browser");
  assert.equal(uncaught.meta.browser?.name ?? "Chrome", "Chrome");
  assert.match(uncaught.meta.user, /^u_[0-9a-f]{16}$/);
  const fns = uncaught.meta.stack.map((f) => f.function);
  assert.equal(fns[0], "applyCoupon", "innermost first: " + fns.join(" < "));
  assert.equal(fns[1], "onCheckout", fns.join(" < "));
  assert.match(uncaught.meta.stack[0].file, /\/static\/app\.js$/);
  assert.ok(uncaught.meta.stack[0].line > 0 && uncaught.meta.stack[0].column > 0);
  assert.ok(uncaught.meta.breadcrumbs.some((c) => c.category === "console" && c.message === "cart opened"), JSON.stringify(uncaught.meta.breadcrumbs));

  const rejection = stored.find((r) => r.event === "unhandledrejection");
  assert.ok(rejection, JSON.stringify(stored.map((r) => r.event)));
  assert.equal(rejection.message, "Error: card declined for order o-19");
  assert.equal(rejection.meta.error_type, "Error");
  assert.equal(rejection.meta.stack[0].function, "chargeCard");
  assert.equal(rejection.meta.user, uncaught.meta.user, "one user, re-keyed the same");

  for (const raw of ["user-8841", "ann@example.com"]) assert.ok(!JSON.stringify(stored).includes(raw), raw);
});
