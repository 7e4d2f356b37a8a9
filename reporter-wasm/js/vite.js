// `faultline-reporter/vite`: uploads a Vite build's source maps to a Faultline server, so the
// frames of the release's errors read as the original code. Runs in Node (18+, global fetch)
// at build time, never in the page; no dependencies.
//
// 1. `config`: turns `build.sourcemap` on as "hidden" (maps written, no `sourceMappingURL`
//    comment in the bundle) unless the app already asked for maps.
// 2. `writeBundle`: for every emitted JavaScript chunk, `PUT /sourcemaps/{release}?url=URL`
//    with its map, URL being where the chunk is served (`urlPrefix` + its path in outDir).
// 3. With `deleteAfterUpload`, removes every `.map` file of the build from outDir, so they
//    are never served. Failed uploads fail the build unless `failOnError: false`.
import { readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";

const NAME = "faultline-sourcemaps";
const DEFAULT_SERVER = "http://127.0.0.1:8080";
const PARALLEL = 4;

/** Where the build's files are served: `~/` (any scheme and host) plus Vite's `base`. */
function defaultPrefix(base) {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(base || "")) return base; // an absolute CDN base
  const p = (base || "/").replace(/^\.?\//, "");
  return "~/" + p;
}

/** `include` as a predicate on a chunk's path in outDir (`assets/index-3f2a9c1b.js`). */
function matcher(include) {
  if (include === undefined || include === null) return () => true;
  const tests = (Array.isArray(include) ? include : [include]).map((t) => {
    if (t instanceof RegExp) return (f) => t.test(f);
    if (typeof t === "function") return (f) => Boolean(t(f));
    if (typeof t === "string") return (f) => f.startsWith(t);
    throw new TypeError(NAME + ": include takes path prefixes, RegExps or functions, got " + typeof t);
  });
  return (f) => tests.some((t) => t(f));
}

/** Runs `work` over `items`, `limit` at a time. */
async function eachLimited(items, limit, work) {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  });
  await Promise.all(runners);
}

/** The server's reason for a refusal: its JSON `error`, else the body's first 300 chars. */
async function reason(res) {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "string") return body.error;
  } catch {
    // not JSON: the text itself
  }
  return text.slice(0, 300) || res.statusText;
}

const gzipped = promisify(gzip);

/** Uploads one map (gzipped: maps shrink 4 to 5 times); returns the server's answer
 * (`{release, url, bytes, sources, sources_content}`). */
export async function uploadSourcemap({ server, token, release, url, map, timeoutMs = 60000 }) {
  const target = server.replace(/\/+$/, "") + "/sourcemaps/" + encodeURIComponent(release) + "?url=" + encodeURIComponent(url);
  const body = await gzipped(map);
  let res;
  try {
    res = await fetch(target, {
      method: "PUT",
      headers: { authorization: "Bearer " + token, "content-type": "application/json", "content-encoding": "gzip" },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const cause = e && e.cause && e.cause.message ? " (" + e.cause.message + ")" : "";
    throw new Error("cannot reach " + server + ": " + (e && e.message) + cause);
  }
  if (!res.ok) throw new Error("the server answered " + res.status + ": " + (await reason(res)));
  return res.json().catch(() => ({}));
}

/**
 * The Vite plugin. Options: `release` (required), `server` (default `FAULTLINE_SERVER`, else
 * http://127.0.0.1:8080), `token` (default `FAULTLINE_ADMIN_TOKEN`), `urlPrefix` (default
 * `~/` + Vite's `base`), `include` (path prefixes, RegExps or predicates on the chunk's path
 * in outDir; default every chunk), `deleteAfterUpload` (default false), `failOnError`
 * (default true), `timeoutMs` (per upload, default 60000).
 */
export function faultlineSourcemaps(options = {}) {
  const release = options.release;
  const server = options.server || process.env.FAULTLINE_SERVER || DEFAULT_SERVER;
  const token = options.token || process.env.FAULTLINE_ADMIN_TOKEN || "";
  const include = matcher(options.include);
  const failOnError = options.failOnError !== false;
  let config;

  return {
    name: NAME,
    apply: "build",
    enforce: "post",

    config(user) {
      const wanted = user.build && user.build.sourcemap;
      // "hidden" unless the app chose maps itself (true, "inline", "hidden"): the bundle
      // then names no map, and browsers never ask for one.
      if (!wanted) return { build: { sourcemap: "hidden" } };
    },

    configResolved(resolved) {
      config = resolved;
    },

    buildStart() {
      if (config && config.build.ssr) return;
      const missing = [];
      if (typeof release !== "string" || release === "") missing.push("`release` (the name the reporter's init sends as release)");
      if (!token) missing.push("`token` or FAULTLINE_ADMIN_TOKEN (an admin token of " + server + ")");
      if (missing.length) {
        const msg = NAME + ": cannot upload source maps without " + missing.join(" and ");
        if (failOnError) this.error(msg);
        else this.warn(msg + "; nothing will be uploaded");
      }
    },

    async writeBundle(output, bundle) {
      if (config && config.build.ssr) return; // server code: no browser frames to map
      if (!release || !token) return; // said in buildStart
      const root = (config && config.root) || process.cwd();
      const outDir = path.resolve(root, output.dir || path.dirname(output.file || "dist/x"));
      let prefix = options.urlPrefix !== undefined ? String(options.urlPrefix) : defaultPrefix(config && config.base);
      if (!prefix.endsWith("/")) prefix += "/";

      const chunks = Object.values(bundle).filter((c) => c.type === "chunk" && /\.[cm]?js$/.test(c.fileName) && include(c.fileName));
      const failed = [];
      let uploaded = 0;
      await eachLimited(chunks, PARALLEL, async (chunk) => {
        const mapFile = chunk.sourcemapFileName || chunk.fileName + ".map";
        let map = await readFile(path.join(outDir, mapFile), "utf8").catch(() => null);
        if (map === null && chunk.map) map = chunk.map.toString(); // "inline": no file
        if (map === null) return failed.push(chunk.fileName + ": the build wrote no source map for it");
        try {
          await uploadSourcemap({ server, token, release, url: prefix + chunk.fileName, map, timeoutMs: options.timeoutMs });
          uploaded += 1;
        } catch (e) {
          failed.push(chunk.fileName + ": " + e.message);
        }
      });

      let deleted = 0;
      if (options.deleteAfterUpload) {
        // Every map of the build (CSS ones too), uploaded or not: they must not be served.
        const maps = Object.values(bundle)
          .filter((f) => f.fileName.endsWith(".map"))
          .map((f) => f.fileName);
        for (const c of chunks) if (c.sourcemapFileName && !maps.includes(c.sourcemapFileName)) maps.push(c.sourcemapFileName);
        for (const f of maps) {
          try {
            await unlink(path.join(outDir, f));
            deleted += 1;
          } catch (e) {
            if (e.code !== "ENOENT") failed.push(f + ": cannot delete: " + e.message);
          }
        }
      }

      const log = config ? config.logger : console;
      if (chunks.length) {
        log.info(
          NAME + ": " + uploaded + " of " + chunks.length + " source maps uploaded to " + server + " for release " + release + " (" + prefix + ")" +
            (options.deleteAfterUpload ? ", " + deleted + " .map files deleted from " + path.relative(root, outDir) : ""),
        );
      }
      if (failed.length) {
        const msg = NAME + ": " + failed.length + " problem(s) with the source maps of release " + release + ":\n  " + failed.join("\n  ");
        if (failOnError) this.error(msg);
        else this.warn(msg);
      }
    },
  };
}

export default faultlineSourcemaps;
