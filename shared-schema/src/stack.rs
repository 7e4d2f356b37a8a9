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
//!   `at async loc`, `at fn (async loc)`, `at Object.method [as alias] (loc)`,
//!   `at eval (eval at fn (loc), <anonymous>:3:4)`, `at Array.map (<anonymous>)`,
//!   `at fn (native)`, `at Promise.all (index 0)`, wasm frames and Hermes'
//!   `at fn (address at loc)`. The `(` may follow the name directly when the name has no space
//!   (`at X.eval(webpack:///…)`, React Native's `at Object.y(index.android.bundle:93:571)`).
//!   When the last parentheses hold no location, the first ` (` is tried: up to the end of the
//!   line, up to its own `)` (`at fn (a.js:1:2) (…)`), or unclosed (`at fn (a.js:1:2`); a
//!   parenthesis inside them is read too (`at (error: (/chunk.js))`).
//!   If any line parses as a V8 frame the stack is taken to be V8's and only `at` lines count, so
//!   message lines that happen to contain `@` are never read as Firefox frames. Node's
//!   `util.inspect(err)` output (a ` {` after the last frame, then the error's properties) works too.
//! - **Edge (EdgeHTML) / Internet Explorer** — V8's `at` shape with their own names and
//!   locations: `at Anonymous function (loc)`, `at Global code (loc)`, `at eval code (eval code:1:1)`,
//!   `at Array.prototype.map (native code)`.
//! - **Firefox / SpiderMonkey** — one `fn@loc` line per frame, `@loc` when anonymous:
//!   `fn/<@loc`, `async*fn@loc`, `fn@url line 2 > eval:1:5`, `fn@url:wasm-function[12]:0x3f`,
//!   `fn@loader.jsm -> script.js:1:5` (a script loaded by another), `obj["@fn"]@loc` (the name
//!   ends at the first `@` outside square brackets, so `@` in a URL stays in the file) and old
//!   Firefox's `fn(args)@loc`.
//! - **Safari / JavaScriptCore** — the same `fn@loc` shape plus `global code@loc`,
//!   `eval code@loc`, `module code@loc`, `fn@[native code]`, bare `[native code]` lines, a bare
//!   `loc` line for an anonymous function, a bare name (`baz`) for a function inside eval code,
//!   `Name@` for a frame without a location, and `at fn@scheme:(//path:1:2)` as some extension
//!   stacks print `scheme://path`. A Firefox or Safari stack in which no frame has a location
//!   has no frames, so a lone word such as `Error` is not taken for a bare name.
//!
//! A location is a URL or path followed by `:line:column` or `:line`; only those trailing
//! `:<digits>` groups are split off, so ports, Windows drives and the colons inside
//! `webpack:///`, `blob:https://…`, `file:///C:/…`, `data:…`, `node:internal/…`,
//! `extensions::…` or extension URLs (`chrome-extension://`, `moz-extension://`,
//! `safari-web-extension://`, `webkit-masked-url://hidden/`) stay in the file. In parentheses,
//! a path without a position (no white space, a `/` or `\` in it) is a location too.
//!
//! `tests/stacks/` in this crate holds a corpus of real traces (browser SDKs' fixtures, public
//! bug reports, stacks thrown in Chromium and Node) with the frames each must parse to.
//!
//! # Normalization choices
//!
//! - **Function names.** An empty name, `<anonymous>`, IE's `Anonymous function` and `?`
//!   become `None`. V8's `async ` and `new ` prefixes and ` [as alias]` suffix are dropped
//!   (`new Foo` → `Foo`, as Firefox and Safari print it). Firefox writes `cause*name` on the
//!   first frame after an async boundary; the cause is dropped (`async*fn` → `fn`), so
//!   `cause*@…` (`EventHandlerNonNull*@…`, `setTimeout handler*@…`, and hence `fn*@…`) is an
//!   anonymous frame. Firefox's trailing anonymous-function markers are stripped so the frame is
//!   named after its nearest named enclosing function: `fn/<` → `fn`, `fn/</<` → `fn`,
//!   `fn/inner<` → `fn/inner`; old Firefox's argument lists too (`bar(1)` → `bar`, `()` →
//!   `None`). Safari's `global code`, `eval code` and `module code` and Edge's `Global code`
//!   are kept as names.
//! - **eval.** As Sentry does, an eval frame reports where the eval was *called from* in real
//!   source, not the position inside the evaluated string (which no source map can resolve).
//!   V8's `eval at fn (app.js:1:2), <anonymous>:3:4` gives `app.js`, 1, 2 (the innermost
//!   `(…)` when evals nest; a call site without a position gives its file alone; the trailing
//!   position only when no call site is known). Firefox's `app.js line 2 > eval:1:5` (or
//!   `> Function`) gives `app.js`, line 2, no column, and the function defaults to `eval` when
//!   the line has none. Engines that name no call site keep what they print: Edge's
//!   `(eval code:1:18)` gives file `eval code`, a Safari `eval code` line a name alone, and an
//!   eval'd script with a `//# sourceURL=` its URL.
//! - **wasm.** `wasm://wasm/00a1b2c3:wasm-function[12]:0x3f` gives file
//!   `wasm://wasm/00a1b2c3:wasm-function[12]` (module URL plus function index, which is what a
//!   wasm symbolicator needs), no line, and the module byte offset as the column (`0x3f` → 63).
//! - **Native frames.** `native`, `native code`, `[native code]`, `[wasm code]`, `<anonymous>`
//!   and `unknown location` locations are kept as the file, with no line or column, and keep
//!   their place in the stack. V8's `Promise.all (index 0)` names an element index, not a
//!   place, so its file is `None`.
//! - **React component stacks.** A bare `at div` (an identifier and no location) is read as a
//!   function-only frame.
//!
//! Line and column numbers that do not fit a `u32` become `None`; the frame is still kept.

use crate::prelude::*;

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
    /// The module or package the function belongs to, when the client knows it (Sentry SDKs
    /// send it; browsers do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Whether the frame is the application's own code (`false` for libraries and the
    /// runtime); `None` when nobody said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<bool>,
    /// Source lines before [`Frame::context_line`], oldest first (from a source map's
    /// `sourcesContent` after symbolication).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_context: Vec<String>,
    /// The source line of [`Frame::line`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_line: Option<String>,
    /// Source lines after [`Frame::context_line`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_context: Vec<String>,
    /// Where the frame pointed before symbolication (the minified bundle's location). Set
    /// only on frames a source map rewrote; `function`, `file`, `line` and `column` are then
    /// the original source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minified: Option<Box<Location>>,
}

/// A frame's position as the runtime reported it: [`Frame::minified`].
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Location {
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
/// Accepts the Chrome/V8 (and Node), Edge/IE, Firefox and Safari formats described in the
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
///     ..Frame::default()
/// }]);
/// ```
pub fn parse(stack: &str) -> Vec<Frame> {
    let v8 = frames(stack, true);
    if !v8.is_empty() {
        return v8;
    }
    let gecko = frames(stack, false);
    // Bare names (`baz`) and `Name@` are frames only next to located ones, so a lone word such
    // as `Error` is not taken for one: a stack without any location has no frames.
    if gecko.iter().any(|f| f.file.is_some()) {
        gecko
    } else {
        Vec::new()
    }
}

/// The frames [`v8_line`] (or with `v8` false, [`gecko_line`]) finds in the lines of
/// `stack` (split at `\n` and at `\r`). A flag rather than a function pointer: direct calls
/// (the browser's wasm then needs no indirect call into the parsers).
fn frames(stack: &str, v8: bool) -> Vec<Frame> {
    let parse_line = |line: &str| if v8 { v8_line(line) } else { gecko_line(line) };
    let mut frames = Vec::new();
    let mut rest = stack;
    loop {
        let (line, next) = match rest.bytes().position(|b| b == b'\n' || b == b'\r') {
            Some(i) => (rest.get(..i), rest.get(i + 1..)),
            None => (Some(rest), None),
        };
        if let Some(frame) = line.and_then(parse_line) {
            frames.push(frame);
        }
        match next {
            Some(next) => rest = next,
            None => return frames,
        }
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
        ..Frame::default()
    })
}

/// Parses one V8 line: `at fn (loc)`, `at fn(loc)`, `at loc`, or (React component stacks)
/// `at Name`.
fn v8_line(line: &str) -> Option<Frame> {
    let rest = trim_start(trim(line).strip_prefix("at ")?);
    let rest = rest.strip_prefix("async ").unwrap_or(rest);
    // Node's `util.inspect(err)` follows the last frame with ` {` and the error's own properties.
    let rest = rest.strip_suffix(" {").unwrap_or(rest);
    if let Some(f) = scheme_in_parens(rest) {
        return Some(f);
    }
    if let Some((name, loc)) = split_paren(rest)
        && let Some(l) = v8_location(loc).or_else(|| {
            // `at (error: (/chunk.js))`: the location is the innermost parenthesis.
            split_paren(trim(loc)).and_then(|(_, inner)| v8_location(inner))
        })
    {
        return frame(v8_name(name), l);
    }
    // The first `(` after a space, when the last parentheses hold no location: up to the end
    // (`fn (http://x/a).js:1:2)`), up to its first `)` (`fn (a.js:1:2) (x)`), or unclosed.
    if let Some((name, after)) = split_once(rest, " (") {
        let candidates = [
            after.strip_suffix(")"),
            split_once(after, ")").map(|(loc, _)| loc),
            (!has_byte(after, b")")).then_some(after),
        ];
        for loc in candidates.into_iter().flatten() {
            if let Some(l) = location(loc) {
                return frame(v8_name(name), l);
            }
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

/// Reads what V8 puts in a frame's parentheses: a location, possibly after `address at `
/// (Hermes) or `async ` (Chrome), an `eval at …` origin, `index N` (`Promise.all`), or a path
/// without a position.
fn v8_location(loc: &str) -> Option<Loc<'_>> {
    let loc = trim(loc);
    let loc = loc.strip_prefix("address at ").unwrap_or(loc);
    let loc = loc.strip_prefix("async ").unwrap_or(loc);
    if loc.strip_prefix("index ").is_some_and(is_digits) {
        Some(Loc::default())
    } else if loc.starts_with("eval at ") {
        v8_eval(loc)
    } else {
        location(loc).or_else(|| path(loc).then_some(Loc::file(loc)))
    }
}

/// A file without a position: no white space, and a `/` or `\` in it.
fn path(s: &str) -> bool {
    has_byte(s, b"/\\") && !has_space(s)
}

/// `name@scheme:(//path:1:2)`, how some Safari extension stacks print a location: the file is
/// `scheme://path`.
fn scheme_in_parens(s: &str) -> Option<Frame> {
    let (head, tail) = split_once(s.strip_suffix(")")?, ":(//")?;
    let (name, scheme) = rsplit_once(head, "@").map_or((None, head), |(n, s)| (Some(n), s));
    if scheme.is_empty() || has_byte(scheme, b" ()/") {
        return None;
    }
    let mut file = String::with_capacity(scheme.len() + 3 + tail.len());
    file.push_str(scheme);
    file.push_str("://");
    file.push_str(tail);
    frame(name.and_then(name_of), location(&file)?)
}

/// Splits `name (location)` at the `(` matching the final `)`, so parentheses inside the
/// location (`a (1).js`, `eval at f (x.js:1:2)`) are skipped. That `(` may follow the name
/// directly (`at X.eval(webpack:///…)`) when the name has no space; otherwise, when it does
/// not follow a space (unbalanced parentheses in a file name), falls back to the first ` (`.
fn split_paren(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_suffix(")")?;
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
        Some(0) => 0,
        Some(i)
            if bytes.get(i - 1) == Some(&b' ')
                || !body.get(..i).is_some_and(|name| has_byte(name, b" ")) =>
        {
            i
        }
        _ => find(body, " (")? + 1,
    };
    split_at(body, i, 1)
}

/// Normalizes a V8 function name: drops `new ` and ` [as alias]`.
fn v8_name(n: &str) -> Option<&str> {
    let n = trim(n);
    let n = n.strip_prefix("new ").unwrap_or(n);
    let n = match rsplit_once(n, " [as ") {
        Some((head, _alias)) if n.ends_with("]") => head,
        _ => n,
    };
    name_of(n)
}

/// Resolves a V8 eval location `eval at NAME (ORIGIN), POS`, where ORIGIN is either a nested
/// `eval at …` or the real `url:line:col`: returns the innermost real call site (a file
/// without a position when it has none), or POS when there is none.
fn v8_eval(loc: &str) -> Option<Loc<'_>> {
    let mut s = loc;
    let mut depth = 0;
    while let Some(r) = s.strip_prefix("eval at ")
        && let Some((_name, origin)) = split_once(r, " (")
    {
        s = origin;
        depth += 1;
    }
    if depth > 0 {
        let mut site = rsplit_once(s, "), ")
            .or_else(|| rsplit_once(s, ")"))
            .map_or(s, |(site, _pos)| site);
        for _ in 1..depth {
            site = site.strip_suffix(")").unwrap_or(site);
        }
        if let Some(l) = location(site).or_else(|| path(site).then_some(Loc::file(site))) {
            return Some(l);
        }
    }
    location(rsplit_once(loc, ", ")?.1)
}

/// Parses one Firefox or Safari line: `fn@loc`, `@loc`, a bare `loc`, `[native code]`,
/// `global code`, or a bare name.
fn gecko_line(line: &str) -> Option<Frame> {
    let line = trim(line);
    let Some((n, loc)) = gecko_at(line) else {
        return match line {
            "[native code]" => frame(None, Loc::file(line)),
            "global code" | "eval code" | "module code" => frame(Some(line), Loc::default()),
            // Safari and Firefox print an anonymous function's frame as its bare location.
            _ => match location(line) {
                Some(l) if l.line.is_some() && l.file.is_some_and(|f| !has_space(f)) => {
                    frame(None, l)
                }
                // Safari prints functions inside eval code by name alone.
                _ => is_identifier(line)
                    .then(|| frame(Some(line), Loc::default()))
                    .flatten(),
            },
        };
    };
    // No engine puts `: ` in a function name, but messages (`Error: mail a@b.c:1:2`) do.
    if find(n, ": ").is_some() {
        return None;
    }
    let n = gecko_name(n);
    let loc = trim(loc);
    if loc.is_empty() {
        // Safari: `ElementNotFoundError@` (a constructor without a source location).
        return frame(n, Loc::default());
    }
    if let Some((file, rest)) = split_once(loc, " line ")
        && let Some((num, _eval)) = split_once(rest, " > ")
        && is_digits(num)
    {
        let l = Loc {
            file: Some(loaded(file)),
            line: parse_u32(num, 10),
            col: None,
        };
        return frame(n.or(Some("eval")), l);
    }
    let mut l = location(loc)?;
    l.file = l.file.map(loaded);
    frame(n, l)
}

/// Splits a Firefox or Safari line at the `@` that ends the function name: the first one
/// outside square brackets (`obj["@fn"]@url`), so an `@` in the URL stays in the file.
fn gecko_at(line: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    for (i, &b) in line.as_bytes().iter().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'@' if depth == 0 => return split_at(line, i, 1),
            _ => {}
        }
    }
    None
}

/// Firefox names code loaded by another script `loader -> script`; the position is the
/// script's.
fn loaded(file: &str) -> &str {
    rsplit_once(file, " -> ").map_or(file, |(_loader, script)| script)
}

/// Normalizes a Firefox name: drops the async-cause prefix (`async*`, `setTimeout handler*`),
/// trailing anonymous markers (`fn/<` → `fn`) and old Firefox's argument lists (`bar(1)`).
fn gecko_name(n: &str) -> Option<&str> {
    let mut n = split_once(n, "*").map_or(n, |(_cause, f)| f);
    if n.ends_with(")") {
        n = split_once(n, "(").map_or(n, |(head, _args)| head);
    }
    while let Some(shorter) = n.strip_suffix("<").or_else(|| n.strip_suffix("/")) {
        n = shorter;
    }
    name_of(n)
}

/// `None` for empty and anonymous names: `<anonymous>`, IE's `Anonymous function` and `?`.
fn name_of(n: &str) -> Option<&str> {
    let n = trim(n);
    (!matches!(n, "" | "<anonymous>" | "Anonymous function" | "?")).then_some(n)
}

/// Parses a location: a native marker, a wasm location, or `file:line[:col]`.
fn location(s: &str) -> Option<Loc<'_>> {
    let s = trim(s);
    if matches!(
        s,
        "native"
            | "native code"
            | "<anonymous>"
            | "[native code]"
            | "[wasm code]"
            | "unknown location"
    ) {
        return Some(Loc::file(s));
    }
    if let Some(i) = find(s, "wasm-function[") {
        let end = i + find(s.get(i..)?, "]")? + 1;
        let (file, rest) = split_at(s, end, 0)?;
        return Some(Loc {
            file: Some(file),
            line: None,
            col: rest.strip_prefix(":0x").and_then(|hex| parse_u32(hex, 16)),
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

/// Whether `s` holds one of the bytes of `set` (a loop: `contains` would bring in `memchr`).
pub(crate) fn has_byte(s: &str, set: &[u8]) -> bool {
    for &c in s.as_bytes() {
        for &x in set {
            if c == x {
                return true;
            }
        }
    }
    false
}

/// Whether `s` holds a white-space character.
fn has_space(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).any(|i| b.get(i..).is_some_and(|rest| space_len(rest) > 0))
}

/// Splits a trailing `:<digits>` off `s`; the number is `None` when it overflows a `u32`.
fn split_num(s: &str) -> Option<(&str, Option<u32>)> {
    let (rest, digits) = rsplit_once(s, ":")?;
    is_digits(digits).then(|| (rest, parse_u32(digits, 10)))
}

/// A plain JavaScript identifier such as a React component name (`div`, `App`).
fn is_identifier(s: &str) -> bool {
    // ASCII letters, digits, `_` and `$`, and any non-ASCII character but white space, so
    // `at Компонент` is a frame. Deciding which non-ASCII characters are letters would take
    // core's Unicode tables (2 KB gzip of the browser bundle) for lines no engine writes.
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let ascii = c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
        let other = c >= 0x80 && b.get(i..).is_some_and(|rest| space_len(rest) == 0);
        if !(ascii || other) {
            return false;
        }
        i += 1;
    }
    !b.is_empty()
}

/// Non-empty and all ASCII digits (unlike `str::parse`, rejects a leading `+`).
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

// Byte-level string helpers, for bundle size. This module ships in the browser reporter's
// wasm, where `str::find(&str)`, `split_once`, `trim`, `str::parse`, `chars()`, char patterns
// (`strip_suffix(')')`) and panicking `[..]` slicing would pull in core's two-way string
// searcher, UTF-8 decoding and the panic-message formatting with its Unicode tables: several
// KB of gzip. The parser only splits at ASCII bytes, which are always character boundaries in
// UTF-8, so searching bytes and slicing with `get` gives the same results and cannot panic.
// Naive search costs at most the needle's length (a few bytes) per position, so parsing stays
// linear.

/// Byte offset of the first `needle` in `hay`, like `str::find` (naive search).
fn find(hay: &str, needle: &str) -> Option<usize> {
    (0..=hay.len().checked_sub(needle.len())?).find(|&i| occurs_at(hay, needle, i))
}

/// Byte offset of the last `needle` in `hay`, like `str::rfind` (naive search).
fn rfind(hay: &str, needle: &str) -> Option<usize> {
    (0..=hay.len().checked_sub(needle.len())?)
        .rev()
        .find(|&i| occurs_at(hay, needle, i))
}

/// Whether the bytes of `needle` stand at byte offset `i` of `hay`.
fn occurs_at(hay: &str, needle: &str, i: usize) -> bool {
    hay.as_bytes()
        .get(i..)
        .is_some_and(|rest| rest.starts_with(needle.as_bytes()))
}

/// `s` split around the first `sep`, like `str::split_once`.
fn split_once<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    split_at(s, find(s, sep)?, sep.len())
}

/// `s` split around the last `sep`, like `str::rsplit_once`.
fn rsplit_once<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    split_at(s, rfind(s, sep)?, sep.len())
}

/// `s[..i]` and `s[i + gap..]`, or `None` where those are not character boundaries.
fn split_at(s: &str, i: usize, gap: usize) -> Option<(&str, &str)> {
    Some((s.get(..i)?, s.get(i.checked_add(gap)?..)?))
}

/// `s` without leading and trailing white space, like `str::trim`.
fn trim(s: &str) -> &str {
    trim_end(trim_start(s))
}

/// `s` without leading white space, like `str::trim_start`.
fn trim_start(mut s: &str) -> &str {
    loop {
        match space_len(s.as_bytes()) {
            0 => return s,
            n => s = s.get(n..).unwrap_or_default(),
        }
    }
}

/// `s` without trailing white space, like `str::trim_end`.
fn trim_end(mut s: &str) -> &str {
    loop {
        let b = s.as_bytes();
        // The last character starts at the last byte that is not a UTF-8 continuation byte.
        let last = b.iter().rposition(|&c| c & 0xc0 != 0x80).unwrap_or(0);
        match b.get(last..).map(space_len) {
            Some(1..) => s = s.get(..last).unwrap_or_default(),
            _ => return s,
        }
    }
}

/// The UTF-8 length of the white-space character (`char::is_whitespace`: ASCII `\t`–`\r` and
/// space, and Unicode White_Space) that `b` starts with; 0 when it starts with none. Public
/// for the browser reporter, which reads white space as bytes too.
pub fn space_len(b: &[u8]) -> usize {
    match b {
        [b'\t'..=b'\r' | b' ', ..] => 1,
        [0xc2, 0x85 | 0xa0, ..] => 2, // U+0085, U+00A0
        [0xe1, 0x9a, 0x80, ..] // U+1680
        | [0xe2, 0x80, 0x80..=0x8a | 0xa8 | 0xa9 | 0xaf, ..] // U+2000–U+200A, U+2028, U+2029, U+202F
        | [0xe2, 0x81, 0x9f, ..] // U+205F
        | [0xe3, 0x80, 0x80, ..] => 3, // U+3000
        _ => 0,
    }
}

/// `digits` as a `u32` in `radix` (10 or 16), like `u32::from_str_radix` but with no sign:
/// `None` when empty, when a byte is not a digit, or on overflow.
pub(crate) fn parse_u32(digits: &str, radix: u32) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u32, |n, b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        let d = u32::from(d);
        if d >= radix {
            return None;
        }
        n.checked_mul(radix)?.checked_add(d)
    })
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
    fn white_space_is_char_is_whitespace() {
        let mut buf = [0; 4];
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let s: &str = c.encode_utf8(&mut buf);
            let expected = if c.is_whitespace() { s.len() } else { 0 };
            assert_eq!(space_len(s.as_bytes()), expected, "U+{:04X}", u32::from(c));
            assert_eq!(
                trim_end(s).len(),
                s.len() - expected,
                "U+{:04X}",
                u32::from(c)
            );
        }
        for s in [
            "",
            " ",
            "\u{a0} a b\u{3000}\t",
            "\r\n x \u{2028}",
            "é\u{85}",
            "\u{205f}",
            "x\u{1680}\u{a0}\u{80}",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
            assert_eq!(trim_start(s), s.trim_start(), "{s:?}");
            assert_eq!(trim_end(s), s.trim_end(), "{s:?}");
        }
    }

    #[test]
    fn byte_search_matches_str_search() {
        let hays = [
            "",
            "a",
            "at (x) (y)",
            "a), b), c",
            "ééé: é",
            "::",
            "a line 1 > eval",
        ];
        let needles = ["", "a", "(", ") ", "), ", ":", "é", " line ", "zz"];
        for hay in hays {
            for needle in needles {
                assert_eq!(find(hay, needle), hay.find(needle), "{hay:?} {needle:?}");
                assert_eq!(rfind(hay, needle), hay.rfind(needle), "{hay:?} {needle:?}");
                assert_eq!(split_once(hay, needle), hay.split_once(needle));
                assert_eq!(rsplit_once(hay, needle), hay.rsplit_once(needle));
            }
        }
        assert_eq!(split_at("é", 1, 0), None);
        assert_eq!(split_at("ab", 1, 2), None);
    }

    #[test]
    fn parse_u32_matches_from_str_radix() {
        for s in [
            "0",
            "7",
            "007",
            "4294967295",
            "4294967296",
            "99999999999",
            "3f",
            "3F",
            "ffffffff",
            "100000000",
            "",
            "+1",
            "-1",
            "1 ",
            "g",
            "é",
        ] {
            for radix in [10, 16] {
                let std = (!s.starts_with(['+', '-']))
                    .then(|| u32::from_str_radix(s, radix).ok())
                    .flatten();
                assert_eq!(parse_u32(s, radix), std, "{s:?} in base {radix}");
            }
        }
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
        // Right after a name without spaces: `at X.eval(webpack:///…)`, React Native.
        assert_eq!(
            split_paren("X.eval(w.js:1:2)"),
            Some(("X.eval", "w.js:1:2"))
        );
        // After a name with a space, an unspaced `(` is part of a file name.
        assert_eq!(split_paren("fn x(a.js:1:2)"), None);
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
        // A call site without a position still names the file.
        assert_eq!(
            v8_eval("eval at f (webpack:///x.js?), <anonymous>:4:17"),
            loc("webpack:///x.js?", None, None)
        );
        assert_eq!(v8_eval("eval at "), None);
    }

    #[test]
    fn v8_location_reads_what_parentheses_hold() {
        assert_eq!(v8_location("async a.js:1:2"), loc("a.js", Some(1), Some(2)));
        assert_eq!(
            v8_location("address at index.android.bundle:1:5"),
            loc("index.android.bundle", Some(1), Some(5))
        );
        assert_eq!(v8_location("index 3"), Some(Loc::default()));
        assert_eq!(v8_location("native code"), loc("native code", None, None));
        assert_eq!(v8_location("/chunks/a.js"), loc("/chunks/a.js", None, None));
        assert_eq!(v8_location("https://a.io/x from y"), None);
        assert_eq!(v8_location("x"), None);
    }

    #[test]
    fn gecko_at_skips_at_signs_in_brackets() {
        assert_eq!(
            gecko_at("obj[\"@fn\"]@a.js:1:2"),
            Some(("obj[\"@fn\"]", "a.js:1:2"))
        );
        assert_eq!(
            gecko_at("f@http://h/@x/a.js:1:2"),
            Some(("f", "http://h/@x/a.js:1:2"))
        );
        assert_eq!(gecko_at("[[@"), None);
        assert_eq!(gecko_at("]]@x"), Some(("]]", "x")));
    }

    #[test]
    fn scheme_in_parens_rebuilds_the_url() {
        let f = scheme_in_parens("Clip@safari-extension:(//ID/a.js:3:4)").unwrap();
        assert_eq!(f.function.as_deref(), Some("Clip"));
        assert_eq!(f.file.as_deref(), Some("safari-extension://ID/a.js"));
        assert_eq!((f.line, f.column), (Some(3), Some(4)));
        let f = scheme_in_parens("safari-web-extension:(//ID/a.js:3:4)").unwrap();
        assert_eq!(f.function, None);
        assert_eq!(scheme_in_parens("a b:(//x:1:2)"), None);
        assert_eq!(scheme_in_parens(":(//x:1:2)"), None);
    }

    #[test]
    fn loaded_scripts_are_the_last_of_the_chain() {
        assert_eq!(loaded("a.jsm -> b.js"), "b.js");
        assert_eq!(loaded("a -> b -> c.js"), "c.js");
        assert_eq!(loaded("a.js"), "a.js");
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(v8_name("Anonymous function"), None);
        assert_eq!(v8_name("?"), None);
        assert_eq!(v8_name("Global code"), Some("Global code"));
        assert_eq!(gecko_name("bar(1)"), Some("bar"));
        assert_eq!(gecko_name("(null)"), None);
        assert_eq!(gecko_name("()"), None);
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
