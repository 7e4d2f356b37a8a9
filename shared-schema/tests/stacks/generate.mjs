// Regenerates chromium.txt and node.txt: real `Error.stack` strings thrown in headless Chromium
// and in Node, each with the frames V8 itself says they hold. The expected frames come from V8's
// structured call sites (`Error.prepareStackTrace`), not from reading the printed text: every
// scenario runs twice from the same call site, once for `e.stack` as printed and once for the
// call sites, and the script checks that the call sites print exactly that text before it
// writes the case. Names then get this crate's normalization (README.md).
//
//   node shared-schema/tests/stacks/generate.mjs   (from the workspace root; needs
//   tests/e2e/node_modules: playwright-core, esbuild, react, react-dom; and /usr/bin/chromium)

import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const e2e = join(here, '../../../tests/e2e/');
const require = createRequire(e2e);
const { chromium } = require('playwright-core');
const esbuild = require('esbuild');

// ---------------------------------------------------------------------------------------------
// Runs in the page and in Node: `capture(name, f)` throws f twice from one call site.
// ---------------------------------------------------------------------------------------------
const CAPTURE = String.raw`
function __site(c) {
  return {
    text: c.toString(), fn: c.getFunctionName(), file: c.getScriptNameOrSourceURL(),
    line: c.getLineNumber(), col: c.getColumnNumber(), native: c.isNative(), eval: c.isEval(),
    origin: c.getEvalOrigin(), async: c.isAsync(), promiseAll: c.isPromiseAll(),
    index: c.getPromiseIndex(), wasm: /:wasm-function\[/.test(c.toString()),
  };
}
async function capture(name, f) {
  const out = { name };
  for (const mode of [0, 1]) {
    try {
      await f();
      throw new Error('scenario ' + name + ' did not throw');
    } catch (e) {
      if (mode === 0) {
        out.stack = e.stack;
      } else {
        Error.prepareStackTrace = (err, sites) => {
          out.head = String(err);
          out.sites = sites.map(__site);
          return 'structured';
        };
        void e.stack;
        Error.prepareStackTrace = undefined;
      }
    }
  }
  return out;
}
`;

/** Whether V8 prints the eval origin of a call site. */
const evalOrigin = (s) => s.eval && s.origin && s.origin !== s.file;

/** The location V8 prints for a call site: the text inside the parentheses. */
function printedLocation(s) {
  if (s.promiseAll) return 'index ' + s.index;
  if (s.native) return 'native';
  // An eval'd script with a `//# sourceURL=` prints as that URL, without the eval origin.
  let loc = evalOrigin(s) ? s.origin + ', ' : '';
  if (s.wasm) return null; // checked against the text below
  loc += s.file || '<anonymous>';
  if (s.line != null) loc += ':' + s.line + (s.col != null ? ':' + s.col : '');
  return loc;
}

/** The expected frame for one structured call site, in the crate's normalization. */
function expected(s) {
  let loc = printedLocation(s);
  let name;
  if (loc === null) {
    // wasm: `[name (]url:wasm-function[N]:0xOFF[)]`, where url and the 1-based column
    // (OFF + 1) are the call site's; the file is url:wasm-function[N], the column OFF.
    const at = `${s.file}:wasm-function[`;
    const m = /^(?:(.*) \()?(.*):wasm-function\[(\d+)\]:0x([0-9a-f]+)\)?$/.exec(s.text);
    if (!m || m[2] !== s.file || parseInt(m[4], 16) !== s.col - 1) throw new Error('unexpected wasm frame ' + s.text);
    return { fn: m[1] ?? null, file: `${at}${m[3]}]`, line: null, col: s.col - 1 };
  }
  const async = s.async ? 'async ' : '';
  if (s.text === async + loc) {
    name = null;
  } else if (s.text.startsWith(async) && s.text.endsWith(' (' + loc + ')')) {
    name = s.text.slice(async.length, s.text.length - loc.length - 3);
  } else {
    throw new Error(`call site ${JSON.stringify(s.text)} does not print as ${loc}`);
  }
  if (name !== null) {
    name = name.replace(/^new /, '').replace(/ \[as [^\]]*\]$/, '');
    if (name === '<anonymous>' || name === '') name = null;
  }
  if (s.promiseAll) return { fn: name, file: null, line: null, col: null };
  if (s.native) return { fn: name, file: 'native', line: null, col: null };
  if (evalOrigin(s)) {
    // An eval frame reports its innermost real call site: `eval at f (eval at g (url:l:c))`.
    const inner = s.origin.replace(/\)+$/, '');
    const site = inner.slice(inner.lastIndexOf('(') + 1);
    const m = /^(.*):(\d+):(\d+)$/.exec(site);
    if (m) return { fn: name, file: m[1], line: +m[2], col: +m[3] };
    return { fn: name, file: site, line: null, col: null };
  }
  return { fn: name, file: s.file || '<anonymous>', line: s.line, col: s.col };
}

function caseText(source, r) {
  const printed = [r.head, ...r.sites.map((s) => '    at ' + s.text)].join('\n');
  if (printed !== r.stack) {
    throw new Error(`${r.name}: call sites print\n${printed}\nbut e.stack is\n${r.stack}`);
  }
  const frames = r.sites.map(expected).map((f) =>
    [f.fn ?? '-', f.file ?? '-', f.line ?? '-', f.col ?? '-'].join(' | '),
  );
  return `=== ${r.name}\nsource: ${source}\n--- stack\n${r.stack}\n--- frames\n${frames.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Chromium scenarios: scripts served from https://app.example.test/ by request interception.
// ---------------------------------------------------------------------------------------------
const APP = String.raw`
function parseConfig(text) { return JSON.parse(text).settings.theme; }
function loadTheme() { return parseConfig('{"settings": null}'); }
class Cart {
  constructor(items) { this.items = items; this.total = items.reduce((sum, i) => sum + i.price.amount, 0); }
  static fromJson(json) { return new Cart(JSON.parse(json)); }
  get count() { return this.items.map((i) => i.qty.value).length; }
}
const api = { fetchUser(id) { return this.cache[id].name; } };
api.getUser = api.fetchUser;
function runEval() { eval('function inner() { throw new Error("in eval") }\ninner()'); }
function runNestedEval() { eval('eval("(function deep() { null.x })()")'); }
function runFunctionCtor() { new Function('a', 'return a.b.c')(undefined); }
function runSourceUrlEval() {
  eval('function render() {\n  return undefinedThing.x;\n}\nrender();\n//# sourceURL=webpack:///./src/components/Widget.jsx?');
}
async function fetchProfile() { await null; throw new TypeError('profile missing'); }
async function loadPage() { await fetchProfile(); }
async function all() { await Promise.all([fetchProfile(), Promise.resolve(1)]); }
// A listener's exception goes to window.onerror; rethrow it to capture it.
function clickAndRethrow(b) {
  let caught;
  const onError = (ev) => { caught = ev.error; ev.preventDefault(); };
  window.addEventListener('error', onError);
  document.body.append(b);
  b.click();
  window.removeEventListener('error', onError);
  b.remove();
  if (caught) throw caught;
}
function clickHandler() {
  const b = document.createElement('button');
  b.addEventListener('click', function () { document.querySelector('#missing').focus(); });
  clickAndRethrow(b);
}
function onClickAttr() {
  const b = document.createElement('button');
  b.setAttribute('onclick', 'missingHandler()');
  clickAndRethrow(b);
}
const minified = function(){function e(t){return t.a.b}function n(t){return e(t)}return{run:function(t){return[t].map(n)}}}();
function throwString() { throw new Error('Failed: user@example.com could not be reached at host:25 (after 3 tries)\n    at line 2 of the message'); }
function recurse(n) { if (n === 0) throw new RangeError('deep'); return recurse(n - 1); }
`;

// A wasm module whose exported `run` calls imported `env.fail`, which throws.
const WASM = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, // magic, version
  1, 4, 1, 96, 0, 0, // type section: () -> ()
  2, 12, 1, 3, 101, 110, 118, 4, 102, 97, 105, 108, 0, 0, // import env.fail
  3, 2, 1, 0, // function section: one function of type 0
  7, 7, 1, 3, 114, 117, 110, 0, 1, // export "run" = func 1
  10, 6, 1, 4, 0, 16, 0, 11, // code: call 0; end
]);

const SCENARIOS = String.raw`
window.__scenarios = [
  ['Chromium: TypeError in nested functions', () => loadTheme()],
  ['Chromium: constructor, static method and Array.reduce callback', () => Cart.fromJson('[{"price": null}]')],
  ['Chromium: getter and Array.map callback', () => { const c = new Cart([]); c.items = [{}]; return c.count; }],
  ['Chromium: method called through an alias', () => api.getUser(1)],
  ['Chromium: eval', () => runEval()],
  ['Chromium: nested eval', () => runNestedEval()],
  ['Chromium: new Function', () => runFunctionCtor()],
  ['Chromium: eval with a webpack sourceURL', () => runSourceUrlEval()],
  ['Chromium: async functions', () => loadPage()],
  ['Chromium: Promise.all', () => all()],
  ['Chromium: addEventListener handler run by click()', () => clickHandler()],
  ['Chromium: inline onclick attribute', () => onClickAttr()],
  ['Chromium: minified anonymous functions', () => minified.run({})],
  ['Chromium: message with a URL-like text and a fake frame line', () => throwString()],
  ['Chromium: recursion, ten frames', () => recurse(20)],
  ['Chromium: JSON.parse from a blob: script', () => window.blobFn()],
  ['Chromium: data: URL script', () => window.dataFn()],
  ['Chromium: script path with spaces and parentheses', () => window.parenFn()],
  ['Chromium: wasm calling a throwing import', () => window.wasmRun()],
];
`;

async function chromiumCases(reactBundle) {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const version = browser.version();
  try {
    const page = await browser.newPage();
    const files = {
      '/': `<!doctype html><body><script src="/assets/capture.js"></script>
        <script src="/assets/app-3f2a9c1b.js"></script><script src="/assets/scenarios.js"></script>
        <script src="/static/my%20app%20(1)/paren.js"></script>
        <script src="/assets/index-8d1e2f.js"></script></body>`,
      '/assets/capture.js': CAPTURE + `window.capture = capture;
        async function runAll() {
          const out = [];
          for (const [name, f] of window.__scenarios) out.push(await capture(name, f));
          out.push(...(await window.__react()));
          window.__results = out;
        }`,
      '/assets/app-3f2a9c1b.js': APP,
      '/assets/scenarios.js': SCENARIOS + `
        window.blobFn = null;
        const blob = new Blob(['window.blobFn = function blobFn() { return JSON.parse("{oops") };'], { type: 'text/javascript' });
        const s = document.createElement('script'); s.src = URL.createObjectURL(blob); document.head.append(s);
        const d = document.createElement('script');
        d.src = 'data:text/javascript,window.dataFn=function dataFn(){return null.f}';
        document.head.append(d);
        WebAssembly.instantiate(new Uint8Array([${WASM}]), { env: { fail() { throw new Error('from wasm import'); } } })
          .then(({ instance }) => { window.wasmRun = () => instance.exports.run(); });`,
      '/static/my%20app%20(1)/paren.js': 'window.parenFn = function parenFn() { return [1].forEach(function () { undefinedFn(); }); };',
      '/assets/index-8d1e2f.js': reactBundle,
    };
    await page.route('https://app.example.test/**', (route) => {
      const path = new URL(route.request().url()).pathname;
      const body = files[path];
      if (body === undefined) return route.fulfill({ status: 404, body: 'not found' });
      const type = path === '/' ? 'text/html' : 'text/javascript';
      return route.fulfill({ status: 200, contentType: type, body });
    });
    await page.goto('https://app.example.test/');
    await page.waitForFunction(() => window.blobFn && window.dataFn && window.wasmRun && window.__react);
    // Started from a timer, so no frame of Playwright's own evaluation is on the stacks.
    await page.evaluate(() => setTimeout(window.runAll, 0));
    const results = await (await page.waitForFunction(() => window.__results)).jsonValue();
    return results.map((r) => caseText(`generated by generate.mjs in headless Chromium ${version}`, r));
  } finally {
    await browser.close();
  }
}

// A React 19 production build (esbuild, minified): a component throws while rendering; the
// error is caught by createRoot's onCaughtError under an error boundary, and by a click handler.
const REACT_APP = String.raw`
import { Component, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { flushSync } from 'react-dom';

function PriceTag({ product }) { return <span>{product.price.toFixed(2)}</span>; }
function ProductList({ products }) { return <ul>{products.map((p) => <li key={p.id}><PriceTag product={p} /></li>)}</ul>; }
class Boundary extends Component {
  state = { failed: false };
  static getDerivedStateFromError() { return { failed: true }; }
  render() { return this.state.failed ? <p>failed</p> : this.props.children; }
}
function renderOnce() {
  let caught;
  const root = createRoot(document.createElement('div'), { onCaughtError: (e) => { caught = e; } });
  flushSync(() => root.render(<Boundary><ProductList products={[{ id: 1, price: null }]} /></Boundary>));
  root.unmount();
  if (caught) throw caught;
}
function Checkout() {
  const [items] = useState(null);
  return <button onClick={() => items.forEach((i) => i)}>pay</button>;
}
function clickOnce() {
  const host = document.createElement('div');
  document.body.append(host);
  const root = createRoot(host);
  flushSync(() => root.render(<Checkout />));
  let caught;
  const onError = (ev) => { caught = ev.error; ev.preventDefault(); };
  window.addEventListener('error', onError);
  host.querySelector('button').click();
  window.removeEventListener('error', onError);
  root.unmount();
  host.remove();
  if (caught) throw caught;
}
window.__react = async () => [
  await capture('Chromium: React 19 production build, render error caught by an error boundary', renderOnce),
  await capture('Chromium: React 19 production build, error in an onClick handler', clickOnce),
];
`;

function buildReact() {
  const out = esbuild.buildSync({
    stdin: { contents: REACT_APP, loader: 'jsx', resolveDir: e2e },
    bundle: true, minify: true, write: false, format: 'iife', jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' }, logLevel: 'silent',
  });
  return out.outputFiles[0].text;
}

// ---------------------------------------------------------------------------------------------
// Node scenarios: one script per case under a fixed directory, so paths are stable.
// ---------------------------------------------------------------------------------------------
const NODE_DIR = '/tmp/faultline-stack-corpus';
const NODE_SCENARIOS = {
  'Node: CommonJS modules': [
    'app.js',
    `const { readConfig } = require('./lib/config.js');\nrun(() => readConfig('null'));`,
    { 'lib/config.js': `exports.readConfig = function readConfig(text) { return JSON.parse(text).port; };` },
  ],
  'Node: ES module with async functions and await': [
    'server.mjs',
    `async function handler(req) { await null; return req.body.user.id; }\nasync function route() { return await handler({ body: {} }); }\nawait run(() => route());`,
  ],
  'Node: Promise.all rejection': [
    'batch.mjs',
    `async function job(n) { await null; if (n === 2) throw new Error('job ' + n + ' failed'); }\nawait run(() => Promise.all([job(1), job(2)]));`,
  ],
  'Node: EventEmitter listener': [
    'events.js',
    `const { EventEmitter } = require('events');\nconst bus = new EventEmitter();\nbus.on('order', function onOrder(o) { o.lines.push(1); });\nrun(() => bus.emit('order', {}));`,
  ],
  'Node: class constructor and method alias': [
    'classes.js',
    `class Repo { constructor(db) { this.table = db.table('users'); } }\nconst svc = { create() { return new Repo(null); } };\nsvc.make = svc.create;\nrun(() => svc.make());`,
  ],
  'Node: vm.runInNewContext': [
    'vmrun.js',
    `const vm = require('vm');\nrun(() => vm.runInNewContext('function tpl(d) { return d.user.name }\\ntpl({})', {}, { filename: 'template.vm.js', displayErrors: false }));`,
  ],
  'Node: setTimeout callback (timers)': [
    'timer.js',
    `run(() => new Promise((resolve, reject) => setTimeout(function tick() { try { null.go(); } catch (e) { reject(e); } }, 1)));`,
  ],
  'Node: JSON.parse SyntaxError from a string': [
    'json.js',
    `function load(text) { return JSON.parse(text); }\nrun(() => load('{"a": 1,}'));`,
  ],
};

function nodeCases() {
  rmSync(NODE_DIR, { recursive: true, force: true });
  const cases = [];
  for (const [name, [main, body, extra = {}]] of Object.entries(NODE_SCENARIOS)) {
    const dir = join(NODE_DIR, main.replace(/\.m?js$/, ''));
    mkdirSync(join(dir, 'lib'), { recursive: true });
    for (const [p, text] of Object.entries(extra)) writeFileSync(join(dir, p), text);
    const esm = main.endsWith('.mjs');
    const prelude = CAPTURE + `
const __name = ${JSON.stringify(name)};
${esm ? 'globalThis.run' : 'global.run'} = async (f) => { process.stdout.write(JSON.stringify(await capture(__name, f))); };
`;
    // The prelude is one line-less block above the scenario, the same in every run.
    writeFileSync(join(dir, main), prelude.replace(/\n/g, ' ') + '\n' + body + '\n');
    const out = execFileSync(process.execPath, [join(dir, main)], { encoding: 'utf8' });
    cases.push(caseText(`generated by generate.mjs in Node ${process.version}`, JSON.parse(out)));
  }
  return cases;
}

const header = (what) =>
  `# ${what}, generated by generate.mjs (see there): expected frames from V8's structured call\n` +
  `# sites, checked to print exactly the stack shown.\n`;
const chromiumTraces = await chromiumCases(buildReact());
writeFileSync(join(here, 'chromium.txt'), header('Stacks thrown in headless Chromium') + '\n' + chromiumTraces.join('\n'));
writeFileSync(join(here, 'node.txt'), header('Stacks thrown in Node') + '\n' + nodeCases().join('\n'));
console.log(`wrote ${chromiumTraces.length} Chromium traces and ${Object.keys(NODE_SCENARIOS).length} Node traces`);
