// The dashboard's issue pages against a real `faultline serve`, in headless Chromium: error
// records sent to the API group into issues (one per fingerprint), the list shows them with
// their counts and sparklines, sorts, filters and pages through the URL, an issue opens by
// deep link and survives a reload (and a fresh tab), and resolving it, then a new event,
// shows the regression, in the page and through the API.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { ADMIN, ROOT, launch, setHidden, startFaultline } from "./harness.mjs";

const SHOTS = path.join(ROOT, "target/screenshots");
const HOUR = 3600e3;

let server;
let browser;
let context;
let tab;
const urls = [];
const pageErrors = [];
const cspViolations = [];

before(async () => {
  server = await startFaultline();
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  context.on("request", (r) => urls.push(r.url()));
  await context.exposeFunction("__cspViolation", (v) => cspViolations.push(v));
  await context.addInitScript(() =>
    document.addEventListener("securitypolicyviolation", (e) => window.__cspViolation(`${e.violatedDirective} ${e.blockedURI}`)),
  );
  context.on("page", (p) => p.on("pageerror", (e) => pageErrors.push(e)));
  tab = await context.newPage();
  fs.mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  for (const u of urls) assert.ok(!u.includes(ADMIN), "token in a URL: " + u);
  assert.deepEqual(pageErrors.map(String), [], "the dashboard threw");
  assert.deepEqual(cspViolations, [], "a page broke its Content-Security-Policy");
});

async function ingest(records) {
  const res = await fetch(server.base + "/logs/ingest", {
    method: "POST",
    headers: { authorization: "Bearer sk_e2e_secret", "content-type": "application/json" },
    body: JSON.stringify(records),
  });
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  assert.equal(body.accepted, records.length, JSON.stringify(body));
}

async function admin(pathAndQuery, init = {}) {
  const res = await fetch(server.base + pathAndQuery, {
    ...init,
    headers: { authorization: "Bearer " + ADMIN, accept: "application/json", "content-type": "application/json", ...init.headers },
  });
  const body = await res.json();
  assert.ok(res.ok, pathAndQuery + " answered " + res.status + ": " + JSON.stringify(body));
  return body;
}

/** Polls `GET /issues?...` until `done(issues)` holds; returns the last answer. */
async function issuesUntil(query, done, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const { issues } = await admin("/issues?" + new URLSearchParams(query));
    if (done(issues) || Date.now() > end) return issues;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The same TypeError thrown in renderInvoice from two deploys (other bundle hash, other
// line) is one issue; thrown in loadOrders it is another. A message that differs only in
// its numbers is one issue without frames. One issue was last seen three days ago.
const bundle = (hash) => `https://shop.example/assets/index-${hash}.js`;
const frames = (fn, line, hash) => [
  { function: fn, file: bundle(hash), line, column: 17 },
  { function: "App", file: bundle(hash), line: 40, column: 3 },
];
const nullTotal = "Cannot read properties of null (reading 'total')";
const CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
function uiError(ts, fn, line, hash, user, release, extra = {}) {
  return {
    ts: new Date(ts).toISOString(),
    service: "ui",
    level: "ERROR",
    event: "window.onerror",
    message: nullTotal,
    meta: {
      error_type: "TypeError",
      stack: frames(fn, line, hash),
      user,
      release,
      environment: "production",
      url: "https://shop.example/invoices/7?tab=items",
      user_agent: release === "shop@1.0.1" ? FIREFOX : CHROME,
      breadcrumbs: [{ category: "ui.click", message: "button#pay" }],
      ...extra,
    },
  };
}
const apiError = (ts, event, message) => ({ ts: new Date(ts).toISOString(), service: "api", level: "ERROR", event, message });

/** Rows of the list as `{ id, culprit, title, count, users, spark, status }`. */
async function rows() {
  return tab.locator("#issues tbody tr").evaluateAll((trs) =>
    trs.map((tr) => ({
      id: tr.dataset.id,
      title: tr.querySelector("td.title a").textContent,
      culprit: tr.querySelector(".culprit").textContent,
      count: Number(tr.querySelector("td.count").textContent),
      users: Number(tr.querySelector("td.users").textContent),
      spark: Number(tr.querySelector("svg.sparkline").dataset.total),
      status: tr.dataset.status,
      regressed: !!tr.querySelector(".pill.regressed"),
    })),
  );
}

/** Waits until the list has `n` rows (and no load pending), then returns them. */
async function rowsWhen(n) {
  await tab.waitForFunction((n) => !document.querySelector(".issues .loading") && document.querySelectorAll("#issues tbody tr").length === n, n, { timeout: 10000 });
  return rows();
}

/** A screenshot of the page down to the bottom of `selector` (docs/issues.png is one). */
async function shot(name, selector) {
  const box = await tab.locator(selector).boundingBox();
  const width = tab.viewportSize().width;
  await tab.screenshot({ path: path.join(SHOTS, name), clip: { x: 0, y: 0, width, height: Math.ceil(box.y + box.height + 16) }, fullPage: true });
}

const byCulprit = (list, fn) => list.find((r) => r.culprit.includes(fn));
let ids; // issue ids by function (or "payment" / "export")

test("errors sent to the API group into issues: same function on two deploys is one, another function another", async () => {
  const now = Date.now();
  await ingest([
    uiError(now - 2 * HOUR, "renderInvoice", 120, "3f2a9c1b", "alice", "shop@1.0.0"),
    uiError(now - 60e3, "renderInvoice", 131, "9d8e7f6a", "bob", "shop@1.0.1"),
    uiError(now - 30e3, "renderInvoice", 120, "3f2a9c1b", "alice", "shop@1.0.0"),
    uiError(now - 20e3, "loadOrders", 120, "3f2a9c1b", "carol", "shop@1.0.0"),
    apiError(now - 50e3, "payment_failed", "payment 4013 failed for user 7"),
    apiError(now - 40e3, "payment_failed", "payment 4026 failed for user 8"),
    apiError(now - 3 * 24 * HOUR, "export_failed", "nightly export to bucket s3://reports failed"),
  ]);
  const issues = await issuesUntil({ status: "all" }, (l) => l.length >= 4 && l.reduce((a, i) => a + i.count, 0) >= 7);
  assert.equal(issues.length, 4, JSON.stringify(issues, null, 1));
  const find = (pred) => issues.find(pred);
  const invoice = find((i) => i.culprit.includes("renderInvoice"));
  const orders = find((i) => i.culprit.includes("loadOrders"));
  const payment = find((i) => i.title.includes("payment"));
  const exportIssue = find((i) => i.title.includes("export"));
  assert.ok(invoice && orders && payment && exportIssue, JSON.stringify(issues, null, 1));
  assert.equal(invoice.count, 3);
  assert.equal(invoice.users, 2);
  assert.equal(orders.count, 1);
  assert.equal(payment.count, 2);
  ids = { renderInvoice: invoice.id, loadOrders: orders.id, payment: payment.id, export: exportIssue.id };
});

test("Issues is the first page: the list shows each issue's title, culprit, counts, users and 24-hour sparkline", async () => {
  await tab.goto(server.base + "/");
  await tab.fill("#token", ADMIN);
  await tab.click("#sign-in");
  const list = await rowsWhen(4);
  assert.equal(await tab.locator("#nav-issues").getAttribute("aria-current"), "page");
  const invoice = byCulprit(list, "renderInvoice");
  assert.equal(invoice.id, ids.renderInvoice);
  assert.match(invoice.title, /TypeError/);
  assert.deepEqual([invoice.count, invoice.users, invoice.spark, invoice.status], [3, 2, 3, "unresolved"]);
  const orders = byCulprit(list, "loadOrders");
  assert.deepEqual([orders.count, orders.users, orders.spark], [1, 1, 1]);
  const exportRow = list.find((r) => r.id === ids.export);
  assert.equal(exportRow.spark, 0, "seen three days ago: nothing in the last 24 hours");
  // Relative times with the exact one on hover.
  const firstSeen = tab.locator(`#issues tr[data-id="${ids.renderInvoice}"] td.first-seen time`);
  assert.equal((await firstSeen.innerText()).trim(), "2 h ago");
  assert.match(await firstSeen.getAttribute("title"), /\d/);
  assert.match((await tab.locator(`#issues tr[data-id="${ids.export}"] td.last-seen`).innerText()).trim(), /^3 d ago$/);
  await shot("issues.png", ".issues");
});

test("no polling while the tab is hidden; shown again, the page refreshes at once", async () => {
  await tab.goto(server.base + "/issues");
  await rowsWhen(4);
  const api = (r) => /^\/(issues|alerts|logs|system)\b/.test(new URL(r.url()).pathname);
  const polls = [];
  const seen = (r) => api(r) && polls.push(r.url());
  tab.on("request", seen);
  await setHidden(tab, true);
  await tab.waitForTimeout(1000); // a request already under way may still finish
  const before = polls.length;
  await tab.waitForTimeout(6000); // past the list's 5 s and the top bar's 2 s
  assert.deepEqual(polls.slice(before), [], "requests while hidden");
  const refreshed = tab.waitForRequest((r) => new URL(r.url()).pathname === "/issues", { timeout: 1500 });
  await setHidden(tab, false);
  await refreshed;
  tab.off("request", seen);
});

test("sort, filters and pages live in the URL: a link reproduces the view", async () => {
  // Sorted by events: 3, 2, then the two with 1.
  await tab.goto(server.base + "/issues?sort=count");
  let list = await rowsWhen(4);
  assert.deepEqual(list.slice(0, 2).map((r) => r.id), [ids.renderInvoice, ids.payment]);
  assert.equal(await tab.inputValue("#issues-sort"), "count");
  // The Users header sorts by users and says so in the URL.
  await tab.click('#issues th a[data-sort="users"]');
  await tab.waitForURL(/\/issues\?sort=users$/);
  list = await rowsWhen(4);
  assert.equal(list[0].id, ids.renderInvoice);
  // Service.
  await tab.goto(server.base + "/issues?service=api");
  list = await rowsWhen(2);
  assert.deepEqual(new Set(list.map((r) => r.id)), new Set([ids.payment, ids.export]));
  assert.equal(await tab.inputValue("#issues-service"), "api");
  // Time: the export issue was last seen three days ago.
  await tab.goto(server.base + "/issues?since=24h");
  list = await rowsWhen(3);
  assert.ok(!list.some((r) => r.id === ids.export));
  await tab.selectOption("#issues-since", "7d");
  await tab.waitForURL(/\/issues\?since=7d$/);
  await rowsWhen(4);
  // Back walks the views.
  await tab.goBack();
  await tab.waitForURL(/\/issues\?since=24h$/);
  await rowsWhen(3);
  // Status: nothing resolved yet.
  await tab.goto(server.base + "/issues?status=resolved");
  await tab.waitForSelector("#issues-empty");
  assert.match(await tab.locator("#issues-empty").innerText(), /No issues match/);
  // Pages of two, with the server's cursor in the URL.
  await tab.goto(server.base + "/issues?status=all&limit=2");
  const first = await rowsWhen(2);
  await tab.click("#issues-next");
  await tab.waitForURL(/[?&]cursor=/);
  const second = await rowsWhen(2);
  const seen = new Set([...first, ...second].map((r) => r.id));
  assert.equal(seen.size, 4, "two pages of two cover the four issues once");
  await tab.click("#issues-first");
  await tab.waitForURL(/\/issues\?status=all&limit=2$/);
  assert.deepEqual((await rowsWhen(2)).map((r) => r.id), first.map((r) => r.id));
});

test("an issue opens by deep link and survives a reload and a fresh tab: latest event with frames, events, hourly chart, top values", async () => {
  await tab.goto(server.base + "/issues");
  await rowsWhen(4);
  await tab.click(`#issues tr[data-id="${ids.renderInvoice}"] td.title a`);
  await tab.waitForURL(new RegExp("/issues/" + ids.renderInvoice + "$"));
  await checkIssuePage(tab);
  await shot("issue.png", ".issue-page");

  await tab.reload();
  await checkIssuePage(tab);

  // The page is index.html for a browser, the issue as JSON for an API client.
  const asPage = await fetch(server.base + "/issues/" + ids.renderInvoice, { headers: { accept: "text/html" } });
  assert.equal(asPage.status, 200);
  assert.match(asPage.headers.get("content-type"), /text\/html/);
  assert.match(asPage.headers.get("vary"), /Accept/);
  assert.match(await asPage.text(), /<div id="root">/);

  // A fresh tab (no token in its sessionStorage) asks for the token, then shows the issue.
  const fresh = await context.newPage();
  await fresh.goto(server.base + "/issues/" + ids.renderInvoice);
  await fresh.fill("#token", ADMIN);
  await fresh.click("#sign-in");
  await checkIssuePage(fresh);
  await fresh.close();

  // An event from the list shows in full, with a link of its own.
  const older = tab.locator("#issue-events tbody tr").last();
  const olderId = await older.getAttribute("data-id");
  await older.click();
  await tab.waitForURL(new RegExp("\\?event=" + olderId + "$"));
  await tab.locator(".issue-event h2", { hasText: "An earlier event" }).waitFor();
  assert.equal(await tab.locator("#issue-events tr.selected").getAttribute("data-id"), olderId);
  await tab.click(".issue-event h2 a");
  await tab.waitForURL(new RegExp("/issues/" + ids.renderInvoice + "$"));
});

async function checkIssuePage(p) {
  await p.waitForSelector("#issue-title", { timeout: 10000 });
  assert.match(await p.locator("#issue-title").innerText(), /TypeError/);
  assert.match(await p.locator("#issue-culprit").innerText(), /renderInvoice/);
  assert.equal((await p.locator("#issue-count").innerText()).trim(), "3");
  assert.equal((await p.locator("#issue-users").innerText()).trim(), "2");
  assert.match(await p.locator("#issue-status").innerText(), /unresolved/);
  // The latest event: frames (Frames.jsx), breadcrumbs, meta.
  await p.waitForSelector("#detail-frames li");
  assert.match(await p.locator("#detail-frames li").first().innerText(), /renderInvoice/);
  assert.match(await p.locator("#detail-breadcrumbs").innerText(), /button#pay/);
  assert.equal(JSON.parse(await p.locator("#detail-meta").innerText()).release, "shop@1.0.0");
  // Its events, newest first.
  await p.waitForFunction(() => document.querySelectorAll("#issue-events tbody tr").length === 3);
  // Counts per hour over 14 days: all three events.
  assert.equal(await p.locator("#issue-chart").getAttribute("data-total"), "3");
  assert.equal(await p.locator("#issue-chart rect.bar").evaluateAll((bs) => bs.reduce((a, b) => a + Number(b.dataset.count), 0)), 3);
  // Top values.
  const release = p.locator('#issue-tags [data-tag="release"] li');
  assert.deepEqual(await release.evaluateAll((ls) => ls.map((l) => [l.dataset.value, Number(l.dataset.count)])), [
    ["shop@1.0.0", 2],
    ["shop@1.0.1", 1],
  ]);
  const browsers = p.locator('#issue-tags [data-tag="browser"] li');
  assert.deepEqual(await browsers.evaluateAll((ls) => ls.map((l) => [l.dataset.value, Number(l.dataset.count)])), [
    ["Chrome 120", 2],
    ["Firefox 121", 1],
  ]);
  assert.match(await p.locator("#issue-tags-of").innerText(), /over 3 event\(s\)/);
  assert.match(await p.locator('#issue-tags [data-tag="environment"]').innerText(), /production/);
  assert.match(await p.locator('#issue-tags [data-tag="url"]').innerText(), /\/invoices\/7/);
}

test("resolve, then a new event: the issue reopens as regressed, in the page and through the API", async () => {
  await tab.click("#issue-resolve");
  await tab.waitForFunction(() => document.querySelector(".issue-page")?.dataset.status === "resolved");
  assert.match(await tab.locator("#issue-status").innerText(), /resolved/);
  assert.equal(await tab.locator("#issue-resolve").count(), 0, "no Resolve button on a resolved issue");
  let one = await admin("/issues/" + ids.renderInvoice);
  assert.equal(one.status, "resolved");
  // Gone from the default (unresolved) list, there with status=resolved.
  await tab.click(".crumb a");
  await tab.waitForURL(/\/issues$/);
  let list = await rowsWhen(3);
  assert.ok(!list.some((r) => r.id === ids.renderInvoice));
  await tab.goto(server.base + "/issues?status=resolved");
  list = await rowsWhen(1);
  assert.equal(list[0].id, ids.renderInvoice);

  // A new event from a new release reopens it.
  await tab.goto(server.base + "/issues/" + ids.renderInvoice);
  await tab.waitForSelector("#issue-title");
  await ingest([uiError(Date.now(), "renderInvoice", 140, "0a1b2c3d", "dave", "shop@1.0.2")]);
  await tab.waitForSelector("#issue-regressed", { timeout: 15000 });
  assert.match(await tab.locator("#issue-regressed").innerText(), /^Regressed (just now|1 min ago) in release shop@1\.0\.2/);
  await tab.waitForFunction(() => document.querySelector(".issue-page")?.dataset.status === "unresolved");
  assert.match(await tab.locator("#issue-status").innerText(), /unresolved/);
  assert.match(await tab.locator("#issue-status").innerText(), /regressed/);
  assert.equal((await tab.locator("#issue-count").innerText()).trim(), "4");
  one = await admin("/issues/" + ids.renderInvoice);
  assert.equal(one.status, "unresolved");
  assert.ok(one.regressed_at, JSON.stringify(one));
  assert.equal(one.regressed_in, "shop@1.0.2");
  await tab.goto(server.base + "/issues");
  list = await rowsWhen(4);
  const reopened = list.find((r) => r.id === ids.renderInvoice);
  assert.ok(reopened.regressed, "the list marks it regressed");
  assert.equal(reopened.count, 4);
});

test("ignore and unresolve change the status; back to the list's view; an unknown issue says so; the overview is one click away", async () => {
  await tab.goto(server.base + "/issues?service=ui&sort=count");
  await rowsWhen(2);
  await tab.click(`#issues tr[data-id="${ids.loadOrders}"] td.title a`);
  await tab.click("#issue-ignore");
  await tab.waitForFunction(() => document.querySelector(".issue-page")?.dataset.status === "ignored");
  assert.equal((await admin("/issues/" + ids.loadOrders)).status, "ignored");
  await tab.click("#issue-unresolve");
  await tab.waitForFunction(() => document.querySelector(".issue-page")?.dataset.status === "unresolved");
  // "← Issues" returns to the list as it was.
  await tab.click(".crumb a");
  await tab.waitForURL(/\/issues\?service=ui&sort=count$/);
  assert.equal((await rowsWhen(2))[0].id, ids.renderInvoice);

  await tab.goto(server.base + "/issues/0000000000000000");
  await tab.waitForSelector("#issue-missing", { timeout: 10000 });

  await tab.click("#nav-overview");
  await tab.waitForURL(/\/overview$/);
  await tab.waitForSelector("#records tbody tr");
  await tab.waitForSelector("#chart-1h");
});
