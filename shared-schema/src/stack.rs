//! JavaScript stack-trace parsing: an `Error.stack` string in, [`Frame`]s out.
//!
//! [`parse`] turns the free-form text that browsers and Node put in `Error.stack` into a list
//! of frames, **innermost frame first** (the frame that threw comes first, the outermost caller
//! last), which is the order every engine prints them in. It is hand-written, with no `regex`,
//! because this crate ships in the browser reporter where every byte of wasm counts. Parsing is
//! total and linear: any input yields a (possibly empty) list, lines that are not frames are
//! skipped, and nothing panics.
//!
//! # Formats
//!
//! - **Chrome / V8 / Node** — the message (which may span several lines) comes first, then one
//!   `    at …` line per frame: `at fn (loc)`, `at loc`, `at new Foo (loc)`, `at async fn (loc)`,
//!   `at Object.method [as alias] (loc)`, `at eval (eval at fn (loc), <anonymous>:3:4)`,
//!   `at Array.map (<anonymous>)`, `at fn (native)`, `at Promise.all (index 0)` and wasm frames.
//!   If any line parses as a V8 frame the stack is taken to be V8's and only `at` lines count, so
//!   message lines that happen to contain `@` are never read as Firefox frames. Node's
//!   `util.inspect(err)` output (a ` {` after the last frame, then the error's properties) works too.
//! - **Firefox / SpiderMonkey** — one `fn@loc` line per frame, `@loc` when anonymous:
//!   `fn/<@loc`, `async*fn@loc`, `fn@url line 2 > eval:1:5`, `fn@url:wasm-function[12]:0x3f`.
//! - **Safari / JavaScriptCore** — the same `fn@loc` shape plus `global code@loc`,
//!   `eval code@loc`, `module code@loc`, `fn@[native code]` and bare `[native code]` lines.
//!
//! A location is a URL or path followed by `:line:column` or `:line`; only those trailing
//! `:<digits>` groups are split off, so ports, Windows drives and the colons inside
//! `webpack:///`, `blob:https://…`, `file:///C:/…`, `data:…` or `node:internal/…` stay in the file.
//!
//! # Normalization choices
//!
//! - **Function names.** An empty name or `<anonymous>` becomes `None`. V8's `async ` and `new `
//!   prefixes and ` [as alias]` suffix are dropped (`new Foo` → `Foo`, as Firefox and Safari
//!   print it). Firefox writes `cause*name` on the first frame after an async boundary; the
//!   cause is dropped (`async*fn` → `fn`), so `cause*@…` (`EventHandlerNonNull*@…`,
//!   `setTimeout handler*@…`, and hence `fn*@…`) is an anonymous frame. Firefox's trailing
//!   anonymous-function markers are stripped so the frame is named after its nearest named
//!   enclosing function: `fn/<` → `fn`, `fn/</<` → `fn`, `fn/inner<` → `fn/inner`.
//!   Safari's `global code`, `eval code` and `module code` are kept as names.
//! - **eval.** As Sentry does, an eval frame reports where the eval was *called from* in real
//!   source, not the position inside the evaluated string (which no source map can resolve).
//!   V8's `eval at fn (app.js:1:2), <anonymous>:3:4` gives `app.js`, 1, 2 (the innermost
//!   `(…)` when evals nest; the trailing position only when no call site is known).
//!   Firefox's `app.js line 2 > eval:1:5` (or `> Function`) gives `app.js`, line 2, no column,
//!   and the function defaults to `eval` when the line has none.
//! - **wasm.** `wasm://wasm/00a1b2c3:wasm-function[12]:0x3f` gives file
//!   `wasm://wasm/00a1b2c3:wasm-function[12]` (module URL plus function index, which is what a
//!   wasm symbolicator needs), no line, and the module byte offset as the column (`0x3f` → 63).
//! - **Native frames.** `native`, `[native code]`, `[wasm code]`, `<anonymous>` and
//!   `unknown location` locations are kept as the file, with no line or column. V8's
//!   `Promise.all (index 0)` names an element index, not a place, so its file is `None`.
//! - **React component stacks.** A bare `at div` (an identifier and no location) is read as a
//!   function-only frame.
//!
//! Line and column numbers that do not fit a `u32` become `None`; the frame is still kept.

/// One frame of a parsed JavaScript stack, innermost first.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Frame {
    /// Function name; `None` for anonymous functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Script URL or path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

/// Parses an `Error.stack` string into frames, innermost first.
///
/// Accepts the Chrome/V8 (and Node), Firefox and Safari formats described in the
/// [module docs](self). Message lines, blank lines and anything else that is not a frame are
/// skipped; the result is empty when no line is a frame. Runs in time linear in `stack.len()`.
///
/// ```
/// use faultline_schema::stack::{parse, Frame};
///
/// let frames = parse("TypeError: x is not a function\n    at render (https://a.io/app.js:10:5)");
/// assert_eq!(frames, vec![Frame {
///     function: Some("render".into()),
///     file: Some("https://a.io/app.js".into()),
///     line: Some(10),
///     column: Some(5),
/// }]);
/// ```
pub fn parse(stack: &str) -> Vec<Frame> {
    let lines = || stack.split(['\n', '\r']);
    let v8: Vec<Frame> = lines().filter_map(v8_line).collect();
    if v8.is_empty() {
        lines().filter_map(gecko_line).collect()
    } else {
        v8
    }
}

/// A frame location borrowed from the input line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Loc<'a> {
    file: Option<&'a str>,
    line: Option<u32>,
    col: Option<u32>,
}

impl<'a> Loc<'a> {
    /// A location with a file and no position.
    fn file(file: &'a str) -> Self {
        Loc {
            file: Some(file),
            ..Loc::default()
        }
    }
}

/// Builds a frame, or `None` when it would carry no information at all (e.g. a lone `@`).
fn frame(function: Option<&str>, loc: Loc<'_>) -> Option<Frame> {
    (function.is_some() || loc.file.is_some()).then(|| Frame {
        function: function.map(str::to_owned),
        file: loc.file.map(str::to_owned),
        line: loc.line,
        column: loc.col,
    })
}

/// Parses one V8 line: `at fn (loc)`, `at loc`, or (React component stacks) `at Name`.
fn v8_line(line: &str) -> Option<Frame> {
    let rest = line.trim().strip_prefix("at ")?.trim_start();
    let rest = rest.strip_prefix("async ").unwrap_or(rest);
    // Node's `util.inspect(err)` follows the last frame with ` {` and the error's own properties.
    let rest = rest.strip_suffix(" {").unwrap_or(rest);
    if let Some((name, loc)) = split_paren(rest) {
        let loc = loc.trim();
        let loc = loc.strip_prefix("address at ").unwrap_or(loc);
        let parsed = if loc.strip_prefix("index ").is_some_and(is_digits) {
            Some(Loc::default())
        } else if loc.starts_with("eval at ") {
            v8_eval(loc)
        } else {
            // A location without line numbers is accepted in parentheses when it looks like a path.
            location(loc).or_else(|| loc.contains(['/', '\\']).then_some(Loc::file(loc)))
        };
        if let Some(f) = parsed.and_then(|l| frame(v8_name(name), l)) {
            return Some(f);
        }
    }
    let bare = if rest.starts_with("eval at ") {
        v8_eval(rest)
    } else {
        location(rest)
    };
    match bare {
        Some(l) => frame(None, l),
        // React component stacks name host components with no location: `at div`.
        None if is_identifier(rest) => frame(Some(rest), Loc::default()),
        None => None,
    }
}

/// Splits `name (location)` at the `(` matching the final `)`, so parentheses inside the
/// location (`a (1).js`, `eval at f (x.js:1:2)`) are skipped. When that `(` does not follow a
/// space (unbalanced parentheses in a file name), falls back to the first ` (`.
fn split_paren(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_suffix(')')?;
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut open = None;
    for (i, &b) in bytes.iter().enumerate().rev() {
        match b {
            b')' => depth += 1,
            b'(' if depth == 0 => {
                open = Some(i);
                break;
            }
            b'(' => depth -= 1,
            _ => {}
        }
    }
    let i = match open {
        Some(i) if i == 0 || bytes[i - 1] == b' ' => i,
        _ => body.find(" (")? + 1,
    };
    Some((&body[..i], &body[i + 1..]))
}

/// Normalizes a V8 function name: drops `new ` and ` [as alias]`.
fn v8_name(n: &str) -> Option<&str> {
    let n = n.trim();
    let n = n.strip_prefix("new ").unwrap_or(n);
    let n = match n.rfind(" [as ") {
        Some(i) if n.ends_with(']') => &n[..i],
        _ => n,
    };
    name(n)
}

/// Resolves a V8 eval location `eval at NAME (ORIGIN), POS`, where ORIGIN is either a nested
/// `eval at …` or the real `url:line:col`: returns the innermost real call site, or POS when
/// there is none.
fn v8_eval(loc: &str) -> Option<Loc<'_>> {
    let mut s = loc;
    let mut depth = 0;
    while let Some(i) = s.strip_prefix("eval at ").and_then(|r| r.find(" (")) {
        s = &s["eval at ".len() + i + 2..];
        depth += 1;
    }
    if depth > 0 {
        let end = s.rfind("), ").or_else(|| s.rfind(')')).unwrap_or(s.len());
        let mut site = &s[..end];
        for _ in 1..depth {
            site = site.strip_suffix(')').unwrap_or(site);
        }
        if let Some(l) = location(site) {
            return Some(l);
        }
    }
    location(loc.rsplit_once(", ")?.1)
}

/// Parses one Firefox or Safari line: `fn@loc`, `@loc`, `[native code]`, `global code`.
fn gecko_line(line: &str) -> Option<Frame> {
    let line = line.trim();
    let (n, loc) = line.split_once('@').unwrap_or((line, ""));
    if loc.trim().is_empty() {
        return match n {
            "[native code]" => frame(None, Loc::file(n)),
            "global code" | "eval code" | "module code" => frame(Some(n), Loc::default()),
            _ => None,
        };
    }
    // No engine puts `: ` in a function name, but messages (`Error: mail a@b.c:1:2`) do.
    if n.contains(": ") {
        return None;
    }
    let n = gecko_name(n);
    if let Some((file, num)) = loc
        .split_once(" line ")
        .and_then(|(f, r)| Some((f, r.split_once(" > ")?.0)))
        && is_digits(num)
    {
        let l = Loc {
            file: Some(file),
            line: num.parse().ok(),
            col: None,
        };
        return frame(n.or(Some("eval")), l);
    }
    frame(n, location(loc)?)
}

/// Normalizes a Firefox name: drops the async-cause prefix (`async*`, `setTimeout handler*`)
/// and trailing anonymous markers (`fn/<` → `fn`).
fn gecko_name(n: &str) -> Option<&str> {
    let n = n.split_once('*').map_or(n, |(_cause, f)| f);
    name(n.trim_end_matches(['<', '/']))
}

/// `None` for empty and `<anonymous>` names.
fn name(n: &str) -> Option<&str> {
    let n = n.trim();
    (!n.is_empty() && n != "<anonymous>").then_some(n)
}

/// Parses a location: a native marker, a wasm location, or `file:line[:col]`.
fn location(s: &str) -> Option<Loc<'_>> {
    let s = s.trim();
    if matches!(
        s,
        "native" | "<anonymous>" | "[native code]" | "[wasm code]" | "unknown location"
    ) {
        return Some(Loc::file(s));
    }
    if let Some(i) = s.find("wasm-function[") {
        let end = i + s[i..].find(']')? + 1;
        let col = s[end..]
            .strip_prefix(":0x")
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        return Some(Loc {
            file: Some(&s[..end]),
            line: None,
            col,
        });
    }
    let (rest, last) = split_num(s)?;
    let (file, line, col) = match split_num(rest) {
        Some((file, line)) => (file, line, last),
        None => (rest, last, None),
    };
    (!file.is_empty()).then_some(Loc {
        file: Some(file),
        line,
        col,
    })
}

/// Splits a trailing `:<digits>` off `s`; the number is `None` when it overflows a `u32`.
fn split_num(s: &str) -> Option<(&str, Option<u32>)> {
    let (rest, digits) = s.rsplit_once(':')?;
    is_digits(digits).then(|| (rest, digits.parse().ok()))
}

/// A plain JavaScript identifier such as a React component name (`div`, `App`).
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// Non-empty and all ASCII digits (unlike `str::parse`, rejects a leading `+`).
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(file: &str, line: Option<u32>, col: Option<u32>) -> Option<Loc<'_>> {
        Some(Loc {
            file: Some(file),
            line,
            col,
        })
    }

    #[test]
    fn location_splits_only_trailing_numbers() {
        assert_eq!(
            location("http://h:8080/a.js:10:20"),
            loc("http://h:8080/a.js", Some(10), Some(20))
        );
        assert_eq!(
            location("http://h:8080/a.js?v=1#x:7"),
            loc("http://h:8080/a.js?v=1#x", Some(7), None)
        );
        assert_eq!(
            location("file:///C:/a b/x.js:3:4"),
            loc("file:///C:/a b/x.js", Some(3), Some(4))
        );
        assert_eq!(location("a.js:99999999999:2"), loc("a.js", None, Some(2)));
        assert_eq!(location("a.js:+1:2"), loc("a.js:+1", Some(2), None));
        assert_eq!(location("http://h:8080/a.js"), None);
        assert_eq!(location(":1:2"), None);
        assert_eq!(location(""), None);
        assert_eq!(location(" native "), loc("native", None, None));
    }

    #[test]
    fn location_reads_wasm_offset_as_column() {
        let file = "wasm://wasm/00a1b2c3:wasm-function[12]";
        assert_eq!(
            location("wasm://wasm/00a1b2c3:wasm-function[12]:0x3f"),
            loc(file, None, Some(63))
        );
        assert_eq!(
            location("wasm://wasm/00a1b2c3:wasm-function[12]"),
            loc(file, None, None)
        );
        assert_eq!(
            location("x:wasm-function[1]:0xfffffffff"),
            loc("x:wasm-function[1]", None, None)
        );
        assert_eq!(location("x:wasm-function[1"), None);
    }

    #[test]
    fn split_paren_finds_the_location_paren() {
        assert_eq!(split_paren("fn (a.js:1:2)"), Some(("fn ", "a.js:1:2")));
        assert_eq!(
            split_paren("fn (http://x/a (1).js:1:2)"),
            Some(("fn ", "http://x/a (1).js:1:2"))
        );
        assert_eq!(
            split_paren("fn (http://x/a(.js:1:2)"),
            Some(("fn ", "http://x/a(.js:1:2"))
        );
        assert_eq!(
            split_paren("fn (http://x/a).js:1:2)"),
            Some(("fn ", "http://x/a).js:1:2"))
        );
        assert_eq!(split_paren("(a.js:1:2)"), Some(("", "a.js:1:2")));
        assert_eq!(split_paren("a.js:1:2"), None);
        assert_eq!(split_paren(")"), None);
    }

    #[test]
    fn v8_eval_uses_the_call_site() {
        assert_eq!(
            v8_eval("eval at f (a.js:1:2), <anonymous>:3:4"),
            loc("a.js", Some(1), Some(2))
        );
        assert_eq!(
            v8_eval("eval at f (eval at g (a.js:5:6)), <anonymous>:3:4"),
            loc("a.js", Some(5), Some(6))
        );
        assert_eq!(
            v8_eval("eval at f (unknown source), x.js:3:4"),
            loc("x.js", Some(3), Some(4))
        );
        assert_eq!(v8_eval("eval at "), None);
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(v8_name("new Foo"), Some("Foo"));
        assert_eq!(v8_name("Object.method [as alias]"), Some("Object.method"));
        assert_eq!(v8_name("<anonymous>"), None);
        assert_eq!(v8_name(" "), None);
        assert_eq!(gecko_name("fn/<"), Some("fn"));
        assert_eq!(gecko_name("fn/</<"), Some("fn"));
        assert_eq!(gecko_name("fn/inner<"), Some("fn/inner"));
        assert_eq!(gecko_name("async*fn"), Some("fn"));
        assert_eq!(gecko_name("async*"), None);
        assert_eq!(gecko_name("setTimeout handler*"), None);
        assert_eq!(gecko_name("EventHandlerNonNull*"), None);
        assert_eq!(gecko_name("promise callback*getData/<"), Some("getData"));
        assert_eq!(gecko_name("</<"), None);
    }
}
