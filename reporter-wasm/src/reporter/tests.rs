//! The core driven by a recording host and a fake clock.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use faultline_schema::{Record, Value};

use super::*;
use crate::config::OptValue;
use crate::config::tests::Opts;

/// Records every host call; the clock moves only when a test says so.
#[derive(Default)]
struct Fake {
    now: Cell<f64>,
    sends: RefCell<Vec<(u32, String)>>,
    beacons: RefCell<Vec<String>>,
    refuse_beacons: Cell<bool>,
    timer: Cell<Option<f64>>,
    schedules: Cell<u32>,
    stored: RefCell<String>,
    offline: Cell<bool>,
}

impl Host for Rc<Fake> {
    fn now(&self) -> f64 {
        self.now.get()
    }
    fn send(&self, seq: u32, url: &str, body: &str) {
        assert_eq!(url, "http://127.0.0.1:9/logs/ingest?key=pk_test");
        self.sends.borrow_mut().push((seq, body.to_owned()));
    }
    fn beacon(&self, _url: &str, body: &str) -> bool {
        if self.refuse_beacons.get() {
            return false;
        }
        self.beacons.borrow_mut().push(body.to_owned());
        true
    }
    fn schedule(&self, delay_ms: f64) {
        self.schedules.set(self.schedules.get() + 1);
        self.timer
            .set((delay_ms >= 0.0).then(|| self.now.get() + delay_ms));
    }
    fn store(&self, text: &str) {
        *self.stored.borrow_mut() = text.to_owned();
    }
    fn online(&self) -> bool {
        !self.offline.get()
    }
}

const T0: f64 = 1_782_909_296_789.0;

struct Harness {
    host: Rc<Fake>,
    r: Reporter<Rc<Fake>>,
}

impl Harness {
    fn new(opts: Opts) -> Harness {
        let host = Rc::new(Fake::default());
        host.now.set(T0);
        let cfg = Config::from_options(&opts, "Test UA").unwrap();
        let r = Reporter::new(Rc::clone(&host), cfg, &[42; 32]);
        Harness { host, r }
    }

    fn default() -> Harness {
        Harness::new(Opts::minimal())
    }

    fn error(&mut self, message: &str) -> Outcome {
        self.r.capture(&Capture {
            event: "window.onerror",
            error_type: "Error",
            message,
            stack: "Error: x\n    at f (https://app.example/a.js:1:2)",
            page_url: "https://app.example/",
            ..Capture::default()
        })
    }

    /// Moves the clock to `t` (ms after T0) and fires the timer if it is due.
    fn advance_to(&mut self, t: f64) {
        self.host.now.set(T0 + t);
        if self.host.timer.get().is_some_and(|at| at <= T0 + t) {
            self.host.timer.set(None);
            self.r.tick();
        }
    }

    fn sends(&self) -> Vec<(u32, String)> {
        self.host.sends.borrow().clone()
    }

    fn last_seq(&self) -> u32 {
        self.host.sends.borrow().last().unwrap().0
    }

    fn answer(&mut self, status: u16, retry_after_ms: f64) {
        let seq = self.last_seq();
        self.r.on_response(seq, status, retry_after_ms, 0);
    }
}

/// Parses a body with the schema, exactly as the server will; panics on any rejection.
fn records(body: &str) -> Vec<Record> {
    let batch = faultline_schema::decode_batch(body.as_bytes()).unwrap();
    assert!(batch.rejected.is_empty(), "{:?}\n{body}", batch.rejected);
    batch.records
}

fn ids(body: &str) -> Vec<String> {
    records(body)
        .iter()
        .map(|r| r.id.unwrap().to_string())
        .collect()
}

#[test]
fn batches_leave_by_count() {
    let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(3.0)));
    h.error("a");
    h.error("b");
    assert!(h.sends().is_empty());
    h.error("c");
    let sends = h.sends();
    assert_eq!(sends.len(), 1);
    let recs = records(&sends[0].1);
    assert_eq!(
        recs.iter().map(|r| r.message.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(recs[0].service, "ui");
    assert_eq!(recs[0].meta["stack"][0]["function"], "f");
    assert_eq!(recs[0].meta["user_agent"], "Test UA");
}

#[test]
fn batches_leave_by_time() {
    let mut h = Harness::default();
    h.error("a");
    assert!(h.sends().is_empty());
    assert_eq!(h.host.timer.get(), Some(T0 + 2_000.0));
    h.advance_to(1_999.0);
    assert!(h.sends().is_empty());
    h.error("b");
    h.advance_to(2_000.0);
    assert_eq!(h.sends().len(), 1);
    assert_eq!(records(&h.sends()[0].1).len(), 2);
}

#[test]
fn batches_leave_by_bytes_and_never_exceed_them() {
    let mut h = Harness::new(Opts::minimal().with("maxBatchBytes", OptValue::Num(4_096.0)));
    let big = "m".repeat(900);
    for i in 0..6 {
        h.error(&format!("{i}{big}"));
        if let Some((_, body)) = h.sends().last() {
            assert!(body.len() <= 4_096, "{}", body.len());
        }
        if !h.sends().is_empty() {
            h.answer(202, -1.0);
        }
    }
    assert!(
        !h.sends().is_empty(),
        "a byte-full queue is sent before the interval"
    );
    assert!(h.sends().len() < 6);
}

#[test]
fn the_timer_is_not_rearmed_for_every_capture() {
    let mut h = Harness::default();
    for i in 0..15 {
        h.error(&i.to_string());
    }
    assert_eq!(h.host.schedules.get(), 1);
}

#[test]
fn one_batch_in_flight_at_a_time() {
    let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(2.0)));
    for i in 0..6 {
        h.error(&i.to_string());
    }
    assert_eq!(h.sends().len(), 1);
    assert_eq!(h.r.pending(), 6);
    h.answer(202, -1.0);
    assert_eq!(h.sends().len(), 2);
    h.answer(202, -1.0);
    h.answer(202, -1.0);
    assert_eq!(h.sends().len(), 3);
    assert_eq!(h.r.pending(), 0);
    assert_eq!(h.r.stats().sent, 6);
    // Every record went out exactly once.
    let all: Vec<String> = h.sends().iter().flat_map(|(_, b)| ids(b)).collect();
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(all.len(), 6);
    assert_eq!(unique.len(), 6);
}

#[test]
fn retry_after_is_honored_and_the_retry_carries_the_same_ids() {
    let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(1.0)));
    h.error("a");
    let first = ids(&h.sends()[0].1);
    h.answer(429, 3_000.0);
    let at = h.host.timer.get().unwrap() - T0;
    assert!((3_000.0..=3_300.0).contains(&at), "{at}");
    h.advance_to(2_999.0);
    assert_eq!(h.sends().len(), 1, "not before Retry-After");
    h.advance_to(at);
    assert_eq!(h.sends().len(), 2);
    assert_eq!(ids(&h.sends()[1].1), first);
    // A stale answer to the first attempt changes nothing.
    h.r.on_response(h.sends()[0].0, 202, -1.0, 0);
    assert_eq!(h.r.pending(), 1);
    h.answer(202, -1.0);
    assert_eq!(h.r.pending(), 0);
    assert_eq!(h.r.stats().retries, 1);
}

#[test]
fn backoff_grows_with_jitter_and_is_capped() {
    let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(1.0)));
    h.error("a");
    let mut t = 0.0;
    for attempt in 1..=12u32 {
        h.answer(503, -1.0);
        let delay = h.host.timer.get().unwrap() - (T0 + t);
        let base = (1_000.0 * f64::from(1u32 << (attempt - 1))).min(MAX_BACKOFF_MS);
        assert!(
            delay >= base / 2.0 && delay <= base,
            "attempt {attempt}: {delay} not in [{}, {base}]",
            base / 2.0
        );
        t += delay;
        h.advance_to(t);
        assert_eq!(h.sends().len() as u32, attempt + 1);
    }
}

#[test]
fn client_errors_are_not_retried() {
    for status in [400, 401, 403, 404, 415] {
        let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(1.0)));
        h.error("a");
        h.answer(status, -1.0);
        assert_eq!(h.r.pending(), 0, "{status}");
        assert_eq!(h.r.stats().refused, 1);
        assert_eq!(h.host.timer.get(), None);
        h.advance_to(600_000.0);
        assert_eq!(h.sends().len(), 1, "{status} was retried");
    }
}

#[test]
fn too_large_batches_are_split() {
    let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(4.0)));
    for i in 0..4 {
        h.error(&i.to_string());
    }
    h.answer(413, -1.0);
    let sends = h.sends();
    assert_eq!(sends.len(), 2);
    assert_eq!(records(&sends[1].1).len(), 2);
    h.answer(202, -1.0);
    assert_eq!(records(&h.sends()[2].1).len(), 2);
    h.answer(202, -1.0);
    assert_eq!(h.r.pending(), 0);
    // A single record that is too large is dropped, not retried forever.
    let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(1.0)));
    h.error("x");
    h.answer(413, -1.0);
    assert_eq!(h.r.stats().refused, 1);
}

#[test]
fn offline_waits_for_online_and_keeps_records_stored() {
    let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(1.0)));
    h.error("a");
    h.host.offline.set(true);
    h.answer(0, -1.0);
    assert!(h.host.stored.borrow().contains("\"message\":\"a\""));
    // Backoff timers do not send while the browser says it is offline.
    h.advance_to(10_000.0);
    assert_eq!(h.sends().len(), 1);
    h.advance_to(1_000.0 + 10_000.0);
    h.error("b");
    h.advance_to(13_000.0);
    assert!(h.host.stored.borrow().contains("\"message\":\"b\""));
    h.host.offline.set(false);
    h.r.online();
    assert_eq!(h.sends().len(), 2);
    h.answer(202, -1.0);
    assert_eq!(h.sends().len(), 3);
    h.answer(202, -1.0);
    assert_eq!(h.r.pending(), 0);
    assert_eq!(
        *h.host.stored.borrow(),
        "",
        "acknowledged records leave storage"
    );
}

#[test]
fn hidden_pages_store_then_beacon_within_budget() {
    let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(1000.0)));
    let big = "m".repeat(4_000);
    for i in 0..40 {
        h.error(&format!("{i}{big}"));
    }
    h.r.hidden();
    let beacons = h.host.beacons.borrow().clone();
    assert!(beacons.len() >= 3, "{}", beacons.len());
    assert!(beacons.iter().all(|b| b.len() <= 60_000));
    let beaconed: usize = beacons.iter().map(|b| records(b).len()).sum();
    assert_eq!(beaconed, 40);
    assert_eq!(
        queue::stored_records(&h.host.stored.borrow(), T0 as i64).count(),
        40
    );
    // A second hide (pagehide after visibilitychange) has nothing new to send.
    h.r.hidden();
    assert_eq!(h.host.beacons.borrow().len(), beacons.len());
    // Back to visible: sent again to get an answer, then storage is cleared.
    let before = h.sends().len();
    h.r.visible();
    h.advance_to(2_000.0);
    while h.r.pending() > 0 {
        let seq = h.last_seq();
        h.r.on_response(seq, 202, -1.0, 0);
    }
    let resent: usize = h.sends()[before..]
        .iter()
        .map(|(_, b)| records(b).len())
        .sum();
    assert_eq!(resent, 40);
    assert_eq!(*h.host.stored.borrow(), "");
}

#[test]
fn a_refused_beacon_leaves_the_records_stored() {
    let mut h = Harness::default();
    h.error("a");
    h.host.refuse_beacons.set(true);
    h.r.hidden();
    assert!(h.host.beacons.borrow().is_empty());
    assert!(h.host.stored.borrow().contains("\"message\":\"a\""));
}

#[test]
fn the_in_flight_batch_goes_with_the_beacon() {
    let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(1.0)));
    h.error("in flight");
    h.r.hidden();
    assert!(h.host.beacons.borrow()[0].contains("in flight"));
    // Its fetch may still be answered; it no longer counts.
    h.answer(202, -1.0);
    assert_eq!(h.r.stats().sent, 0);
}

#[test]
fn stored_records_are_taken_over_once() {
    /// The stored text of a page that failed to send one error at `t` (ms after T0).
    fn stored_by_a_failed_page(t: f64, message: &str) -> (String, Vec<String>) {
        let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(1.0)));
        h.host.now.set(T0 + t);
        h.error(message);
        h.host.offline.set(true);
        h.answer(0, -1.0);
        let stored = h.host.stored.borrow().clone();
        (stored, ids(&h.sends()[0].1))
    }
    let (stored, original) = stored_by_a_failed_page(0.0, "from an earlier page");
    let week = 7.0 * 24.0 * 3600.0 * 1000.0;
    let (old, _) = stored_by_a_failed_page(-week - 1.0, "too old");

    let mut next = Harness::default();
    // The same text under two keys (two tabs) and an old record: taken once, old one skipped.
    let taken = next.r.restore(&format!("{stored}\n{stored}\n{old}"));
    assert_eq!(taken, 1);
    assert!(next.host.stored.borrow().contains("from an earlier page"));
    assert!(!next.host.stored.borrow().contains("too old"));
    next.r.flush();
    assert_eq!(ids(&next.sends()[0].1), original);
    next.answer(202, -1.0);
    assert_eq!(*next.host.stored.borrow(), "");
}

#[test]
fn identical_errors_fold_into_one_record() {
    let mut h = Harness::default();
    let first = h.error("loop");
    for _ in 1..500 {
        assert!(matches!(h.error("loop"), Outcome::Folded(_)));
    }
    let Outcome::Queued(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(h.error("loop"), Outcome::Folded(id));
    h.r.flush();
    let recs = records(&h.sends()[0].1);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].meta["count"], 501);
    assert_eq!(h.r.stats().folded, 500);
}

#[test]
fn repeats_after_sending_leave_as_one_follow_up() {
    let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(1.0)));
    h.error("e");
    h.answer(202, -1.0);
    h.advance_to(1_000.0);
    for _ in 0..7 {
        h.error("e");
    }
    h.error("other");
    h.answer(202, -1.0);
    assert_eq!(h.sends().len(), 2);
    // The window (30 s from the first) closes: one record for the 7 repeats.
    h.advance_to(30_000.0);
    let sends = h.sends();
    assert_eq!(sends.len(), 3);
    let recs = records(&sends[2].1);
    assert_eq!(recs[0].message, "e");
    assert_eq!(recs[0].meta["count"], 7);
    h.answer(202, -1.0);
    // After the window, the same error makes a new record.
    h.advance_to(31_000.0);
    assert!(matches!(h.error("e"), Outcome::Queued(_)));
    let total: u64 = h
        .sends()
        .iter()
        .flat_map(|(_, b)| records(b))
        .filter(|r| r.message == "e")
        .map(|r| r.meta.get("count").and_then(Value::as_u64).unwrap_or(1))
        .sum();
    assert_eq!(total, 1 + 7 + 1);
}

#[test]
fn flush_sends_pending_repeats_at_once() {
    let mut h = Harness::new(Opts::minimal().with("batchSize", OptValue::Num(1.0)));
    h.error("e");
    h.answer(202, -1.0);
    h.error("e");
    h.error("e");
    assert_eq!(h.r.pending(), 1);
    h.r.flush();
    let recs = records(&h.sends()[1].1);
    assert_eq!(recs[0].meta["count"], 2);
}

#[test]
fn sampling_drops_new_records_and_their_repeats() {
    let mut h = Harness::new(Opts::minimal().with("sampleRate", OptValue::Num(0.0)));
    for _ in 0..100 {
        assert_eq!(h.error("x"), Outcome::Dropped);
    }
    assert_eq!(h.r.pending(), 0);
    let mut h = Harness::new(
        Opts::minimal()
            .with("sampleRate", OptValue::Num(0.5))
            .with("maxEventsPerPage", OptValue::Num(10_000.0))
            .with("maxQueue", OptValue::Num(10_000.0)),
    );
    let kept = (0..1000)
        .filter(|i| !matches!(h.error(&i.to_string()), Outcome::Dropped))
        .count();
    assert!((400..600).contains(&kept), "{kept}");
}

#[test]
fn the_per_page_cap_drops_new_records_and_says_so_once() {
    let mut h = Harness::new(Opts::minimal().with("maxEventsPerPage", OptValue::Num(3.0)));
    for i in 0..10 {
        h.error(&i.to_string());
    }
    // Repeats of a kept error still fold.
    assert!(matches!(h.error("0"), Outcome::Folded(_)));
    h.r.flush();
    let recs = records(&h.sends()[0].1);
    let messages: Vec<&str> = recs.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert_eq!(recs[3].event, "faultline.capped");
    assert_eq!(recs[3].level, Level::Warning);
    assert_eq!(h.r.stats().capped, 7);
}

#[test]
fn the_queue_is_bounded() {
    let mut h = Harness::new(
        Opts::minimal()
            .with("maxQueue", OptValue::Num(5.0))
            .with("batchSize", OptValue::Num(1000.0)),
    );
    for i in 0..8 {
        h.error(&i.to_string());
    }
    assert_eq!(h.r.pending(), 5);
    assert_eq!(h.r.stats().queue_full, 3);
}

#[test]
fn ignore_lists_drop_before_anything_is_built() {
    let mut h = Harness::new(Opts::minimal().with("ignoreErrors", OptValue::Str("secret".into())));
    assert_eq!(h.error("a secret failure"), Outcome::Dropped);
    assert!(matches!(h.error("fine"), Outcome::Queued(_)));
    let opaque = h.r.capture(&Capture {
        event: "window.onerror",
        message: "Script error.",
        ..Capture::default()
    });
    assert_eq!(opaque, Outcome::Dropped);
    assert_eq!(h.r.stats().filtered, 2);
    assert_eq!(h.r.pending(), 1);
}

#[test]
fn before_send_can_edit_or_drop() {
    let opts = Opts::minimal()
        .with("beforeSend", OptValue::Other)
        .with("batchSize", OptValue::Num(1.0));
    let mut h = Harness::new(opts);
    let Outcome::Draft(json) = h.error("original") else {
        panic!("no draft")
    };
    let draft = Record::from_json(json.as_bytes()).unwrap();
    assert!(h.sends().is_empty(), "drafts wait for beforeSend");
    let id = draft.id.unwrap().to_string();
    assert!(h.r.commit(
        &id,
        Some(Edit {
            level: "warning",
            event: "edited",
            message: "scrubbed",
            meta: r#"{"url":"https://app.example/[redacted]"}"#,
        })
    ));
    let sent = &records(&h.sends()[0].1)[0];
    assert_eq!(sent.id, draft.id);
    assert_eq!(sent.level, Level::Warning);
    assert_eq!(sent.event, "edited");
    assert_eq!(sent.message, "scrubbed");
    assert_eq!(sent.meta["url"], "https://app.example/[redacted]");
    h.answer(202, -1.0);

    let Outcome::Draft(json) = h.error("dropped") else {
        panic!()
    };
    let id = Record::from_json(json.as_bytes()).unwrap().id.unwrap();
    h.r.discard(&id.to_string());
    // Repeats of a dropped record are dropped too.
    assert_eq!(h.error("dropped"), Outcome::Dropped);
    h.r.flush();
    assert_eq!(h.sends().len(), 1);
    assert_eq!(h.r.pending(), 0);

    // An edit breaking the rules is ignored: the original goes.
    let Outcome::Draft(json) = h.error("kept") else {
        panic!()
    };
    let id = Record::from_json(json.as_bytes()).unwrap().id.unwrap();
    let bad = Edit {
        level: "LOUD",
        event: "e",
        message: "m",
        meta: "{}",
    };
    assert!(!h.r.commit(&id.to_string(), Some(bad)));
    assert_eq!(records(&h.sends()[1].1)[0].message, "kept");
}

#[test]
fn the_raw_user_id_never_leaves() {
    let opts = Opts::minimal()
        .with("salt", OptValue::Str("pub_salt_1".into()))
        .with("batchSize", OptValue::Num(1.0));
    let mut h = Harness::new(opts);
    h.r.set_user(Some("user-42")).unwrap();
    h.error("a");
    h.host.offline.set(true);
    h.answer(0, -1.0);
    h.r.hidden();
    let everything = format!(
        "{:?}{:?}{}",
        h.sends(),
        h.host.beacons.borrow(),
        h.host.stored.borrow()
    );
    assert!(!everything.contains("user-42"));
    assert!(everything.contains("u_bb05a1271ec30185"));
    let mut no_salt = Harness::default();
    assert_eq!(no_salt.r.set_user(Some("user-42")), Err(Refused::NoSalt));
}

#[test]
fn every_record_passes_the_schema() {
    let opts = Opts::minimal()
        .with("release", OptValue::Str("r1".into()))
        .with("batchSize", OptValue::Num(1000.0));
    let mut h = Harness::new(opts);
    h.r.set_tag("t", Some("v\"quoted\"")).unwrap();
    h.r.set_context("ctx", Some(r#"{"a":[1,{"b":null}]}"#))
        .unwrap();
    h.r.breadcrumb("console", "line1\nline2\u{0}", "warning", r#"{"k":"v"}"#);
    let odd = ["", "\u{0}", "\"", "\\", "é😀", "\u{2028}"];
    for m in odd {
        h.r.capture(&Capture {
            event: "exception",
            level: Some(Level::Critical),
            error_type: m,
            message: m,
            stack: m,
            file: m,
            page_url: m,
            extra: r#"{"x":"y"}"#,
            tags: r#""k":"v""#,
            component_stack: m,
            ..Capture::default()
        });
    }
    h.r.flush();
    let recs = records(&h.sends()[0].1);
    assert_eq!(recs.len(), odd.len());
}
