//! `meta.stack`: a JavaScript `Error.stack` as the schema's frames, written as JSON.

use alloc::string::String;
use faultline_schema::stack;

use crate::json;

/// Frames kept per stack, innermost first (the page's `Error.stackTraceLimit` is raised to
/// this, so nothing is cut in practice).
pub const MAX_FRAMES: usize = 50;
/// Longest frame file kept, in bytes (`data:` URLs can be huge).
const MAX_FILE_BYTES: usize = 2_048;
/// Longest function name kept, in bytes.
const MAX_FUNCTION_BYTES: usize = 256;
/// The whole array's budget, in bytes: `meta` as a whole may hold 16 KiB, and the record's
/// breadcrumbs and context need room too. Outer frames past it are dropped.
pub const MAX_STACK_BYTES: usize = 12 * 1024;

/// Parses `stack` with [`faultline_schema::stack::parse`] and writes the frames as a JSON
/// array, innermost first, at most [`MAX_FRAMES`]. With no stack, or one that yields no
/// frame, the position the browser gave with the event (`file`, `line`, `column`; 0 for
/// unknown) makes the one frame. Empty when there is nothing at all.
pub(crate) fn frames_json(stack: &str, file: &str, line: u32, column: u32) -> String {
    // An empty stack parses to no frames.
    let frames = stack::parse(stack);
    let mut out = String::with_capacity(frames.len().min(MAX_FRAMES) * 96 + 2);
    out.push('[');
    if frames.is_empty() {
        if file.is_empty() {
            return String::new();
        }
        let known = |n: u32| (n > 0).then_some(n);
        push_frame(&mut out, None, Some(file), known(line), known(column));
    }
    // Each frame is written to `frame` first: `String::truncate` would bring its assertion's
    // panic path into the wasm.
    let mut frame = String::new();
    for (i, f) in frames.iter().take(MAX_FRAMES).enumerate() {
        frame.clear();
        if i > 0 {
            frame.push(',');
        }
        push_frame(
            &mut frame,
            f.function.as_deref(),
            f.file.as_deref(),
            f.line,
            f.column,
        );
        if out.len() + frame.len() + 1 > MAX_STACK_BYTES && i > 0 {
            break;
        }
        out.push_str(&frame);
    }
    out.push(']');
    out
}

/// Appends one frame's JSON object, its fields clipped (a frame built by the reporter itself
/// is written the same way, without building a [`stack::Frame`]).
fn push_frame(
    out: &mut String,
    function: Option<&str>,
    file: Option<&str>,
    line: Option<u32>,
    column: Option<u32>,
) {
    let mut sep = "{";
    let mut field = |out: &mut String, key: &str| {
        out.push_str(sep);
        json::push_key(out, key);
        sep = ",";
    };
    if let Some(function) = function {
        field(out, "function");
        json::push_str(out, json::clip(function, MAX_FUNCTION_BYTES));
    }
    if let Some(file) = file {
        field(out, "file");
        json::push_str(out, json::clip(file, MAX_FILE_BYTES));
    }
    if let Some(n) = line {
        field(out, "line");
        json::push_u64(out, u64::from(n));
    }
    if let Some(n) = column {
        field(out, "column");
        json::push_u64(out, u64::from(n));
    }
    if sep == "{" {
        out.push('{');
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::{Record, Value};

    /// Parses `frames_json` output the way the server will, as `meta.stack`.
    fn checked(json: &str) -> Vec<Value> {
        let record = format!(
            r#"{{"ts":"2026-07-01T12:34:56.789Z","service":"ui","level":"ERROR","event":"e","message":"m","meta":{{"stack":{json}}}}}"#
        );
        let r = Record::from_json(record.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{json}"));
        r.meta["stack"].as_array().unwrap().clone()
    }

    #[test]
    fn chrome_stacks_become_schema_frames() {
        let stack = "TypeError: x is not a function\n    at render (https://a.io/app.js:10:5)\n    at https://a.io/vendor.js:1:2\n    at new Foo (https://a.io/\"q\".js:3:4)";
        let frames = checked(&frames_json(stack, "", 0, 0));
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0]["function"], "render");
        assert_eq!(frames[0]["file"], "https://a.io/app.js");
        assert_eq!(frames[0]["line"], 10);
        assert_eq!(frames[0]["column"], 5);
        assert!(frames[1].get("function").is_none());
        assert_eq!(frames[2]["function"], "Foo");
        assert_eq!(frames[2]["file"], "https://a.io/\"q\".js");
    }

    #[test]
    fn firefox_and_safari_stacks_parse_too() {
        let firefox = "render@https://a.io/app.js:10:5\n@https://a.io/vendor.js:1:2\n";
        assert_eq!(checked(&frames_json(firefox, "", 0, 0)).len(), 2);
        let safari =
            "render@https://a.io/app.js:10:5\nglobal code@https://a.io/app.js:20:1\n[native code]";
        let frames = checked(&frames_json(safari, "", 0, 0));
        assert_eq!(frames[1]["function"], "global code");
        assert_eq!(frames[2]["file"], "[native code]");
    }

    #[test]
    fn without_a_stack_the_event_position_is_the_frame() {
        let frames = checked(&frames_json("", "https://a.io/x.js", 3, 0));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0]["file"], "https://a.io/x.js");
        assert_eq!(frames[0]["line"], 3);
        assert!(frames[0].get("column").is_none());
        // A stack with no frame in it falls back the same way.
        assert_eq!(checked(&frames_json("just text", "f.js", 1, 1)).len(), 1);
        assert_eq!(frames_json("just text", "", 0, 0), "");
        assert_eq!(frames_json("", "", 0, 0), "");
    }

    #[test]
    fn long_stacks_and_names_are_capped() {
        let stack: String = (0..80)
            .map(|i| format!("    at f{i} (https://a.io/{}.js:1:1)\n", "p".repeat(3_000)))
            .collect();
        let json = frames_json(&stack, "", 0, 0);
        assert!(json.len() <= MAX_STACK_BYTES, "{}", json.len());
        let frames = checked(&json);
        assert!(
            frames.len() >= 5 && frames.len() < MAX_FRAMES,
            "{}",
            frames.len()
        );
        assert_eq!(frames[0]["function"], "f0");
        assert_eq!(frames[0]["file"].as_str().unwrap().len(), MAX_FILE_BYTES);
        // Short frames: the frame count is the limit.
        let stack: String = (0..80)
            .map(|i| format!("    at f{i} (https://a.io/app.js:{i}:1)\n"))
            .collect();
        assert_eq!(checked(&frames_json(&stack, "", 0, 0)).len(), MAX_FRAMES);
    }

    #[test]
    fn react_component_stacks_parse_as_frames() {
        let component = "\n    at Thrower (https://a.io/app.js:5:9)\n    at div\n    at ErrorBoundary (https://a.io/r.js:1:1)";
        let frames = checked(&frames_json(component, "", 0, 0));
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1], serde_like(r#"{"function":"div"}"#));
    }

    fn serde_like(object: &str) -> Value {
        checked(&format!("[{object}]")).remove(0)
    }
}
