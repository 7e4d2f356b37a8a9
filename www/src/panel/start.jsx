// The demo panel's start-up, as a customer's React admin panel would do it: fetch the
// public reporting settings, `init` the reporter before the first render, and wrap the whole
// app in the reporter's ErrorBoundary.
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import * as Faultline from "faultline-reporter";
import { ErrorBoundary } from "faultline-reporter/react";
import { Panel } from "./Panel.jsx";

/** `GET /panel/config`: the public key and salt this server hands its own demo page. */
async function settings() {
  const res = await fetch("/panel/config", { cache: "no-store" });
  if (!res.ok) throw new Error("GET /panel/config answered " + res.status);
  return res.json();
}

export async function start(root) {
  let config = null;
  let problem = null;
  try {
    config = await settings();
    if (!config.key) {
      problem = "This server has no public key for service \"ui\": set FAULTLINE_PUBLIC_KEY or add a [[keys]] entry of kind \"public\" (see docs/OPERATIONS.md). Errors raised here will not be reported.";
    } else if (!config.origins.includes(location.origin)) {
      problem = "The public key does not accept this page's origin " + location.origin + ": add it to the key's origins (FAULTLINE_CORS_ORIGINS). The server will refuse these reports.";
    }
  } catch (e) {
    problem = "Cannot load the reporting settings: " + e.message;
  }
  let started = false;
  if (config && config.key) {
    started = await Faultline.init({
      endpoint: location.origin,
      key: config.key,
      salt: config.salt,
      service: config.service || "ui",
      // The build's release (vite.config.js): `cargo xtask run` uploads its source maps, so
      // this panel's errors read as Panel.jsx in the dashboard.
      release: typeof __FAULTLINE_DEMO_RELEASE__ === "string" ? __FAULTLINE_DEMO_RELEASE__ : "demo-panel@dev",
      environment: "demo",
      captureConsole: true, // console.error calls become records, not only breadcrumbs
      flushIntervalMs: 500, // a demo: show records quickly
    });
  }
  window.Faultline = Faultline; // for poking at it from devtools
  createRoot(root, {
    // React 19 logs errors a boundary caught with console.error; with captureConsole that
    // would report them a second time, as `console.error` instead of the boundary's record.
    onCaughtError: (error) => console.warn("caught by an error boundary:", error && error.message),
  }).render(
    <StrictMode>
      <ErrorBoundary fallback={({ error, reset }) => <AppCrashed error={error} reset={reset} />}>
        <Panel started={started} problem={problem} />
      </ErrorBoundary>
    </StrictMode>,
  );
}

function AppCrashed({ error, reset }) {
  return (
    <div className="panel-crashed" role="alert">
      <h1>The panel crashed</h1>
      <p>{String(error && error.message)}</p>
      <p>It was reported to Faultline.</p>
      <button onClick={reset}>Try again</button>
    </div>
  );
}
