// One record in full: message, the fields, stack frames (Frames.jsx: source-mapped ones with
// their source context), breadcrumbs and the rest of `meta`. All of it as text. Any valid
// record renders: `meta` is free-form JSON, so a breadcrumb may be `null`, a number or a
// string, and a field an object.
import { formatTime, levelClass } from "./format.js";
import { Frames } from "./Frames.jsx";

/** Any JSON value as text: strings as they are, the rest as JSON. */
function asText(v) {
  return typeof v === "string" ? v : v == null ? "" : JSON.stringify(v);
}

export function RecordDetail({ record: r, onClose }) {
  const meta = r.meta || {};
  const { stack, breadcrumbs, component_stack: componentStack, ...rest } = meta;
  // A breadcrumb that is not an object is shown as its message.
  const crumbs = (Array.isArray(breadcrumbs) ? breadcrumbs : []).map((c) => (c && typeof c === "object" && !Array.isArray(c) ? c : { message: c }));
  return (
    <aside id="detail" className="detail card" aria-label="record detail">
      <div className="detail-head">
        <span className={"pill " + levelClass(r.level)}>{r.level}</span>
        <b>{r.service}</b> · <code>{r.event}</code>
        <button className="close" onClick={onClose} aria-label="close detail">
          ×
        </button>
      </div>
      <pre id="detail-message" className="message-full">{r.message}</pre>
      <dl className="fields">
        <dt>Time</dt>
        <dd>{formatTime(r.ts)} ({r.ts})</dd>
        {r.received_at && (
          <>
            <dt>Received</dt>
            <dd>{r.received_at}</dd>
          </>
        )}
        <dt>Id</dt>
        <dd><code>{r.id}</code></dd>
        {meta.error_type && (
          <>
            <dt>Error type</dt>
            <dd>{asText(meta.error_type)}</dd>
          </>
        )}
        {meta.user && (
          <>
            <dt>User</dt>
            <dd><code>{asText(meta.user)}</code></dd>
          </>
        )}
        {meta.count > 1 && (
          <>
            <dt>Folded</dt>
            <dd>{String(meta.count)} identical reports</dd>
          </>
        )}
      </dl>
      <h3>Stack frames</h3>
      <Frames frames={stack} id="detail-frames" />
      {componentStack && (
        <>
          <h3>Component stack</h3>
          <pre className="small">{asText(componentStack)}</pre>
        </>
      )}
      <h3>Breadcrumbs</h3>
      {crumbs.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <ol id="detail-breadcrumbs" className="crumbs">
          {crumbs.map((c, i) => (
            <li key={i}>
              <span className="muted">{c.ts ? formatTime(asText(c.ts)) : ""}</span> <b>{asText(c.category)}</b>{" "}
              {c.level ? <span className={"pill level-" + asText(c.level)}>{asText(c.level)}</span> : null} {asText(c.message)}
            </li>
          ))}
        </ol>
      )}
      <h3>Meta</h3>
      <pre id="detail-meta" className="meta">{JSON.stringify(rest, null, 2)}</pre>
    </aside>
  );
}
