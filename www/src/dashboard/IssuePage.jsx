// One issue (`/issues/ID`): what it is, its status with the buttons that change it, when it
// regressed, its events per hour over 14 days, the most common release, environment,
// browser and URL path among its events, the list of its events and one event in full (the
// latest, or the one picked from the list: `?event=RID`, so that view has a link too).
import { useCallback, useState } from "react";
import { setIssueStatus } from "../api.js";
import { Link, navigate, withQuery } from "./route.jsx";
import { HourlyChart } from "./Sparkline.jsx";
import { RecordDetail } from "./RecordDetail.jsx";
import { ViewBoundary } from "./ViewBoundary.jsx";
import { StatusPill, When, lastIssuesUrl } from "./Issues.jsx";
import { useResource } from "./useResource.js";
import { formatTime, levelClass, topFrame } from "./format.js";

/** How often the issue and its events are refreshed while live. */
const ISSUE_MS = 5000;
const EVENTS = 50;
/** The tags the server counts, in the order shown. */
const TAGS = [
  ["release", "Release"],
  ["environment", "Environment"],
  ["browser", "Browser"],
  ["url", "URL path"],
];

/** The `GET /issues/{id}` answer in the shape this page draws: the issue's fields at the top
 * level, `hourly` as `[{ hour, count }]` oldest first, `latest_event` a record, `tags` the
 * top values per tag as `[{ value, count }]`. */
function readIssue(body) {
  const hourly = Array.isArray(body.hourly) ? body.hourly.filter((h) => h && typeof h === "object") : [];
  return {
    issue: body,
    latest: body.latest_event && typeof body.latest_event === "object" ? body.latest_event : null,
    hourly: hourly.map((h) => h.count),
    hourlyEnd: hourly.length ? hourly[hourly.length - 1].hour : null,
    tags: body.tags && typeof body.tags === "object" ? body.tags : {},
    tagEvents: Number(body.tag_events) || 0,
  };
}

/** A tag's top values as `[{ value, count }]` (anything else in the list is left out). */
function tagValues(v) {
  return (Array.isArray(v) ? v : []).filter((t) => t && typeof t === "object").map((t) => ({ value: t.value, count: Number(t.count) || 0 }));
}

export function IssuePage({ token, id, query, live, onFail }) {
  const ms = live ? ISSUE_MS : null;
  const base = "/issues/" + encodeURIComponent(id);
  const one = useResource(token, base, { ms, onFail });
  const events = useResource(token, "/logs/recent?" + new URLSearchParams({ issue: id, limit: String(EVENTS) }), { ms, onFail });

  if (one.error && one.error.status === 404) {
    return (
      <div className="issue-page">
        <p>
          <Link to={lastIssuesUrl()}>← Issues</Link>
        </p>
        <p id="issue-missing" className="banner error" role="alert">
          There is no issue {id} (it may have been removed by retention). {one.error.message}
        </p>
      </div>
    );
  }
  if (!one.data) {
    return one.error ? (
      <p id="issue-error" className="banner error" role="alert">
        {one.error.message}
      </p>
    ) : (
      <p className="loading">Loading the issue…</p>
    );
  }

  const { issue, latest, hourly, hourlyEnd, tags, tagEvents } = readIssue(one.data);
  const list = events.data && Array.isArray(events.data.records) ? events.data.records : [];
  const picked = query.get("event") || "";
  const chosen = (picked && list.find((r) => r.id === picked)) || null;
  const shown = chosen || latest || list[0] || null;

  const reload = async () => {
    await Promise.all([one.reload(), events.reload()]);
  };
  return (
    <div className="issue-page" data-id={issue.id} data-status={issue.status}>
      <p className="crumb">
        <Link to={lastIssuesUrl()}>← Issues</Link>
      </p>
      {one.error && (
        <p className="banner error" role="alert">
          {one.error.message} Showing the last data received.
        </p>
      )}
      <header className="issue-head card">
        <div className="issue-title-row">
          <span className={"pill " + levelClass(issue.level)}>{String(issue.level ?? "")}</span>
          <h1 id="issue-title">{String(issue.title ?? "")}</h1>
        </div>
        <div id="issue-culprit" className="culprit muted">
          {String(issue.culprit ?? "")}
        </div>
        <div className="issue-status-row">
          <span id="issue-status">
            <StatusPill issue={issue} />
          </span>
          <StatusButtons token={token} issue={issue} onChanged={reload} onFail={onFail} />
        </div>
        {issue.regressed_at && (
          <p id="issue-regressed" className="regressed-note">
            Regressed <When ts={issue.regressed_at} />
            {issue.regressed_in ? (
              <>
                {" "}
                in release <code>{String(issue.regressed_in)}</code>
              </>
            ) : null}
            : an event arrived after it was resolved.
          </p>
        )}
        <dl className="issue-facts">
          <div>
            <dt>Events</dt>
            <dd id="issue-count">{String(issue.count ?? "")}</dd>
          </div>
          <div>
            <dt>Users</dt>
            <dd id="issue-users">{String(issue.users ?? "")}</dd>
          </div>
          <div>
            <dt>Service</dt>
            <dd>{String(issue.service ?? "")}</dd>
          </div>
          {issue.error_type && (
            <div>
              <dt>Error type</dt>
              <dd>
                <code>{String(issue.error_type)}</code>
              </dd>
            </div>
          )}
          <div>
            <dt>First seen</dt>
            <dd>
              <When ts={issue.first_seen} />
              {issue.release_first ? <span className="muted"> in {String(issue.release_first)}</span> : null}
            </dd>
          </div>
          <div>
            <dt>Last seen</dt>
            <dd>
              <When ts={issue.last_seen} />
              {issue.release_last ? <span className="muted"> in {String(issue.release_last)}</span> : null}
            </dd>
          </div>
        </dl>
      </header>
      <div className="issue-body">
        <div className="issue-side">
          <ViewBoundary name="hourly chart">
            <HourlyChart id="issue-chart" title="Events per hour, last 14 days" values={hourly} end={hourlyEnd} />
          </ViewBoundary>
          <section>
            <h2>
              Top values{" "}
              <span id="issue-tags-of" className="muted small">
                over {tagEvents} event(s)
              </span>
            </h2>
            <ViewBoundary name="top values">
              <div id="issue-tags" className="tags">
                {TAGS.map(([key, label]) => (
                  <TagBars key={key} name={key} label={label} values={tagValues(tags[key])} />
                ))}
              </div>
            </ViewBoundary>
          </section>
          <section>
            <h2>Events</h2>
            <ViewBoundary name="event list">
              <EventList events={events} list={list} shown={shown} base={base} />
            </ViewBoundary>
          </section>
        </div>
        <section className="issue-event">
          <h2>
            {chosen && latest && chosen.id !== latest.id ? (
              <>
                An earlier event · <Link to={base}>show the latest</Link>
              </>
            ) : (
              "Latest event"
            )}
          </h2>
          {shown ? (
            <ViewBoundary name="event" key={shown.id}>
              <div className={"issue-event-detail" + (chosen ? "" : " latest")}>
                <RecordDetail record={shown} onClose={() => navigate(base)} />
              </div>
            </ViewBoundary>
          ) : (
            <p className="muted">No event of this issue is stored any more.</p>
          )}
        </section>
      </div>
    </div>
  );
}

/** Resolve, Ignore, Unresolve: `PUT /issues/{id}`, then the page reloads what it shows. */
function StatusButtons({ token, issue, onChanged, onFail }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const set = useCallback(
    async (status) => {
      setBusy(true);
      setError(null);
      try {
        await setIssueStatus(token, issue.id, status);
        await onChanged();
      } catch (e) {
        if (e && e.kind === "http") setError(e.message);
        else onFail(e);
      } finally {
        setBusy(false);
      }
    },
    [token, issue.id, onChanged, onFail],
  );
  const button = (status, label) =>
    issue.status !== status && (
      <button type="button" id={"issue-" + label.toLowerCase()} disabled={busy} onClick={() => set(status)}>
        {label}
      </button>
    );
  return (
    <span className="issue-actions">
      {button("resolved", "Resolve")}
      {button("ignored", "Ignore")}
      {button("unresolved", "Unresolve")}
      {error && (
        <span id="issue-action-error" className="bad small" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}

/** One tag's top values with their share of the counted events. */
function TagBars({ name, label, values }) {
  const total = values.reduce((a, t) => a + t.count, 0);
  return (
    <div className="tag card" data-tag={name}>
      <h3>{label}</h3>
      {values.length === 0 ? (
        <p className="muted small">none recorded</p>
      ) : (
        <ol>
          {values.map((t, i) => {
            const share = total ? Math.round((t.count / total) * 100) : 0;
            return (
              <li key={i} data-value={String(t.value ?? "")} data-count={t.count} title={t.count + " event(s)"}>
                <span className="tag-bar" style={{ width: share + "%" }} />
                <span className="tag-value">{t.value == null || t.value === "" ? "(none)" : String(t.value)}</span>
                <span className="tag-share muted">{share}%</span>
              </li>
            );
          })}
        </ol>
      )}
    </div>
  );
}

/** The issue's newest events; a row shows that event in full beside the list. */
function EventList({ events, list, shown, base }) {
  if (events.loading) return <p className="loading">Loading events…</p>;
  if (events.error && !list.length) {
    return (
      <p id="issue-events-error" className="banner error" role="alert">
        {events.error.message}
      </p>
    );
  }
  if (!list.length) return <p className="muted">No stored events.</p>;
  return (
    <div className="table-wrap">
      <table id="issue-events" className="records-table">
        <thead>
          <tr>
            <th>Time</th>
            <th>Message</th>
            <th>Release</th>
            <th>User</th>
          </tr>
        </thead>
        <tbody>
          {list.map((r) => {
            const meta = r.meta || {};
            const to = withQuery(base, { event: r.id });
            return (
              <tr
                key={r.id}
                data-id={r.id}
                className={shown && shown.id === r.id ? "selected" : ""}
                onClick={() => navigate(to)}
                tabIndex={0}
                onKeyDown={(e) => e.key === "Enter" && navigate(to)}
              >
                <td className="time" title={r.ts}>
                  <Link to={to}>{formatTime(r.ts)}</Link>
                </td>
                <td className="message" title={topFrame(r)}>
                  {r.message}
                </td>
                <td className="release">{typeof meta.release === "string" ? meta.release : ""}</td>
                <td className="user">{typeof meta.user === "string" ? meta.user : ""}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p className="muted small pager">{list.length} newest event(s).</p>
    </div>
  );
}
