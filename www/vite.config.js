// The demo panel and the dashboard, one app: `/panel` is the demo, every other route the
// dashboard. `faultline-reporter` is the package `cargo xtask package` builds into
// ../reporter-wasm/pkg; it is aliased rather than a `file:` dependency because on a clean
// checkout `npm ci` runs before that build (the xtask builds the package, then www).
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

const pkg = fileURLToPath(new URL("../reporter-wasm/pkg", import.meta.url));
if (!existsSync(pkg + "/index.js")) {
  throw new Error("faultline-reporter is not built: run `cargo xtask package` first (it writes " + pkg + ")");
}

export default defineConfig({
  plugins: [react()],
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
    proxy: Object.fromEntries(
      ["/logs", "/alerts", "/system", "/panel/config", "/healthz", "/readyz"].map((p) => [p, "http://127.0.0.1:8080"]),
    ),
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0, // the reporter's .wasm stays a file (CSP: no data: scripts)
    sourcemap: false,
  },
});
