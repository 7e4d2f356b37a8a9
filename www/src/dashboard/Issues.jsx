// The issue list, the dashboard's first page: one row per problem (error events grouped by
// fingerprint) with its counts, a 24-hour sparkline and when it was first and last seen.
// The view (service, status, time, sort, page) lives in the URL query, so a link reproduces
// it and back/forward walk through the views. All text is rendered as text.
import { useEffect, useRef, useState } from "react";
import { ISSUE_DEFAULTS, issueView, issuesQuery } from "../api.js";
import { Link, navigate, withQuery } from "./route.jsx";
import { Sparkline } from "./Sparkline.jsx";
import { useResource } from "./useResource.js";
import { levelClass } from "./format.js";

/** How often the list is refreshed while live. */
const ISSUES_MS = 5000;

const STATUSES = [
  ["unresolved", "Unresolved"],
  ["resolved", "Resolved"],
  ["ignored", "Ignored"],
  ["all", "Any status"],
];
const SINCE = [
  ["", "any time"],
  ["1h", "seen in the last hour"],
  ["24h", "seen in the last 24 h"],
  ["7d", "seen in the last 7 days"],
  ["14d", "seen in the last 14 days"],
];
const SORTS = [
  ["last_seen", "Last seen"],
  ["first_seen", "First seen"],
  ["count", "Events"],
  ["users", "Users"],
];

/** `ts` relative to now: "just now", "5 min ago", "3 h ago", "2 d ago" (or "in 5 min"). */
export function relativeTime(ts, now = Date.now()) {
  const t = new Date(ts).getTime();
  if (Number.isNaN(t)) return String(ts ?? "");
  const s = Math.round((now - t) / 1000);
  const a = Math.abs(s);
  const said =
    a < 45 ? null : a < 90 * 60 ? Math.round(a / 60) + " min" : a < 36 * 3600 ? Math.round(a / 3600) + " h" : Math.round(a / 86400) + " d";
  if (said === null) return "just now";
  return s >= 0 ? said + " ago" : "in " + said;
}

/** A timestamp as relative text, the exact time on hover. */
export function When({ ts, className }) {
  if (!ts) return <span className={className}>—</span>;
  return (
    <time className={className} dateTime={ts} title={new Date(ts).toLocaleString() + " (" + ts + ")"}>
      {relativeTime(ts)}
    </time>
  );
}

/** A status as a pill (`status-unresolved`, ...), with the regression marked. */
export function StatusPill({ issue }) {
  return (
    <span className="status-cell">
      <span className={"pill status-" + String(issue.status)}>{String(issue.status)}</span>
      {issue.regressed_at && issue.status === "unresolved" && (
        <span className="pill regressed" title={"regressed " + new Date(issue.regressed_at).toLocaleString()}>
          regressed
        </span>
      )}
    </span>
  );
}

/** The list as last shown in this tab, so an issue's "← Issues" returns to that view. */
let lastList = "/issues";
export function lastIssuesUrl() {
  return lastList;
}

/** The URL of the issue list for a view (defaults and the cursor of page 1 left out). */
export function issuesUrl(view) {
  const params = {};
  for (const [k, v] of Object.entries(view)) if (v !== ISSUE_DEFAULTS[k]) params[k] = v;
  return withQuery("/issues", params);
}

/** A labelled select over `[value, label]` pairs. */
function Choice({ id, label, value, options, onChange }) {
  return (
    <label>
      {label}
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Issues({ token, live, onFail, query }) {
  const view = issueView(query);
  const path = "/issues?" + issuesQuery(view);
  const list = useResource(token, path, { ms: live ? ISSUES_MS : null, onFail });
  const here = issuesUrl(view);
  useEffect(() => {
    lastList = here;
  }, [here]);

  // The service box applies after a pause in typing; the rest at once. A new view starts on
  // page one.
  const [service, setService] = useState(view.service);
  useEffect(() => setService(view.service), [view.service]);
  const change = (k, v) => navigate(issuesUrl({ ...view, [k]: v, cursor: "" }));
  const typing = useRef(null);
  const typeService = (v) => {
    setService(v);
    clearTimeout(typing.current);
    typing.current = setTimeout(() => navigate(issuesUrl({ ...view, service: v.trim(), cursor: "" }), { replace: true }), 300);
  };
  useEffect(() => () => clearTimeout(typing.current), []);

  const issues = list.data && Array.isArray(list.data.issues) ? list.data.issues : [];
  const next = list.data && list.data.next ? String(list.data.next) : "";
  // Services seen in any answer so far, for the service box's suggestions.
  const [known, setKnown] = useState([]);
  useEffect(() => {
    const add = issues.map((i) => i.service).filter((s) => s && !known.includes(s));
    if (add.length) setKnown((k) => [...new Set([...k, ...add])].sort());
  }, [issues, known]);
  const filtered = view.service || view.status !== ISSUE_DEFAULTS.status || view.since;

  const sortHeader = (key, label) => (
    <th aria-sort={view.sort === key ? "descending" : "none"} className={"sortable" + (view.sort === key ? " sorted" : "")}>
      <Link to={issuesUrl({ ...view, sort: key, cursor: "" })} data-sort={key}>
        {label}
        {view.sort === key ? " ↓" : ""}
      </Link>
    </th>
  );

  return (
    <div className="issues">
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Service
          <input id="issues-service" list="issue-services" value={service} onChange={(e) => typeService(e.target.value)} placeholder="any" />
          <datalist id="issue-services">
            {known.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
        </label>
        <Choice id="issues-status" label="Status" value={view.status} options={STATUSES} onChange={(v) => change("status", v)} />
        <Choice id="issues-since" label="Time" value={view.since} options={SINCE} onChange={(v) => change("since", v)} />
        <Choice id="issues-sort" label="Sort by" value={view.sort} options={SORTS} onChange={(v) => change("sort", v)} />
        {filtered && (
          <Link to="/issues" id="issues-clear" className="button">
            Clear filters
          </Link>
        )}
      </form>
      {list.error && (
        <p id="issues-error" className="banner error" role="alert">
          {list.error.message || String(list.error)}
        </p>
      )}
      <div className="table-wrap">
        {list.loading ? (
          <p className="loading">Loading issues…</p>
        ) : issues.length === 0 ? (
          <p id="issues-empty" className="empty">
            {view.cursor
              ? "No more issues."
              : filtered
                ? "No issues match this view."
                : "No unresolved issues. Errors are grouped here as they arrive (send some from the demo panel)."}
          </p>
        ) : (
          <table id="issues" className="issues-table">
            <thead>
              <tr>
                <th>Issue</th>
                <th>Service</th>
                {sortHeader("count", "Events")}
                {sortHeader("users", "Users")}
                <th>Last 24 h</th>
                {sortHeader("first_seen", "First seen")}
                {sortHeader("last_seen", "Last seen")}
                <th>Status</th>
              </tr>
            </thead>
            <tbody>
              {issues.map((i) => (
                <tr key={i.id} data-id={i.id} data-status={i.status}>
                  <td className="title">
                    <span className={"pill " + levelClass(i.level)}>{String(i.level ?? "")}</span>{" "}
                    <Link to={"/issues/" + encodeURIComponent(i.id)} className="issue-link">
                      {String(i.title ?? "")}
                    </Link>
                    <div className="culprit muted">{String(i.culprit ?? "")}</div>
                  </td>
                  <td className="service">{String(i.service ?? "")}</td>
                  <td className="count num">{String(i.count ?? "")}</td>
                  <td className="users num">{String(i.users ?? "")}</td>
                  <td className="trend">
                    <Sparkline values={i.hourly_24h} />
                  </td>
                  <td className="first-seen">
                    <When ts={i.first_seen} />
                  </td>
                  <td className="last-seen">
                    <When ts={i.last_seen} />
                  </td>
                  <td className="status">
                    <StatusPill issue={i} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {!list.loading && (issues.length > 0 || view.cursor) && (
          <p className="pager muted small">
            <span id="issues-count">
              {issues.length} issue(s){view.cursor ? " on this page" : ""}
              {live ? ", updating live" : ", paused"}.
            </span>
            {view.cursor && (
              <Link to={issuesUrl({ ...view, cursor: "" })} id="issues-first">
                First page
              </Link>
            )}
            {next && (
              <Link to={issuesUrl({ ...view, cursor: next })} id="issues-next">
                Next page
              </Link>
            )}
          </p>
        )}
      </div>
    </div>
  );
}

