// `faultline serve` without a config file, as `cargo xtask run` starts it: the shipped rules
// run, their channels show as not configured on the dashboard, each alert card links its
// runbook, and the demo panel's buttons fire the UI rule's notice.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ADMIN, launch, raisePanelErrors, startEmbeddedDefault } from "./harness.mjs";

let server;
let browser;
let context;
const pageErrors = [];

before(async () => {
  server = await startEmbeddedDefault();
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  assert.deepEqual(pageErrors.map(String), [], "the dashboard threw");
});

test("the embedded default: channels not configured, runbook links, the UI rule fires from the panel", async () => {
  const dash = await context.newPage();
  dash.on("pageerror", (e) => pageErrors.push(e));
  await dash.goto(server.base + "/overview");
  await dash.fill("#token", ADMIN);
  await dash.click("#sign-in");
  const missing = dash.locator("#channels-not-configured");
  await missing.waitFor({ timeout: 10000 });
  const text = await missing.innerText();
  for (const name of ["ops_slack (slack, set FAULTLINE_SLACK_WEBHOOK_URL)", "pagerduty (pagerduty, set FAULTLINE_PAGERDUTY_ROUTING_KEY)", "app_stop", "worker_restart"]) {
    assert.ok(text.includes(name), name + " in: " + text);
  }
  for (const rule of ["api_errors", "worker_behavior_engine", "ui_user_errors", "redis_down"]) {
    const href = await dash.locator(`.alert[data-rule="${rule}"] a.runbook`).getAttribute("href");
    assert.ok(href.endsWith("docs/runbook.md#" + rule), rule + ": " + href);
  }
  const ui = dash.locator('.alert[data-rule="ui_user_errors"]');
  assert.match(await ui.locator('.channel[data-channel="ops_slack"][data-configured="false"]').innerText(), /ops_slack \(not configured\)/);
  assert.equal(await ui.locator('.channel[data-channel="notice"][data-configured="true"]').count(), 1);

  const panel = await context.newPage();
  await panel.goto(server.base + "/panel");
  await panel.waitForSelector("#reporter-state.ok", { timeout: 10000 });
  await panel.fill("#login-user", "dora@example.com");
  await panel.click("#login");
  await panel.waitForSelector("#whoami");
  await raisePanelErrors(panel, 10);
  const notice = dash.locator('#notices .notice[data-rule="ui_user_errors"]');
  await notice.waitFor({ timeout: 15000 });
  assert.match(await notice.innerText(), /1\d error reports from one user \(meta\.user=u_[0-9a-f]{16}\) in 10m/);
  await dash.waitForSelector('.alert[data-rule="ui_user_errors"][data-status="firing"]', { timeout: 5000 });
  const history = await ui.locator(".history").innerText();
  assert.match(history, /firing → notice: sent/);
  assert.match(history, /firing → system_check: sent/);
  assert.doesNotMatch(history, /ops_slack/, "a channel that is not configured is skipped, not failed");
  await dash.waitForSelector('#checks tr[data-status="failed"]', { timeout: 5000 });
  await panel.close();
});
