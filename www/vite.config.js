// The demo panel and the dashboard, one app: `/panel` is the demo, every other route the
// dashboard. `faultline-reporter` is the package `cargo xtask package` builds into
// ../reporter-wasm/pkg; it is aliased rather than a `file:` dependency because on a clean
// checkout `npm ci` runs before that build (the xtask builds the package, then www).
//
// Source maps: the build writes them ("hidden": the served bundle names none) and
// `keepMapsAside` moves them out of dist, with a copy of each chunk, into
// ../target/www-sourcemaps, so the server does not embed or serve them. The build's release
// (this package's version and a hash of what the bundle is built from) is compiled into the
// panel's `init` and written to ../target/www-sourcemaps/release.txt; `cargo xtask run`
// uploads that folder for that release once the server is up (`faultline sourcemaps upload`).
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const pkg = here("../reporter-wasm/pkg");
if (!existsSync(pkg + "/index.js")) {
  throw new Error("faultline-reporter is not built: run `cargo xtask package` first (it writes " + pkg + ")");
}
const MAPS = here("../target/www-sourcemaps");

/** Every file under `p` (a file or folder), sorted, for hashing. */
function files(p) {
  if (!existsSync(p)) return [];
  if (!statSync(p).isDirectory()) return [p];
  return readdirSync(p).sort().flatMap((name) => (name === "node_modules" ? [] : files(path.join(p, name))));
}

/** `demo-panel@0.1.0+3f2a9c1b5e0d`: one release per distinct build input. */
function demoRelease() {
  const { version } = JSON.parse(readFileSync(here("package.json"), "utf8"));
  const h = createHash("sha256");
  for (const f of ["src", "index.html", "vite.config.js", "package-lock.json", pkg].flatMap((p) => files(path.isAbsolute(p) ? p : here(p)))) {
    h.update(path.relative(here("."), f) + "\0");
    h.update(readFileSync(f));
  }
  return "demo-panel@" + version + "+" + h.digest("hex").slice(0, 12);
}

/** Moves the build's source maps (and a copy of each mapped chunk, as the upload pairs them)
 * from dist to MAPS, and writes MAPS/release.txt. */
function keepMapsAside(release) {
  return {
    name: "keep-maps-aside",
    apply: "build",
    writeBundle(output, bundle) {
      const dist = output.dir;
      rmSync(MAPS, { recursive: true, force: true });
      for (const file of Object.values(bundle)) {
        if (!file.fileName.endsWith(".map")) continue;
        const map = path.join(dist, file.fileName);
        const chunk = file.fileName.slice(0, -".map".length);
        mkdirSync(path.dirname(path.join(MAPS, file.fileName)), { recursive: true });
        copyFileSync(map, path.join(MAPS, file.fileName));
        if (existsSync(path.join(dist, chunk))) copyFileSync(path.join(dist, chunk), path.join(MAPS, chunk));
        unlinkSync(map);
      }
      writeFileSync(path.join(MAPS, "release.txt"), release + "\n");
    },
  };
}

const release = demoRelease();

export default defineConfig({
  plugins: [react(), keepMapsAside(release)],
  define: {
    // The panel's `init({ release })`: the release the maps are uploaded for.
    __FAULTLINE_DEMO_RELEASE__: JSON.stringify(release),
  },
  resolve: {
    alias: [
      { find: /^faultline-reporter\/react$/, replacement: pkg + "/react.js" },
      { find: /^faultline-reporter$/, replacement: pkg + "/index.js" },
    ],
    // The package imports `react`: use this app's copy, not a lookup beside the package.
    dedupe: ["react", "react-dom"],
  },
  server: {
    fs: { allow: [".", pkg] },
    // `npm run dev` next to `cargo xtask run`: the API is the running server.
    proxy: {
      ...Object.fromEntries(
        ["/logs", "/alerts", "/system", "/panel/config", "/healthz", "/readyz"].map((p) => [p, "http://127.0.0.1:8080"]),
      ),
      // `/issues/ID` is a page and an API route (as the server tells them apart): a page
      // load (HTML, no token) stays with Vite, the dashboard's calls go to the server.
      "/issues": {
        target: "http://127.0.0.1:8080",
        bypass: (req) => (!req.headers.authorization && (req.headers.accept || "").includes("text/html") ? "/index.html" : undefined),
      },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0, // the reporter's .wasm stays a file (CSP: no data: scripts)
    sourcemap: "hidden",
  },
});
