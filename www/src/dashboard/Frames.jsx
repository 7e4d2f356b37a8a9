// A record's stack frames, innermost first, as the dashboard shows them wherever a stack
// appears (the record detail, an issue). A frame a source map rewrote reads as the original
// code: function, file:line:col and, when the map carried `sourcesContent`, a few lines of
// source with the frame's line highlighted (open for the first of the app's frames, folded
// under the others). The "minified" toggle shows where those frames pointed in the served
// bundle instead (`frame.minified`). Frames come from `meta.stack`, which is free-form
// JSON: anything that is not a frame object renders as text.
import { useId, useState } from "react";
import { frameText } from "./format.js";

/** The frame as the runtime reported it, when a source map rewrote it. */
function minifiedOf(f) {
  return f && typeof f === "object" && f.minified && typeof f.minified === "object" ? f.minified : null;
}

/** An array of strings from a context field (anything else: none). */
function lines(v) {
  return Array.isArray(v) ? v.map((l) => (typeof l === "string" ? l : JSON.stringify(l))) : [];
}

/** The source lines around a frame, numbered from its `line`, the frame's own one marked. */
function Context({ frame }) {
  if (typeof frame.context_line !== "string") return null;
  const pre = lines(frame.pre_context);
  const post = lines(frame.post_context);
  const at = Number.isInteger(frame.line) && frame.line > 0 ? frame.line : null;
  const rows = [
    ...pre.map((text, i) => ({ text, n: at && at - pre.length + i, current: false })),
    { text: frame.context_line, n: at, current: true },
    ...post.map((text, i) => ({ text, n: at && at + 1 + i, current: false })),
  ];
  return (
    <pre className="frame-context">
      {rows.map((r, i) => (
        <div key={i} className={r.current ? "ctx-line current" : "ctx-line"}>
          <span className="ctx-n">{r.n > 0 ? r.n : ""}</span>
          <span className="ctx-text">{r.text}</span>
        </div>
      ))}
    </pre>
  );
}

/**
 * `frames`: `meta.stack` (an array; anything else shows as no frames). `id`: the list's
 * element id, for tests and links. `empty`: what to say when there are no frames.
 */
export function Frames({ frames, id, empty = "No parsed frames." }) {
  const [minified, setMinified] = useState(false);
  const toggleId = useId();
  const list = Array.isArray(frames) ? frames : [];
  if (list.length === 0) return <p className="muted">{empty}</p>;
  const mapped = list.some((f) => minifiedOf(f));
  // Source context opens for the first of the app's own frames that has some; the others'
  // fold under their location (a click opens them).
  const opened = list.findIndex((f) => f && typeof f === "object" && typeof f.context_line === "string" && f.in_app !== false);
  return (
    <div className="frames-view">
      {mapped && (
        <label className="frames-toggle small" htmlFor={toggleId}>
          <input
            id={toggleId}
            type="checkbox"
            className="minified-toggle"
            checked={minified}
            onChange={(e) => setMinified(e.target.checked)}
          />{" "}
          minified
        </label>
      )}
      <ol id={id} className={"frames" + (minified ? " showing-minified" : "")}>
        {list.map((f, i) => {
          const isObject = f && typeof f === "object" && !Array.isArray(f);
          const m = minifiedOf(f);
          const shown = minified && m ? m : f;
          const classes = [i === 0 ? "top" : "", m ? "mapped" : "", isObject && f.in_app === false ? "library" : ""];
          const where = <code className="frame-where">{isObject ? frameText(shown) : JSON.stringify(f)}</code>;
          const context = isObject && !(minified && m) && typeof f.context_line === "string";
          return (
            <li key={i} className={classes.filter(Boolean).join(" ")}>
              {context ? (
                <details open={i === opened}>
                  <summary>{where}</summary>
                  <Context frame={f} />
                </details>
              ) : (
                where
              )}
            </li>
          );
        })}
      </ol>
    </div>
  );
}
