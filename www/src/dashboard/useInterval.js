// Polling without overlap.
import { useEffect } from "react";

/** Calls `fn` every `ms` (none while `ms` is null); a slow call never overlaps the next. */
export function useInterval(fn, ms) {
  useEffect(() => {
    if (ms == null) return undefined;
    let stopped = false;
    let timer;
    const loop = async () => {
      await fn();
      if (!stopped) timer = setTimeout(loop, ms);
    };
    timer = setTimeout(loop, ms);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [fn, ms]);
}
