// Errors (ERROR and CRITICAL) per minute or per hour per service, from `/logs/stats` (per
// minute up to 24 hours, per hour from the rollups beyond), as a hand-drawn SVG line chart:
// one line per service, a dot on every minute or hour that had errors.

const W = 720;
const H = 170;
const PAD = { left: 36, right: 10, top: 10, bottom: 22 };
const COLORS = ["#e5484d", "#3e63dd", "#f76b15", "#30a46c", "#8e4ec6", "#12a594", "#d6409f", "#978365"];
const STEPS = { "1m": 60000, "1h": 3600000 };

/** A service's color, the same in every chart (from its name, not its position). */
export function serviceColor(service) {
  let h = 0;
  for (const ch of service) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[h % COLORS.length];
}

/** Per service, the error count of every step (minute or hour) in the window (zeros
 * included): `{ since, step, steps, series }`. */
export function errorSeries(stats) {
  const since = Date.parse(stats.since);
  const until = Date.parse(stats.until);
  const step = STEPS[stats.step] || STEPS["1m"];
  const steps = Math.max(1, Math.ceil((until - since) / step));
  const series = new Map();
  for (const b of stats.buckets) {
    if (b.level !== "ERROR" && b.level !== "CRITICAL") continue;
    const i = Math.floor((Date.parse(b.minute || b.hour) - since) / step);
    if (i < 0 || i >= steps) continue;
    if (!series.has(b.service)) series.set(b.service, new Array(steps).fill(0));
    series.get(b.service)[i] += b.count;
  }
  return { since, step, steps, series: [...series.entries()].sort(([a], [b]) => a.localeCompare(b)) };
}

export function ErrorChart({ id, title, stats }) {
  if (!stats) {
    return (
      <figure id={id} className="chart card">
        <figcaption>{title}</figcaption>
        <p className="loading">Loading…</p>
      </figure>
    );
  }
  const { since, step, steps: minutes, series } = errorSeries(stats);
  const max = Math.max(1, ...series.flatMap(([, v]) => v));
  const x = (i) => PAD.left + (i / Math.max(1, minutes - 1)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const ticks = axisTicks(since, minutes, step);
  return (
    <figure id={id} className="chart card" data-step={stats.step}>
      <figcaption>
        {title}
        <span className="legend">
          {series.map(([service], k) => (
            <span key={service} className="legend-item">
              <i style={{ background: serviceColor(service) }} />
              {service} ({series[k][1].reduce((a, b) => a + b, 0)})
            </span>
          ))}
        </span>
      </figcaption>
      {series.length === 0 ? (
        <p className="empty">No errors in this window.</p>
      ) : (
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title}>
          {[0, 0.5, 1].map((f) => (
            <g key={f}>
              <line className="grid" x1={PAD.left} x2={W - PAD.right} y1={y(max * f)} y2={y(max * f)} />
              <text className="axis" x={PAD.left - 6} y={y(max * f) + 4} textAnchor="end">
                {Math.round(max * f * 10) / 10}
              </text>
            </g>
          ))}
          {ticks.map(({ i, label }, k) => (
            <text key={i} className="axis" x={x(i)} y={H - 6} textAnchor={k === 0 ? "start" : k === ticks.length - 1 ? "end" : "middle"}>
              {label}
            </text>
          ))}
          {series.map(([service, values]) => {
            const color = serviceColor(service);
            return (
              <g key={service} data-service={service}>
                <polyline fill="none" stroke={color} strokeWidth="1.6" points={values.map((v, i) => x(i) + "," + y(v)).join(" ")} />
                {values.map((v, i) =>
                  v > 0 ? (
                    <circle key={i} className="point" cx={x(i)} cy={y(v)} r="3" fill={color} data-count={v}>
                      <title>
                        {service}: {v} error(s) at {label(since + i * step, step)}
                      </title>
                    </circle>
                  ) : null,
                )}
              </g>
            );
          })}
        </svg>
      )}
    </figure>
  );
}

/** A step's start as text: the time for minutes, the day and hour for hours. */
function label(t, step) {
  const d = new Date(t);
  const time = d.toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit" });
  return step >= STEPS["1h"] ? d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time : time;
}

function axisTicks(since, steps, step) {
  const count = 6;
  const out = [];
  for (let k = 0; k <= count; k++) {
    const i = Math.round((k / count) * (steps - 1));
    out.push({ i, label: label(since + i * step, step) });
  }
  return out;
}
