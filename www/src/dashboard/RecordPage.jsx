// One record on a page of its own: the link every row of the record table has
// (`/record/ID?ts=TS`). The API lists records by time, so the page asks for the one
// millisecond the link names and picks the record by its id.
import { useMemo } from "react";
import { RecordDetail } from "./RecordDetail.jsx";
import { Link, navigate } from "./route.jsx";
import { useResource } from "./useResource.js";

/** The `/logs/recent` path that holds the record of `ts` (its millisecond), or null. */
export function recordPath(ts) {
  const t = Date.parse(ts || "");
  if (Number.isNaN(t)) return null;
  const q = new URLSearchParams({ since: new Date(t).toISOString(), until: new Date(t + 1).toISOString(), limit: "1000" });
  return "/logs/recent?" + q.toString();
}

export function RecordPage({ token, id, query, onFail }) {
  const ts = query.get("ts");
  const path = useMemo(() => recordPath(ts), [ts]);
  const { loading, data, error } = useResource(token, path, { onFail });
  const record = data && data.records.find((r) => r.id === id);
  return (
    <section id="record-page">
      <p>
        <Link to="/overview">← Overview</Link>
      </p>
      {!path ? (
        <p id="record-missing" className="empty">This link has no valid time (ts=) to find the record by.</p>
      ) : loading ? (
        <p className="loading">Loading the record…</p>
      ) : error ? (
        <p className="banner error" role="alert">
          {error.message}
        </p>
      ) : !record ? (
        <p id="record-missing" className="empty">
          No record {id} at {ts}: it may have passed retention.
        </p>
      ) : (
        <RecordDetail record={record} onClose={() => navigate("/overview")} />
      )}
    </section>
  );
}
