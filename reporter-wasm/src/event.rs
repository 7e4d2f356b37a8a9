//! From what the page saw to a record: parsed frames, the message and `meta`, within the
//! schema's limits.
//!
//! A record is kept as two JSON fragments around the place `meta.count` goes, so folding a
//! repeat into a queued record is an integer increment, not a re-serialization:
//! `head` = `"service":…,"level":…,"event":…,"message":…,"meta":{` and `tail` = the other
//! `meta` members then `}}`. The queue adds `{"id":…,"ts":…,` in front when it sends.

use faultline_schema::stack::{self, Frame};
use faultline_schema::{Level, MAX_META_BYTES, MAX_META_DEPTH, truncate_message};

use crate::config::Config;
use crate::json;
use crate::scope::Scope;

/// Frames kept per stack (the page's `Error.stackTraceLimit` is raised to this).
pub(crate) const MAX_FRAMES: usize = 50;
/// Longest `meta.url` and frame file, in bytes.
const MAX_URL_BYTES: usize = 2_048;
/// Longest raw stack kept in `meta.stack_text` when no frame could be parsed.
const MAX_STACK_TEXT_BYTES: usize = 4_096;
/// Room left in `meta` for `"count":N,`.
const COUNT_RESERVE: usize = 24;

/// One error or message, as the page reported it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Capture<'a> {
    /// The record's `event` (`window.onerror`, `unhandledrejection`, `exception`, ...).
    pub(crate) event: &'a str,
    /// The record's level.
    pub(crate) level: Option<Level>,
    /// `Error.name` (`TypeError`), or `NonError` for a thrown non-Error value.
    pub(crate) error_type: &'a str,
    /// `Error.message` or the message text.
    pub(crate) message: &'a str,
    /// `Error.stack`, empty when there is none.
    pub(crate) stack: &'a str,
    /// The script URL the browser gave with the event, when there is no stack.
    pub(crate) file: &'a str,
    /// Its line (0: unknown).
    pub(crate) line: u32,
    /// Its column (0: unknown).
    pub(crate) column: u32,
    /// `location.href` when it happened.
    pub(crate) page_url: &'a str,
    /// `meta.extra`: a JSON object from the page, or empty.
    pub(crate) extra: &'a str,
    /// Tags of this capture only: JSON object members (`"k":"v"`), or empty.
    pub(crate) tags: &'a str,
    /// A React component stack, or empty.
    pub(crate) component_stack: &'a str,
    /// When it happened (ms since the epoch), if not now: errors queued before the module
    /// loaded keep their own time.
    pub(crate) ts: Option<f64>,
    /// Whether it was queued by the early snippet before the module loaded.
    pub(crate) early: bool,
}

/// Parses the stack into frames, innermost first, at most [`MAX_FRAMES`]; with no stack,
/// the event's own file and position make the one frame.
pub(crate) fn frames(c: &Capture<'_>) -> Vec<Frame> {
    let mut frames = if c.stack.is_empty() {
        Vec::new()
    } else {
        stack::parse(c.stack)
    };
    frames.truncate(MAX_FRAMES);
    if frames.is_empty() && !c.file.is_empty() {
        frames.push(Frame {
            function: None,
            file: Some(c.file.into()),
            line: (c.line > 0).then_some(c.line),
            column: (c.column > 0).then_some(c.column),
        });
    }
    frames
}

/// A 64-bit fingerprint of what makes two errors "the same": event, type, message and the
/// five innermost frames (FNV-1a).
pub(crate) fn fingerprint(c: &Capture<'_>, frames: &[Frame]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(c.event.as_bytes());
    eat(c.error_type.as_bytes());
    eat(c.message.as_bytes());
    for f in frames.iter().take(5) {
        eat(f.function.as_deref().unwrap_or("").as_bytes());
        eat(f.file.as_deref().unwrap_or("").as_bytes());
        eat(&f.line.unwrap_or(0).to_le_bytes());
        eat(&f.column.unwrap_or(0).to_le_bytes());
    }
    h
}

/// A level name from the page: the schema's names and aliases, and `log` (the console's)
/// as `INFO`.
pub(crate) fn parse_level(name: &str) -> Option<Level> {
    const ALIASES: [(&str, Level); 5] = [
        ("trace", Level::Debug),
        ("log", Level::Info),
        ("warn", Level::Warning),
        ("err", Level::Error),
        ("fatal", Level::Critical),
    ];
    let canonical = Level::ALL.into_iter().map(|l| (l.as_str(), l));
    canonical
        .chain(ALIASES)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, l)| l)
}

/// The schema's `event` rule: 1 to `MAX_EVENT_CHARS` characters, no control characters.
/// (The schema's own check builds error messages the reporter does not need.)
pub(crate) fn valid_event(event: &str) -> bool {
    !event.is_empty()
        && event.chars().count() <= faultline_schema::MAX_EVENT_CHARS
        && !event.chars().any(char::is_control)
}

/// The `head` fragment: everything before `meta`'s members.
pub(crate) fn head(service: &str, level: Level, event: &str, message: &str) -> String {
    let mut msg = if message.is_empty() {
        String::from("(no message)")
    } else {
        message.replace('\0', "\u{FFFD}")
    };
    truncate_message(&mut msg);
    let mut h = String::with_capacity(64 + event.len() + msg.len());
    json::push_field(&mut h, "service", service);
    h.push(',');
    json::push_field(&mut h, "level", level.as_str());
    h.push(',');
    json::push_field(&mut h, "event", event);
    h.push(',');
    json::push_field(&mut h, "message", &msg);
    h.push_str(",\"meta\":{");
    h
}

/// How much of the optional `meta` parts to keep; lowered until `meta` fits.
#[derive(Debug, Clone, Copy)]
struct Keep {
    crumbs: usize,
    frames: usize,
    component_frames: usize,
    extra: bool,
    contexts: bool,
    tags: bool,
}

/// The `tail` fragment: `meta`'s members and the closing braces, at most
/// [`MAX_META_BYTES`] including room for `count`.
pub(crate) fn tail(c: &Capture<'_>, frames: &[Frame], cfg: &Config, scope: &Scope) -> String {
    let mut fixed = String::with_capacity(256);
    let member = |out: &mut String, key: &str, value: &str| {
        if !out.is_empty() {
            out.push(',');
        }
        json::push_field(out, key, value);
    };
    if !c.page_url.is_empty() {
        member(&mut fixed, "url", json::clip(c.page_url, MAX_URL_BYTES));
    }
    if !cfg.user_agent.is_empty() {
        member(&mut fixed, "user_agent", &cfg.user_agent);
    }
    if let Some(u) = scope.user() {
        member(&mut fixed, "user", u);
    }
    if let Some(r) = &cfg.release {
        member(&mut fixed, "release", r);
    }
    if let Some(e) = &cfg.environment {
        member(&mut fixed, "environment", e);
    }
    if !c.error_type.is_empty() {
        member(&mut fixed, "error_type", json::clip(c.error_type, 128));
    }
    if frames.is_empty() && !c.stack.trim().is_empty() {
        member(
            &mut fixed,
            "stack_text",
            json::clip(c.stack, MAX_STACK_TEXT_BYTES),
        );
    }
    if c.early {
        if !fixed.is_empty() {
            fixed.push(',');
        }
        fixed.push_str("\"early\":true");
    }

    let component: Vec<Frame> = if c.component_stack.is_empty() {
        Vec::new()
    } else {
        let mut f = stack::parse(c.component_stack);
        f.truncate(MAX_FRAMES);
        f
    };
    let tags = scope.tags_json(c.tags);
    let contexts = scope.contexts_json();
    // `meta.extra` is depth 2 of `meta`: the object may nest MAX_META_DEPTH - 1 deep itself.
    let extra = (json::is_object(c.extra) && json::depth(c.extra) < MAX_META_DEPTH)
        .then(|| c.extra.trim())
        .filter(|e| *e != "{}");

    let mut keep = Keep {
        crumbs: scope.crumbs().len(),
        frames: frames.len(),
        component_frames: component.len(),
        extra: extra.is_some(),
        contexts: !contexts.is_empty(),
        tags: !tags.is_empty(),
    };
    loop {
        let out = assemble(
            &fixed, frames, &component, &tags, &contexts, extra, scope, keep,
        );
        // `{` + members + `}` must fit with `"count":N,` added.
        if out.len() + 1 + COUNT_RESERVE <= MAX_META_BYTES || !shrink(&mut keep) {
            return out;
        }
    }
}

/// Gives up the least useful part first; `false` when nothing is left to give.
fn shrink(k: &mut Keep) -> bool {
    if k.crumbs > 0 {
        k.crumbs /= 2;
    } else if k.extra {
        k.extra = false;
    } else if k.contexts {
        k.contexts = false;
    } else if k.component_frames > 0 {
        k.component_frames /= 2;
    } else if k.frames > 1 {
        k.frames /= 2;
    } else if k.tags {
        k.tags = false;
    } else {
        return false;
    }
    true
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    fixed: &str,
    frames: &[Frame],
    component: &[Frame],
    tags: &str,
    contexts: &str,
    extra: Option<&str>,
    scope: &Scope,
    keep: Keep,
) -> String {
    let mut out = String::with_capacity(fixed.len() + 128 * (keep.frames + keep.crumbs) + 256);
    out.push_str(fixed);
    let open = |out: &mut String, key: &str| {
        if !out.is_empty() {
            out.push(',');
        }
        json::push_key(out, key);
    };
    if keep.frames > 0 {
        open(&mut out, "stack");
        push_frames(&mut out, &frames[..keep.frames]);
    }
    if keep.component_frames > 0 {
        open(&mut out, "component_stack");
        push_frames(&mut out, &component[..keep.component_frames]);
    }
    if keep.tags {
        open(&mut out, "tags");
        out.push('{');
        out.push_str(tags);
        out.push('}');
    }
    if keep.contexts {
        open(&mut out, "contexts");
        out.push('{');
        out.push_str(contexts);
        out.push('}');
    }
    if let (true, Some(e)) = (keep.extra, extra) {
        open(&mut out, "extra");
        out.push_str(e);
    }
    if keep.crumbs > 0 {
        open(&mut out, "breadcrumbs");
        out.push('[');
        let skip = scope.crumbs().len() - keep.crumbs;
        for (i, c) in scope.crumbs().skip(skip).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(c);
        }
        out.push(']');
    }
    out.push_str("}}");
    out
}

/// Appends frames as the schema's `Frame` objects.
fn push_frames(out: &mut String, frames: &[Frame]) {
    out.push('[');
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !first {
                out.push(',');
            }
            first = false;
        };
        if let Some(func) = &f.function {
            sep(out);
            json::push_field(out, "function", json::clip(func, 256));
        }
        if let Some(file) = &f.file {
            sep(out);
            json::push_field(out, "file", json::clip(file, MAX_URL_BYTES));
        }
        if let Some(line) = f.line {
            sep(out);
            json::push_key(out, "line");
            json::push_u64(out, u64::from(line));
        }
        if let Some(col) = f.column {
            sep(out);
            json::push_key(out, "column");
            json::push_u64(out, u64::from(col));
        }
        out.push('}');
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::Opts;
    use faultline_schema::{Record, Timestamp, Value};

    const CHROME: &str = "TypeError: x is not a function\n    at render (https://a.io/app.js:10:5)\n    at https://a.io/vendor.js:1:2";

    fn cfg() -> Config {
        let o = Opts::minimal()
            .with("release", crate::config::OptValue::Str("1.2.3".into()))
            .with("environment", crate::config::OptValue::Str("prod".into()));
        Config::from_options(&o, "Mozilla/5.0 Test").unwrap()
    }

    /// The full record, checked by the schema exactly as the server will.
    fn record(c: &Capture<'_>, scope: &Scope) -> Record {
        let frames = frames(c);
        let h = head("ui", c.level.unwrap_or(Level::Error), c.event, c.message);
        let t = tail(c, &frames, &cfg(), scope);
        let json = format!(
            r#"{{"id":"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b","ts":"{}",{h}{t}"#,
            Timestamp::from_unix_millis(1_782_909_296_789)
        );
        Record::from_json(json.as_bytes()).unwrap_or_else(|e| {
            panic!(
                "{e}
{json}"
            )
        })
    }

    fn capture() -> Capture<'static> {
        Capture {
            event: "window.onerror",
            error_type: "TypeError",
            message: "x is not a function",
            stack: CHROME,
            page_url: "https://a.io/page?q=1",
            ..Capture::default()
        }
    }

    #[test]
    fn a_thrown_error_becomes_a_valid_record_with_frames() {
        let mut scope = Scope::new(10);
        scope.set_user(Some("salt"), Some("alice")).unwrap();
        scope.set_tag("plan", Some("pro")).unwrap();
        scope.set_context("app", Some(r#"{"build":7}"#)).unwrap();
        scope.add_crumb(0, "ui.click", "button#buy", "", "");
        let c = Capture {
            extra: r#"{"order":42}"#,
            tags: r#""route":"/cart""#,
            ..capture()
        };
        let r = record(&c, &scope);
        assert_eq!(r.level, Level::Error);
        assert_eq!(r.event, "window.onerror");
        assert_eq!(r.message, "x is not a function");
        let m = &r.meta;
        assert_eq!(m["url"], "https://a.io/page?q=1");
        assert_eq!(m["user_agent"], "Mozilla/5.0 Test");
        assert_eq!(m["user"], faultline_schema::anonymize_user("salt", "alice"));
        assert_eq!(m["release"], "1.2.3");
        assert_eq!(m["environment"], "prod");
        assert_eq!(m["error_type"], "TypeError");
        assert_eq!(
            m["stack"],
            serde_json_like(
                r#"[{"function":"render","file":"https://a.io/app.js","line":10,"column":5},{"file":"https://a.io/vendor.js","line":1,"column":2}]"#
            )
        );
        assert_eq!(m["tags"]["plan"], "pro");
        assert_eq!(m["tags"]["route"], "/cart");
        assert_eq!(m["contexts"]["app"]["build"], 7);
        assert_eq!(m["extra"]["order"], 42);
        assert_eq!(m["breadcrumbs"][0]["message"], "button#buy");
        assert!(!r.to_json().contains("alice"));
    }

    fn serde_json_like(s: &str) -> Value {
        Record::from_json(
            format!(r#"{{"ts":"2026-01-01T00:00:00Z","service":"a","level":"INFO","event":"e","message":"m","meta":{{"v":{s}}}}}"#)
                .as_bytes(),
        )
        .unwrap()
        .meta["v"]
            .clone()
    }

    #[test]
    fn no_stack_uses_the_event_position_and_unparsable_stacks_are_kept_as_text() {
        let c = Capture {
            stack: "",
            file: "https://a.io/x.js",
            line: 3,
            column: 0,
            ..capture()
        };
        let r = record(&c, &Scope::new(0));
        assert_eq!(r.meta["stack"][0]["file"], "https://a.io/x.js");
        assert_eq!(r.meta["stack"][0]["line"], 3);
        assert!(r.meta["stack"][0].get("column").is_none());

        let c = Capture {
            stack: "something odd",
            ..capture()
        };
        let r = record(&c, &Scope::new(0));
        assert!(r.meta.get("stack").is_none());
        assert_eq!(r.meta["stack_text"], "something odd");
    }

    #[test]
    fn meta_is_cut_to_fit_the_limit() {
        let mut scope = Scope::new(100);
        for _ in 0..100 {
            scope.add_crumb(0, "console", &"m".repeat(256), "info", "");
        }
        let long: String = (0..60)
            .map(|i| format!("    at f{i} (https://a.io/{}.js:1:1)\n", "p".repeat(100)))
            .collect();
        let extra = format!(r#"{{"blob":"{}"}}"#, "e".repeat(3000));
        let c = Capture {
            stack: &long,
            extra: &extra,
            ..capture()
        };
        let frames = frames(&c);
        assert_eq!(frames.len(), MAX_FRAMES);
        let t = tail(&c, &frames, &cfg(), &scope);
        assert!(t.len() + 1 + COUNT_RESERVE <= MAX_META_BYTES, "{}", t.len());
        let r = record(&c, &scope);
        // The stack and extra are kept whole; the oldest breadcrumbs gave way.
        assert_eq!(r.meta["stack"].as_array().unwrap().len(), MAX_FRAMES);
        assert!(r.meta.get("extra").is_some());
        let crumbs = r.meta["breadcrumbs"].as_array().unwrap();
        assert!(crumbs.len() < 100 && !crumbs.is_empty(), "{}", crumbs.len());

        // Frames too large for `meta` on their own are cut, innermost kept.
        let huge: String = (0..60)
            .map(|i| format!("    at f{i} (https://a.io/{}.js:1:1)\n", "p".repeat(1_000)))
            .collect();
        let c = Capture {
            stack: &huge,
            ..capture()
        };
        let r = record(&c, &scope);
        let stack = r.meta["stack"].as_array().unwrap();
        assert!(stack.len() < MAX_FRAMES && !stack.is_empty());
        assert_eq!(stack[0]["function"], "f0");
        assert!(r.meta.get("breadcrumbs").is_none());
    }

    #[test]
    fn messages_are_truncated_and_never_empty() {
        let long = "é".repeat(10_000);
        let c = Capture {
            message: &long,
            ..capture()
        };
        let r = record(&c, &Scope::new(0));
        assert!(r.message.len() <= faultline_schema::MAX_MESSAGE_BYTES);
        assert!(r.message.ends_with(faultline_schema::TRUNCATION_MARKER));
        let c = Capture {
            message: "",
            ..capture()
        };
        assert_eq!(record(&c, &Scope::new(0)).message, "(no message)");
    }

    #[test]
    fn fingerprints_separate_what_differs() {
        let a = capture();
        let fa = fingerprint(&a, &frames(&a));
        assert_eq!(fa, fingerprint(&a, &frames(&a)));
        let b = Capture {
            message: "y is not a function",
            ..capture()
        };
        assert_ne!(fa, fingerprint(&b, &frames(&b)));
        let other_site = CHROME.replace("10:5", "11:5");
        let c = Capture {
            stack: &other_site,
            ..capture()
        };
        assert_ne!(fa, fingerprint(&c, &frames(&c)));
    }

    #[test]
    fn levels_and_events_follow_the_schema() {
        for name in [
            "debug", "TRACE", "info", "log", "Warning", "warn", "error", "err", "fatal", "CRITICAL",
        ] {
            assert_eq!(
                parse_level(name),
                Level::parse(name).or(Some(Level::Info)),
                "{name}"
            );
        }
        assert_eq!(parse_level("loud"), None);
        for e in [
            "window.onerror",
            "",
            "a\nb",
            &"x".repeat(128),
            &"x".repeat(129),
            "é",
        ] {
            assert_eq!(
                valid_event(e),
                faultline_schema::check_event(e).is_ok(),
                "{e:?}"
            );
        }
    }

    #[test]
    fn react_component_stacks_are_parsed() {
        let c = Capture {
            component_stack: "\n    at Thrower (https://a.io/app.js:5:9)\n    at div\n    at ErrorBoundary (https://a.io/r.js:1:1)",
            ..capture()
        };
        let r = record(&c, &Scope::new(0));
        let cs = r.meta["component_stack"].as_array().unwrap();
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[0]["function"], "Thrower");
        assert_eq!(cs[1]["function"], "div");
    }
}
