// The InlineNotice in the demo panel: ten errors from one signed-in user fire the shipped UI
// rule, and that user's page shows the notice (`onNotice`, `POST /notices` with the
// anonymized id); another user's page, in another browser context at the same time, never
// does. No request carries a raw user id.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import { SALT, launch, raisePanelErrors, startEmbeddedDefault } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startEmbeddedDefault();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** What the reporter sends for `raw`: "u_" and 16 hex chars of SHA-256(salt || raw). */
const anonymized = (raw) => "u_" + createHash("sha256").update(SALT + raw).digest("hex").slice(0, 16);

/** The demo panel in a browser context of its own, signed in as `raw`; every request URL
 * and body it sends is kept in `sent`. */
async function panelAs(raw) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const sent = [];
  page.on("request", (r) => sent.push(r.url() + " " + (r.postData() || "")));
  await page.goto(server.base + "/panel");
  await page.waitForSelector("#reporter-state.ok", { timeout: 10000 });
  await page.fill("#login-user", raw);
  await page.click("#login");
  await page.waitForSelector("#whoami");
  return { context, page, sent };
}

const NOTICE = '.faultline-notice[data-rule="ui_user_errors"]';

test("ten errors from one user show the notice on that user's page, never on another's", async () => {
  const a = await panelAs("ann@example.com");
  const b = await panelAs("ben@example.com");
  // Three errors from B (under the threshold), so B's page asks too.
  await raisePanelErrors(b.page, 3);
  await raisePanelErrors(a.page, 10);

  const notice = a.page.locator(NOTICE);
  await notice.waitFor({ timeout: 20000 });
  const text = await notice.innerText();
  assert.match(text, /Something keeps going wrong for you here/);
  // The summary names the id the page sent, never the stored (re-keyed) one.
  assert.match(text, new RegExp("error reports from one user \\(meta\\.user=" + anonymized("ann@example.com") + "\\) in 10m"));
  assert.equal(await notice.getAttribute("role"), "status");

  // B's page asked (its errors, its sign-in) with its own id only, and shows nothing, also
  // after A's notice is up and B's next read (an error of B's) has come and gone.
  await raisePanelErrors(b.page, 1);
  await b.page.waitForTimeout(3000);
  assert.equal(await b.page.locator(".faultline-notice").count(), 0, "B's page shows a notice");
  const asked = (sent) => sent.filter((s) => s.includes("/notices?")).map((s) => JSON.parse(s.slice(s.indexOf(" ") + 1)).user);
  const bAsked = asked(b.sent);
  assert.ok(bAsked.length >= 1, "B's page never asked");
  assert.deepEqual([...new Set(bAsked)], [anonymized("ben@example.com")]);
  assert.deepEqual([...new Set(asked(a.sent))], [anonymized("ann@example.com")]);
  for (const [who, sent] of [["ann", a.sent], ["ben", b.sent]]) {
    for (const s of sent) {
      assert.ok(!s.includes(who + "@example.com") && !s.includes(who + "%40example.com"), "a raw id left the page: " + s);
    }
  }

  // Signing out hides it; signing in again (a notice still firing) shows it again.
  await a.page.click("#logout");
  await a.page.waitForSelector(NOTICE, { state: "detached", timeout: 5000 });
  await a.page.fill("#login-user", "ann@example.com");
  await a.page.click("#login");
  await a.page.waitForSelector(NOTICE, { timeout: 10000 });

  await a.context.close();
  await b.context.close();
});
