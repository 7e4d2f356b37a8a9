//! Lines in, records out to the output: parse, fold, give each record its id, send, and
//! know which input offset is safe to commit.

use std::time::Duration;

use faultline_schema::Timestamp;

use super::deliver::Delivery;
use super::exit_summary::Summary;
use super::id::Ids;
use super::input::Line;
use super::parse::{Folded, InputFormat, Parser};

/// One input's way to the server.
#[derive(Debug)]
pub(crate) struct Pipeline {
    service: String,
    parser: Parser,
    delivery: Delivery,
    folded: Vec<Folded>,
    /// Records sent since the last complete [`settle`](Pipeline::settle).
    pub(crate) unsettled: u64,
    pub(crate) summary: Summary,
}

impl Pipeline {
    pub(crate) fn new(service: &str, format: InputFormat, delivery: Delivery) -> Pipeline {
        Pipeline {
            service: service.to_owned(),
            parser: Parser::new(format),
            delivery,
            folded: Vec::new(),
            unsettled: 0,
            summary: Summary::default(),
        }
    }

    /// Parses and sends `lines`; record ids come from `ids`.
    pub(crate) fn lines(&mut self, lines: &[Line], ids: Ids) {
        for line in lines {
            self.summary.lines += 1;
            self.parser.push(&line.bytes, line.start, &mut self.folded);
        }
        self.send(ids);
    }

    /// Sends what the parser holds back (a possible traceback owner, an unfinished
    /// traceback): the input paused or ended.
    pub(crate) fn release_held(&mut self, ids: Ids) {
        self.parser.flush(&mut self.folded);
        self.send(ids);
    }

    /// Whether the parser holds lines back.
    pub(crate) fn holds(&self) -> bool {
        self.parser.holds()
    }

    fn send(&mut self, ids: Ids) {
        let now = Timestamp::now();
        for f in self.folded.drain(..) {
            self.summary.count(f.parsed.format);
            let mut record = f.parsed.into_record(&self.service, now);
            if record.meta.contains_key("stack_text") {
                self.summary.tracebacks += 1;
            }
            record.id = record.id.or_else(|| Some(ids.id(f.start)));
            self.delivery.send(&record);
            self.unsettled += 1;
        }
    }

    /// Sends a record that needs no parsing (one a worker sent the collector, or the
    /// collector's own).
    pub(crate) fn record(&mut self, record: faultline_schema::Record) {
        self.summary.records += 1;
        self.delivery.send(&record);
        self.unsettled += 1;
    }

    /// The offset to commit once settled: the start of the oldest line held back, or
    /// `read_to` (where the input's next complete line starts).
    pub(crate) fn safe_offset(&self, read_to: u64) -> u64 {
        self.parser.oldest_held().unwrap_or(read_to)
    }

    /// Waits until every record sent is acknowledged, spooled or counted as dropped;
    /// whether that happened within `timeout`.
    pub(crate) fn settle(&mut self, timeout: Duration) -> bool {
        let report = self.delivery.settle(timeout);
        if report.complete {
            self.unsettled = 0;
        }
        report.complete
    }

    /// Sends what is held back, then the final flush; the summary with the output's report.
    pub(crate) fn close(mut self, ids: Ids, timeout: Duration) -> Summary {
        self.release_held(ids);
        self.summary.not_json = self.parser.not_json;
        self.summary.report = Some(self.delivery.close(timeout));
        self.summary
    }
}
