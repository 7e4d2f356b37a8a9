// `cargo xtask bench reporter`: shipped size and main-thread cost per capture, ours against
// @sentry/browser, measured in the same run on the same page setup. Prints Markdown.
//
// Size: each SDK bundled by esbuild (minified, ESM) from an entry that calls init,
// captureException and setUser, gzip -9; ours adds its .wasm (after wasm-opt -Oz), gzip -9.
// Cost: headless Chromium, 1,000 captureException calls with distinct errors (no folding
// advantage), both sending to a server on loopback (ours: a real `faultline serve`; Sentry:
// a loopback endpoint answering 200). Reported: the calls' own time, and the page's whole
// main-thread task time (CDP TaskDuration) from the first call until everything was sent.

import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import * as esbuild from "esbuild";
import { PKG, PUBLIC_KEY, SALT, launch, startFaultline, staticServer } from "../harness.mjs";
import { breakdown } from "./wasm-sizes.mjs";

const ROUNDS = Number(process.env.ROUNDS || 7);
const CALLS = 1000;
const out = fs.mkdtempSync(path.join(os.tmpdir(), "faultline-bench-"));
const gz = (buf) => zlib.gzipSync(buf, { level: 9 }).length;

async function bundle(name, source) {
  const entry = path.join(out, name + ".entry.js");
  fs.writeFileSync(entry, source);
  const outfile = path.join(out, name + ".js");
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    minify: true,
    target: "es2020",
    outfile,
    alias: { "faultline-reporter": PKG },
    nodePaths: [path.join(import.meta.dirname, "../node_modules")],
    logLevel: "error",
  });
  return fs.readFileSync(outfile);
}

const ours = await bundle(
  "faultline",
  `import { init, captureException, setUser, flush } from "faultline-reporter";
window.SDK = { init: (o) => init(o), capture: (e) => captureException(e), setUser, flush: () => flush(30000) };`,
);
const sentry = await bundle(
  "sentry",
  `import { init, captureException, setUser, flush } from "@sentry/browser";
window.SDK = { init: (o) => (init(o), Promise.resolve(true)), capture: (e) => captureException(e), setUser: (id) => setUser({ id }), flush: () => flush(30000) };`,
);
fs.copyFileSync(path.join(PKG, "faultline_reporter_bg.wasm"), path.join(out, "faultline_reporter_bg.wasm"));
const wasm = fs.readFileSync(path.join(PKG, "faultline_reporter_bg.wasm"));
const snippet = fs.readFileSync(path.join(PKG, "snippet.js"));
const oursTotal = gz(ours) + gz(wasm);
const sentryTotal = gz(sentry);

// A loopback endpoint for Sentry's envelopes.
const sink = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "access-control-allow-origin": "*", "access-control-allow-headers": "*", "content-type": "application/json" });
    res.end("{}");
  });
});
await new Promise((r) => sink.listen(0, "127.0.0.1", r));
const sentryDsn = "http://0123456789abcdef0123456789abcdef@127.0.0.1:" + sink.address().port + "/1";

const pages = new Map();
const web = await staticServer(pages, { "/b/": out });
const server = await startFaultline(web.base);
const config = {
  faultline: { endpoint: server.base, key: PUBLIC_KEY, salt: SALT, maxPerPage: 100000, maxQueue: 100000 },
  sentry: { dsn: sentryDsn, maxBreadcrumbs: 30 },
};
for (const name of ["faultline", "sentry"]) {
  pages.set("/" + name, `<!doctype html><html><body><script type="module">import "/b/${name}.js"; window.ready = SDK.init(${JSON.stringify(config[name])}).then(() => SDK.setUser("user-1"));</script></body></html>`);
}

const browser = await launch();
async function round(name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  await page.goto(web.base + "/" + name);
  await page.waitForFunction(() => window.ready);
  await page.evaluate(() => window.ready);
  const script = async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration").value;
  const before = await script();
  const callsMs = await page.evaluate(async (calls) => {
    const errors = [];
    for (let i = 0; i < calls; i++) errors.push(new Error("bench error " + i));
    const t = performance.now();
    for (const e of errors) SDK.capture(e);
    const took = performance.now() - t;
    await SDK.flush();
    return took;
  }, CALLS);
  const totalMs = ((await script()) - before) * 1000;
  await context.close();
  return { callsMs, totalMs };
}

const results = { faultline: [], sentry: [] };
for (let i = 0; i < ROUNDS; i++) {
  for (const name of i % 2 ? ["sentry", "faultline"] : ["faultline", "sentry"]) results[name].push(await round(name));
}
await browser.close();
await server.stop();
web.close();
sink.close();

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const m = (name, k) => median(results[name].map((r) => r[k]));
const kb = (n) => (n / 1024).toFixed(1) + " KB";
const us = (ms) => ((ms * 1000) / CALLS).toFixed(1) + " µs";
const chromium = browser.version();

console.log(`Chromium ${chromium}, @sentry/browser ${JSON.parse(fs.readFileSync(path.join(import.meta.dirname, "../node_modules/@sentry/browser/package.json"))).version}, ${ROUNDS} rounds (median), ${CALLS} distinct errors a round.

| shipped, gzip -9 | faultline-reporter | @sentry/browser | ratio |
| --- | --- | --- | --- |
| JavaScript (esbuild, minified: init + captureException + setUser) | ${kb(gz(ours))} | ${kb(sentryTotal)} | |
| WebAssembly (wasm-opt -Oz) | ${kb(gz(wasm))} | none | |
| **total** | **${kb(oursTotal)}** | **${kb(sentryTotal)}** | **${(oursTotal / sentryTotal).toFixed(2)}x** |
| early-error snippet (inline) | ${gz(snippet)} bytes | | |

| main thread per captureException | faultline-reporter | @sentry/browser | ratio |
| --- | --- | --- | --- |
| the call itself | ${us(m("faultline", "callsMs"))} | ${us(m("sentry", "callsMs"))} | ${(m("faultline", "callsMs") / m("sentry", "callsMs")).toFixed(2)}x |
| all main-thread task time until sent (CDP TaskDuration) | ${us(m("faultline", "totalMs"))} | ${us(m("sentry", "totalMs"))} | ${(m("faultline", "totalMs") / m("sentry", "totalMs")).toFixed(2)}x |
`);
// Where the wasm's bytes go, from a build that kept its names (xtask passes its path).
if (process.env.FAULTLINE_WASM_NAMED) {
  const b = breakdown(fs.readFileSync(process.env.FAULTLINE_WASM_NAMED));
  const pct = (n) => ((100 * n) / b.code).toFixed(0) + " %";
  console.log(`Where the wasm's bytes go (before gzip; function bodies by name, from the same build optimized with names kept): ${b.code} bytes of code, ${b.data} of data.

| part | code | share |
| --- | ---: | ---: |
${b.parts.map(([name, bytes]) => `| ${name} | ${bytes} B | ${pct(bytes)} |`).join("\n")}

Largest functions: ${b.largest.map((f) => `${f.name.replace(/::h[0-9a-f]{16}$/, "").replace(/\|/g, "\\|")} ${f.bytes} B`).join(", ")}.
`);
}
// Headline figures for the summary of docs/BENCHMARKS.md (HTML comments, see xtask's report.rs).
const figure = (f) => console.log(`<!-- figure ${JSON.stringify(f)} -->`);
const perCall = (name) => (m(name, "totalMs") * 1000) / CALLS;
figure({ name: "shipped size, gzip", unit: "KB", value: +(oursTotal / 1024).toFixed(1), better: "lower", competitor: "@sentry/browser", competitor_value: +(sentryTotal / 1024).toFixed(1), goal: +((0.8 * sentryTotal) / 1024).toFixed(1) });
figure({ name: "main-thread time per capture", unit: "µs", value: +perCall("faultline").toFixed(1), better: "lower", competitor: "@sentry/browser", competitor_value: +perCall("sentry").toFixed(1), goal: +(0.8 * perCall("sentry")).toFixed(1) });
