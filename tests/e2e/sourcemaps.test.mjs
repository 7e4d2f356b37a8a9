// Source maps end to end. Minified bundles built here throw in headless Chromium: one by
// esbuild whose map is uploaded with `faultline sourcemaps upload`, one by `vite build` whose
// map the package's Vite plugin (`faultline-reporter/vite`) uploads, and the demo panel the
// server embeds (its maps in target/www-sourcemaps, as `cargo xtask run` uploads them). The
// records a real `faultline serve` stores read as the original code (function, file, line,
// source context; the bundle's location kept in `minified`), and the dashboard's detail view
// shows them, with the minified frames behind its toggle.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import * as esbuild from "esbuild";
import { ADMIN, BIN, PKG, PUBLIC_KEY, ROOT, SALT, launch, startFaultline, staticServer, waitFor } from "./harness.mjs";

const FIXTURES = path.join(import.meta.dirname, "fixtures");
const SHOTS = path.join(ROOT, "target/screenshots");
const VITE = path.join(ROOT, "www/node_modules/vite/bin/vite.js");
const DEMO_MAPS = path.join(ROOT, "target/www-sourcemaps");
const RUN = Date.now().toString(36);
const ESBUILD_RELEASE = "e2e-esbuild@" + RUN;
const VITE_RELEASE = "e2e-vite@" + RUN;

const pages = new Map();
const tmp = [];
let bundle; // the esbuild output folder, served at /bundle/
let viteDir; // the Vite project, its dist served at /vite/
let web;
let server;
let browser;

/** A fresh temporary folder, removed after the run. */
function tempDir(name) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), name));
  tmp.push(d);
  return d;
}

/** The 1-based line of `file` holding `marker`. */
function lineOf(file, marker) {
  const i = fs.readFileSync(file, "utf8").split("\n").findIndex((l) => l.includes(marker));
  assert.ok(i >= 0, marker + " not in " + file);
  return i + 1;
}

/** The 1-based line and column of the last `start` before the first `needle` in `text`
 * (the `new Error(` of a message: the minifier may rewrite the message's quoting). */
function positionOf(text, needle, start) {
  const at = text.lastIndexOf(start, text.indexOf(needle));
  assert.ok(text.includes(needle) && at >= 0, start + "..." + needle + " not in the bundle");
  const lines = text.slice(0, at).split("\n");
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

/** Runs a program to its end: `{ code, out }` (stdout and stderr together). */
function run(program, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

/** `faultline sourcemaps ...` against the test server, with the admin token from the env. */
function cli(...args) {
  return run(BIN, ["sourcemaps", ...args], { env: { ...process.env, FAULTLINE_SERVER: server.base, FAULTLINE_ADMIN_TOKEN: ADMIN } });
}

/** `GET /sourcemaps/{release}`: the URLs the server holds maps for. */
async function storedUrls(release) {
  const res = await fetch(server.base + "/sourcemaps/" + encodeURIComponent(release), { headers: { authorization: "Bearer " + ADMIN } });
  assert.equal(res.status, 200, "GET /sourcemaps/" + release + ": " + (await res.clone().text()));
  const urls = [];
  (function walk(v) {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) k === "url" && typeof x === "string" ? urls.push(x) : walk(x);
  })(await res.json());
  return urls.sort();
}

/** `vite build` of the Vite fixture, as an app runs it (the package's plugin in its config). */
function viteBuild(env) {
  return run(process.execPath, [VITE, "build"], {
    cwd: viteDir,
    env: { ...process.env, FAULTLINE_SERVER: server.base, FAULTLINE_ADMIN_TOKEN: ADMIN, E2E_RELEASE: VITE_RELEASE, ...env },
  });
}

/** Every file under `dir`, as paths relative to it. */
function listFiles(dir) {
  return fs.readdirSync(dir, { recursive: true }).filter((f) => fs.statSync(path.join(dir, f)).isFile());
}

before(async () => {
  // esbuild: minified, names mangled, the map beside the bundle with sourcesContent.
  bundle = tempDir("faultline-sm-esbuild-");
  await esbuild.build({
    entryPoints: [path.join(FIXTURES, "sourcemap-app.js")],
    bundle: true,
    format: "esm",
    minify: true,
    sourcemap: "external",
    outfile: path.join(bundle, "app.js"),
    alias: { "faultline-reporter": PKG },
    logLevel: "warning",
  });
  fs.copyFileSync(path.join(PKG, "faultline_reporter_bg.wasm"), path.join(bundle, "faultline_reporter_bg.wasm"));

  // The Vite project: the fixture, with the built package linked in as an app installs it.
  viteDir = tempDir("faultline-sm-vite-");
  fs.cpSync(path.join(FIXTURES, "vite-app"), viteDir, { recursive: true });
  fs.mkdirSync(path.join(viteDir, "node_modules"));
  fs.symlinkSync(PKG, path.join(viteDir, "node_modules/faultline-reporter"), "dir");
  fs.mkdirSync(path.join(viteDir, "dist"));

  pages.set("/esbuild", '<!doctype html><meta charset="utf-8"><button id="go">Go</button><script type="module" src="/bundle/app.js"></script>');
  web = await staticServer(pages, { "/bundle/": bundle, "/vite/": path.join(viteDir, "dist") });
  server = await startFaultline(web.base, { selfOrigin: true });
  browser = await launch();
  fs.mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  web?.close();
  for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
});

/** Opens `url` in a fresh context with the reporter's options (release `release`), clicks
 * #go with a new tag and returns the stored record of that error. */
async function throwIn(url, release, tag) {
  const context = await browser.newContext();
  const options = { endpoint: server.base, key: PUBLIC_KEY, salt: SALT, flushIntervalMs: 200, release };
  await context.addInitScript((o) => {
    window.faultlineOptions = o;
  }, options);
  const p = await context.newPage();
  const uncaught = [];
  p.on("pageerror", (e) => uncaught.push(e.message));
  await p.goto(url);
  assert.equal(await p.evaluate(() => window.ready), true, "the reporter started");
  await p.evaluate((t) => (window.tag = t), tag);
  await p.click("#go");
  const records = await waitFor(server.base, tag);
  await context.close();
  assert.equal(records.length, 1, "one record for " + tag);
  assert.ok(uncaught.some((m) => m.includes(tag)), "the error was uncaught in the page: " + uncaught);
  return records[0];
}

let esbuildTag; // the record the dashboard test opens

test("an esbuild bundle's map uploaded with the CLI: the innermost frame reads as the original function, file and line", async () => {
  const up = await cli("upload", "--release", ESBUILD_RELEASE, "--url-prefix", "~/bundle/", bundle);
  assert.equal(up.code, 0, "sourcemaps upload failed:\n" + up.out);
  assert.deepEqual(await storedUrls(ESBUILD_RELEASE), ["~/bundle/app.js"]);
  const listed = await cli("list", "--release", ESBUILD_RELEASE);
  assert.equal(listed.code, 0, listed.out);
  assert.match(listed.out, /~\/bundle\/app\.js/);

  const source = path.join(FIXTURES, "sourcemap-app.js");
  const minified = positionOf(fs.readFileSync(path.join(bundle, "app.js"), "utf8"), "invoice has no lines (", "new Error(");
  esbuildTag = "sm-esbuild-" + RUN;
  const rec = await throwIn(web.base + "/esbuild", ESBUILD_RELEASE, esbuildTag);
  assert.equal(rec.meta.release, ESBUILD_RELEASE);
  const [top, caller] = rec.meta.stack;
  assert.equal(top.function, "computeInvoiceTotal", JSON.stringify(top));
  assert.match(top.file, /sourcemap-app\.js$/);
  assert.equal(top.line, lineOf(source, "// THROW"));
  assert.ok(top.column >= 1);
  assert.match(top.context_line, /throw new Error\("invoice has no lines \(/);
  assert.ok(top.pre_context.some((l) => l.includes("invoice.lines.length === 0")), "pre_context: " + JSON.stringify(top.pre_context));
  // Where the frame pointed in the bundle: mangled name, the bundle's URL, its position.
  assert.equal(top.minified.file, web.base + "/bundle/app.js");
  assert.deepEqual([top.minified.line, top.minified.column], [minified.line, minified.column]);
  assert.notEqual(top.minified.function, "computeInvoiceTotal", "the bundle's names were mangled");
  assert.equal(caller.function, "submitInvoice", JSON.stringify(caller));
  assert.equal(caller.line, lineOf(source, "// CALL"));
  assert.ok(caller.minified, "the caller was mapped too");
});

test("vite build with faultline-reporter/vite uploads every chunk's map and deletes the .map files; the error reads as the original modules", async () => {
  const built = await viteBuild();
  assert.equal(built.code, 0, "vite build failed:\n" + built.out);
  const dist = path.join(viteDir, "dist");
  const files = listFiles(dist);
  const chunks = files.filter((f) => f.endsWith(".js")).map((f) => "~/vite/" + f.split(path.sep).join("/"));
  assert.ok(chunks.length >= 1, "chunks: " + files);
  assert.deepEqual(files.filter((f) => f.endsWith(".map")), [], "maps left in dist");
  for (const f of files.filter((f) => f.endsWith(".js"))) {
    assert.doesNotMatch(fs.readFileSync(path.join(dist, f), "utf8"), /sourceMappingURL/, f + " names a map (should be hidden)");
  }
  assert.deepEqual(await storedUrls(VITE_RELEASE), chunks.sort());

  const tag = "sm-vite-" + RUN;
  const rec = await throwIn(web.base + "/vite/index.html", VITE_RELEASE, tag);
  const [top, caller] = rec.meta.stack;
  assert.match(top.file, /src\/customer\.js$/, JSON.stringify(top));
  assert.equal(top.line, lineOf(path.join(FIXTURES, "vite-app/src/customer.js"), "// THROW"));
  assert.equal(top.function, "formatCustomer", JSON.stringify(top));
  assert.match(top.context_line, /throw new Error\("customer has no name/);
  assert.match(top.minified.file, /\/vite\/assets\/index-[\w-]+\.js$/);
  assert.match(caller.file, /src\/main\.js$/, JSON.stringify(caller));
  assert.equal(caller.line, lineOf(path.join(FIXTURES, "vite-app/src/main.js"), "// CALL"));
});

test("the Vite plugin fails the build with the server's reason when an upload is refused, and still deletes the maps", async () => {
  const built = await viteBuild({ FAULTLINE_ADMIN_TOKEN: "adm_wrong_token_0123456789", E2E_RELEASE: VITE_RELEASE + "-refused" });
  assert.notEqual(built.code, 0, "the build should fail:\n" + built.out);
  assert.match(built.out, /faultline-sourcemaps: \d+ problem\(s\) with the source maps of release e2e-vite@\w+-refused/);
  assert.match(built.out, /assets\/index-[\w-]+\.js: the server answered 401/);
  assert.deepEqual(listFiles(path.join(viteDir, "dist")).filter((f) => f.endsWith(".map")), []);
  const res = await fetch(server.base + "/sourcemaps/" + encodeURIComponent(VITE_RELEASE + "-refused"), { headers: { authorization: "Bearer " + ADMIN } });
  const body = res.status === 200 ? await res.text() : "";
  assert.doesNotMatch(body, /~\/vite\//, "nothing stored for the refused release");
});

/** The dashboard tab, signed in. */
async function dashboard() {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const dash = await context.newPage();
  const errors = [];
  dash.on("pageerror", (e) => errors.push(e));
  await dash.goto(server.base + "/overview"); // the record table; `/` lists issues
  await dash.fill("#token", ADMIN);
  await dash.click("#sign-in");
  await dash.waitForSelector("#critical-badge");
  dash.errors = errors;
  return dash;
}

/** Opens the record holding `tag` in the detail view; returns the frame list's locator. */
async function openDetail(dash, tag) {
  await dash.locator("#records tbody tr", { hasText: tag }).first().click({ timeout: 10000 });
  await dash.locator("#detail-message", { hasText: tag }).waitFor({ timeout: 5000 });
  return dash.locator("#detail-frames");
}

test("the dashboard's detail view shows the original frame with its source line highlighted, and the minified frame behind the toggle", async () => {
  assert.ok(esbuildTag, "the esbuild test ran first");
  const dash = await dashboard();
  const frames = await openDetail(dash, esbuildTag);
  const source = path.join(FIXTURES, "sourcemap-app.js");
  const top = frames.locator("li").first();
  assert.match(await top.locator(".frame-where").innerText(), new RegExp("^computeInvoiceTotal @ \\S*sourcemap-app\\.js:" + lineOf(source, "// THROW") + ":\\d+$"));
  const current = top.locator(".ctx-line.current");
  assert.equal(await current.count(), 1);
  assert.match(await current.innerText(), new RegExp(lineOf(source, "// THROW") + "\\s+throw new Error\\(\"invoice has no lines"));
  fs.mkdirSync(SHOTS, { recursive: true });
  await dash.locator("#detail").screenshot({ path: path.join(SHOTS, "sourcemaps-detail.png") });

  await dash.locator("#detail .minified-toggle").check();
  const minifiedText = await top.locator(".frame-where").innerText();
  assert.match(minifiedText, /^\S+ @ \S*\/bundle\/app\.js:\d+:\d+$/);
  assert.doesNotMatch(minifiedText, /computeInvoiceTotal/);
  assert.equal(await top.locator(".ctx-line").count(), 0, "no source context for the minified frame");
  await dash.locator("#detail").screenshot({ path: path.join(SHOTS, "sourcemaps-detail-minified.png") });
  await dash.locator("#detail .minified-toggle").uncheck();
  assert.match(await top.locator(".frame-where").innerText(), /^computeInvoiceTotal @ /);
  assert.deepEqual(dash.errors.map(String), [], "the dashboard threw");
  await dash.context().close();
});

test("the demo panel's error reads as Panel.jsx once its build's maps are uploaded (as cargo xtask run does)", async () => {
  const releaseFile = path.join(DEMO_MAPS, "release.txt");
  assert.ok(fs.existsSync(releaseFile), releaseFile + " is missing: build www (cargo xtask package, then npm run build in www)");
  const release = fs.readFileSync(releaseFile, "utf8").trim();
  const up = await cli("upload", "--release", release, "--url-prefix", "~/", DEMO_MAPS);
  assert.equal(up.code, 0, "sourcemaps upload failed:\n" + up.out);

  const context = await browser.newContext();
  const panel = await context.newPage();
  await panel.goto(server.base + "/panel");
  await panel.waitForSelector("#reporter-state.ok", { timeout: 10000 });
  const top = () => document.querySelector("#raised li")?.dataset.tag ?? null;
  await panel.click("#raise-type-error");
  await panel.waitForFunction((t) => (document.querySelector("#raised li")?.dataset.tag ?? null) !== t, null);
  const tag = await panel.evaluate(top);
  const [rec] = await waitFor(server.base, tag);
  await context.close();
  assert.ok(rec, "the panel's record arrived");
  assert.equal(rec.meta.release, release, "the server embeds a different www build than target/www-sourcemaps holds: rebuild the server after www");
  const panelJsx = path.join(ROOT, "www/src/panel/Panel.jsx");
  const [frame] = rec.meta.stack;
  assert.equal(frame.function, "readOrderTotal", JSON.stringify(frame));
  assert.match(frame.file, /src\/panel\/Panel\.jsx$/);
  assert.equal(frame.line, lineOf(panelJsx, "return order[tag].total;"));
  assert.match(frame.context_line, /return order\[tag\]\.total;/);
  assert.match(frame.minified.file, /\/assets\/start-[\w-]+\.js$/);

  const dash = await dashboard();
  const frames = await openDetail(dash, tag);
  assert.match(await frames.locator("li .frame-where").first().innerText(), /^readOrderTotal @ \S*Panel\.jsx:\d+:\d+$/);
  await dash.locator("#detail").screenshot({ path: path.join(SHOTS, "sourcemaps-panel-detail.png") });
  await dash.context().close();
});
