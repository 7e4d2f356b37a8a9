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

/** GET (or POST) `path` with the token; resolves to the JSON body or throws ApiError. */
export async function api(token, path, { method = "GET", signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      signal,
      headers: { authorization: "Bearer " + token, accept: "application/json" },
      cache: "no-store",
    });
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError("down", "Cannot reach the Faultline server (" + describe(e) + "). Is `faultline serve` running?");
  }
  let body = null;
  try {
    body = await res.json();
  } catch {}
  if (res.ok) return body;
  const said = body && typeof body.error === "string" ? body.error : res.statusText;
  if (res.status === 401) throw new ApiError("auth", "The server refused this admin token: " + said, 401);
  if (res.status === 403) throw new ApiError("auth", "This is not an admin token: " + said, 403);
  if (res.status === 503) throw new ApiError("down", "The server is unavailable: " + said, 503);
  throw new ApiError("http", "The server answered " + res.status + ": " + said, res.status);
}

function describe(e) {
  return e && e.message ? e.message : String(e);
}

/** The `/logs/recent` query string for the dashboard's filters (empty ones left out). */
export function recentQuery(filters, limit = 200) {
  const q = new URLSearchParams();
  for (const k of ["service", "level", "event", "user", "q", "since", "until"]) {
    const v = (filters[k] || "").trim();
    if (v) q.set(k, k === "until" || (k === "since" && v.includes("T")) ? toIso(v) : v);
  }
  q.set("limit", String(limit));
  return q.toString();
}

// <input type="datetime-local"> gives local time without a zone; the API wants RFC 3339.
function toIso(v) {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? v : d.toISOString();
}
