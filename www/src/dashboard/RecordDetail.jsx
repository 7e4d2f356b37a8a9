// One record in full: message, the fields, parsed stack frames, breadcrumbs and the rest of
// `meta`. All of it as text.
import { formatTime, frameText, levelClass } from "./format.js";

export function RecordDetail({ record: r, onClose }) {
  const meta = r.meta || {};
  const { stack, breadcrumbs, component_stack: componentStack, ...rest } = meta;
  const frames = Array.isArray(stack) ? stack : [];
  const crumbs = Array.isArray(breadcrumbs) ? breadcrumbs : [];
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
            <dd>{String(meta.error_type)}</dd>
          </>
        )}
        {meta.user && (
          <>
            <dt>User</dt>
            <dd><code>{String(meta.user)}</code></dd>
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
      {frames.length === 0 ? (
        <p className="muted">No parsed frames.</p>
      ) : (
        <ol id="detail-frames" className="frames">
          {frames.map((f, i) => (
            <li key={i} className={i === 0 ? "top" : ""}>
              <code>{frameText(f)}</code>
            </li>
          ))}
        </ol>
      )}
      {componentStack && (
        <>
          <h3>Component stack</h3>
          <pre className="small">{String(componentStack)}</pre>
        </>
      )}
      <h3>Breadcrumbs</h3>
      {crumbs.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <ol id="detail-breadcrumbs" className="crumbs">
          {crumbs.map((c, i) => (
            <li key={i}>
              <span className="muted">{c.ts ? formatTime(c.ts) : ""}</span> <b>{String(c.category || "")}</b>{" "}
              {c.level ? <span className={"pill level-" + String(c.level)}>{String(c.level)}</span> : null} {String(c.message || "")}
            </li>
          ))}
        </ol>
      )}
      <h3>Meta</h3>
      <pre id="detail-meta" className="meta">{JSON.stringify(rest, null, 2)}</pre>
    </aside>
  );
}
