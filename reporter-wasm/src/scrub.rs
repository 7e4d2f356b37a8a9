//! URL scrubbing in the page with the schema's own rule ([`faultline_schema::UrlScrubber`]):
//! the text a record carries (the page URL, navigations, request URLs, console lines,
//! messages) leaves the page with credentials and secret parameters' values taken out, by
//! the same code the server applies to every record it takes in.

use alloc::borrow::{Cow, ToOwned};
use alloc::string::String;

use faultline_schema::UrlScrubber;

/// Sets the extra secret parameter names (the `denyUrlParams` strings), one per line.
pub(crate) fn configure(lines: &[u8]) {
    let scrubber = UrlScrubber::from_lines(lines);
    crate::local::with(|state| {
        if let Ok(mut s) = state.scrubber.try_borrow_mut() {
            *s = scrubber;
        }
    });
}

/// `text` scrubbed with the configured names. JSON text stays valid JSON: a parameter's
/// value ends at `"` and `\`, and the replacement holds neither.
pub(crate) fn scrub(text: &str) -> String {
    crate::local::with(|state| match state.scrubber.try_borrow() {
        Ok(s) => match s.scrub(text) {
            Cow::Borrowed(_) => None,
            Cow::Owned(o) => Some(o),
        },
        Err(_) => None,
    })
    .flatten()
    .unwrap_or_else(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_and_json_stays_json() {
        configure(b"");
        assert_eq!(
            scrub(r#"{"url":"https://u:p@a.io/?access_token=x&page=2#id_token=y"}"#),
            r#"{"url":"https://a.io/?access_token=[Filtered]&page=2#id_token=[Filtered]"}"#
        );
        assert_eq!(scrub("GET /x?monkey=1"), "GET /x?monkey=1");
        configure(b"email");
        assert_eq!(
            scrub("?userEmail=a@b.c&ref=1"),
            "?userEmail=[Filtered]&ref=1"
        );
        configure(b"");
        assert_eq!(scrub("?userEmail=a"), "?userEmail=a");
    }
}
