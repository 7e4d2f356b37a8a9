// Client-side routes without a router library: the path picks the page, the query string holds
// a page's view (filters, sort, cursor), so a copied link reproduces what was on screen. The
// server answers a browser's load of any of these paths with index.html (`/issues...` too,
// which the API also serves: see ingest-server/src/api/dashboard.rs).
import { useEffect, useState } from "react";

const CHANGE = "faultline:navigate";

function current() {
  return { path: location.pathname.replace(/\/+$/, "") || "/", query: new URLSearchParams(location.search) };
}

/** The current path (no trailing slash) and query; re-renders on links, back and forward. */
export function useLocation() {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    const update = () => setLoc(current());
    window.addEventListener("popstate", update);
    window.addEventListener(CHANGE, update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener(CHANGE, update);
    };
  }, []);
  return loc;
}

/** Goes to `url` (same origin) without a reload; `replace` keeps the history entry. */
export function navigate(url, { replace = false } = {}) {
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  window.dispatchEvent(new Event(CHANGE));
}

/** `path?query` with empty values left out. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? path + "?" + s : path;
}

/** An `<a>` that navigates in place on a plain click (a modified click opens a new tab as usual). */
export function Link({ to, children, onClick, ...rest }) {
  return (
    <a
      href={to}
      onClick={(e) => {
        if (onClick) onClick(e);
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(to);
      }}
      {...rest}
    >
      {children}
    </a>
  );
}
