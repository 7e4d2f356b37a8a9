//! From input lines to records: each line is read as JSON (by the keys of a known
//! formatter, `formats/`) or as text (`text.rs`, with `level.rs` guessing the level), and
//! Python tracebacks are folded into the record they belong to (`traceback.rs`). `parsed.rs`
//! then makes every result a record the server accepts.

pub(crate) mod formats;
pub(crate) mod level;
pub(crate) mod parsed;
pub(crate) mod text;
pub(crate) mod time;
pub(crate) mod traceback;

use serde_json::Value;

pub(crate) use parsed::Format;
pub(crate) use traceback::Folded;
use traceback::Folder;

/// How lines are read (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Per line: a JSON object if the line is one, else text.
    Auto,
    /// JSON objects; a line that is not one is still forwarded, as text, and counted.
    Json,
    /// Text only, even for lines that look like JSON.
    Text,
}

/// Lines in, records out (with where each record's first line starts).
#[derive(Debug)]
pub(crate) struct Parser {
    format: InputFormat,
    folder: Folder,
    /// Lines that `--format json` expected to be JSON objects and were not.
    pub(crate) not_json: u64,
}

impl Parser {
    pub(crate) fn new(format: InputFormat) -> Parser {
        Parser {
            format,
            folder: Folder::default(),
            not_json: 0,
        }
    }

    /// Takes one line (without its line ending) that starts at byte `start`.
    pub(crate) fn push(&mut self, line: &[u8], start: u64, out: &mut Vec<Folded>) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let format = self.format;
        let not_json = &mut self.not_json;
        self.folder.push(
            line,
            start,
            |l| match (format, json_object(l)) {
                (InputFormat::Text, _) | (InputFormat::Auto, None) => text::map(l),
                (_, Some(obj)) => formats::map(obj),
                (InputFormat::Json, None) => {
                    *not_json += 1;
                    text::map(l)
                }
            },
            out,
        );
    }

    /// Emits what is held back (the input paused, or ended).
    pub(crate) fn flush(&mut self, out: &mut Vec<Folded>) {
        self.folder.flush(out);
    }

    /// Where the oldest line not yet emitted starts, if one is held back.
    pub(crate) fn oldest_held(&self) -> Option<u64> {
        self.folder.oldest_held()
    }

    /// Whether a line or traceback is held back.
    pub(crate) fn holds(&self) -> bool {
        self.folder.holds()
    }
}

fn json_object(line: &str) -> Option<serde_json::Map<String, Value>> {
    if !line.trim_start().starts_with('{') {
        return None;
    }
    match serde_json::from_str(line) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::Level;

    fn parse_all(format: InputFormat, lines: &[&str]) -> (Vec<Folded>, u64) {
        let mut p = Parser::new(format);
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            p.push(l.as_bytes(), i as u64 * 100, &mut out);
        }
        p.flush(&mut out);
        (out, p.not_json)
    }

    #[test]
    fn formats_per_line_and_modes() {
        let lines = [
            r#"{"levelname": "ERROR", "message": "json", "name": "app"}"#,
            "WARNING plain\r",
            "{not json",
        ];
        let (out, not_json) = parse_all(InputFormat::Auto, &lines);
        let formats: Vec<Format> = out.iter().map(|f| f.parsed.format).collect();
        assert_eq!(formats, [Format::Python, Format::Text, Format::Text]);
        assert_eq!(out[1].parsed.message, "plain");
        assert_eq!(out[1].parsed.level, Some(Level::Warning));
        assert_eq!(not_json, 0);
        let (_, not_json) = parse_all(InputFormat::Json, &lines);
        assert_eq!(not_json, 2);
        let (out, _) = parse_all(InputFormat::Text, &lines);
        assert_eq!(out[0].parsed.format, Format::Text);
        assert_eq!(out[0].parsed.message, lines[0]);
    }

    #[test]
    fn a_plain_traceback_after_a_json_error_line_is_attached() {
        let lines = [
            r#"{"levelname": "ERROR", "message": "failed"}"#,
            "Traceback (most recent call last):",
            "  File \"a.py\", line 1, in <module>",
            "KeyError: 'x'",
            r#"{"levelname": "INFO", "message": "next"}"#,
        ];
        let (out, _) = parse_all(InputFormat::Auto, &lines);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].parsed.meta["error_type"], "KeyError");
        assert_eq!(out[1].start, 400);
    }
}
