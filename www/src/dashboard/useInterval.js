// Polling without overlap, and none while the tab is hidden.
import { useEffect } from "react";

/** Calls `fn` every `ms` (none while `ms` is null); a slow call never overlaps the next.
 * While the tab is hidden (another tab in front, a minimized window) nothing is called; when
 * it is shown again `fn` runs at once and the polling resumes. */
export function useInterval(fn, ms) {
  useEffect(() => {
    if (ms == null) return undefined;
    let stopped = false;
    let timer;
    let parked = false;
    const loop = async () => {
      if (document.hidden) {
        parked = true;
        return;
      }
      await fn();
      if (!stopped) timer = setTimeout(loop, ms);
    };
    const shown = () => {
      if (!document.hidden && parked && !stopped) {
        parked = false;
        loop();
      }
    };
    document.addEventListener("visibilitychange", shown);
    timer = setTimeout(loop, ms);
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", shown);
    };
  }, [fn, ms]);
}
