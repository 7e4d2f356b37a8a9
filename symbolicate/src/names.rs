//! The rules for release names and map URLs, which the upload API checks and the CLI
//! follows, and how a frame's file finds its map's URL.
//!
//! A map's URL is where its *minified* file is served: absolute
//! (`https://app.example.com/assets/app.js`) or `~/assets/app.js`, where `~` stands for any
//! scheme and host. A frame's file matches an absolute URL exactly, and a `~/` URL when its
//! path (after `scheme://host[:port]`, or the whole file if it is a bare `/path`) is the
//! URL's path. Query strings and fragments are ignored on both sides (`app.js?v=3` is
//! `app.js`). An exact match wins over a `~/` one.

use std::collections::HashMap;

/// The longest release name accepted.
pub const MAX_RELEASE_CHARS: usize = 200;
/// The longest map URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// Checks a release name: 1 to [`MAX_RELEASE_CHARS`] characters, no control characters, no
/// `/` or `\`, and no `..` (names become keys and paths in tools around the server).
pub fn check_release(release: &str) -> Result<(), String> {
    if release.is_empty() || release.chars().count() > MAX_RELEASE_CHARS {
        return Err(format!(
            "release must be 1 to {MAX_RELEASE_CHARS} characters"
        ));
    }
    if release.chars().any(char::is_control) {
        return Err("release must not contain control characters".into());
    }
    if release.contains(['/', '\\']) || release.contains("..") {
        return Err(format!(
            "release {release:?} must not contain '/', '\\' or '..' (use e.g. app@1.4.2)"
        ));
    }
    Ok(())
}

/// Checks a map URL: `~/path` or `scheme://host/path`, at most [`MAX_URL_CHARS`], no
/// control characters or whitespace, and no `.` or `..` path segments.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("url is empty: give where the minified file is served, \
                    e.g. ~/assets/app.js or https://app.example.com/assets/app.js"
            .into());
    }
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!("url is longer than {MAX_URL_CHARS} characters"));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("url must not contain whitespace or control characters".into());
    }
    let Some(path) = url_path(url) else {
        return Err(format!(
            "url {url:?} must start with ~/ (any scheme and host) or scheme://host/"
        ));
    };
    let path = strip_query(path);
    if path.split('/').any(|s| s == ".." || s == ".") {
        return Err(format!("url {url:?} must not contain '.' or '..' segments"));
    }
    if path.len() <= 1 {
        return Err(format!("url {url:?} names no file"));
    }
    Ok(())
}

/// The path of a map URL or a frame's file, from its first `/` after `~` or
/// `scheme://host`; a bare `/path` is its own path. `None` for anything else.
fn url_path(url: &str) -> Option<&str> {
    if let Some(rest) = url.strip_prefix('~') {
        return rest.starts_with('/').then_some(rest);
    }
    if url.starts_with('/') && !url.starts_with("//") {
        return Some(url);
    }
    let after_scheme = match url.find("://") {
        Some(i) if i > 0 => &url[i + 3..],
        _ => url.strip_prefix("//")?,
    };
    after_scheme.find('/').map(|i| &after_scheme[i..])
}

fn strip_query(s: &str) -> &str {
    s.find(['?', '#']).map_or(s, |i| &s[..i])
}

/// A release's map URLs, ready to match frames' files against.
#[derive(Debug, Default)]
pub(crate) struct UrlIndex {
    exact: HashMap<String, usize>,
    any_host: HashMap<String, usize>,
}

impl UrlIndex {
    /// Indexes `urls`; a match gives the URL's position in them.
    pub(crate) fn new<'a>(urls: impl IntoIterator<Item = &'a str>) -> UrlIndex {
        let mut index = UrlIndex::default();
        for (i, url) in urls.into_iter().enumerate() {
            if let Some(path) = url.strip_prefix('~') {
                index.any_host.insert(strip_query(path).to_owned(), i);
            } else {
                index.exact.insert(strip_query(url).to_owned(), i);
            }
        }
        index
    }

    /// The position of the URL `file` matches, if any.
    pub(crate) fn find(&self, file: &str) -> Option<usize> {
        let file = strip_query(file);
        if let Some(&i) = self.exact.get(file) {
            return Some(i);
        }
        url_path(file).and_then(|p| self.any_host.get(p).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_and_urls_are_checked() {
        assert!(check_release("app@1.4.2+build.7").is_ok());
        for bad in ["", "a/b", "..", "1..2", "a\\b", "a\nb"] {
            assert!(check_release(bad).is_err(), "{bad:?}");
        }
        assert!(check_release(&"r".repeat(201)).is_err());
        for good in [
            "~/assets/app.js",
            "https://a.io/x/app.js?v=1",
            "http://localhost:8080/a.js",
        ] {
            assert!(check_url(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "assets/app.js",
            "~assets/app.js",
            "~/assets/../app.js",
            "https://a.io/./app.js",
            "https://a.io",
            "~/",
            "~/a b.js",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn frames_match_exact_urls_first_then_any_host() {
        let index = UrlIndex::new([
            "~/assets/app.js",
            "https://cdn.example.com/assets/app.js",
            "~/assets/vendor.js?v=2",
        ]);
        assert_eq!(index.find("https://cdn.example.com/assets/app.js"), Some(1));
        assert_eq!(index.find("https://app.example.com/assets/app.js"), Some(0));
        assert_eq!(
            index.find("http://localhost:5173/assets/app.js?x=1#f"),
            Some(0)
        );
        assert_eq!(index.find("/assets/app.js"), Some(0));
        assert_eq!(index.find("https://a.io/assets/vendor.js"), Some(2));
        assert_eq!(index.find("https://a.io/other/app.js"), None);
        assert_eq!(index.find("<anonymous>"), None);
        assert_eq!(index.find("app.js"), None);
    }
}
