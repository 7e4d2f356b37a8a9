// The operations dashboard: admin token login (kept in sessionStorage for this tab only),
// then its pages, all read from the server's API:
// - `/` and `/issues`: the issues (errors grouped by fingerprint), `/issues/ID` one issue;
// - `/overview`: health, charts (1 h / 24 h / 7 d / 30 d), alerts, checks and the record
//   table, whose filters, time range and page are in the URL (`Records.jsx`);
// - `/record/ID?ts=TS`: one record, the link each row of the table has.
// The top bar (the CRITICAL badge, live/paused, notices) is on every page.
import { useCallback, useEffect, useState } from "react";
import { ApiError, api, saveToken, savedToken } from "../api.js";
import { Login } from "./Login.jsx";
import { Records } from "./Records.jsx";
import { ErrorChart } from "./Charts.jsx";
import { Alerts, Checks, Notices } from "./Alerts.jsx";
import { HealthCards, criticalCount } from "./Health.jsx";
import { useInterval } from "./useInterval.js";
import { ViewBoundary } from "./ViewBoundary.jsx";
import { Issues } from "./Issues.jsx";
import { IssuePage } from "./IssuePage.jsx";
import { Link, navigate, useLocation } from "./route.jsx";
import { RecordPage } from "./RecordPage.jsx";
import { useResource } from "./useResource.js";

/** How often the overview (alerts, checks, short stats) is refreshed while live. */
const OVERVIEW_MS = 2000;
/** The 24 h chart changes slowly. */
const DAY_MS = 10000;
/** The 7 d and 30 d charts (hourly) more slowly still. */
const LONG_MS = 60000;
/** The ranges of the second chart (`range=` in the overview's URL). */
const RANGES = [
  ["1h", "1 h", "Errors per minute, last hour"],
  ["24h", "24 h", "Errors per minute, last 24 hours"],
  ["7d", "7 d", "Errors per hour, last 7 days"],
  ["30d", "30 d", "Errors per hour, last 30 days"],
];

/** Which page a path shows: `{ page, id }`. */
export function route(path) {
  if (path === "/" || path === "/issues") return { page: "issues" };
  const one = /^\/issues\/([^/]+)$/.exec(path);
  if (one) return { page: "issue", id: decodeURIComponent(one[1]) };
  if (path === "/overview") return { page: "overview" };
  const record = /^\/record\/([^/]+)$/.exec(path);
  if (record) return { page: "record", id: decodeURIComponent(record[1]) };
  return { page: "missing" };
}

const TITLES = { issues: "Issues", issue: "Issue", overview: "Overview", record: "Record", missing: "Not found" };

export function Dashboard() {
  const [token, setToken] = useState(savedToken);
  const [authError, setAuthError] = useState(null);
  const [live, setLive] = useState(true);

  const signIn = (t) => {
    saveToken(t);
    setAuthError(null);
    setToken(t);
  };
  const signOut = useCallback((why) => {
    saveToken("");
    setToken("");
    setAuthError(why || null);
  }, []);

  if (!token) return <Login onSignIn={signIn} initialError={authError} />;
  return (
    <ViewBoundary name="dashboard">
      <Main token={token} live={live} setLive={setLive} signOut={signOut} />
    </ViewBoundary>
  );
}

function Main({ token, live, setLive, signOut }) {
  const { path, query } = useLocation();
  const { page, id } = route(path);
  const [overview, setOverview] = useState({ loading: true });
  const [day, setDay] = useState(null);
  const [error, setError] = useState(null);
  const [resetMessage, setResetMessage] = useState(null);

  const fail = useCallback(
    (e) => {
      if (e instanceof ApiError && e.kind === "auth") signOut(e.message);
      else if (e && e.name !== "AbortError") setError(e.message || String(e));
    },
    [signOut],
  );

  const loadOverview = useCallback(async () => {
    try {
      const [alerts, checks, hour, quarter] = await Promise.all([
        api(token, "/alerts"),
        api(token, "/system/checks/latest"),
        api(token, "/logs/stats?window=60m"),
        api(token, "/logs/stats?window=15m"),
      ]);
      setOverview({ alerts, checks: checks.checks, hour, quarter, at: new Date() });
      setError(null);
    } catch (e) {
      fail(e);
    }
  }, [token, fail]);

  const loadDay = useCallback(async () => {
    try {
      setDay(await api(token, "/logs/stats?window=24h"));
    } catch (e) {
      fail(e);
    }
  }, [token, fail]);

  // The overview's numbers feed the top bar on every page; the 24 h stats only the overview.
  const onOverview = page === "overview";
  const rangeParam = query.get("range") || "24h";
  const range = RANGES.find(([r]) => r === rangeParam) || RANGES[1];
  // 24 h is the health cards' answer too; the others are read only while shown.
  const other = onOverview && range[0] !== "24h";
  const rangeStats = useResource(token, other ? "/logs/stats?window=" + range[0] : null, {
    ms: live && other ? (range[0] === "1h" ? OVERVIEW_MS : LONG_MS) : null,
    onFail: fail,
  });
  const chooseRange = (r) => {
    const q = new URLSearchParams(location.search);
    if (r === "24h") q.delete("range");
    else q.set("range", r);
    const s = q.toString();
    navigate(s ? "/overview?" + s : "/overview", { replace: true });
  };
  useEffect(() => {
    loadOverview();
  }, [loadOverview]);
  useEffect(() => {
    if (onOverview) loadDay();
  }, [loadDay, onOverview]);
  useInterval(loadOverview, live ? OVERVIEW_MS : null);
  useInterval(loadDay, live && onOverview ? DAY_MS : null);
  useEffect(() => {
    document.title = TITLES[page] + " · Faultline";
  }, [page]);

  async function reset(rule) {
    try {
      const done = await api(token, "/alerts/" + encodeURIComponent(rule) + "/reset", { method: "POST" });
      setResetMessage("Reset " + done.rule + ": " + done.resolved + " firing alert(s) resolved.");
      await loadOverview();
    } catch (e) {
      fail(e);
    }
  }

  // A silence of one alert (its rule and group), from its card: for `how` ("1h", "4h") or
  // until it resolves.
  async function silence(rule, group, how) {
    const body = {
      matchers: [
        { name: "rule", op: "=", value: rule },
        { name: "group", op: "=", value: group },
      ],
      comment: "silenced from the dashboard",
      created_by: "dashboard",
      ...(how === "resolved" ? { until_resolved: true } : { duration: how }),
    };
    try {
      await api(token, "/silences", { method: "POST", body });
      setResetMessage("Silenced " + rule + (group ? " (" + group + ")" : "") + (how === "resolved" ? " until it resolves." : " for " + how + "."));
      await loadOverview();
    } catch (e) {
      fail(e);
    }
  }

  const { alerts, checks, hour, quarter } = overview;
  const critical = quarter ? criticalCount(quarter) : null;
  return (
    <div className="dashboard">
      <header className="topbar">
        <span className="brand">Faultline</span>
        <span
          id="critical-badge"
          className={"badge " + (critical ? "critical" : "calm")}
          title="CRITICAL records in the last 15 minutes"
        >
          {critical === null ? "…" : critical} critical in 15 min
        </span>
        <span className="muted" id="updated">
          {overview.at ? (live ? "live · updated " : "paused · updated ") + overview.at.toLocaleTimeString() : "loading…"}
        </span>
        <nav className="pages" aria-label="pages">
          <Link to="/issues" id="nav-issues" aria-current={page === "issues" || page === "issue" ? "page" : undefined}>
            Issues
          </Link>
          <Link to="/overview" id="nav-overview" aria-current={onOverview ? "page" : undefined}>
            Overview
          </Link>
        </nav>
        <nav>
          <button id="live-toggle" onClick={() => setLive(!live)} aria-pressed={!live}>
            {live ? "Pause live updates" : "Resume live updates"}
          </button>
          <a href="/panel">Demo panel</a>
          <button id="sign-out" onClick={() => signOut(null)}>Sign out</button>
        </nav>
      </header>
      <main className="dash-main">
        {error && (
          <div id="dash-error" className="banner error" role="alert">
            {error} Showing the last data received.
          </div>
        )}
        {alerts && (
          <ViewBoundary name="notices">
            <Notices notices={alerts.notices} />
          </ViewBoundary>
        )}
        {page === "issues" && (
          <ViewBoundary name="issue list">
            <Issues token={token} live={live} onFail={fail} query={query} />
          </ViewBoundary>
        )}
        {page === "issue" && (
          <ViewBoundary name="issue" key={id}>
            <IssuePage token={token} id={id} query={query} live={live} onFail={fail} />
          </ViewBoundary>
        )}
        {page === "record" && (
          <ViewBoundary name="record" key={id}>
            <RecordPage token={token} id={id} query={query} onFail={fail} />
          </ViewBoundary>
        )}
        {page === "missing" && (
          <p id="page-missing" className="empty">
            There is no page at {path}. See the <Link to="/issues">issues</Link> or the <Link to="/overview">overview</Link>.
          </p>
        )}
        {onOverview && (
          <>
            {overview.loading && !error ? (
              <p className="loading">Loading the overview…</p>
            ) : (
              alerts && (
                <>
                  <section>
                    <h2>Service health</h2>
                    <ViewBoundary name="service health">
                      <HealthCards alerts={alerts} checks={checks} hour={hour} quarter={quarter} day={day} />
                    </ViewBoundary>
                  </section>
                  <section className="charts">
                    <ViewBoundary name="hourly chart">
                      <ErrorChart id="chart-1h" title="Errors per minute, last hour" stats={hour} />
                    </ViewBoundary>
                    <ViewBoundary name="range chart" key={range[0]}>
                      <div className="range-chart">
                        <nav className="ranges" aria-label="chart range">
                          {RANGES.map(([r, text]) => (
                            <button
                              key={r}
                              type="button"
                              id={"range-" + r}
                              aria-pressed={r === range[0]}
                              onClick={() => chooseRange(r)}
                            >
                              {text}
                            </button>
                          ))}
                        </nav>
                        <ErrorChart id={"chart-" + range[0]} title={range[2]} stats={other ? rangeStats.data : day} />
                      </div>
                    </ViewBoundary>
                  </section>
                  <div className="two-col">
                    <section>
                      <h2>Alerts</h2>
                      {resetMessage && <p id="reset-message" className="muted">{resetMessage}</p>}
                      <ViewBoundary name="alerts">
                        <Alerts alerts={alerts} onReset={reset} onSilence={silence} />
                      </ViewBoundary>
                    </section>
                    <section>
                      <h2>Latest system checks</h2>
                      <ViewBoundary name="system checks">
                        <Checks checks={checks} />
                      </ViewBoundary>
                    </section>
                  </div>
                </>
              )
            )}
            <section>
              <h2>Recent records</h2>
              <ViewBoundary name="record table">
                <Records token={token} live={live} onFail={fail} path="/overview" query={query} />
              </ViewBoundary>
            </section>
          </>
        )}
      </main>
    </div>
  );
}
