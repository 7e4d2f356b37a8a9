//! What every record carries besides the error: the anonymized user, tags, named contexts
//! and the breadcrumb trail, each bounded so `meta` stays within the schema's limits.

use faultline_schema::{MAX_META_DEPTH, anonymize_user};

use crate::json;

/// Most tags kept.
pub(crate) const MAX_TAGS: usize = 50;
/// Longest tag key, in bytes.
pub(crate) const MAX_TAG_KEY_BYTES: usize = 32;
/// Longest tag value, in bytes (longer is cut).
pub(crate) const MAX_TAG_VALUE_BYTES: usize = 200;
/// Most named contexts kept.
pub(crate) const MAX_CONTEXTS: usize = 20;
/// Largest context, as JSON.
pub(crate) const MAX_CONTEXT_BYTES: usize = 4_096;
/// Longest breadcrumb message, in bytes (longer is cut).
pub(crate) const MAX_CRUMB_MESSAGE_BYTES: usize = 256;
/// Largest breadcrumb `data`, as JSON (larger is left out).
pub(crate) const MAX_CRUMB_DATA_BYTES: usize = 1_024;

/// `meta.contexts.NAME` sits at depth 3 of `meta`, so a context may nest this deep itself.
const CONTEXT_DEPTH: usize = MAX_META_DEPTH - 2;
/// `meta.breadcrumbs[i].data` sits at depth 4.
const CRUMB_DATA_DEPTH: usize = MAX_META_DEPTH - 3;

/// Why a scope change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `setUser` without a configured salt.
    NoSalt,
    /// Too many entries, or a key that is empty, too long or has control characters.
    Invalid,
    /// JSON that is not an object, too large or too deep.
    BadJson,
}

/// The scope attached to every record.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    /// `meta.user`, already anonymized; the raw id is never kept.
    user: Option<String>,
    tags: Vec<(String, String)>,
    contexts: Vec<(String, String)>,
    crumbs: Vec<String>,
    max_crumbs: usize,
}

impl Scope {
    /// An empty scope keeping at most `max_crumbs` breadcrumbs.
    pub(crate) fn new(max_crumbs: usize) -> Scope {
        Scope {
            max_crumbs,
            ..Scope::default()
        }
    }

    /// Sets or clears the user. The raw id is hashed here and dropped.
    pub(crate) fn set_user(
        &mut self,
        salt: Option<&str>,
        raw_id: Option<&str>,
    ) -> Result<(), Refused> {
        self.user = match raw_id {
            None => None,
            Some(raw) => Some(anonymize_user(salt.ok_or(Refused::NoSalt)?, raw)),
        };
        Ok(())
    }

    /// The anonymized user id.
    pub(crate) fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Sets (or, with `None`, removes) a tag.
    pub(crate) fn set_tag(&mut self, key: &str, value: Option<&str>) -> Result<(), Refused> {
        if key.is_empty() || key.len() > MAX_TAG_KEY_BYTES || key.chars().any(char::is_control) {
            return Err(Refused::Invalid);
        }
        let at = self.tags.iter().position(|(k, _)| k == key);
        match (value, at) {
            (None, Some(i)) => {
                self.tags.remove(i);
            }
            (None, None) => {}
            (Some(v), Some(i)) => self.tags[i].1 = json::clip(v, MAX_TAG_VALUE_BYTES).into(),
            (Some(_), None) if self.tags.len() >= MAX_TAGS => return Err(Refused::Invalid),
            (Some(v), None) => self
                .tags
                .push((key.into(), json::clip(v, MAX_TAG_VALUE_BYTES).into())),
        }
        Ok(())
    }

    /// Sets (or, with `None`, removes) a named context, given as a JSON object.
    pub(crate) fn set_context(&mut self, name: &str, value: Option<&str>) -> Result<(), Refused> {
        if name.is_empty() || name.len() > MAX_TAG_KEY_BYTES || name.chars().any(char::is_control) {
            return Err(Refused::Invalid);
        }
        let at = self.contexts.iter().position(|(k, _)| k == name);
        let Some(v) = value else {
            if let Some(i) = at {
                self.contexts.remove(i);
            }
            return Ok(());
        };
        if !json::is_object(v) || v.len() > MAX_CONTEXT_BYTES || json::depth(v) > CONTEXT_DEPTH {
            return Err(Refused::BadJson);
        }
        match at {
            Some(i) => self.contexts[i].1 = v.trim().into(),
            None if self.contexts.len() >= MAX_CONTEXTS => return Err(Refused::Invalid),
            None => self.contexts.push((name.into(), v.trim().into())),
        }
        Ok(())
    }

    /// Adds a breadcrumb, dropping the oldest past the cap. `data` is a JSON object or empty.
    pub(crate) fn add_crumb(
        &mut self,
        ts_ms: i64,
        category: &str,
        message: &str,
        level: &str,
        data: &str,
    ) {
        if self.max_crumbs == 0 {
            return;
        }
        let mut c = String::with_capacity(64 + message.len() + data.len());
        c.push('{');
        c.push_str("\"ts\":\"");
        json::push_ts(&mut c, ts_ms);
        c.push('"');
        if !category.is_empty() {
            c.push(',');
            json::push_field(&mut c, "category", json::clip(category, 64));
        }
        if !message.is_empty() {
            c.push(',');
            json::push_field(
                &mut c,
                "message",
                json::clip(message, MAX_CRUMB_MESSAGE_BYTES),
            );
        }
        if matches!(level, "debug" | "info" | "warning" | "error" | "fatal") {
            c.push(',');
            json::push_field(&mut c, "level", level);
        }
        if json::is_object(data)
            && data.len() <= MAX_CRUMB_DATA_BYTES
            && json::depth(data) <= CRUMB_DATA_DEPTH
        {
            c.push(',');
            json::push_key(&mut c, "data");
            c.push_str(data.trim());
        }
        c.push('}');
        if self.crumbs.len() >= self.max_crumbs {
            self.crumbs.remove(0);
        }
        self.crumbs.push(c);
    }

    /// Tags as JSON object members (`"k":"v",...`), with `extra` (members of another object)
    /// after them so a capture's own tags win.
    pub(crate) fn tags_json(&self, extra: &str) -> String {
        let mut out = String::new();
        for (k, v) in &self.tags {
            if !out.is_empty() {
                out.push(',');
            }
            json::push_field(&mut out, k, v);
        }
        if !extra.is_empty() {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(extra);
        }
        out
    }

    /// Contexts as JSON object members (`"name":{...},...`).
    pub(crate) fn contexts_json(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.contexts {
            if !out.is_empty() {
                out.push(',');
            }
            json::push_str(&mut out, k);
            out.push(':');
            out.push_str(v);
        }
        out
    }

    /// The breadcrumbs, oldest first, as JSON texts.
    pub(crate) fn crumbs(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.crumbs.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_is_anonymized_and_needs_a_salt() {
        let mut s = Scope::new(0);
        assert_eq!(s.set_user(None, Some("alice")), Err(Refused::NoSalt));
        assert_eq!(s.user(), None);
        s.set_user(Some("pub_salt_1"), Some("user-42")).unwrap();
        assert_eq!(s.user(), Some("u_bb05a1271ec30185"));
        s.set_user(Some("pub_salt_1"), None).unwrap();
        assert_eq!(s.user(), None);
    }

    #[test]
    fn tags_are_bounded_and_removable() {
        let mut s = Scope::new(0);
        s.set_tag("plan", Some("pro")).unwrap();
        s.set_tag("plan", Some("free")).unwrap();
        s.set_tag("long", Some(&"x".repeat(500))).unwrap();
        assert_eq!(s.set_tag("", Some("x")), Err(Refused::Invalid));
        assert_eq!(s.set_tag(&"k".repeat(33), Some("x")), Err(Refused::Invalid));
        let json = s.tags_json(r#""plan":"trial""#);
        assert!(json.starts_with(r#""plan":"free","long":"xxx"#), "{json}");
        assert!(json.ends_with(r#","plan":"trial""#));
        assert_eq!(
            json.len(),
            r#""plan":"free","long":"""#.len() + 200 + r#","plan":"trial""#.len()
        );
        s.set_tag("plan", None).unwrap();
        s.set_tag("long", None).unwrap();
        assert_eq!(s.tags_json(""), "");
        for i in 0..MAX_TAGS {
            s.set_tag(&i.to_string(), Some("v")).unwrap();
        }
        assert_eq!(s.set_tag("one-more", Some("v")), Err(Refused::Invalid));
    }

    #[test]
    fn contexts_must_be_small_shallow_objects() {
        let mut s = Scope::new(0);
        s.set_context("app", Some(r#"{"build":7}"#)).unwrap();
        assert_eq!(s.set_context("bad", Some("[1]")), Err(Refused::BadJson));
        let deep = format!("{}{}", "{\"a\":".repeat(7), "1}}}}}}}");
        assert_eq!(s.set_context("deep", Some(&deep)), Err(Refused::BadJson));
        let ok = format!("{}{}", "{\"a\":".repeat(6), "1}}}}}}");
        s.set_context("ok", Some(&ok)).unwrap();
        assert_eq!(
            s.contexts_json(),
            format!(r#""app":{{"build":7}},"ok":{ok}"#)
        );
        s.set_context("app", None).unwrap();
        assert!(!s.contexts_json().contains("app"));
    }

    #[test]
    fn breadcrumbs_keep_the_newest() {
        let mut s = Scope::new(3);
        let ts = 0;
        for i in 0..5 {
            s.add_crumb(ts, "ui.click", &format!("c{i}"), "info", "");
        }
        let crumbs: Vec<&str> = s.crumbs().collect();
        assert_eq!(crumbs.len(), 3);
        assert_eq!(
            crumbs[0],
            r#"{"ts":"1970-01-01T00:00:00.000Z","category":"ui.click","message":"c2","level":"info"}"#
        );
        s.add_crumb(ts, "fetch", "", "nonsense", r#"{"status":500}"#);
        assert!(
            s.crumbs()
                .last()
                .unwrap()
                .ends_with(r#""category":"fetch","data":{"status":500}}"#)
        );
        // Data that is not a small object is left out, the crumb kept.
        s.add_crumb(ts, "x", "m", "", "[1]");
        assert!(!s.crumbs().last().unwrap().contains("data"));
        let mut none = Scope::new(0);
        none.add_crumb(ts, "x", "m", "", "");
        assert_eq!(none.crumbs().count(), 0);
    }
}
