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

/** Everything the reporter keeps in the page's localStorage, as one string. */
// The event types with a listener on the page's window and document, as the browser's
// debugger lists them (Playwright's own among them).
async function listeners(p) {
  const cdp = await p.context().newCDPSession(p);
  try {
    const types = [];
    for (const expression of ["window", "document"]) {
      const { result } = await cdp.send("Runtime.evaluate", { expression });
      const { listeners } = await cdp.send("DOMDebugger.getEventListeners", { objectId: result.objectId });
      types.push(...listeners.map((l) => l.type));
    }
    return types.sort();
  } finally {
    await cdp.detach();
  }
}

// What the reporter listens for on the window and document: the errors (the package), the
// page-life events (the module), clicks and navigation (the package's breadcrumbs).
const OURS = ["click", "error", "online", "pagehide", "pageshow", "popstate", "unhandledrejection", "visibilitychange"];

// The listeners in `before` that are not in `after`, one type per listener.
function gone(before, after) {
  const left = [...after];
  return before.filter((t) => {
    const i = left.indexOf(t);
    return i < 0 || !left.splice(i, 1);
  });
}

function storedText(p) {
  return p.evaluate(() =>
    Object.keys(localStorage)
      .filter((k) => k.startsWith("faultline:"))
      .map((k) => localStorage.getItem(k))
      .join("\n"),
  );
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
  assert.ok(rec.meta.breadcrumbs.some((c) => c.category === "ui.click" && c.message === 'button#go "Go"'), JSON.stringify(rec.meta.breadcrumbs));
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
  assert.ok((await storedText(p)).includes("offline "), "kept in localStorage while offline");
  assert.equal((await recent(server.base, { q: tag })).length, 0);
  await context.setOffline(false);
  const recs = await waitFor(server.base, "offline " + tag, 1, 15000, 1500);
  assert.equal(recs.length, 1);
  frames(recs[0]);
  await p.waitForFunction(() => !Object.keys(localStorage).some((k) => k.startsWith("faultline:")));
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

test("a React 19 root's onUncaughtError through reactErrorHandler, with the component stack", async () => {
  const html = (name) => `<!doctype html><html><body><div id="root"></div><div id="root2"></div><script>window.CONFIG=${JSON.stringify({ endpoint: server.base, key: "pk_e2e_panel", salt: "e2e-public-salt", flushIntervalMs: 200, wasmUrl: web.base + "/bundle/faultline_reporter_bg.wasm", tag: "react " + name })}</script><script type="module" src="/bundle/app.js"></script></body></html>`;
  const { p, context, pageErrors } = await open(html);
  const where = await p.evaluate(() => location.pathname);
  await p.click("#boom2");
  await p.waitForFunction(() => window.uncaught === true);
  assert.equal(await p.evaluate(() => window.F.flush()), true);
  const recs = await waitFor(server.base, "react " + where + " uncaught");
  assert.equal(recs.length, 1, JSON.stringify(recs.map((r) => r.event)));
  assert.equal(recs[0].event, "react.root");
  assert.ok(recs[0].meta.component_stack.includes("Mine"), recs[0].meta.component_stack);
  frames(recs[0]);
  assert.equal(pageErrors.length, 0);
  await context.close();
});

test("a panic inside the module is reported once and switches the reporter off", async () => {
  const { p, context, pageErrors, tag } = await open(page({ endpoint: server.base }));
  const before = await listeners(p);
  await p.evaluate(() => F.__panic());
  assert.equal(await p.evaluate(() => F.stats().disabled), true);
  assert.deepEqual(gone(before, await listeners(p)), OURS, "the module's and the package's listeners are detached, once each");
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
  // A closing page can see `online` after its pagehide: Chromium ends the DevTools offline
  // emulation when the page's target detaches, as a real network may come back while a page
  // unloads. Whether the page lives long enough to see it is a race (it did 1 run in 5, and
  // a reporter that flushed on that `online` reached the server before the next load);
  // here the window is certain: pagehide, then online, and no request may start.
  await p.evaluate(() => dispatchEvent(new PageTransitionEvent("pagehide")));
  const late = [];
  p.on("request", (r) => late.push(r.method() + " " + r.url()));
  await context.setOffline(false);
  await p.evaluate(() => new Promise((r) => setTimeout(r, 300)));
  assert.deepEqual(late, [], "a request started between pagehide and the page's end");
  await context.setOffline(true);
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

test("what is typed into form fields never reaches the server nor localStorage, however often they are clicked", async () => {
  // Regression: the click breadcrumb read `el.innerText || el.value`, so clicking a field
  // after typing sent what was typed (and kept it in localStorage while offline).
  const body = `<form>
<label for="email">Email</label> <input id="email" name="email" type="email">
<label>Password <input id="pw" name="password" type="password"></label>
<input id="card" name="cc-number" aria-label="Card number" autocomplete="cc-number">
<label>Notes <textarea id="notes" name="notes"></textarea></label>
<div id="bio" contenteditable="true"><p>Bio: </p></div>
<select id="plan" name="plan"><option value="free">free</option><option value="pro">pro plan</option></select>
<button type="button" id="save" role="button">Save</button>
</form>`;
  const { p, context, tag } = await open(page({ endpoint: server.base, body }));
  const typed = {
    "#email": "carol." + tag + "@example.com",
    "#pw": "hunter2-" + tag,
    "#card": "4111 1111 " + tag.slice(-4),
    "#notes": "private notes " + tag,
  };
  for (const [sel, text] of Object.entries(typed)) await p.fill(sel, text);
  await p.click("#bio p");
  await p.keyboard.type("typed bio " + tag);
  await p.selectOption("#plan", "pro");
  const secrets = [...Object.values(typed), "typed bio " + tag];
  await context.setOffline(true);
  // Every field clicked after typing (the select by event: its popup is not a page element).
  for (const sel of ["#email", "#pw", "#card", "#notes", "#bio p", "label[for=email]", "#save"]) await p.click(sel);
  await p.dispatchEvent("#plan", "click");
  await p.evaluate((tag) => setTimeout(() => throwType("typed " + tag)), tag);
  await p.evaluate(() => new Promise((r) => setTimeout(r, 50)));
  assert.equal(await p.evaluate(() => F.flush(300)), false);
  const stored = await storedText(p);
  assert.ok(stored.includes("typed " + tag), "the record is in localStorage while offline");
  for (const s of secrets) assert.ok(!stored.includes(s), "typed text in localStorage: " + s);
  await context.setOffline(false);
  const [rec] = await waitFor(server.base, "typed " + tag, 1, 15000, 1000);
  const clicks = new Set(rec.meta.breadcrumbs.filter((c) => c.category === "ui.click").map((c) => c.message));
  // Described by tag, id, name, role and visible label only (the label's click also
  // reaches its input, and the editable div's clicks land on its paragraph).
  assert.deepEqual([...clicks].sort(), [
    'button#save[role=button] "Save"',
    'input#card[name=cc-number] "Card number"',
    'input#email[name=email] "Email"',
    'input#pw[name=password] "Password"',
    'label "Email"',
    "p",
    "select#plan[name=plan]",
    "textarea#notes[name=notes]",
  ]);
  const sent = bodies.filter((b) => b.includes(tag));
  assert.ok(sent.length > 0);
  for (const s of secrets) {
    assert.ok(!JSON.stringify(rec).includes(s), "typed text stored by the server: " + s);
    for (const b of sent) assert.ok(!b.includes(s), "typed text sent: " + s);
  }
  await context.close();
});

test("secrets in URLs arrive as [Filtered]: page URL, navigation, fetch, XHR, console text and error messages", async () => {
  // Regression: location.href, navigations, request URLs and console text left the page as
  // they were, with ?access_token=... and #id_token=... in them.
  const { p, context, tag } = await open(page({ endpoint: server.base }));
  const s = { access: "acc" + tag, id: "idt" + tag, api: "api" + tag, tok: "tok" + tag, pw: "pw" + tag, code: "code" + tag, user: "pass" + tag, sig: "sig" + tag };
  const path = await p.evaluate(async (s) => {
    const path = location.pathname;
    history.pushState({}, "", path + "?access_token=" + s.access + "&page=2#id_token=" + s.id);
    history.replaceState({}, "", path + "/next?X-Amz-Signature=" + s.sig + "&page=3");
    await fetch("/missing?api_key=" + s.api + "&page=2");
    await new Promise((done) => {
      const x = new XMLHttpRequest();
      x.open("GET", "/missing?password=" + s.pw + "&page=2");
      x.onloadend = done;
      x.send();
    });
    await fetch("http://alice:" + s.user + "@127.0.0.1:9/x").catch(() => {});
    console.warn("calling https://api.example.com/v1?token=" + s.tok + "&page=2");
    history.pushState({}, "", path + "?access_token=" + s.access + "&page=2#id_token=" + s.id);
    return path;
  }, s);
  await p.evaluate(([code, tag]) => setTimeout(() => throwType("callback https://app.example/cb?code=" + code + "&state=ok failed " + tag)), [s.code, tag]);
  await p.evaluate(() => new Promise((r) => setTimeout(r, 50)));
  assert.equal(await p.evaluate(() => F.flush()), true);
  const [rec] = await waitFor(server.base, "failed " + tag);
  assert.ok(rec.meta.url.endsWith(path + "?access_token=[Filtered]&page=2#id_token=[Filtered]"), rec.meta.url);
  const crumbs = rec.meta.breadcrumbs.map((c) => c.category + " " + c.message + (c.data ? " " + JSON.stringify(c.data) : ""));
  const has = (text) => assert.ok(crumbs.some((c) => c.includes(text)), text + " in " + JSON.stringify(crumbs, null, 1));
  has("navigation " + path + "?access_token=[Filtered]&page=2#id_token=[Filtered]");
  has("navigation " + path + '/next?X-Amz-Signature=[Filtered]&page=3 {"from":"' + web.base + path + "?access_token=[Filtered]&page=2#id_token=[Filtered]\"}");
  has('{"from":"' + web.base + path + '/next?X-Amz-Signature=[Filtered]&page=3"}');
  has("fetch GET /missing?api_key=[Filtered]&page=2 404");
  has("xhr GET /missing?password=[Filtered]&page=2 404");
  has("fetch GET http://127.0.0.1:9/x failed: TypeError");
  has("console calling https://api.example.com/v1?token=[Filtered]&page=2");
  assert.match(rec.message, /^callback https:\/\/app\.example\/cb\?code=\[Filtered\]&state=ok failed /);
  for (const b of bodies.filter((b) => b.includes(tag)).concat(JSON.stringify(rec))) {
    for (const v of Object.values(s)) assert.ok(!b.includes(v), "sent: " + v);
    assert.ok(!b.includes("alice"), "basic-auth user sent");
  }
  await context.close();
});

test("denyUrlParams filters more parameter names, besides the built-in ones", async () => {
  const { p, context, tag } = await open(page({ endpoint: server.base, options: { denyUrlParams: ["email", "utm"] } }));
  const path = await p.evaluate((tag) => {
    history.pushState({}, "", location.pathname + "?email=carol" + tag + "@example.com&utm_source=mail" + tag + "&token=tok" + tag + "&page=2&keyword=ok");
    F.captureMessage("deny " + tag + " https://app.example/?userEmail=e" + tag + "&ref=home");
    return location.pathname;
  }, tag);
  assert.equal(await p.evaluate(() => F.flush()), true);
  const [rec] = await waitFor(server.base, "deny " + tag);
  assert.ok(rec.meta.url.endsWith(path + "?email=[Filtered]&utm_source=[Filtered]&token=[Filtered]&page=2&keyword=ok"), rec.meta.url);
  assert.equal(rec.message, "deny " + tag + " https://app.example/?userEmail=[Filtered]&ref=home");
  await context.close();
});

test("without the module (it failed to load), every URL parameter's value and URL credentials stay in the page", async () => {
  const { p, context, tag } = await open(page({ endpoint: server.base, options: { wasmUrl: "/missing.wasm" } }));
  await p.evaluate(
    ([tag, user]) => {
      history.pushState({}, "", location.pathname + "?page=2&token=tok" + tag);
      F.setUser(user);
      F.captureMessage("nowasm " + tag + " https://bob:pw" + tag + "@app.example/?ref=home" + tag);
    },
    [tag, RAW_USER],
  );
  assert.equal(await p.evaluate(() => F.flush()), true);
  const [rec] = await waitFor(server.base, "nowasm " + tag);
  assert.ok(rec.meta.url.endsWith("?page=[Filtered]&token=[Filtered]"), rec.meta.url);
  assert.equal(rec.message, "nowasm " + tag + " https://app.example/?ref=[Filtered]");
  assert.equal(rec.meta.user, undefined);
  const sent = bodies.filter((b) => b.includes("nowasm " + tag));
  assert.ok(sent.length > 0);
  for (const b of sent) for (const v of ["tok" + tag, "pw" + tag, "home" + tag]) assert.ok(!b.includes(v), "sent: " + v);
  await context.close();
});

test("close() sends what is queued, then captures nothing and gives the page back its functions", async () => {
  const { p, context, tag, pageErrors } = await open(page({ endpoint: server.base }));
  const before = await listeners(p);
  const r = await p.evaluate(async (tag) => {
    const wrapped = window.fetch;
    F.captureMessage("before close " + tag);
    const ok = await F.close();
    const id = F.captureMessage("after close " + tag);
    setTimeout(() => {
      throw new Error("thrown after close " + tag);
    });
    await new Promise((done) => setTimeout(done, 300));
    return { ok, id, restored: window.fetch !== wrapped, stats: F.stats() };
  }, tag);
  assert.equal(r.ok, true, "close() resolved once the queue was confirmed");
  assert.ok(!r.id, "nothing captured after close: " + r.id);
  assert.equal(r.restored, true, "the page's fetch is its own again");
  assert.equal(r.stats.disabled, true);
  assert.deepEqual(gone(before, await listeners(p)), OURS, "every listener of the reporter's, once each, is gone");
  await waitFor(server.base, "before close " + tag);
  await new Promise((done) => setTimeout(done, 1000));
  const after = bodies.filter((b) => b.includes("after close " + tag));
  assert.deepEqual(after, [], "sent after close");
  assert.equal(pageErrors.length, 1, "the page's own error reached the page");
  await context.close();
});

test("text cut inside a surrogate pair is not rejected by the server", async () => {
  // Regression: a breadcrumb clipped inside an emoji, or a value holding half of one, was
  // written by JSON.stringify as a lone \ud83d escape, which the server's parser rejects:
  // the whole record was lost.
  const { p, context, tag } = await open(page({ endpoint: server.base }));
  await p.evaluate((tag) => {
    F.addBreadcrumb({ category: "cut", message: "x" + "\u{1F600}".repeat(200) });
    F.setExtra("half", "y" + "\u{1F600}".slice(0, 1));
    F.captureMessage("surrogate " + tag);
  }, tag);
  assert.equal(await p.evaluate(() => F.flush()), true);
  assert.equal((await p.evaluate(() => F.stats())).rejected, 0);
  const [rec] = await waitFor(server.base, "surrogate " + tag);
  const crumb = rec.meta.breadcrumbs.find((c) => c.category === "cut");
  assert.ok(crumb.message.endsWith("\uFFFD…"), JSON.stringify(crumb.message.slice(-4)));
  assert.equal(rec.meta.extra.half, "y\uFFFD");
  await context.close();
});

test("a record past the schema's limits is fitted in the page, not rejected by the server", async () => {
  // Regression: an event with a newline or past 128 characters, or data nested deeper than
  // meta's 8 levels, made the server reject the record, and it was lost.
  const { p, context, tag } = await open(page({ endpoint: server.base }));
  await p.evaluate((tag) => {
    let deep = { leaf: 1 };
    for (let i = 0; i < 10; i++) deep = { d: deep };
    F.addBreadcrumb({ category: "deep", message: "crumb " + tag, data: deep });
    F.captureException(new Error("limits " + tag + " " + "\u{1F600}".repeat(5000)), { event: "custom\nevent\u0000" + "e".repeat(200), extra: deep });
  }, tag);
  assert.equal(await p.evaluate(() => F.flush()), true);
  assert.equal((await p.evaluate(() => F.stats())).rejected, 0);
  const [rec] = await waitFor(server.base, "limits " + tag);
  assert.equal(rec.event, "custom event " + "e".repeat(115));
  assert.ok(Buffer.byteLength(rec.message) <= 8192 && rec.message.endsWith("…[truncated]"), rec.message.slice(-40));
  assert.equal(rec.meta.extra, undefined, "the nested extra went");
  assert.equal(rec.meta.breadcrumbs, undefined, "the nested breadcrumb went");
  frames(rec); // frames kept: they were never the problem
  await context.close();
});

test("captureException returns the stored record's id; setTags, setExtra and withScope shape later records", async () => {
  const { p, context, tag } = await open(page({ endpoint: server.base }));
  const ids = await p.evaluate((tag) => {
    F.setTags({ team: "web", run: tag });
    F.setExtra("cart", { items: 2 });
    const scoped = F.withScope((s) => {
      s.setTag("flow", "checkout");
      s.setExtra("step", 3);
      return F.captureException(new Error("scoped " + tag));
    });
    const plain = F.captureMessage("plain " + tag, "warning");
    const again = F.captureMessage("plain " + tag, "warning");
    const ignored = F.captureMessage("ResizeObserver loop " + tag);
    return { scoped, plain, again, ignored };
  }, tag);
  assert.match(ids.scoped, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(ids.again, ids.plain, "a repeat returns the id it folded into");
  assert.equal(ids.ignored, "");
  assert.equal(await p.evaluate(() => F.flush()), true);
  const [scoped] = await waitFor(server.base, "scoped " + tag);
  const [plain] = await waitFor(server.base, "plain " + tag);
  assert.equal(scoped.id, ids.scoped);
  assert.equal(plain.id, ids.plain);
  assert.deepEqual(scoped.meta.tags, { team: "web", run: tag, flow: "checkout" });
  assert.deepEqual(scoped.meta.extra, { cart: { items: 2 }, step: 3 });
  assert.deepEqual(plain.meta.tags, { team: "web", run: tag }, "withScope's tag was undone");
  assert.deepEqual(plain.meta.extra, { cart: { items: 2 } });
  assert.equal(plain.meta.count, 2);
  await context.close();
});

/** Opens `url` in one more tab of `context` and waits for the reporter. */
async function tab(context, url) {
  const p = await context.newPage();
  await p.goto(url);
  await p.waitForFunction(() => window.ready);
  return p;
}

/** Two tabs of one page sending through a counting proxy, offline, each with a record that
 * it keeps in localStorage: `message(name)`, for tabs "a" and "b". */
async function twoTabsOffline(t) {
  const front = await proxy(server.base, web.base, () => null);
  t.after(() => front.close());
  const { p: a, context, tag } = await open(page({ endpoint: front.base }));
  const tabs = { a, b: await tab(context, a.url()) };
  const message = (name) => "tab " + name + " " + tag;
  await context.setOffline(true);
  for (const [name, p] of Object.entries(tabs)) {
    await p.evaluate((m) => F.captureMessage(m), message(name));
    assert.equal(await p.evaluate(() => F.flush(300)), false);
    assert.ok((await storedText(p)).includes(message(name)), "tab " + name + " stored its record");
  }
  return { front, context, tag, url: a.url(), message, ...tabs };
}

/** Closes a tab as a user does (pagehide runs), and waits until it is gone. */
async function closeTab(p) {
  await Promise.all([p.waitForEvent("close"), p.close({ runBeforeUnload: true })]);
}

/** Each tab's record reached the server's front door exactly once (not just stored once). */
function sentOnce(front, names, message) {
  for (const name of names) {
    const posts = front.seen.filter((s) => s.body.includes(message(name)));
    assert.equal(posts.length, 1, "tab " + name + "'s record was sent " + posts.length + " times: " + JSON.stringify(front.seen));
  }
}

test("two tabs offline, one closes: the other sends both tabs' records once online, and the next load none again", async (t) => {
  // Regression: all tabs shared one localStorage key and each overwrote the others' queue,
  // so the records of a tab that closed offline were lost.
  const { front, context, tag, message, a, b } = await twoTabsOffline(t);
  await closeTab(a);
  await context.setOffline(false);
  const recs = await waitFor(server.base, tag, 2, 15000, 1000);
  assert.deepEqual(recs.map((r) => r.message).sort(), [message("a"), message("b")]);
  const c = await tab(context, b.url());
  await c.evaluate(() => new Promise((r) => setTimeout(r, 1000)));
  assert.equal(await c.evaluate(() => F.stats().sent), 0, "the next load found nothing left to send");
  sentOnce(front, ["a", "b"], message);
  assert.ok(!(await storedText(c)).includes(tag), "nothing of theirs is left in localStorage");
  await context.close();
});

test("two tabs close offline: the next load sends both tabs' records, once", async (t) => {
  const { front, context, tag, url, message, a, b } = await twoTabsOffline(t);
  await closeTab(b);
  await closeTab(a);
  await context.setOffline(false);
  const c = await tab(context, url);
  const recs = await waitFor(server.base, tag, 2, 15000, 1000);
  assert.deepEqual(recs.map((r) => r.message).sort(), [message("a"), message("b")]);
  await c.waitForFunction(() => !Object.keys(localStorage).some((k) => localStorage.getItem(k).includes('"records"')));
  sentOnce(front, ["a", "b"], message);
  await context.close();
});

test("a tab whose records another tab claimed takes them back with that tab's entry, none lost", async () => {
  // Regression: two hidden tabs come back online. The first claims the second's entry (its
  // own entry, left while hidden, now holds both tabs' records) and marks the second's
  // claimed. The second then took the first's entry, skipped its own records as already
  // queued, and dropped them as claimed: they were lost. Here the first tab's writes are
  // made by hand, so the order is certain.
  const { p, context, tag } = await open(page({ endpoint: server.base }));
  await context.setOffline(true);
  await p.evaluate((tag) => F.captureMessage("claimed back " + tag), tag);
  assert.equal(await p.evaluate(() => F.flush(300)), false);
  await p.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith("faultline:"));
    const { records } = JSON.parse(localStorage.getItem(key));
    localStorage.setItem(key.replace(/[^:]*$/, "other-tab"), JSON.stringify({ at: Date.now(), left: 1, records }));
    localStorage.setItem(key, JSON.stringify({ at: Date.now(), claimed: 1 }));
  });
  await context.setOffline(false);
  const recs = await waitFor(server.base, "claimed back " + tag, 1, 15000, 1000);
  assert.equal(recs.length, 1);
  await p.waitForFunction(() => !Object.keys(localStorage).some((k) => localStorage.getItem(k).includes('"records"')));
  await context.close();
});
