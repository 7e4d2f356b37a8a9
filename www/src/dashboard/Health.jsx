// A card per service: ok, degraded or failing, from its rules' states and its recent errors.

/** CRITICAL records in a `/logs/stats` answer (the 15-minute one for the badge). */
export function criticalCount(stats) {
  return stats.totals.filter((t) => t.level === "CRITICAL").reduce((a, t) => a + t.count, 0);
}

function count(stats, service, levels) {
  if (!stats) return 0;
  return stats.totals.filter((t) => t.service === service && levels.includes(t.level)).reduce((a, t) => a + t.count, 0);
}

const ERRORS = ["ERROR", "CRITICAL"];

/** Health of every service seen in the last 24 h or named by a rule. */
export function serviceHealth({ alerts, hour, quarter, day }) {
  const names = new Set();
  for (const s of [day, hour, quarter]) for (const t of (s && s.totals) || []) names.add(t.service);
  const ruleService = (r) => r.config && r.config.filter && r.config.filter.service;
  for (const r of alerts.rules) if (ruleService(r)) names.add(ruleService(r));
  return [...names].sort().map((service) => {
    const rules = alerts.rules.filter((r) => ruleService(r) === service);
    const firing = rules.filter((r) => r.status === "firing");
    const pending = rules.filter((r) => r.status === "pending");
    const errors15 = count(quarter, service, ERRORS);
    const critical15 = count(quarter, service, ["CRITICAL"]);
    let status = "ok";
    const why = [];
    if (firing.length || critical15) {
      status = "failing";
      if (firing.length) why.push("firing: " + firing.map((r) => r.name).join(", "));
      if (critical15) why.push(critical15 + " critical in 15 min");
    } else if (pending.length || errors15) {
      status = "degraded";
      if (pending.length) why.push("pending: " + pending.map((r) => r.name).join(", "));
      if (errors15) why.push(errors15 + " error(s) in 15 min");
    } else {
      why.push(rules.length ? "rules ok, no errors in 15 min" : "no errors in 15 min");
    }
    return {
      service,
      status,
      why,
      errors15,
      hourRecords: hour ? hour.totals.filter((t) => t.service === service).reduce((a, t) => a + t.count, 0) : 0,
    };
  });
}

export function HealthCards(props) {
  const services = serviceHealth(props);
  if (services.length === 0) {
    return <p className="empty">No services have sent records in the last 24 hours.</p>;
  }
  return (
    <div className="health">
      {services.map((s) => (
        <div key={s.service} className={"health-card card " + s.status} data-service={s.service} data-status={s.status}>
          <div className="health-head">
            <b>{s.service}</b>
            <span className={"pill status-" + s.status}>{s.status}</span>
          </div>
          <div className="muted small">{s.why.join(" · ")}</div>
          <div className="small">
            {s.hourRecords} record(s) in the last hour · {s.errors15} error(s) in 15 min
          </div>
        </div>
      ))}
    </div>
  );
}
