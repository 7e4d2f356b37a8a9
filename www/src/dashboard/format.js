// Small text helpers shared by the dashboard views.

/** `2026-07-01T12:34:56.789Z` as local `12:34:56.789`, with the date when it is not today. */
export function formatTime(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  const time = d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  return d.toDateString() === new Date().toDateString() ? time : d.toLocaleDateString() + " " + time;
}

export function levelClass(level) {
  return "level-" + String(level).toLowerCase();
}

/** One frame as `fn @ file:line:col`. */
export function frameText(f) {
  if (!f) return "";
  const where = [shortFile(f.file), f.line, f.column].filter((x) => x !== undefined && x !== null && x !== "").join(":");
  return (f.function || "<anonymous>") + (where ? " @ " + where : "");
}

/** The innermost parsed frame of a record, as text ("" without a stack). */
export function topFrame(r) {
  const stack = r && r.meta && Array.isArray(r.meta.stack) ? r.meta.stack : [];
  return stack.length ? frameText(stack[0]) : "";
}

/** A script URL without its origin: `/assets/index-abc.js`. */
export function shortFile(file) {
  if (!file) return "";
  try {
    const u = new URL(file);
    return u.origin === location.origin ? u.pathname : file;
  } catch {
    return file;
  }
}
