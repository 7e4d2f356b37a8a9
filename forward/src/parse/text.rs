//! Plain-text lines: the level from a leading level word, the rest as the message.

use super::level;
use super::parsed::{Format, Parsed};

/// A text line as a record: `level` guessed (`None`, forwarded as `INFO`, when the line does
/// not open with a level word), `message` the rest of the line, `event` `log`.
pub(crate) fn map(line: &str) -> Parsed {
    match level::guess(line) {
        Some((level, rest)) => {
            let mut p = Parsed::new(Format::Text, rest.trim_end());
            p.level = Some(level);
            p
        }
        None => Parsed::new(Format::Text, line.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::Level;

    #[test]
    fn level_word_and_message() {
        let p = map("ERROR:root:payment failed  ");
        assert_eq!(
            (p.level, p.message.as_str()),
            (Some(Level::Error), "root:payment failed")
        );
        let p = map("just words");
        assert_eq!((p.level, p.message.as_str()), (None, "just words"));
        assert_eq!(p.format, Format::Text);
    }
}
