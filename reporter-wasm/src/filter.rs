//! Noise control before a record is built: the default ignore list, the page's
//! `ignoreErrors` and `denyUrls`, and the URL a record is attributed to.

use faultline_schema::Frame;

/// One entry of `ignoreErrors` or `denyUrls`: a string matches as a substring, a `RegExp`
/// through its own `test`.
#[derive(Debug)]
pub(crate) enum Pattern {
    /// Matches when the text contains it.
    Text(String),
    /// A page `RegExp` (only in the browser).
    Regex(js_sys::RegExp),
}

impl Pattern {
    fn matches(&self, text: &str) -> bool {
        match self {
            Pattern::Text(t) => text.contains(t.as_str()),
            Pattern::Regex(r) => r.test(text),
        }
    }
}

/// Messages every browser produces that carry nothing to act on.
const NOISE: [&str; 2] = [
    // Chrome, Firefox and Safari, when a `ResizeObserver` callback resizes what it observes.
    "ResizeObserver loop limit exceeded",
    "ResizeObserver loop completed with undelivered notifications",
];

/// URL schemes of browser extensions: errors from their scripts are not the page's.
const EXTENSION_SCHEMES: [&str; 5] = [
    "chrome-extension://",
    "moz-extension://",
    "safari-extension://",
    "safari-web-extension://",
    "ms-browser-extension://",
];

/// Whether `url` belongs to a browser extension.
pub(crate) fn is_extension_url(url: &str) -> bool {
    EXTENSION_SCHEMES.iter().any(|s| url.starts_with(s))
}

/// The URL an error is attributed to: the innermost frame with a real location (native and
/// anonymous frames skipped), else the event's file.
pub(crate) fn culprit_url<'a>(frames: &'a [Frame], fallback: &'a str) -> &'a str {
    frames
        .iter()
        .filter_map(|f| f.file.as_deref())
        .find(|f| f.contains("://") || f.starts_with('/'))
        .unwrap_or(fallback)
}

/// Why a capture was filtered out, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filtered {
    /// The built-in list: `Script error.` without details, ResizeObserver loops, extensions.
    Default,
    /// `ignoreErrors`.
    IgnoreErrors,
    /// `denyUrls`.
    DenyUrls,
}

/// The page's patterns.
#[derive(Debug, Default)]
pub(crate) struct Filters {
    /// Tested against the message and against `"Type: message"`.
    pub(crate) ignore_errors: Vec<Pattern>,
    /// Tested against the culprit URL.
    pub(crate) deny_urls: Vec<Pattern>,
}

impl Filters {
    /// `Some(reason)` when the error should be dropped.
    pub(crate) fn check(
        &self,
        error_type: &str,
        message: &str,
        frames: &[Frame],
        url: &str,
    ) -> Option<Filtered> {
        let bare = message.trim();
        // A cross-origin script without `crossorigin` gives only this, and no stack or file.
        let opaque =
            matches!(bare, "Script error." | "Script error") && frames.is_empty() && url.is_empty();
        if opaque || NOISE.iter().any(|n| bare.contains(n)) || is_extension_url(url) {
            return Some(Filtered::Default);
        }
        if !self.ignore_errors.is_empty() {
            let mut typed = String::new();
            if !error_type.is_empty() {
                typed.push_str(error_type);
                typed.push_str(": ");
                typed.push_str(message);
            }
            if self
                .ignore_errors
                .iter()
                .any(|p| p.matches(message) || (!typed.is_empty() && p.matches(&typed)))
            {
                return Some(Filtered::IgnoreErrors);
            }
        }
        if !url.is_empty() && self.deny_urls.iter().any(|p| p.matches(url)) {
            return Some(Filtered::DenyUrls);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(file: &str) -> Frame {
        Frame {
            function: None,
            file: Some(file.into()),
            line: Some(1),
            column: Some(1),
        }
    }

    #[test]
    fn default_list() {
        let f = Filters::default();
        assert_eq!(
            f.check("", "Script error.", &[], ""),
            Some(Filtered::Default)
        );
        // With any detail it is kept: it might be the page's own.
        assert_eq!(f.check("", "Script error.", &[], "https://a.io/x.js"), None);
        assert_eq!(
            f.check(
                "Error",
                "ResizeObserver loop completed with undelivered notifications.",
                &[],
                ""
            ),
            Some(Filtered::Default)
        );
        assert_eq!(
            f.check("TypeError", "x", &[], "chrome-extension://abc/content.js"),
            Some(Filtered::Default)
        );
        assert_eq!(f.check("TypeError", "x is undefined", &[], ""), None);
    }

    #[test]
    fn page_patterns() {
        let f = Filters {
            ignore_errors: vec![Pattern::Text("TypeError: Failed to fetch".into())],
            deny_urls: vec![Pattern::Text("cdn.ads.example".into())],
        };
        assert_eq!(
            f.check("TypeError", "Failed to fetch", &[], ""),
            Some(Filtered::IgnoreErrors)
        );
        assert_eq!(f.check("Error", "Failed to fetch", &[], ""), None);
        assert_eq!(
            f.check("Error", "x", &[], "https://cdn.ads.example/a.js"),
            Some(Filtered::DenyUrls)
        );
    }

    #[test]
    fn culprit_is_the_innermost_real_location() {
        let frames = [
            frame("native"),
            frame("https://a.io/app.js"),
            frame("/b.js"),
        ];
        assert_eq!(culprit_url(&frames, "x"), "https://a.io/app.js");
        assert_eq!(culprit_url(&[frame("<anonymous>")], "fallback"), "fallback");
    }
}
