// The overview's record table and charts in headless Chromium against a real `faultline
// serve`: filters, `meta.KEY=VALUE` filters and the time range live in the URL (a deep link
// reproduces the view after a reload), pages follow the API's `next` cursor, every record has
// a link of its own, the 30-day chart is drawn from the hourly rollups, and nothing is polled
// while the tab is hidden.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ADMIN, launch, setHidden, startFaultline } from "./harness.mjs";

let server;
let browser;
let context;
let tab;
const urls = [];
const pageErrors = [];

const MIN = 60e3;
const DAY = 86400e3;
const now = Date.now();
const iso = (ms) => new Date(ms).toISOString();

before(async () => {
  server = await startFaultline();
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  context.on("request", (r) => urls.push(r.url()));
  context.on("page", (p) => p.on("pageerror", (e) => pageErrors.push(e)));
  tab = await context.newPage();
  const records = [];
  // Twelve failed checkouts a minute apart (page 1, 2 and 3 of five), and some that worked.
  for (let n = 0; n < 12; n++) {
    records.push({
      ts: iso(now - (n + 1) * MIN),
      service: "api",
      level: "ERROR",
      event: "checkout",
      message: "checkout failed #" + n,
      meta: { http: { status: 500 }, release: "2.0.0" },
    });
  }
  for (let n = 0; n < 3; n++) {
    records.push({ ts: iso(now - (n + 1) * MIN - 500), service: "api", level: "INFO", event: "checkout", message: "checkout ok #" + n, meta: { http: { status: 200 } } });
  }
  // Errors of a nightly batch 10 and 20 days ago: only the 30-day chart (rollups) shows them.
  for (const [age, count] of [
    [10, 3],
    [20, 2],
  ]) {
    for (let n = 0; n < count; n++) {
      // Ten minutes into an hour, so the three fall in one hour.
      const hour = Math.floor((now - age * DAY) / 3600e3) * 3600e3;
      records.push({ ts: iso(hour + 10 * MIN + n * 1000), service: "batch", level: "ERROR", event: "nightly", message: "nightly failed" });
    }
  }
  const res = await fetch(server.base + "/logs/ingest", {
    method: "POST",
    headers: { authorization: "Bearer sk_e2e_secret", "content-type": "application/json" },
    body: JSON.stringify(records),
  });
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  assert.equal(body.accepted, records.length, JSON.stringify(body));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  for (const u of urls) assert.ok(!u.includes(ADMIN), "token in a URL: " + u);
  assert.deepEqual(pageErrors.map(String), [], "the dashboard threw");
});

/** The messages of the table's rows, once they stop changing and satisfy `done`. */
async function messages(done = () => true) {
  const read = () => tab.locator("#records tbody tr td.message").allInnerTexts();
  const end = Date.now() + 10000;
  let last = null;
  for (;;) {
    const got = await read().catch(() => []);
    if (last && JSON.stringify(got) === JSON.stringify(last) && got.length > 0 && done(got)) return got;
    if (Date.now() > end) return got;
    last = got;
    await tab.waitForTimeout(200);
  }
}

test("a deep link with filters reproduces the view, also after a reload, and pages follow the cursor", async () => {
  const link = "/overview?service=api&level=ERROR&meta.http.status=500&since=1h&limit=5";
  await tab.goto(server.base + link);
  await tab.fill("#token", ADMIN);
  await tab.click("#sign-in");
  const first = await messages((m) => m.length === 5);
  assert.deepEqual(first, [0, 1, 2, 3, 4].map((n) => "checkout failed #" + n));
  assert.equal(await tab.inputValue("#filter-service"), "api");
  assert.equal(await tab.inputValue("#filter-level"), "ERROR");
  assert.equal(await tab.inputValue("#filter-since"), "1h");
  assert.deepEqual(await tab.locator("#meta-filters li code").allInnerTexts(), ["meta.http.status=500"]);

  // Older pages: the cursor goes into the URL, nothing skipped or repeated.
  await tab.click("#records-older");
  await tab.waitForURL(/cursor=/);
  const second = await messages((m) => m[0] === "checkout failed #5");
  const cursor = new URL(tab.url()).searchParams.get("cursor");
  await tab.click("#records-older");
  await tab.waitForURL((u) => u.searchParams.has("cursor") && u.searchParams.get("cursor") !== cursor);
  const third = await messages((m) => m[0] === "checkout failed #10");
  assert.deepEqual([...first, ...second, ...third], [...Array(12).keys()].map((n) => "checkout failed #" + n));
  assert.equal(await tab.locator("#records-older").count(), 0, "the last page has no older one");

  // The page's URL is the view: a reload shows the same page, with the same filters.
  const pageUrl = tab.url();
  await tab.reload();
  assert.deepEqual(await messages((m) => m[0] === "checkout failed #10"), third);
  assert.equal(tab.url(), pageUrl);
  assert.equal(await tab.inputValue("#filter-level"), "ERROR");
  // Back walks to the earlier page; Newest drops the cursor.
  await tab.goBack();
  assert.deepEqual(await messages((m) => m[0] === "checkout failed #5"), second);
  await tab.click("#records-newest");
  assert.deepEqual(await messages((m) => m[0] === "checkout failed #0"), first);
  assert.ok(!new URL(tab.url()).searchParams.has("cursor"));
});

test("the meta field adds a meta.KEY=VALUE filter to the URL; a bad one is refused", async () => {
  await tab.goto(server.base + "/overview?service=api");
  await messages((m) => m.length === 15);
  await tab.fill("#filter-meta", "http.status");
  await tab.press("#filter-meta", "Enter");
  await tab.locator("#meta-error").waitFor();
  await tab.fill("#filter-meta", "meta.http.status=200");
  await tab.press("#filter-meta", "Enter");
  await tab.waitForURL((u) => u.searchParams.get("meta.http.status") === "200");
  assert.equal(await tab.locator("#meta-error").count(), 0);
  assert.deepEqual(await messages((m) => m.length === 3), ["checkout ok #0", "checkout ok #1", "checkout ok #2"]);
  await tab.reload();
  assert.deepEqual(await messages((m) => m.length === 3), ["checkout ok #0", "checkout ok #1", "checkout ok #2"]);
  await tab.click('#meta-filters button[aria-label="remove meta.http.status"]');
  await messages((m) => m.length === 15);
  assert.ok(!new URL(tab.url()).searchParams.has("meta.http.status"));
});

test("each record has a link of its own that opens it after a reload", async () => {
  await tab.goto(server.base + "/overview?event=checkout&q=%232");
  await messages((m) => m.length === 2);
  const row = tab.locator("#records tbody tr", { hasText: "checkout failed #2" });
  const id = await row.getAttribute("data-id");
  await row.locator("a.permalink").click();
  await tab.waitForURL(new RegExp("/record/" + id + "\\?ts="));
  await tab.locator("#detail-message", { hasText: "checkout failed #2" }).waitFor();
  await tab.reload();
  await tab.locator("#detail-message", { hasText: "checkout failed #2" }).waitFor();
  assert.match(await tab.locator("#detail").innerText(), new RegExp(id));
});

test("charts over 1 h, 24 h, 7 d and 30 d; the 30-day one from the hourly rollups", async () => {
  await tab.goto(server.base + "/overview?range=30d");
  const chart = tab.locator('#chart-30d[data-step="1h"]');
  await chart.waitFor({ timeout: 10000 });
  const points = chart.locator('g[data-service="batch"] circle.point');
  await points.first().waitFor({ timeout: 10000 });
  const counts = await points.evaluateAll((cs) => cs.map((c) => Number(c.dataset.count)));
  assert.deepEqual(counts, [2, 3], "20 and 10 days ago, one point per hour");
  assert.equal(await tab.getAttribute("#range-30d", "aria-pressed"), "true");
  // The range is in the URL: 7 days has neither batch error, 24 hours is per minute.
  await tab.click("#range-7d");
  await tab.waitForURL(/range=7d/);
  await tab.locator('#chart-7d[data-step="1h"] g[data-service="api"] circle.point').first().waitFor();
  assert.equal(await tab.locator('#chart-7d g[data-service="batch"]').count(), 0);
  await tab.click("#range-24h");
  await tab.locator('#chart-24h[data-step="1m"] g[data-service="api"] circle.point').first().waitFor();
  assert.ok(!new URL(tab.url()).searchParams.has("range"));
  await tab.click("#range-1h");
  await tab.locator('#chart-1h[data-step="1m"]').first().waitFor();
  await tab.reload();
  assert.equal(await tab.getAttribute("#range-1h", "aria-pressed"), "true");
});

test("nothing is polled while the tab is hidden", async () => {
  await tab.goto(server.base + "/overview?range=30d");
  await messages();
  const polls = [];
  const seen = (r) => /^\/(logs|alerts|system)\b/.test(new URL(r.url()).pathname) && polls.push(r.url());
  tab.on("request", seen);
  await setHidden(tab, true);
  await tab.waitForTimeout(1000);
  const before = polls.length;
  await tab.waitForTimeout(4000); // past the table's 1.5 s and the top bar's 2 s
  assert.deepEqual(polls.slice(before), [], "requests while hidden");
  const refreshed = tab.waitForRequest((r) => new URL(r.url()).pathname === "/logs/recent", { timeout: 2500 });
  await setHidden(tab, false);
  await refreshed;
  tab.off("request", seen);
});
