// The dashboard's reads of the server's API. The admin token goes in the Authorization
// header only, never in a URL (URLs end up in logs, history and Referer headers).

const TOKEN_KEY = "faultline.adminToken";

/** The token for this browser tab's session (sessionStorage: gone when the tab closes). */
export function savedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function saveToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {}
}

/** An API failure with what the user should know: `kind` is `auth`, `down` or `http`. */
export class ApiError extends Error {
  constructor(kind, message, status) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** GET (or POST, PUT with a JSON `body`) `path` with the token; resolves to the JSON body
 * or throws ApiError. */
export async function api(token, path, { method = "GET", signal, body } = {}) {
  let res;
  const headers = { authorization: "Bearer " + token, accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  try {
    res = await fetch(path, {
      method,
      signal,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError("down", "Cannot reach the Faultline server (" + describe(e) + "). Is `faultline serve` running?");
  }
  let answer = null;
  try {
    answer = await res.json();
  } catch {}
  if (res.ok) return answer;
  const said = answer && typeof answer.error === "string" ? answer.error : res.statusText;
  if (res.status === 401) throw new ApiError("auth", "The server refused this admin token: " + said, 401);
  if (res.status === 403) throw new ApiError("auth", "This is not an admin token: " + said, 403);
  if (res.status === 503) throw new ApiError("down", "The server is unavailable: " + said, 503);
  throw new ApiError("http", "The server answered " + res.status + ": " + said, res.status);
}

function describe(e) {
  return e && e.message ? e.message : String(e);
}

/** Records per page of the record table unless the URL says `limit=`. */
export const RECORD_PAGE = 100;

/** The presets of the record table's time filter (anything else in the URL is "custom"). */
export const RECORD_SINCE = ["", "15m", "1h", "24h", "7d", "30d"];

/** The fields of the record table's view that are plain strings in the URL. */
const RECORD_FIELDS = ["service", "level", "event", "user", "q", "since", "from", "until", "release", "environment", "cursor", "limit"];

/** The record table's view from a URL query (`/overview?level=ERROR&meta.http.status=500`):
 * the filters, `meta` as `[key, value]` pairs, and the page's `cursor`. */
export function recordView(query) {
  const view = { meta: [] };
  for (const k of RECORD_FIELDS) view[k] = (query.get(k) || "").trim();
  if (!/^[1-9]\d{0,2}$/.test(view.limit) || Number(view.limit) > 1000) view.limit = "";
  for (const [k, v] of query) if (k.startsWith("meta.") && k.length > 5) view.meta.push([k.slice(5), v]);
  return view;
}

/** The URL query of a record table view (what `recordView` reads back), `extra` first. */
export function recordViewQuery(view, extra = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(extra)) if (v) q.set(k, v);
  for (const k of RECORD_FIELDS) if (view[k]) q.set(k, view[k]);
  for (const [k, v] of view.meta || []) q.append("meta." + k, v);
  return q;
}

/** The parameters of a page's URL query that are not the record table's (the chart range). */
export function otherParams(search) {
  const out = {};
  for (const [k, v] of new URLSearchParams(search)) if (!RECORD_FIELDS.includes(k) && !k.startsWith("meta.")) out[k] = v;
  return out;
}

/** The `/logs/recent` query string for a record table view (empty filters left out). */
export function recentQuery(view, limit = RECORD_PAGE) {
  const q = new URLSearchParams();
  for (const k of ["service", "level", "event", "user", "q", "release", "environment", "cursor"]) {
    const v = (view[k] || "").trim();
    if (v) q.set(k, v);
  }
  const since = view.since === "custom" ? (view.from || "").trim() : (view.since || "").trim();
  if (since) q.set("since", since.includes("T") ? toIso(since) : since);
  if (view.since === "custom" && (view.until || "").trim()) q.set("until", toIso(view.until.trim()));
  for (const [k, v] of view.meta || []) q.append("meta." + k, v);
  q.set("limit", String(view.limit || limit));
  return q.toString();
}

// <input type="datetime-local"> gives local time without a zone; the API wants RFC 3339.
function toIso(v) {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? v : d.toISOString();
}

/** The issue list's view as the URL keeps it (`/issues?status=all&sort=count`): the values
 * the API takes, with the defaults left out so the plain list has a plain link. */
export const ISSUE_DEFAULTS = { service: "", status: "unresolved", sort: "last_seen", since: "", limit: "", cursor: "" };

/** Issues per page unless the URL says `limit=`. */
export const ISSUE_PAGE = 50;

/** The issue list's view from a URL query (unknown values fall back to the defaults). */
export function issueView(query) {
  const pick = (k, allowed) => {
    const v = (query.get(k) || "").trim();
    return !allowed || allowed.includes(v) ? v || ISSUE_DEFAULTS[k] : ISSUE_DEFAULTS[k];
  };
  return {
    service: pick("service"),
    status: pick("status", ["unresolved", "resolved", "ignored", "all"]),
    sort: pick("sort", ["last_seen", "first_seen", "count", "users"]),
    since: pick("since", ["", "1h", "24h", "7d", "14d"]),
    limit: /^[1-9]\d{0,2}$/.test(query.get("limit") || "") ? query.get("limit") : "",
    cursor: pick("cursor"),
  };
}

/** The `/issues` query string for a view: every value, so the server's defaults never matter. */
export function issuesQuery(view) {
  const q = new URLSearchParams({ status: view.status, sort: view.sort, limit: view.limit || String(ISSUE_PAGE) });
  if (view.service) q.set("service", view.service);
  if (view.since) q.set("since", view.since);
  if (view.cursor) q.set("cursor", view.cursor);
  return q.toString();
}

/** `PUT /issues/{id}` with a new status; resolves to the server's answer. */
export function setIssueStatus(token, id, status) {
  return api(token, "/issues/" + encodeURIComponent(id), { method: "PUT", body: { status } });
}
