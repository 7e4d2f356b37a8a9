//! The record, built here from what the page caught and the scope, and fitted within the
//! schema's limits: the page writes the record's own fields as JSON (its text scrubbed), the
//! module adds the scope (tags, extra, contexts, breadcrumbs, the anonymized user) and the
//! stack's frames to `meta`, and fits it.
//!
//! [`Scope::record`] is the one place a record is fitted, for a record built here and for
//! one a `beforeSend` hook changed: `event` and `message` by the schema's rules, and `meta`
//! within its size and nesting depth by dropping, in this order, the breadcrumbs, the outer
//! half of the stack (again while it is too large), `extra`, `contexts`, `tags`,
//! `component_stack`, the stack, then whatever else is left, last key first.

use alloc::string::String;
use alloc::vec::Vec;

use crate::{fit, frames, json};

/// The named values' keys in `meta`, by [`Scope::set`]'s number.
const NAMED_KEYS: [&str; 3] = ["tags", "extra", "contexts"];
/// [`Scope::set`]: the user (`value`: the raw id, anonymized at once; empty clears it).
pub(crate) const USER: u8 = 3;
/// [`Scope::set`]: a breadcrumb (`value`: its JSON object).
pub(crate) const CRUMB: u8 = 4;
/// [`Scope::set`]: saves the user and named values (`withScope`).
pub(crate) const SAVE: u8 = 5;
/// [`Scope::set`]: restores them (breadcrumbs stay).
pub(crate) const RESTORE: u8 = 6;
/// [`Scope::set`]: starts afresh (`name`: the salt for user ids; `n`: breadcrumbs kept).
pub(crate) const INIT: u8 = 7;

/// What `withScope` saves and restores: the user and the named values, each kind as the
/// members of its JSON object (`"name":value,...`: one `String` each is less wasm than a
/// list of pairs).
#[derive(Clone, Default)]
struct Values {
    user: String,
    named: [String; 3],
}

/// The page's scope.
#[derive(Default)]
pub(crate) struct Scope {
    now: Values,
    saved: Vec<Values>,
    /// Breadcrumbs, a JSON array of objects, oldest first (empty: none yet).
    crumbs: String,
    max_crumbs: usize,
    salt: String,
}

impl Scope {
    /// Changes the scope: `what` 0, 1, 2 sets a tag, extra value or context `name` to
    /// `value`, JSON text, or removes it (`value` empty); [`USER`], [`CRUMB`], [`SAVE`],
    /// [`RESTORE`], [`INIT`] say theirs. Returns the user's anonymized id (`""`: none).
    pub(crate) fn set(&mut self, what: u8, name: &str, value: &str, n: u32) -> &str {
        match what {
            USER => {
                // Only the anonymized id is kept; none without a salt.
                self.now.user = if value.is_empty() || self.salt.is_empty() {
                    String::new()
                } else {
                    faultline_schema::anonymize_user(&self.salt, value)
                };
            }
            CRUMB => {
                if self.max_crumbs > 0 {
                    let kept = items(&self.crumbs, b'[');
                    let mut next = String::from("[");
                    for c in kept.iter().skip(usize::from(kept.len() >= self.max_crumbs)) {
                        next.push_str(c);
                        next.push(',');
                    }
                    next.push_str(value);
                    next.push(']');
                    self.crumbs = next;
                }
            }
            SAVE => self.saved.push(self.now.clone()),
            RESTORE => {
                if let Some(v) = self.saved.pop() {
                    self.now = v;
                }
            }
            INIT => {
                *self = Scope {
                    salt: name.into(),
                    max_crumbs: n as usize,
                    ..Scope::default()
                };
            }
            _ => {
                if let Some(named) = self.now.named.get_mut(usize::from(what)) {
                    let name = quoted(name);
                    let object = String::from("{") + named + "}";
                    let mut next = String::new();
                    for m in items(&object, b'{') {
                        if key(m) != name {
                            next.push_str(m);
                            next.push(',');
                        }
                    }
                    if value.is_empty() {
                        next.pop();
                    } else {
                        next = next + &name + ":" + value;
                    }
                    *named = next;
                }
            }
        }
        &self.now.user
    }

    /// A record's JSON: `fields`, the page's JSON object of it (`event` and `message` in
    /// it are ignored: they come fitted from the arguments), with `scoped`, the scope and
    /// the frames of `stack` (or `file`, `line`, `column`) added to its `meta`, fitted to
    /// the schema's limits.
    #[expect(clippy::too_many_arguments, reason = "the export's flat arguments")]
    pub(crate) fn record(
        &self,
        scoped: bool,
        event: &str,
        message: &str,
        fields: &str,
        stack: &str,
        file: &str,
        line: u32,
        column: u32,
    ) -> String {
        let mut out = String::from("{");
        let mut meta = Vec::new();
        for m in items(fields, b'{') {
            let k = key(m);
            if k == "\"meta\"" {
                meta = items(m.get(k.len() + 1..).unwrap_or_default(), b'{')
                    .into_iter()
                    .map(String::from)
                    .collect();
            } else if k != "\"event\"" && k != "\"message\"" {
                out.push_str(m);
                out.push(',');
            }
        }
        if scoped {
            for (key, named) in NAMED_KEYS.iter().zip(&self.now.named) {
                if !named.is_empty() {
                    meta.push(member(key, &(String::from("{") + named + "}")));
                }
            }
            if !self.crumbs.is_empty() {
                meta.push(member("breadcrumbs", &self.crumbs));
            }
            let frames = frames::frames_json(stack, file, line, column);
            if !frames.is_empty() {
                meta.push(member("stack", &frames));
            }
            if !self.now.user.is_empty() {
                meta.push(member("user", &quoted(&self.now.user)));
            }
        }
        fit_meta(&mut meta);
        json::push_key(&mut out, "event");
        json::push_str(&mut out, &fit::event(event, "captureMessage"));
        out.push(',');
        json::push_key(&mut out, "message");
        json::push_str(&mut out, &fit::message(message));
        out.push(',');
        json::push_key(&mut out, "meta");
        out.push_str(&joined(&meta));
        out.push('}');
        out
    }
}

/// `"key":json`, a member of `meta`.
fn member(key: &str, json: &str) -> String {
    let mut m = String::new();
    json::push_key(&mut m, key);
    m.push_str(json);
    m
}

/// `s` as a JSON string.
fn quoted(s: &str) -> String {
    let mut q = String::new();
    json::push_str(&mut q, s);
    q
}

/// Drops members of `meta` until it is within the schema's limits.
fn fit_meta(members: &mut Vec<String>) {
    if over(members) == 0 {
        return;
    }
    remove(members, "breadcrumbs");
    while over(members) == fit::TOO_LARGE {
        let Some(m) = members.iter_mut().find(|m| key(m) == "\"stack\"") else {
            break;
        };
        // The outer half of the frames goes: the text up to the end of the last one kept.
        let k = key(m).len() + 1;
        let frames = items(m.get(k..).unwrap_or_default(), b'[');
        let Some(last) = (frames.len() / 2)
            .checked_sub(1)
            .and_then(|i| frames.get(i))
        else {
            break;
        };
        let end = last.as_ptr() as usize - m.as_ptr() as usize + last.len();
        *m = String::from(m.get(..end).unwrap_or_default()) + "]";
    }
    for k in ["extra", "contexts", "tags", "component_stack", "stack"] {
        if over(members) == 0 {
            return;
        }
        remove(members, k);
    }
    while over(members) != 0 && members.pop().is_some() {}
}

/// [`fit::meta_over`] of the members as an object.
fn over(members: &[String]) -> u8 {
    fit::meta_over(&joined(members))
}

/// `items` as a JSON object.
fn joined(items: &[String]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push('}');
    out
}

/// Removes the member named `name` (and any repeat of it).
fn remove(members: &mut Vec<String>, name: &str) {
    let name = quoted(name);
    members.retain(|m| key(m) != name);
}

/// The quoted key of an object member (`"key":value`).
fn key(member: &str) -> &str {
    member
        .get(..value_end(member.as_bytes(), 0))
        .unwrap_or_default()
}

/// The members of a JSON object (`open` `{`: each `"key":value`) or the items of an array
/// (`[`), as text; none when `json` is not one.
fn items(json: &str, open: u8) -> Vec<&str> {
    let b = json.as_bytes();
    let mut out = Vec::new();
    if b.first() != Some(&open) {
        return out;
    }
    let mut i = 1;
    loop {
        let start = i;
        let mut end = value_end(b, i);
        if open == b'{' && b.get(end) == Some(&b':') {
            end = value_end(b, end + 1);
        }
        if end > start {
            out.push(json.get(start..end).unwrap_or_default());
        }
        if b.get(end) != Some(&b',') {
            return out;
        }
        i = end + 1;
    }
}

/// Where the compact JSON value starting at `i` ends: past a string, array or object, at
/// the `,` `:` `]` or `}` after a number or literal.
fn value_end(b: &[u8], mut i: usize) -> usize {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    while let Some(&c) = b.get(i) {
        i += 1;
        if in_string {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    in_string = false;
                    if depth == 0 {
                        return i;
                    }
                }
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return i - 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            b',' | b':' if depth == 0 => return i - 1,
            _ => {}
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::{MAX_META_BYTES, Record};

    const TAGS: u8 = 0;
    const EXTRA: u8 = 1;
    const CONTEXTS: u8 = 2;
    const ID: &str = "0b7f6c1e-9a4f-4c1e-8d2b-3f6a1c9e7d20";

    fn scope() -> Scope {
        let mut s = Scope::default();
        s.set(INIT, "salt", "", 3);
        s
    }

    /// The page's fields of a record, as `JSON.stringify` writes them.
    fn fields(meta: &str) -> String {
        format!(
            r#"{{"id":"{ID}","ts":"2026-12-07T10:00:00.000Z","service":"ui","level":"ERROR","event":"ignored","meta":{meta}}}"#
        )
    }

    fn build(s: &Scope, message: &str, stack: &str) -> String {
        let f = fields(r#"{"url":"https://app.example/orders","error_type":"TypeError"}"#);
        s.record(true, "window.onerror", message, &f, stack, "", 0, 0)
    }

    /// The record as the server takes it, and its meta.
    fn parsed(json: &str) -> (Record, serde_json::Value) {
        let r = Record::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}: {json}"));
        let meta = serde_json::to_value(&r.meta).unwrap_or_default();
        (r, meta)
    }

    const STACK: &str =
        "TypeError: x\n    at render (https://a.io/app.js:10:5)\n    at https://a.io/b.js:1:2";

    #[test]
    fn a_record_carries_the_scope() {
        let mut s = scope();
        s.set(TAGS, "team", "\"web\"", 0);
        s.set(EXTRA, "cart", r#"{"items":2}"#, 0);
        s.set(CONTEXTS, "os", r#"{"name":"linux"}"#, 0);
        let user = String::from(s.set(USER, "", "user-42", 0));
        assert_eq!(user, faultline_schema::anonymize_user("salt", "user-42"));
        s.set(
            CRUMB,
            "",
            r#"{"category":"ui.click","message":"button#save"}"#,
            0,
        );
        let json = build(&s, "boom", STACK);
        let (rec, meta) = parsed(&json);
        assert_eq!(
            (
                rec.service.as_str(),
                rec.event.as_str(),
                rec.message.as_str()
            ),
            ("ui", "window.onerror", "boom")
        );
        assert_eq!(rec.id.map(|i| i.to_string()).as_deref(), Some(ID));
        assert_eq!(meta["tags"], serde_json::json!({"team": "web"}));
        assert_eq!(meta["extra"]["cart"]["items"], 2);
        assert_eq!(meta["contexts"]["os"]["name"], "linux");
        assert_eq!(meta["user"], user.as_str());
        assert_eq!(meta["url"], "https://app.example/orders");
        assert_eq!(meta["error_type"], "TypeError");
        assert_eq!(meta["breadcrumbs"][0]["message"], "button#save");
        assert_eq!(meta["stack"][0]["function"], "render");
        assert_eq!(meta["stack"].as_array().map(Vec::len), Some(2));
        assert!(!json.contains("user-42"));
    }

    #[test]
    fn with_scope_restores_and_names_are_replaced_or_removed() {
        let mut s = scope();
        s.set(TAGS, "a", "\"1\"", 0);
        s.set(SAVE, "", "", 0);
        s.set(TAGS, "a", "\"2\"", 0);
        s.set(TAGS, "b", "\"3\"", 0);
        s.set(USER, "", "bob", 0);
        assert!(
            build(&s, "m", "").contains(r#""tags":{"b":"3","a":"2"}"#)
                || build(&s, "m", "").contains(r#""tags":{"a":"2","b":"3"}"#)
        );
        assert_eq!(s.set(RESTORE, "", "", 0), "");
        assert!(build(&s, "m", "").contains(r#""tags":{"a":"1"}"#));
        s.set(TAGS, "a", "", 0);
        assert!(!build(&s, "m", "").contains("tags"));
        // No salt: no user at all, never the raw id.
        s.set(INIT, "", "", 3);
        assert_eq!(s.set(USER, "", "bob", 0), "");
    }

    #[test]
    fn breadcrumbs_are_capped() {
        let mut s = scope();
        for i in 0..5 {
            s.set(CRUMB, "", &format!(r#"{{"message":"m{i}"}}"#), 0);
        }
        let (_, meta) = parsed(&build(&s, "m", ""));
        let crumbs = meta["breadcrumbs"].as_array().cloned().unwrap_or_default();
        assert_eq!(crumbs.len(), 3);
        assert_eq!(crumbs[0]["message"], "m2");
        s.set(INIT, "salt", "", 0);
        s.set(CRUMB, "", r#"{"message":"m"}"#, 0);
        assert!(!build(&s, "m", "").contains("breadcrumbs"));
    }

    #[test]
    fn records_are_fitted_to_what_the_server_takes() {
        let frames: String = (0..50)
            .map(|i| format!("    at f{i} (https://a.io/{}.js:{i}:1)\n", "x".repeat(200)))
            .collect();
        let mut deep = String::from("1");
        for _ in 0..10 {
            deep = format!(r#"{{"d":{deep}}}"#);
        }
        let mut s = scope();
        s.set(EXTRA, "deep", &deep, 0);
        s.set(TAGS, "big", &format!("\"{}\"", "t".repeat(3_000)), 0);
        s.set(CRUMB, "", &format!(r#"{{"data":{deep}}}"#), 0);
        let json = s.record(
            true,
            "custom\nevent\u{0}",
            &"😀".repeat(5_000),
            &fields("{}"),
            &frames,
            "",
            0,
            0,
        );
        let (rec, meta) = parsed(&json);
        assert_eq!(rec.event, "custom event ");
        assert!(rec.message.ends_with(faultline_schema::TRUNCATION_MARKER));
        assert!(meta.get("breadcrumbs").is_none() && meta.get("extra").is_none());
        assert!(
            meta["stack"].as_array().is_some_and(|f| !f.is_empty()),
            "{json}"
        );
        // Too large: the stack halves, then named values go.
        let mut s = scope();
        s.set(
            EXTRA,
            "big",
            &format!("\"{}\"", "x".repeat(MAX_META_BYTES)),
            0,
        );
        let (_, meta) = parsed(&build(&s, "big", STACK));
        assert!(meta.get("extra").is_none() && meta["stack"].is_array());
    }

    #[test]
    fn a_changed_record_is_fitted_without_the_scope_again() {
        let mut s = scope();
        s.set(TAGS, "a", "\"1\"", 0);
        let over = format!(
            r#"{{"url":"u","added":"{}","more":[[[[[[[[[1]]]]]]]]]}}"#,
            "x".repeat(20_000)
        );
        let (rec, meta) =
            parsed(&s.record(false, "", &"m".repeat(9_000), &fields(&over), "", "", 0, 0));
        assert_eq!(meta, serde_json::json!({"url": "u"}));
        assert_eq!(rec.event, "captureMessage");
        assert!(rec.message.len() <= faultline_schema::MAX_MESSAGE_BYTES);
        for meta in ["null", "[1]", "{}"] {
            let (rec, _) = parsed(&s.record(false, "e", "m", &fields(meta), "", "", 0, 0));
            assert!(rec.meta.is_empty(), "{meta}");
        }
    }

    /// A small deterministic generator for [`any_record_is_one_the_server_takes`].
    struct Rng(u64);

    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }

        fn text(&mut self) -> String {
            const PIECES: [&str; 12] = [
                "a",
                "\"",
                "\\",
                "\n",
                "\u{0}",
                "\u{1f}",
                "é",
                "😀",
                "\u{2028}",
                "?token=x&a=1",
                "https://u:p@a.io/",
                " ",
            ];
            let len = [0, 1, 5, 40, 3_000][self.next(5) as usize];
            (0..len).map(|_| PIECES[self.next(12) as usize]).collect()
        }

        fn value(&mut self, depth: u32) -> serde_json::Value {
            match self.next(if depth == 0 { 3 } else { 6 }) {
                0 => serde_json::Value::from(self.text()),
                1 => serde_json::Value::from(self.next(1 << 40) as f64 / 7.0),
                2 => serde_json::Value::Null,
                3 | 4 => (0..self.next(4)).map(|_| self.value(depth - 1)).collect(),
                _ => (0..self.next(4))
                    .map(|_| (self.text(), self.value(depth - 1)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            }
        }
    }

    /// Whatever the page hands over (any JSON `JSON.stringify` writes, any text, any scope),
    /// the record is one the server's parser takes, within the schema's limits.
    #[test]
    fn any_record_is_one_the_server_takes() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..400 {
            let mut s = scope();
            for _ in 0..rng.next(8) {
                let what = rng.next(5) as u8;
                let value = serde_json::to_string(&rng.value(10)).unwrap_or_default();
                let value = if what == CRUMB {
                    format!(r#"{{"message":{value}}}"#)
                } else {
                    value
                };
                s.set(what, &rng.text(), &value, 0);
            }
            let mut meta = serde_json::Map::new();
            for _ in 0..rng.next(6) {
                meta.insert(rng.text(), rng.value(10));
            }
            let meta = serde_json::to_string(&meta).unwrap_or_default();
            let stack = if rng.next(2) == 0 {
                STACK.to_owned()
            } else {
                rng.text()
            };
            let json = s.record(
                rng.next(2) == 0,
                &rng.text(),
                &rng.text(),
                &fields(&meta),
                &stack,
                &rng.text(),
                3,
                4,
            );
            let rec = Record::from_json(json.as_bytes())
                .unwrap_or_else(|e| panic!("round {round}: {e}: {}", &json[..json.len().min(600)]));
            let meta = serde_json::to_string(&rec.meta).unwrap_or_default();
            assert!(
                meta.len() <= crate::META_BUDGET,
                "round {round}: {} bytes",
                meta.len()
            );
        }
    }

    #[test]
    fn members_and_items_split_compact_json() {
        let j = r#"{"a":"x,\"}:","b":[1,{"c":[2]}],"d":null,"e":-1.5e3}"#;
        assert_eq!(
            items(j, b'{'),
            [
                r#""a":"x,\"}:""#,
                r#""b":[1,{"c":[2]}]"#,
                r#""d":null"#,
                r#""e":-1.5e3"#
            ]
        );
        assert_eq!(
            items(r#"[{"a":1},2,"3"]"#, b'['),
            [r#"{"a":1}"#, "2", r#""3""#]
        );
        assert!(items("[]", b'[').is_empty() && items("{}", b'{').is_empty());
        assert_eq!(key(r#""b\"c":1"#), r#""b\"c""#);
    }
}
