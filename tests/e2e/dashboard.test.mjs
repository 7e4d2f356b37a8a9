// The demo panel and the dashboard served by `faultline serve` itself at `/panel` and `/`
// (the www/ build embedded in the binary), in headless Chromium: every demo button's record
// shows up in the dashboard's live table, filters, detail, charts, safety, and the UI alert
// rule from firing to reset.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { ADMIN, ROOT, launch, startFaultline } from "./harness.mjs";

const SHOTS = path.join(ROOT, "target/screenshots");

// The UI rule as faultline.example.toml has it, with the notice (and a system check) as
// its actions: no mail server in a test.
const CONFIG = `
[alerts]
evaluation_interval = "1s"

[alerts.rules.ui_user_errors]
kind = "threshold"
filter = { service = "ui", level = "ERROR" }
group_by = "meta.user"
window = "10m"
threshold = 10
severity = "warning"
summary = "{value} error reports from one user ({group}) in {window}"
actions = ["notice", "system_check"]
`;

let server;
let browser;
let context;
let dash; // the dashboard tab, signed in once
let panel; // the demo panel tab
const urls = []; // every URL the browser requested
const dialogs = [];
const pageErrors = [];
const cspViolations = [];

before(async () => {
  server = await startFaultline(undefined, { config: CONFIG, selfOrigin: true });
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  context.on("request", (r) => urls.push(r.url()));
  // Every Content-Security-Policy violation a page reports (the policy must never get in
  // the app's way, and nothing a record holds may try to load or run).
  await context.exposeFunction("__cspViolation", (v) => cspViolations.push(v));
  await context.addInitScript(() =>
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`),
    ),
  );
  context.on("page", (p) => {
    p.on("dialog", (d) => {
      dialogs.push(d.message());
      d.dismiss().catch(() => {});
    });
  });
  dash = await context.newPage();
  dash.on("pageerror", (e) => pageErrors.push(e));
  fs.mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  // Safety: no script from a record ever ran, and no token was ever put in a URL.
  assert.deepEqual(dialogs, []);
  for (const u of urls) assert.ok(!u.includes(ADMIN) && !u.includes("wrong-token"), "token in a URL: " + u);
  assert.deepEqual(pageErrors.map(String), [], "the dashboard threw");
  assert.deepEqual(cspViolations, [], "a page broke its Content-Security-Policy");
});

async function openPanel(user) {
  const p = await context.newPage();
  await p.goto(server.base + "/panel");
  await p.waitForSelector("#reporter-state.ok", { timeout: 10000 });
  await p.fill("#login-user", user);
  await p.click("#login");
  await p.waitForSelector("#whoami");
  return p;
}

/** Clicks a demo button and returns the tag the panel put in that error's message. */
async function raise(p, kind) {
  const top = () => document.querySelector("#raised li")?.dataset.tag ?? null;
  const before = await p.evaluate(top);
  await p.click("#raise-" + kind);
  await p.waitForFunction((t) => (document.querySelector("#raised li")?.dataset.tag ?? null) !== t, before);
  return p.evaluate(top);
}

function row(tag) {
  return dash.locator("#records tbody tr", { hasText: tag });
}

async function cells(r) {
  const text = async (cls) => (await r.locator("td." + cls).innerText()).trim();
  return { service: await text("service"), level: await text("level"), event: await text("event"), message: await text("message"), frame: await text("frame") };
}

test("a wrong token gets a clear error; the right one is kept for the tab only, never in a URL", async () => {
  // The overview (health, charts, alerts, the record table); `/` is the issue list.
  await dash.goto(server.base + "/overview");
  await dash.fill("#token", "wrong-token");
  await dash.click("#sign-in");
  const error = await dash.locator("#login-error").innerText({ timeout: 5000 });
  assert.match(error, /refused this admin token/);
  assert.match(error, /unknown admin token/);
  await dash.fill("#token", ADMIN);
  await dash.click("#sign-in");
  await dash.waitForSelector("#critical-badge");
  const stored = await dash.evaluate(() => [sessionStorage.length, localStorage.length, document.cookie]);
  assert.deepEqual(stored, [1, 0, ""]);
  // Empty state before anything was sent.
  await dash.waitForSelector("#records-empty");
});

const KINDS = [
  ["type-error", "window.onerror", /Cannot read properties of null/],
  ["fetch", "fetch.failed", /answered 401 while loading orders/],
  ["rejection", "unhandledrejection", /payment provider timed out/],
  ["render", "react.error_boundary", /InvoiceTable cannot render invoice/],
  ["console", "console.error", /checkout failed: card service said no/],
  ["timeout", "window.onerror", /autosave failed/],
];

test("each demo button's record appears in the dashboard table within 3 s with service, level, event and a parsed top frame", async () => {
  panel = await openPanel("bob@example.com");
  for (const [kind, event, message] of KINDS) {
    const tag = await raise(panel, kind);
    const r = row(tag);
    await r.waitFor({ timeout: 3000 });
    const c = await cells(r);
    assert.equal(c.service, "ui", kind);
    assert.equal(c.level, "ERROR", kind);
    assert.equal(c.event, event, kind);
    assert.match(c.message, message, kind);
    assert.match(c.frame, /@ \/assets\/[\w.-]+\.js:\d+:\d+$/, kind + ": a parsed top frame in the bundle: " + c.frame);
  }
  assert.equal(await panel.locator("#render-fallback").count(), 1, "the widget's boundary showed its fallback");
  await panel.screenshot({ path: path.join(SHOTS, "panel.png"), fullPage: true });
});

test("filters narrow the table, and pausing stops live updates", async () => {
  const all = await dash.locator("#records tbody tr").count();
  assert.ok(all >= KINDS.length);
  await dash.fill("#filter-event", "unhandledrejection");
  await dash.waitForFunction((n) => {
    const rows = [...document.querySelectorAll("#records tbody tr")];
    return rows.length > 0 && rows.length < n && rows.every((r) => r.querySelector("td.event").textContent === "unhandledrejection");
  }, all);
  await dash.fill("#filter-event", "");
  await dash.selectOption("#filter-level", "CRITICAL");
  await dash.waitForSelector("#records-empty", { timeout: 5000 });
  assert.match(await dash.locator("#records-empty").innerText(), /No records match/);
  await dash.selectOption("#filter-level", "");
  await dash.fill("#filter-q", "autosave");
  await dash.waitForFunction(() => {
    const rows = [...document.querySelectorAll("#records tbody tr")];
    return rows.length === 1 && rows[0].textContent.includes("autosave failed");
  });
  await dash.click("#filter-clear");
  await dash.waitForFunction((n) => document.querySelectorAll("#records tbody tr").length >= n, all);

  // Service, anonymized user and time range.
  await dash.fill("#filter-service", "api");
  await dash.waitForSelector("#records-empty", { timeout: 5000 });
  await dash.fill("#filter-service", "ui");
  await dash.waitForFunction((n) => document.querySelectorAll("#records tbody tr").length >= n, all);
  const user = (await dash.locator("#records tbody tr td.user").first().innerText()).trim();
  assert.match(user, /^u_[0-9a-f]{16}$/);
  await dash.fill("#filter-user", user);
  await dash.waitForFunction(
    (u) => [...document.querySelectorAll("#records tbody tr td.user")].every((td) => td.textContent === u),
    user,
  );
  await dash.selectOption("#filter-since", "15m");
  await dash.waitForFunction((n) => document.querySelectorAll("#records tbody tr").length >= n, KINDS.length);
  await dash.selectOption("#filter-since", "custom");
  const later = new Date(Date.now() + 3600e3);
  const local = new Date(later.getTime() - later.getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
  await dash.fill("#filter-from", local);
  await dash.waitForSelector("#records-empty", { timeout: 5000 });
  await dash.click("#filter-clear");
  await dash.waitForFunction((n) => document.querySelectorAll("#records tbody tr").length >= n, all);

  // Paused: a new record does not show up; resumed: it does.
  await dash.click("#live-toggle");
  const tag = await raise(panel, "timeout");
  await dash.waitForTimeout(3000);
  assert.equal(await row(tag).count(), 0, "paused table did not update");
  await dash.click("#live-toggle");
  await row(tag).waitFor({ timeout: 5000 });
});

test("the detail view shows the message, parsed frames, breadcrumbs and meta", async () => {
  const tag = await raise(panel, "console");
  await row(tag).waitFor({ timeout: 3000 });
  await row(tag).click();
  const detail = dash.locator("#detail");
  await detail.waitFor();
  assert.match(await detail.locator("#detail-message").innerText(), new RegExp("checkout failed: card service said no \\(" + tag + "\\)"));
  const frames = await detail.locator("#detail-frames li").allInnerTexts();
  assert.ok(frames.length >= 2, "frames: " + frames);
  assert.match(frames[0], /@ \/assets\/[\w.-]+\.js:\d+:\d+/);
  const crumbs = await detail.locator("#detail-breadcrumbs").innerText();
  assert.match(crumbs, new RegExp("raise console " + tag));
  assert.match(crumbs, /ui\.click/);
  const meta = JSON.parse(await detail.locator("#detail-meta").innerText());
  assert.equal(meta.error_type, "Error");
  assert.equal(meta.environment, "demo");
  assert.match(meta.user, /^u_[0-9a-f]{16}$/);
  assert.ok(!JSON.stringify(meta).includes("bob@example.com"), "the raw user id never arrives");
});

test("the charts have a data point for the errors of this minute", async () => {
  await dash.waitForSelector("#chart-1h circle.point", { timeout: 10000 });
  const uiPoints = await dash.locator('#chart-1h g[data-service="ui"] circle.point').count();
  assert.ok(uiPoints >= 1);
  const counted = await dash.locator("#chart-1h circle.point").evaluateAll((cs) => cs.reduce((a, c) => a + Number(c.dataset.count), 0));
  assert.ok(counted >= KINDS.length, "errors counted in the chart: " + counted);
  await dash.waitForSelector("#chart-24h circle.point", { timeout: 20000 });
  const card = dash.locator('.health-card[data-service="ui"]');
  assert.equal(await card.getAttribute("data-status"), "degraded", "errors in 15 min, no rule firing");
});

test("record text is shown literally, never as HTML", async () => {
  const page = await fetch(server.base + "/");
  const csp = page.headers.get("content-security-policy");
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  const xss = '<img src=x onerror="alert(1)"> <script>alert(2)</script>';
  const res = await fetch(server.base + "/logs/ingest", {
    method: "POST",
    headers: { authorization: "Bearer sk_e2e_secret", "content-type": "application/json" },
    body: JSON.stringify([
      {
        ts: new Date().toISOString(),
        service: "api",
        level: "CRITICAL",
        event: "<b>bold</b>",
        message: xss,
        meta: { stack: [{ function: "<svg onload=alert(3)>", file: "https://x/a.js", line: 1, column: 2 }], breadcrumbs: [{ category: "<i>x</i>", message: xss }] },
      },
    ]),
  });
  assert.equal(res.status, 202);
  const r = row("onerror=");
  await r.waitFor({ timeout: 5000 });
  assert.equal((await r.locator("td.message").innerText()).trim(), xss);
  assert.equal((await r.locator("td.event").innerText()).trim(), "<b>bold</b>");
  await r.click();
  assert.equal(await dash.locator("#detail-message").innerText(), xss);
  assert.match(await dash.locator("#detail-frames").innerText(), /<svg onload=alert\(3\)>/);
  const injected = await dash.evaluate(() =>
    [
      ...document.querySelectorAll("img, main script, svg[onload]"),
      ...document.querySelectorAll("#records td.message *, #records td.event *, #detail-message *, #detail-frames code *, #detail-breadcrumbs i"),
    ].length,
  );
  assert.equal(injected, 0, "no element was created from record text");
  // The CRITICAL record lights the badge and fails the api card.
  await dash.waitForFunction(() => /^[1-9]\d* critical in 15 min$/.test(document.querySelector("#critical-badge").textContent));
  await dash.waitForSelector('.health-card[data-service="api"][data-status="failing"]', { timeout: 5000 });
});

test("a record with null and odd breadcrumbs renders; a view that fails anyway stays inside its boundary", async () => {
  // Regression: `meta.breadcrumbs: [null]` (valid per the schema) threw in RecordDetail, and
  // with no error boundary the whole dashboard went blank.
  const tag = "odd" + Date.now().toString(36);
  const ingest = (records) =>
    fetch(server.base + "/logs/ingest", {
      method: "POST",
      headers: { authorization: "Bearer sk_e2e_secret", "content-type": "application/json" },
      body: JSON.stringify(records.map((r) => ({ ts: new Date().toISOString(), service: "api", level: "ERROR", event: "odd_meta", ...r }))),
    }).then((res) => res.json());
  const odd = [null, 7, "just text", ["a"], { category: { nested: true }, message: ["listed"], level: 3, ts: "not a time", data: null }];
  assert.equal(
    (
      await ingest([
        { message: "null crumb " + tag, meta: { breadcrumbs: [null] } },
        { message: "odd crumbs " + tag, meta: { breadcrumbs: odd, component_stack: 42, extra: null, contexts: [] } },
      ])
    ).accepted,
    2,
  );
  await row("null crumb " + tag).waitFor({ timeout: 5000 });
  await row("null crumb " + tag).click();
  assert.equal(await dash.locator("#detail-message").innerText({ timeout: 5000 }), "null crumb " + tag);
  assert.equal(await dash.locator("#detail-breadcrumbs li").count(), 1);
  await row("odd crumbs " + tag).click();
  await dash.locator("#detail-message", { hasText: "odd crumbs " + tag }).waitFor({ timeout: 5000 });
  const crumbs = (await dash.locator("#detail-breadcrumbs li").allInnerTexts()).map((t) => t.trim());
  assert.equal(crumbs.length, odd.length, JSON.stringify(crumbs));
  assert.equal(crumbs[1], "7");
  assert.equal(crumbs[2], "just text");
  assert.equal(crumbs[3], '["a"]');
  assert.match(crumbs[4], /^not a time \{"nested":true\} 3 \["listed"\]$/);

  // A view that throws for a reason no record foresaw shows its own error; the rest works.
  await dash.evaluate(() => {
    const stringify = JSON.stringify;
    window.__unbreak = () => (JSON.stringify = stringify);
    JSON.stringify = function (v, r, space) {
      if (space === 2) throw new Error("the detail view broke");
      return stringify.apply(this, arguments);
    };
  });
  await row("null crumb " + tag).click();
  const fallback = dash.locator('.view-error[data-view="record detail"]');
  assert.match(await fallback.innerText({ timeout: 5000 }), /The record detail could not be shown: the detail view broke/);
  await dash.evaluate(() => window.__unbreak());
  const later = await ingest([{ message: "after the fault " + tag }]);
  assert.equal(later.accepted, 1);
  await row("after the fault " + tag).waitFor({ timeout: 5000 });
  await dash.waitForSelector("#critical-badge");
  await dash.waitForSelector("#chart-1h");
  await row("odd crumbs " + tag).click();
  await dash.locator("#detail-message", { hasText: "odd crumbs " + tag }).waitFor({ timeout: 5000 });
  assert.equal(await fallback.count(), 0, "the next record renders afresh");
  await dash.locator("#detail button.close").click();
});

test("the UI rule: 10 errors from one user show the inline notice and a firing alert; silence 1 h marks it silenced; reset clears it", async () => {
  const carol = await openPanel("carol@example.com");
  for (let i = 0; i < 10; i++) await raise(carol, i % 2 ? "timeout" : "type-error");
  const notice = dash.locator('#notices .notice[data-rule="ui_user_errors"]');
  await notice.waitFor({ timeout: 15000 });
  assert.match(await notice.innerText(), /1\d error reports from one user \(meta\.user=u_[0-9a-f]{16}\) in 10m/);
  const alert = dash.locator('.alert[data-rule="ui_user_errors"]');
  await dash.waitForSelector('.alert[data-rule="ui_user_errors"][data-status="firing"]', { timeout: 5000 });
  assert.match(await alert.locator(".history").innerText(), /firing → notice: sent/);
  await dash.waitForSelector('#checks tr[data-status="failed"]', { timeout: 5000 });
  await dash.waitForSelector('.health-card[data-service="ui"][data-status="failing"]', { timeout: 5000 });
  await dash.locator("#notices").scrollIntoViewIfNeeded();
  await dash.screenshot({ path: path.join(SHOTS, "dashboard.png"), fullPage: true });

  // Silence it for an hour from its card: a silence on its rule and group, the badge, no
  // more silence buttons; the alert still fires.
  await alert.locator('button.silence[data-for="1h"]').click();
  await alert.locator(".pill.silenced").waitFor({ timeout: 5000 });
  assert.match(await dash.locator("#reset-message").innerText(), /Silenced ui_user_errors \(meta\.user=u_[0-9a-f]{16}\) for 1h\./);
  assert.equal(await alert.locator("button.silence").count(), 0);
  assert.equal(await alert.getAttribute("data-status"), "firing");
  const listed = await (await fetch(server.base + "/silences", { headers: { authorization: "Bearer " + ADMIN } })).json();
  assert.equal(listed.silences.length, 1);
  const s = listed.silences[0];
  assert.equal(s.status, "active");
  assert.deepEqual(s.matchers.map((m) => m.name + m.op + (m.name === "group" ? "" : m.value)), ["rule=ui_user_errors", "group="]);
  assert.equal(await alert.locator(".pill.silenced").getAttribute("data-silence"), s.id);

  await alert.locator("button.reset").click();
  await dash.locator("#reset-message", { hasText: "Reset" }).waitFor({ timeout: 5000 });
  assert.match(await dash.locator("#reset-message").innerText(), /Reset ui_user_errors: [1-9]\d* firing alert\(s\) resolved/);
  await notice.waitFor({ state: "detached", timeout: 5000 });
  await dash.waitForFunction(() => document.querySelector('.alert[data-rule="ui_user_errors"]').dataset.status !== "firing");
  await carol.close();
});

test("signing out forgets the token; the server being down shows a clear error", async () => {
  await dash.click("#sign-out");
  await dash.waitForSelector("#token");
  assert.equal(await dash.evaluate(() => sessionStorage.length), 0);
  await dash.fill("#token", ADMIN);
  await dash.click("#sign-in");
  await dash.waitForSelector("#critical-badge");
  await server.stop();
  server = null;
  const banner = await dash.locator("#dash-error").innerText({ timeout: 10000 });
  assert.match(banner, /Cannot reach the Faultline server/);
});
