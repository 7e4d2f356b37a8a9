//! Python tracebacks folded into one record.
//!
//! A traceback starts with `Traceback (most recent call last):`, goes on with indented
//! lines (`  File "...", line N, in f` and the source line), and ends with the first line
//! that is not indented: `ExcType: message`. Chained exceptions (a blank line, `During
//! handling of the above exception, another exception occurred:` or `The above exception was
//! the direct cause of the following exception:`, a blank line, another `Traceback`) stay in
//! the same traceback.
//!
//! `logger.exception("...")` writes its log line and then the traceback, so a line that may
//! take one (a warning or worse without a stack of its own, see
//! [`Parsed::may_take_traceback`]) is held back until the next line shows whether a
//! traceback follows; the traceback then goes into its `meta.stack_text`. A traceback with
//! no such line before it (an uncaught exception printed by the interpreter) becomes a record
//! of its own: `ERROR`, event `exception`, the last line as its message.

use faultline_schema::Level;

use super::parsed::{Format, Parsed, error_type};

const START: &str = "Traceback (most recent call last):";
const CHAINS: [&str; 2] = [
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
];

/// A record ready to go, and where its first line starts in the input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Folded {
    pub(crate) parsed: Parsed,
    pub(crate) start: u64,
}

#[derive(Debug, PartialEq)]
enum Phase {
    /// In the frames, until the exception line.
    Frames,
    /// After an exception line: a chained traceback may follow.
    Ended,
}

#[derive(Debug)]
struct Traceback {
    start: u64,
    text: String,
    /// Blank lines seen after an exception line, kept only if a chained traceback follows.
    blanks: usize,
    phase: Phase,
}

/// Groups lines into records. Feed it lines in order with [`Folder::push`]; it emits what is
/// complete and holds back at most one line and one traceback.
#[derive(Debug, Default)]
pub(crate) struct Folder {
    held: Option<Folded>,
    traceback: Option<Traceback>,
}

impl Folder {
    /// Whether `line` belongs to the traceback being read; when it does, it is taken.
    fn continue_traceback(&mut self, line: &str) -> bool {
        let Some(tb) = &mut self.traceback else {
            return false;
        };
        let indented = line.starts_with([' ', '\t']);
        let body = line.trim_end();
        match tb.phase {
            Phase::Frames => {
                tb.text.push('\n');
                tb.text.push_str(body);
                if !indented && !body.is_empty() {
                    tb.phase = Phase::Ended;
                }
                true
            }
            Phase::Ended if body.is_empty() => {
                tb.blanks += 1;
                true
            }
            Phase::Ended if body == START || CHAINS.contains(&body) => {
                for _ in 0..=tb.blanks {
                    tb.text.push('\n');
                }
                tb.blanks = 0;
                tb.text.push_str(body);
                if body == START {
                    tb.phase = Phase::Frames;
                }
                true
            }
            Phase::Ended => false,
        }
    }

    /// Takes one line that starts at byte `start` of the input; `parse` turns a line that
    /// is not part of a traceback into a record. Complete records are appended to `out`.
    pub(crate) fn push(
        &mut self,
        line: &str,
        start: u64,
        parse: impl FnOnce(&str) -> Parsed,
        out: &mut Vec<Folded>,
    ) {
        if self.continue_traceback(line) {
            return;
        }
        self.end_traceback(out);
        if line.trim_end() == START {
            self.traceback = Some(Traceback {
                start,
                text: START.to_owned(),
                blanks: 0,
                phase: Phase::Frames,
            });
            return;
        }
        out.extend(self.held.take());
        let parsed = parse(line);
        let folded = Folded { parsed, start };
        if folded.parsed.may_take_traceback() {
            self.held = Some(folded);
        } else {
            out.push(folded);
        }
    }

    fn end_traceback(&mut self, out: &mut Vec<Folded>) {
        let Some(tb) = self.traceback.take() else {
            return;
        };
        match self.held.take() {
            Some(mut owner) => {
                owner.parsed.attach_traceback(&tb.text);
                out.push(owner);
            }
            None => {
                let last = tb
                    .text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty() && !l.starts_with([' ', '\t']))
                    .unwrap_or(START)
                    .to_owned();
                let mut parsed = Parsed::new(Format::Traceback, last);
                parsed.level = Some(Level::Error);
                parsed.event = Some("exception".into());
                if let Some(t) = error_type(&tb.text) {
                    parsed.meta.insert("error_type".into(), t.into());
                }
                parsed.meta.insert("stack_text".into(), tb.text.into());
                out.push(Folded {
                    parsed,
                    start: tb.start,
                });
            }
        }
    }

    /// Emits whatever is held (the input paused long enough, or ended).
    pub(crate) fn flush(&mut self, out: &mut Vec<Folded>) {
        self.end_traceback(out);
        out.extend(self.held.take());
    }

    /// Where the oldest line not yet emitted starts, if any is held.
    pub(crate) fn oldest_held(&self) -> Option<u64> {
        let held = self.held.as_ref().map(|h| h.start);
        let tb = self.traceback.as_ref().map(|t| t.start);
        match (held, tb) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether anything is held.
    pub(crate) fn holds(&self) -> bool {
        self.held.is_some() || self.traceback.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::text;

    fn fold(input: &str) -> Vec<Folded> {
        let mut f = Folder::default();
        let mut out = Vec::new();
        let mut pos = 0u64;
        for line in input.split_inclusive('\n') {
            f.push(line.trim_end_matches('\n'), pos, text::map, &mut out);
            pos += line.len() as u64;
        }
        f.flush(&mut out);
        out
    }

    const TB: &str = "Traceback (most recent call last):\n  File \"/srv/app.py\", line 9, in <module>\n    charge()\n  File \"/srv/app.py\", line 5, in charge\n    raise ValueError(\"card declined\")\nValueError: card declined\n";

    #[test]
    fn a_logged_exception_takes_its_traceback() {
        let input = format!("INFO:app:starting\nERROR:app:charge failed\n{TB}INFO:app:next\n");
        let out = fold(&input);
        assert_eq!(out.len(), 3, "{out:#?}");
        assert_eq!(out[1].parsed.message, "app:charge failed");
        assert_eq!(out[1].start, 18);
        let st = out[1].parsed.meta["stack_text"].as_str().unwrap();
        assert_eq!(st, TB.trim_end());
        assert_eq!(out[1].parsed.meta["error_type"], "ValueError");
        assert_eq!(out[2].parsed.message, "app:next");
        assert!(!out[2].parsed.meta.contains_key("stack_text"));
    }

    #[test]
    fn an_uncaught_traceback_is_its_own_record() {
        let input = format!("INFO:app:starting\n{TB}");
        let out = fold(&input);
        assert_eq!(out.len(), 2, "{out:#?}");
        let r = &out[1].parsed;
        assert_eq!(r.format, Format::Traceback);
        assert_eq!(
            (r.level, r.message.as_str()),
            (Some(Level::Error), "ValueError: card declined")
        );
        assert_eq!(out[1].start, 18);
        assert!(
            !out[0].parsed.meta.contains_key("stack_text"),
            "INFO lines take no traceback"
        );
    }

    #[test]
    fn chained_exceptions_stay_in_one_traceback() {
        let input = format!(
            "ERROR boom\n{TB}\nDuring handling of the above exception, another exception occurred:\n\n{TB}WARNING after\nINFO end\n"
        );
        let out = fold(&input);
        assert_eq!(out.len(), 3, "{out:#?}");
        let st = out[0].parsed.meta["stack_text"].as_str().unwrap();
        assert_eq!(st.matches("Traceback (most recent").count(), 2);
        assert!(st.contains("\n\nDuring handling"));
        assert_eq!(out[1].parsed.message, "after");
        assert_eq!(out[2].parsed.message, "end");
    }

    #[test]
    fn held_lines_are_reported_for_offsets() {
        let mut f = Folder::default();
        let mut out = Vec::new();
        f.push("INFO a", 0, text::map, &mut out);
        assert_eq!((out.len(), f.oldest_held()), (1, None));
        f.push("ERROR b", 7, text::map, &mut out);
        assert_eq!((out.len(), f.oldest_held()), (1, Some(7)));
        f.push(START, 15, text::map, &mut out);
        f.push("  File \"x\", line 1", 50, text::map, &mut out);
        assert_eq!(f.oldest_held(), Some(7));
        f.flush(&mut out);
        assert_eq!((out.len(), f.holds()), (2, false));
        assert!(out[1].parsed.meta.contains_key("stack_text"));
    }
}
