// The live record table: filters, newest first, polling while live, and a detail view.
// Every record field is rendered as text (React escapes it); nothing is parsed as HTML.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, recentQuery } from "../api.js";
import { useInterval } from "./useInterval.js";
import { RecordDetail } from "./RecordDetail.jsx";
import { ViewBoundary } from "./ViewBoundary.jsx";
import { formatTime, levelClass, topFrame } from "./format.js";

const RECORDS_MS = 1500;
const LEVELS = ["", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const SINCE = [
  ["", "any time"],
  ["15m", "last 15 min"],
  ["1h", "last hour"],
  ["24h", "last 24 h"],
  ["7d", "last 7 days"],
  ["custom", "from… to…"],
];
const EMPTY = { service: "", level: "", event: "", user: "", q: "", since: "", from: "", until: "" };

export function Records({ token, live, onFail }) {
  const [draft, setDraft] = useState(EMPTY);
  const [filters, setFilters] = useState(EMPTY);
  const [state, setState] = useState({ loading: true, records: [] });
  const [selected, setSelected] = useState(null);

  // Text fields apply after a short pause in typing; selects at once.
  useEffect(() => {
    const t = setTimeout(() => setFilters(draft), 300);
    return () => clearTimeout(t);
  }, [draft]);

  const query = useMemo(() => {
    const f = { ...filters };
    if (f.since === "custom") f.since = f.from;
    return recentQuery(f);
  }, [filters]);

  // An answer for filters that have since changed must not overwrite the newer one.
  const current = useRef(query);
  current.current = query;
  const load = useCallback(async () => {
    try {
      const body = await api(token, "/logs/recent?" + query);
      if (current.current !== query) return;
      setState({ loading: false, records: body.records, query, error: null });
    } catch (e) {
      if (current.current !== query) return;
      setState((s) => ({ ...s, loading: false, error: e.message }));
      onFail(e);
    }
  }, [token, query, onFail]);

  useEffect(() => {
    setState((s) => ({ ...s, loading: s.query !== query }));
    load();
  }, [load, query]);
  useInterval(load, live ? RECORDS_MS : null);

  const set = (k) => (e) => setDraft((d) => ({ ...d, [k]: e.target.value }));
  const setNow = (k) => (e) => {
    const next = { ...draft, [k]: e.target.value };
    setDraft(next);
    setFilters(next);
  };
  const services = useMemo(() => [...new Set(state.records.map((r) => r.service))].sort(), [state.records]);
  const filtered = Object.entries(filters).some(([, v]) => v);

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
        {filtered && (
          <button
            type="button"
            id="filter-clear"
            onClick={() => {
              setDraft(EMPTY);
              setFilters(EMPTY);
            }}
          >
            Clear filters
          </button>
        )}
      </form>
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
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {!state.loading && state.records.length > 0 && (
            <p className="muted small" id="records-count">
              {state.records.length} newest record(s){live ? ", updating live" : ", paused"}.
            </p>
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
