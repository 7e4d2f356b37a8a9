// One API read kept fresh: loaded when its path changes, polled while `ms` is set, and an
// answer for a path the page has since left never overwrites the newer one.
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, api } from "../api.js";
import { useInterval } from "./useInterval.js";

/** `{ loading, data, error, reload }` for `GET path` (no request while `path` is null).
 * `onFail` hears the failures that concern the whole dashboard (a refused token, the server
 * down); an HTTP error such as 404 is the caller's to show, from `error`. */
export function useResource(token, path, { ms = null, onFail } = {}) {
  const [state, setState] = useState({ loading: true, data: null, error: null, path: null });
  const current = useRef(path);
  current.current = path;

  const load = useCallback(async () => {
    if (path == null) return;
    try {
      const data = await api(token, path);
      if (current.current !== path) return;
      setState({ loading: false, data, error: null, path });
    } catch (e) {
      if (current.current !== path || (e && e.name === "AbortError")) return;
      // A failed poll keeps the last answer on screen, with the error beside it.
      setState((s) => ({ loading: false, data: s.path === path ? s.data : null, error: e, path }));
      if (onFail && !(e instanceof ApiError && e.kind === "http")) onFail(e);
    }
  }, [token, path, onFail]);

  useEffect(() => {
    load();
  }, [load]);
  useInterval(load, path == null ? null : ms);

  // Until the new path's own answer comes, the page shows "loading", not the old answer.
  const fresh = state.path === path;
  return {
    loading: !fresh || state.loading,
    data: fresh ? state.data : null,
    error: fresh ? state.error : null,
    reload: load,
  };
}
