//! Message templates: a rule's `summary` and a channel's `template`, text with `{name}`
//! placeholders filled in one pass, so a value that itself holds `{detail}` (a group is
//! whatever a client sent) is never expanded again.

/// What a rule's `summary` may name.
pub(crate) const SUMMARY_PLACEHOLDERS: &[&str] =
    &["rule", "value", "threshold", "window", "group", "detail"];

/// What a channel's `template` may name: the alert's fields.
pub(crate) const MESSAGE_PLACEHOLDERS: &[&str] = &[
    "title",
    "event",
    "status",
    "rule",
    "kind",
    "severity",
    "group",
    "value",
    "threshold",
    "summary",
    "detail",
    "description",
    "runbook",
    "dashboard",
    "fired_at",
];

/// `template` with every `{name}` that `value` knows replaced; other braces stay as written.
pub(crate) fn fill(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| {
            let name = &after[..close];
            value(name).map(|v| (v, close))
        }) {
            Some((v, close)) => {
                out.push_str(&v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The first `{name}` in `template` that is not among `known`, for config checks.
pub(crate) fn unknown_placeholder<'a>(template: &'a str, known: &[&str]) -> Option<&'a str> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        let is_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if is_name && !known.contains(&name) {
            return Some(name);
        }
        rest = &after[close + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_once_and_keeps_other_braces() {
        let value = |name: &str| match name {
            "group" => Some("meta.user={detail}".to_owned()),
            "detail" => Some("d".to_owned()),
            _ => None,
        };
        assert_eq!(
            fill("{group}: {detail} {json: 1} {", value),
            "meta.user={detail}: d {json: 1} {"
        );
        assert_eq!(
            unknown_placeholder("{rule} {grup}", &["rule"]),
            Some("grup")
        );
        assert_eq!(unknown_placeholder("{rule} {json: 1}", &["rule"]), None);
    }
}
