// Alert rules with their groups, runbook link, channels (and which are not configured),
// delivery history and a reset button; on a firing alert, "Silence 1 h / 4 h / until
// resolved" and a silenced (or inhibited) badge; the inline notices of
// rules with the `notice` action; the latest system checks.
import { formatTime } from "./format.js";

export function Notices({ notices }) {
  if (!notices || notices.length === 0) return null;
  return (
    <div id="notices" className="notices" role="alert">
      {notices.map((n) => (
        <div key={n.rule + "/" + n.group} className={"notice " + n.severity} data-rule={n.rule}>
          <b>{n.rule}</b>: {n.message}
          {n.since && <span className="muted"> · since {formatTime(n.since)}</span>}
        </div>
      ))}
    </div>
  );
}

const ORDER = { firing: 0, pending: 1, resolved: 2, ok: 3 };

// Only a web link is rendered as one (the server checks runbook_url the same way).
const isHttp = (url) => typeof url === "string" && /^https?:\/\//.test(url);

export function Alerts({ alerts, onReset, onSilence }) {
  if (!alerts.enabled) {
    return <p className="empty">The server does not evaluate alerts (alerts.enabled = false): `faultline check-alerts` does.</p>;
  }
  if (alerts.rules.length === 0) {
    return <p className="empty">No alert rules are configured (docs/OPERATIONS.md, "Alerts").</p>;
  }
  const channels = Object.fromEntries((alerts.channels || []).map((c) => [c.name, c]));
  const unconfigured = (alerts.channels || []).filter((c) => !c.configured);
  const rules = [...alerts.rules].sort((a, b) => (ORDER[a.status] ?? 9) - (ORDER[b.status] ?? 9) || a.name.localeCompare(b.name));
  return (
    <div id="alerts" className="alerts">
      <p className="muted small">
        {alerts.firing} firing{alerts.records_dropped ? " · " + alerts.records_dropped + " records not evaluated (queue full)" : ""}
      </p>
      {unconfigured.length > 0 && (
        <p id="channels-not-configured" className="muted small">
          Not configured, notifications skipped:{" "}
          {unconfigured.map((c, i) => (
            <span key={c.name}>
              {i > 0 && ", "}
              {c.name} ({c.kind}, set {c.missing_env})
            </span>
          ))}
        </p>
      )}
      {rules.map((r) => (
        <div key={r.name} className={"alert card " + r.status} data-rule={r.name} data-status={r.status}>
          <div className="alert-head">
            <b>{r.name}</b>
            <span className={"pill status-" + r.status}>{r.status}</span>
            <span className="muted small">
              {r.kind} · {r.severity} · {r.filter}
            </span>
            {r.status !== "ok" && (
              <button className="reset" onClick={() => onReset(r.name)}>
                Reset
              </button>
            )}
          </div>
          <div className="alert-meta small">
            {isHttp(r.config && r.config.runbook_url) && (
              <a className="runbook" href={r.config.runbook_url} target="_blank" rel="noopener noreferrer">
                Runbook
              </a>
            )}
            <span className="alert-actions muted">
              {"→ "}
              {r.actions.map((a, i) => {
                const c = channels[a];
                const off = c && !c.configured;
                return (
                  <span key={a} className={"channel" + (off ? " not-configured" : "")} data-channel={a} data-configured={off ? "false" : "true"}>
                    {i > 0 && ", "}
                    {a}
                    {off && " (not configured)"}
                  </span>
                );
              })}
            </span>
          </div>
          {r.groups.filter((g) => g.status !== "ok").length > 0 && (
            <ul className="groups small">
              {r.groups
                .filter((g) => g.status !== "ok")
                .map((g) => (
                  <li key={g.group}>
                    <span className={"pill status-" + g.status}>{g.status}</span> {g.group || "(all)"}: {g.current ? g.current.detail : g.detail}
                    {g.fired_at && <span className="muted"> · fired {formatTime(g.fired_at)}</span>}
                    {g.silenced_by && (
                      <span className="pill silenced" data-silence={g.silenced_by} title={"silence " + g.silenced_by}>
                        silenced
                      </span>
                    )}
                    {g.inhibited_by && <span className="pill silenced inhibited">inhibited by {g.inhibited_by}</span>}
                    {g.status === "firing" && !g.silenced_by && onSilence && (
                      <span className="silence-actions">
                        {" Silence "}
                        <button className="silence" data-for="1h" onClick={() => onSilence(r.name, g.group, "1h")}>
                          1 h
                        </button>
                        <button className="silence" data-for="4h" onClick={() => onSilence(r.name, g.group, "4h")}>
                          4 h
                        </button>
                        <button className="silence" data-for="resolved" onClick={() => onSilence(r.name, g.group, "resolved")}>
                          until resolved
                        </button>
                      </span>
                    )}
                  </li>
                ))}
            </ul>
          )}
          {r.deliveries.length > 0 && (
            <details className="history small" open={r.status === "firing"}>
              <summary>History ({r.deliveries.length})</summary>
              <ol>
                {r.deliveries.slice(0, 20).map((d, i) => (
                  <li key={i}>
                    {formatTime(d.at)} · {d.event} → {d.channel}: {d.status}
                    {d.error ? " (" + d.error + ")" : ""}
                    {d.group ? <span className="muted"> · {d.group}</span> : null}
                  </li>
                ))}
              </ol>
            </details>
          )}
          {r.reset_at && <div className="muted small">last reset {formatTime(r.reset_at)}</div>}
        </div>
      ))}
    </div>
  );
}

export function Checks({ checks }) {
  if (!checks || checks.length === 0) return <p className="empty">No system checks recorded yet.</p>;
  return (
    <table id="checks" className="checks">
      <thead>
        <tr>
          <th>Check</th>
          <th>Status</th>
          <th>Detail</th>
          <th>When</th>
        </tr>
      </thead>
      <tbody>
        {checks.map((c, i) => (
          <tr key={c.name + (c.group || "") + i} data-status={c.status}>
            <td>
              {c.name}
              {c.group ? <div className="muted small">{c.group}</div> : null}
            </td>
            <td>
              <span className={"pill check-" + c.status}>{c.status}</span>
            </td>
            <td className="small">{c.detail}</td>
            <td className="small">{formatTime(c.checked_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
