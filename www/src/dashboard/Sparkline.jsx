// Hourly event counts as SVG bars: the issue list's 24-hour sparkline and the issue page's
// 14-day chart. Counts come oldest first, one per hour; the chart is drawn by hand (a few
// rects), like Charts.jsx, so the dashboard needs no chart library.

const HOUR = 3600e3;

/** Counts as non-negative numbers (anything else, such as null, is 0). */
function clean(values) {
  return (Array.isArray(values) ? values : []).map((v) => (typeof v === "number" && v > 0 ? v : 0));
}

/** A small bar chart without axes, for a table cell. */
export function Sparkline({ values, width = 120, height = 26, label = "events per hour, last 24 hours" }) {
  const counts = clean(values);
  const total = counts.reduce((a, b) => a + b, 0);
  const max = Math.max(1, ...counts);
  const n = Math.max(1, counts.length);
  const step = width / n;
  return (
    <svg
      className="sparkline"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={`${total} ${label}`}
      data-total={total}
    >
      <line className="base" x1="0" x2={width} y1={height - 0.5} y2={height - 0.5} />
      {counts.map((v, i) =>
        v > 0 ? (
          <rect
            key={i}
            x={i * step + 0.5}
            width={Math.max(1, step - 1)}
            y={height - 1 - (v / max) * (height - 2)}
            height={Math.max(1, (v / max) * (height - 2))}
          />
        ) : null,
      )}
    </svg>
  );
}

const W = 720;
const H = 150;
const PAD = { left: 34, right: 8, top: 10, bottom: 22 };

/** Hourly counts with a day axis: `values` oldest first, the last one the hour starting at
 * `end` (a time in ms or anything Date takes; the current hour when missing). */
export function HourlyChart({ id, title, values, end }) {
  const counts = clean(values);
  const total = counts.reduce((a, b) => a + b, 0);
  const max = Math.max(1, ...counts);
  const n = Math.max(1, counts.length);
  const last = end != null && !Number.isNaN(new Date(end).getTime()) ? new Date(end).getTime() : Math.floor(Date.now() / HOUR) * HOUR;
  const first = last - (n - 1) * HOUR;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / n;
  const y = (v) => PAD.top + plotH - (v / max) * plotH;
  // A tick at each local midnight, labelled with the date (every other one past a week).
  const ticks = [];
  for (let i = 0; i < n; i++) {
    const d = new Date(first + i * HOUR);
    if (d.getHours() === 0) ticks.push({ i, d });
  }
  const every = ticks.length > 7 ? 2 : 1;
  return (
    <figure id={id} className="chart card hourly-chart" data-total={total}>
      <figcaption>
        {title} <span className="muted small">{total} event(s)</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: ${total} events`}>
        <line className="grid" x1={PAD.left} x2={W - PAD.right} y1={y(max)} y2={y(max)} />
        <text className="axis" x={PAD.left - 4} y={y(max) + 3} textAnchor="end">
          {max}
        </text>
        <text className="axis" x={PAD.left - 4} y={y(0) + 3} textAnchor="end">
          0
        </text>
        {ticks.map(({ i, d }, k) => (
          <g key={i}>
            <line className="grid" x1={PAD.left + i * step} x2={PAD.left + i * step} y1={PAD.top} y2={H - PAD.bottom} />
            {k % every === 0 && (
              <text className="axis" x={PAD.left + i * step + 2} y={H - 6}>
                {d.toLocaleDateString([], { month: "short", day: "numeric" })}
              </text>
            )}
          </g>
        ))}
        <line className="base" x1={PAD.left} x2={W - PAD.right} y1={y(0) + 0.5} y2={y(0) + 0.5} />
        {counts.map((v, i) =>
          v > 0 ? (
            <rect key={i} className="bar" data-count={v} x={PAD.left + i * step} width={Math.max(1, step - 0.5)} y={y(v)} height={Math.max(1, y(0) - y(v))}>
              <title>
                {new Date(first + i * HOUR).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })}: {v} event(s)
              </title>
            </rect>
          ) : null,
        )}
      </svg>
    </figure>
  );
}
