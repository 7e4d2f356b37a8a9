// The record table: filters, newest first, pages, polling while live, and a detail view.
// The view (filters, `meta.KEY=VALUE` filters, time range, page cursor) lives in the URL
// query of the page, so a copied link reproduces it; each record has a link of its own
// (`/record/ID?ts=TS`). Every record field is rendered as text (React escapes it); nothing
// is parsed as HTML.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { RECORD_SINCE, api, otherParams, recentQuery, recordView, recordViewQuery } from "../api.js";
import { useInterval } from "./useInterval.js";
import { RecordDetail } from "./RecordDetail.jsx";
import { ViewBoundary } from "./ViewBoundary.jsx";
import { formatTime, levelClass, topFrame } from "./format.js";
import { Link, navigate } from "./route.jsx";

const RECORDS_MS = 1500;
const LEVELS = ["", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const SINCE_LABELS = { "": "any time", "15m": "last 15 min", "1h": "last hour", "24h": "last 24 h", "7d": "last 7 days", "30d": "last 30 days" };
const SINCE = [...RECORD_SINCE.map((v) => [v, SINCE_LABELS[v]]), ["custom", "from… to…"]];
const TEXT = ["service", "event", "user", "q", "release", "environment"];

/** The link of one record: its own page, found again by its id and millisecond. */
export function recordLink(r) {
  return "/record/" + encodeURIComponent(r.id) + "?ts=" + encodeURIComponent(r.ts);
}

/** `KEY=VALUE` (or `meta.KEY=VALUE`) as a pair, or null. */
export function parseMetaFilter(text) {
  const t = text.trim();
  const i = t.indexOf("=");
  if (i <= 0) return null;
  const key = t.slice(0, i).trim().replace(/^meta\./, "");
  return key ? [key, t.slice(i + 1).trim()] : null;
}

export function Records({ token, live, onFail, path, query }) {
  const search = query.toString();
  const view = useMemo(() => {
    const v = recordView(query);
    // A preset time, or a custom range.
    if (v.since && !RECORD_SINCE.includes(v.since)) v.since = "custom";
    return v;
  }, [search]);
  const [draft, setDraft] = useState(view);
  const [metaText, setMetaText] = useState("");
  const [metaError, setMetaError] = useState(null);
  const [state, setState] = useState({ loading: true, records: [], next: null });
  const [selected, setSelected] = useState(null);

  // The URL is the view: a change made here goes to the URL (the page's other parameters
  // kept), and a URL changed from outside (back, forward, a link) is shown in the fields.
  const pushed = useRef(search);
  const go = useCallback(
    (next, { push = false } = {}) => {
      const q = recordViewQuery(next, otherParams(location.search)).toString();
      pushed.current = q;
      navigate(q ? path + "?" + q : path, { replace: !push });
    },
    [path],
  );
  useEffect(() => {
    if (search !== pushed.current) setDraft(view);
    pushed.current = search;
  }, [search, view]);

  // Text fields apply after a short pause in typing (and start again from the newest page).
  useEffect(() => {
    const changed = TEXT.some((k) => (draft[k] || "") !== (view[k] || ""));
    if (!changed) return undefined;
    const t = setTimeout(() => go({ ...view, ...Object.fromEntries(TEXT.map((k) => [k, draft[k]])), cursor: "" }), 300);
    return () => clearTimeout(t);
  }, [draft, view, go]);

  const apiQuery = useMemo(() => recentQuery(view), [view]);

  // An answer for filters that have since changed must not overwrite the newer one.
  const current = useRef(apiQuery);
  current.current = apiQuery;
  const load = useCallback(async () => {
    try {
      const body = await api(token, "/logs/recent?" + apiQuery);
      if (current.current !== apiQuery) return;
      setState({ loading: false, records: body.records, next: body.next || null, query: apiQuery, error: null });
    } catch (e) {
      if (current.current !== apiQuery) return;
      setState((s) => ({ ...s, loading: false, error: e.message }));
      onFail(e);
    }
  }, [token, apiQuery, onFail]);

  useEffect(() => {
    setState((s) => ({ ...s, loading: s.query !== apiQuery }));
    load();
  }, [load, apiQuery]);
  useInterval(load, live ? RECORDS_MS : null);

  const set = (k) => (e) => setDraft((d) => ({ ...d, [k]: e.target.value }));
  // Selects and dates apply at once.
  const setNow = (k) => (e) => {
    const next = { ...view, ...draft, [k]: e.target.value, cursor: "" };
    if (k === "since" && e.target.value !== "custom") {
      next.from = "";
      next.until = "";
    }
    setDraft(next);
    go(next);
  };
  const addMeta = () => {
    const pair = parseMetaFilter(metaText);
    if (!pair) {
      setMetaError("Write a meta filter as KEY=VALUE, e.g. http.status=500");
      return;
    }
    setMetaError(null);
    setMetaText("");
    go({ ...view, meta: [...view.meta, pair], cursor: "" });
  };
  const removeMeta = (i) => go({ ...view, meta: view.meta.filter((_, k) => k !== i), cursor: "" });
  const services = useMemo(() => [...new Set(state.records.map((r) => r.service))].sort(), [state.records]);
  const filtered = [...TEXT, "level", "since"].some((k) => view[k]) || view.meta.length > 0;
  const paged = Boolean(view.cursor);

  return (
    <div className="records">
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Service
          <input id="filter-service" list="services" value={draft.service} onChange={set("service")} placeholder="any" />
          <datalist id="services">
            {services.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
        </label>
        <label>
          Minimum level
          <select id="filter-level" value={draft.level} onChange={setNow("level")}>
            {LEVELS.map((l) => (
              <option key={l} value={l}>
                {l || "any"}
              </option>
            ))}
          </select>
        </label>
        <label>
          Event
          <input id="filter-event" value={draft.event} onChange={set("event")} placeholder="window.onerror" />
        </label>
        <label>
          User (anonymized)
          <input id="filter-user" value={draft.user} onChange={set("user")} placeholder="u_…" />
        </label>
        <label>
          Text
          <input id="filter-q" value={draft.q} onChange={set("q")} placeholder="substring" />
        </label>
        <label>
          Release
          <input id="filter-release" value={draft.release} onChange={set("release")} placeholder="any" />
        </label>
        <label>
          Environment
          <input id="filter-environment" value={draft.environment} onChange={set("environment")} placeholder="any" />
        </label>
        <label>
          Meta
          <input
            id="filter-meta"
            value={metaText}
            onChange={(e) => setMetaText(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter") {
                e.preventDefault();
                addMeta();
              }
            }}
            placeholder="http.status=500"
            aria-invalid={metaError ? "true" : undefined}
          />
        </label>
        <button type="button" id="filter-meta-add" onClick={addMeta}>
          Add meta filter
        </button>
        <label>
          Time
          <select id="filter-since" value={draft.since} onChange={setNow("since")}>
            {SINCE.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
        </label>
        {draft.since === "custom" && (
          <>
            <label>
              From
              <input id="filter-from" type="datetime-local" step="1" value={draft.from} onChange={setNow("from")} />
            </label>
            <label>
              To
              <input id="filter-until" type="datetime-local" step="1" value={draft.until} onChange={setNow("until")} />
            </label>
          </>
        )}
        {view.meta.length > 0 && (
          <ul id="meta-filters" className="chips" aria-label="meta filters">
            {view.meta.map(([k, v], i) => (
              <li key={k + "=" + v + i} className="meta-chip" data-key={k}>
                <code>
                  meta.{k}={v}
                </code>
                <button type="button" aria-label={"remove meta." + k} onClick={() => removeMeta(i)}>
                  ×
                </button>
              </li>
            ))}
          </ul>
        )}
        {filtered && (
          <button
            type="button"
            id="filter-clear"
            onClick={() => {
              const empty = recordView(new URLSearchParams());
              setDraft(empty);
              go(empty);
            }}
          >
            Clear filters
          </button>
        )}
      </form>
      {metaError && (
        <p id="meta-error" className="banner error" role="alert">
          {metaError}
        </p>
      )}
      {state.error && (
        <p id="records-error" className="banner error" role="alert">
          {state.error}
        </p>
      )}
      <div className="records-body">
        <div className="table-wrap">
          {state.loading ? (
            <p className="loading">Loading records…</p>
          ) : state.records.length === 0 ? (
            <p id="records-empty" className="empty">
              {filtered
                ? "No records match these filters."
                : "No records yet. Open the demo panel and raise an error, or send a batch to POST /logs/ingest."}
            </p>
          ) : (
            <table id="records" className="records-table">
              <thead>
                <tr>
                  <th>Time</th>
                  <th>Level</th>
                  <th>Service</th>
                  <th>Event</th>
                  <th>Message</th>
                  <th>Top frame</th>
                  {!selected && <th>User</th>}
                  <th>
                    <span className="sr-only">Link</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {state.records.map((r) => (
                  <tr
                    key={r.id}
                    data-id={r.id}
                    className={selected && selected.id === r.id ? "selected" : ""}
                    onClick={() => setSelected(r)}
                    tabIndex={0}
                    onKeyDown={(e) => e.key === "Enter" && setSelected(r)}
                  >
                    <td className="time" title={r.ts}>{formatTime(r.ts)}</td>
                    <td className="level"><span className={"pill " + levelClass(r.level)}>{r.level}</span></td>
                    <td className="service">{r.service}</td>
                    <td className="event">{r.event}</td>
                    <td className="message">{r.message}</td>
                    <td className="frame">{topFrame(r)}</td>
                    {!selected && <td className="user">{String((r.meta && r.meta.user) || "")}</td>}
                    <td className="link">
                      <Link to={recordLink(r)} className="permalink" title="a link to this record" onClick={(e) => e.stopPropagation()}>
                        link
                      </Link>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {!state.loading && state.records.length > 0 && (
            <p className="muted small" id="records-count">
              {state.records.length} {paged ? "older" : "newest"} record(s){live ? ", updating live" : ", paused"}.
            </p>
          )}
          {!state.loading && (paged || state.next) && (
            <nav className="pager" aria-label="record pages">
              {paged && (
                <button type="button" id="records-newest" onClick={() => go({ ...view, cursor: "" }, { push: true })}>
                  Newest
                </button>
              )}
              {state.next && (
                <button type="button" id="records-older" onClick={() => go({ ...view, cursor: state.next }, { push: true })}>
                  Older
                </button>
              )}
            </nav>
          )}
        </div>
        {selected && (
          <ViewBoundary name="record detail" key={selected.id}>
            <RecordDetail record={selected} onClose={() => setSelected(null)} />
          </ViewBoundary>
        )}
      </div>
    </div>
  );
}
