// The demo panel: what a customer's React admin panel looks like with Faultline in it. Each
// button raises a real error of one kind, uncaught where the kind is "uncaught"; the
// reporter does the rest. Every message carries a tag (`demo-ab12-3`) to find it by. After
// ten errors from the signed-in user the UI rule fires and its notice shows here.
import { useEffect, useRef, useState } from "react";
import * as Faultline from "faultline-reporter";
import { ErrorBoundary, InlineNotice } from "faultline-reporter/react";

const SESSION = Math.random().toString(36).slice(2, 6);

/** Reads a property of `null`: the engine's own TypeError, uncaught in a click handler. */
function readOrderTotal(tag) {
  const order = null;
  return order[tag].total;
}

/** A fetch the server refuses (no admin token: 401), turned into an error the way a data
 * layer does, and reported with `captureException` as a handled failure. */
async function loadOrders(tag) {
  const res = await fetch("/logs/recent?limit=1", { cache: "no-store" });
  if (!res.ok) throw new Error("GET /logs/recent answered " + res.status + " while loading orders (" + tag + ")");
  return res.json();
}

/** An async function whose rejection nobody awaits: `unhandledrejection`. */
async function submitPayment(tag) {
  await new Promise((r) => setTimeout(r, 10));
  throw new Error("payment provider timed out (" + tag + ")");
}

function autosave(tag) {
  throw new RangeError("autosave failed: draft is over quota (" + tag + ")");
}

/** A component that throws while rendering once armed: the boundary catches it. */
function InvoiceTable({ crashTag }) {
  if (crashTag) throw new Error("InvoiceTable cannot render invoice " + crashTag);
  return (
    <table className="invoices">
      <tbody>
        <tr><td>INV-1042</td><td>€ 129.00</td><td>paid</td></tr>
        <tr><td>INV-1043</td><td>€ 64.50</td><td>open</td></tr>
      </tbody>
    </table>
  );
}

const KINDS = [
  { id: "type-error", label: "TypeError", hint: "reads a property of null in a click handler (window.onerror)" },
  { id: "fetch", label: "Failing fetch", hint: "a request the server answers 401, reported with captureException" },
  { id: "rejection", label: "Rejected promise", hint: "an async function nobody awaits (unhandledrejection)" },
  { id: "render", label: "Render error", hint: "a component throws while rendering (ErrorBoundary)" },
  { id: "console", label: "console.error", hint: "console.error with an Error (captureConsole: true)" },
  { id: "timeout", label: "setTimeout error", hint: "a RangeError thrown in a timer callback (window.onerror)" },
];

export function Panel({ started, problem }) {
  const counter = useRef(0);
  const [raised, setRaised] = useState([]);
  const [user, setUser] = useState(null);
  const [draftUser, setDraftUser] = useState("alice@example.com");
  const [crashTag, setCrashTag] = useState(null);
  const [stats, setStats] = useState(null);

  useEffect(() => {
    const t = setInterval(() => setStats(Faultline.stats()), 500);
    return () => clearInterval(t);
  }, []);

  function raise(kind) {
    counter.current += 1;
    const tag = "demo-" + SESSION + "-" + counter.current;
    setRaised((r) => [{ kind, tag, at: new Date() }, ...r].slice(0, 8));
    Faultline.addBreadcrumb({ category: "demo", message: "raise " + kind + " " + tag });
    switch (kind) {
      case "type-error":
        readOrderTotal(tag); // throws: React rethrows it to window.onerror
        break;
      case "fetch":
        loadOrders(tag).catch((e) => Faultline.captureException(e, { event: "fetch.failed", tags: { endpoint: "/logs/recent" } }));
        break;
      case "rejection":
        submitPayment(tag); // deliberately not awaited
        break;
      case "render":
        setCrashTag(tag);
        break;
      case "console":
        console.error("checkout failed:", new Error("checkout failed: card service said no (" + tag + ")"));
        break;
      case "timeout":
        setTimeout(() => autosave(tag), 0);
        break;
    }
  }

  function login(e) {
    e.preventDefault();
    const id = draftUser.trim();
    if (!id) return;
    Faultline.setUser(id); // anonymized in the page: the raw id is never sent
    setUser(id);
  }

  function logout() {
    Faultline.setUser(null);
    setUser(null);
  }

  return (
    <div className="panel">
      <header className="topbar">
        <span className="brand">Acme Shop admin</span>
        <span className="muted">demo panel with Faultline</span>
        <nav>
          <a href="/">Dashboard</a>
        </nav>
      </header>
      <main className="panel-main">
        {problem && <div className="banner error" role="alert">{problem}</div>}
        {/* The signed-in user's notices (the shipped rule: ten errors from one user in ten
            minutes), asked for with their anonymized id: never another user's. */}
        <InlineNotice>
          {(n) => (
            <>
              <b>Something keeps going wrong for you here.</b> Our team has been told and is looking into it.{" "}
              <span className="muted">({n.message})</span>
            </>
          )}
        </InlineNotice>
        <section className="card">
          <h2>Reporter</h2>
          <p id="reporter-state" className={started ? "ok" : "bad"}>
            {started ? "faultline-reporter is running (service ui, captureConsole on)" : "faultline-reporter is not running"}
          </p>
          {stats && (
            <p id="reporter-stats" className="muted">
              captured {stats.captured} · sent {stats.sent} · queued {stats.queued} · folded {stats.folded} · dropped {stats.dropped}
            </p>
          )}
        </section>
        <section className="card">
          <h2>Sign in</h2>
          {user ? (
            <p>
              Signed in as <b id="whoami">{user}</b>. Reports carry only its anonymized id.{" "}
              <button id="logout" onClick={logout}>Sign out</button>
            </p>
          ) : (
            <form onSubmit={login} className="row">
              <input id="login-user" aria-label="user id" value={draftUser} onChange={(e) => setDraftUser(e.target.value)} />
              <button id="login" type="submit" className="primary">Sign in</button>
            </form>
          )}
        </section>
        <section className="card">
          <h2>Raise an error</h2>
          <div className="buttons">
            {KINDS.map((k) => (
              <button key={k.id} id={"raise-" + k.id} onClick={() => raise(k.id)} title={k.hint}>
                {k.label}
              </button>
            ))}
          </div>
          <ul className="hints">
            {KINDS.map((k) => (
              <li key={k.id}><b>{k.label}</b>: {k.hint}</li>
            ))}
          </ul>
        </section>
        <section className="card">
          <h2>Invoices</h2>
          <ErrorBoundary
            tags={{ widget: "invoices" }}
            fallback={({ error, reset }) => (
              <div id="render-fallback" className="banner error">
                This widget crashed and was reported: {String(error.message)}{" "}
                <button onClick={() => { setCrashTag(null); reset(); }}>Reload widget</button>
              </div>
            )}
          >
            <InvoiceTable crashTag={crashTag} />
          </ErrorBoundary>
        </section>
        <section className="card">
          <h2>Raised on this page</h2>
          {raised.length === 0 ? (
            <p className="muted">Nothing yet. Each button above raises one error; open the dashboard to see it arrive.</p>
          ) : (
            <ol id="raised" className="raised">
              {raised.map((r) => (
                <li key={r.tag} data-kind={r.kind} data-tag={r.tag}>
                  <code>{r.tag}</code> {r.kind} at {r.at.toLocaleTimeString()}
                </li>
              ))}
            </ol>
          )}
        </section>
      </main>
    </div>
  );
}
