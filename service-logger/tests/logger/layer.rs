//! What a record looks like: levels, event keys, messages, fields, span context, static
//! fields, routing, the `log` bridge, heartbeats.

use std::time::Duration;

use faultline_logger::{FaultlineLayer, Guard, LogBridge, Output, Targets, TraceContext, builder};
use faultline_schema::{Level, Record, anonymize_user};

use crate::common::{Gated, open_writer, with_layer};

fn writer_logger(b: faultline_logger::Builder) -> (FaultlineLayer, Guard, Gated) {
    let out = open_writer();
    let (layer, guard) = b.output(Output::writer(out.clone())).build().unwrap();
    (layer, guard, out)
}

fn by_message<'a>(records: &'a [Record], message: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.message == message)
        .unwrap_or_else(|| panic!("no record {message:?} in {records:#?}"))
}

#[test]
fn events_become_records_with_their_fields_and_span_context() {
    let (layer, guard, out) = writer_logger(
        builder()
            .service("api")
            .release("1.4.2")
            .environment("staging")
            .host(Some("web-1".into()))
            .field("region", "eu-west-1")
            .user_salt("public-salt")
            .with_location(true),
    );
    let tc = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .unwrap()
        .child();
    with_layer(&layer, || {
        let request = tracing::info_span!(
            "request",
            trace_id = %tc.trace_id(),
            span_id = %tc.span_id(),
            route = "/orders",
            attempt = 1u64
        );
        let _r = request.enter();
        let inner = tracing::info_span!("db", route = "inner-wins", table = "orders");
        let _i = inner.enter();
        tracing::info!(
            order_id = 42u64,
            amount = 12.5,
            paid = true,
            user = "alice@example.com",
            "order {} placed",
            42
        );
        tracing::warn!(event = "payment_retry", attempt = 2u64, "retrying");
        tracing::error!(name: "payment_failed", code = -3i64, "card declined");
        tracing::error!(level = "critical", "database gone");
        tracing::warn!(level = "loud", "not a level");
        tracing::trace!("very detailed");
        request.record("attempt", 5u64);
        tracing::debug!("after record");
    });
    let report = guard.shutdown(Duration::MAX);
    assert_eq!(report.written, 7);
    let records = out.records();

    let placed = by_message(&records, "order 42 placed");
    assert_eq!(placed.service, "api");
    assert_eq!(placed.level, Level::Info);
    assert_eq!(placed.event, "logger::layer", "no event name: the target");
    let m = &placed.meta;
    assert_eq!(m["order_id"], 42);
    assert_eq!(m["amount"], 12.5);
    assert_eq!(m["paid"], true);
    assert_eq!(
        m["user"],
        anonymize_user("public-salt", "alice@example.com")
    );
    assert_eq!(m["trace_id"], tc.trace_id().to_string());
    assert_eq!(m["span_id"], tc.span_id().to_string());
    assert_eq!(m["route"], "inner-wins", "the innermost span wins");
    assert_eq!(m["table"], "orders");
    assert_eq!(m["attempt"], 1);
    assert_eq!(m["release"], "1.4.2");
    assert_eq!(m["environment"], "staging");
    assert_eq!(m["host"], "web-1");
    assert_eq!(m["region"], "eu-west-1");
    assert_eq!(m["target"], "logger::layer");
    assert!(m["file"].as_str().unwrap().ends_with("layer.rs"));
    assert!(m["line"].as_u64().unwrap() > 0);
    assert!(placed.id.is_some());

    let retry = by_message(&records, "retrying");
    assert_eq!(
        (retry.level, retry.event.as_str()),
        (Level::Warning, "payment_retry")
    );
    assert_eq!(
        retry.meta["attempt"], 2,
        "the event's own field wins over the span's"
    );
    assert!(retry.meta.get("event").is_none());

    let failed = by_message(&records, "card declined");
    assert_eq!(
        (failed.level, failed.event.as_str()),
        (Level::Error, "payment_failed")
    );
    assert_eq!(failed.meta["code"], -3);

    let gone = by_message(&records, "database gone");
    assert_eq!(gone.level, Level::Critical);
    assert!(gone.meta.get("level").is_none());
    let loud = by_message(&records, "not a level");
    assert_eq!(loud.level, Level::Warning);
    assert_eq!(
        loud.meta["level"], "loud",
        "a level field naming no level stays a field"
    );

    assert_eq!(by_message(&records, "very detailed").level, Level::Debug);
    assert_eq!(
        by_message(&records, "after record").meta["attempt"],
        5,
        "Span::record"
    );
    // Records of one thread keep their order, and ids are time-ordered UUIDv7s.
    let ids: Vec<_> = records.iter().map(|r| r.id.unwrap()).collect();
    assert!(ids.iter().all(|id| id.get_version_num() == 7));
}

#[test]
fn a_traceparent_span_field_gives_trace_and_span_ids() {
    let (layer, guard, out) = writer_logger(builder().service("api"));
    with_layer(&layer, || {
        let span = tracing::info_span!(
            "request",
            traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let _e = span.enter();
        tracing::info!("inside");
    });
    guard.shutdown(Duration::MAX);
    let r = &out.records()[0];
    assert_eq!(r.meta["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(r.meta["span_id"], "00f067aa0ba902b7");
}

#[test]
fn outputs_take_records_by_level_and_target_with_one_id_per_record() {
    let everything = open_writer();
    let errors = open_writer();
    let payments = open_writer();
    let (layer, guard) = builder()
        .service("api")
        .output(Output::writer(everything.clone()).name("all"))
        .output(
            Output::writer(errors.clone())
                .name("errors")
                .min_level(tracing::Level::ERROR),
        )
        .output(
            Output::writer(payments.clone())
                .name("payments")
                .targets("app::payments=debug".parse::<Targets>().unwrap()),
        )
        .build()
        .unwrap();
    with_layer(&layer, || {
        tracing::info!(target: "app::web", "page served");
        tracing::error!(target: "app::web", "page failed");
        tracing::debug!(target: "app::payments::card", "card checked");
        tracing::trace!(target: "app::payments", "too detailed for payments");
    });
    let report = guard.shutdown(Duration::MAX);
    let names: Vec<&str> = report.outputs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["all", "errors", "payments"]);
    let messages =
        |g: &Gated| -> Vec<String> { g.records().into_iter().map(|r| r.message).collect() };
    assert_eq!(
        messages(&everything),
        [
            "page served",
            "page failed",
            "card checked",
            "too detailed for payments"
        ]
    );
    assert_eq!(messages(&errors), ["page failed"]);
    assert_eq!(messages(&payments), ["card checked"]);
    let id_all = everything.records()[1].id;
    assert_eq!(
        errors.records()[0].id,
        id_all,
        "one record, one id, every output"
    );
}

#[test]
fn log_crate_records_go_through_the_bridge_with_span_context() {
    let (layer, guard, out) = writer_logger(builder().service("api"));
    let bridge = LogBridge::new(guard.logger().clone());
    assert_eq!(bridge.max_level(), log::LevelFilter::Trace);
    with_layer(&layer, || {
        let span = tracing::info_span!("job", job_id = 7u64);
        let _e = span.enter();
        log::Log::log(
            &bridge,
            &log::Record::builder()
                .level(log::Level::Warn)
                .target("legacy::module")
                .file(Some("legacy.rs"))
                .line(Some(12))
                .key_values(&[("rows", 3u64)])
                .args(format_args!("slow query {}", "q1"))
                .build(),
        );
    });
    guard.shutdown(Duration::MAX);
    let r = &out.records()[0];
    assert_eq!(r.level, Level::Warning);
    assert_eq!(r.message, "slow query q1");
    assert_eq!(r.event, "legacy::module");
    assert_eq!(r.meta["target"], "legacy::module");
    assert_eq!(r.meta["job_id"], 7);
    assert_eq!(r.meta["rows"], 3);
}

#[test]
fn heartbeats_carry_the_outputs_health() {
    let (_layer, guard, out) = writer_logger(
        builder()
            .service("worker")
            .heartbeat(Duration::from_millis(100)),
    );
    std::thread::sleep(Duration::from_millis(550));
    let report = guard.shutdown(Duration::MAX);
    let beats: Vec<Record> = out
        .records()
        .into_iter()
        .filter(|r| r.event == "heartbeat")
        .collect();
    assert!(beats.len() >= 3, "{} heartbeats", beats.len());
    assert_eq!(beats[0].level, Level::Info);
    assert_eq!(beats[0].meta["sink"], "writer");
    assert!(beats[0].meta.contains_key("queue_depth"));
    assert_eq!(report.outputs[0].internal, beats.len() as u64);
}

#[test]
fn builder_rejects_settings_the_server_would_reject() {
    for b in [
        builder(),
        builder().service("API"),
        builder().service("api").field("count", -1),
        builder().service("api").field("trace_id", 5),
    ] {
        let err = b.build().unwrap_err();
        assert!(
            matches!(err, faultline_logger::InitError::Invalid(_)),
            "{err:?}"
        );
    }
}

#[test]
fn stats_track_enqueued_written_and_lag() {
    let (layer, guard, _out) = writer_logger(builder().service("api"));
    with_layer(&layer, || {
        for i in 0..1000u64 {
            tracing::info!(i, "counted");
        }
    });
    let report = guard.flush();
    assert!(report.complete);
    let s = &report.outputs[0];
    assert_eq!(
        (s.enqueued, s.written, s.pending, s.queue_depth),
        (1000, 1000, 0, 0)
    );
    assert!(s.queue_high_water >= 1);
    assert!(s.lag.max >= s.lag.mean && s.lag.max > Duration::ZERO);
    assert_eq!(s.queue_capacity, faultline_logger::DEFAULT_QUEUE_CAPACITY);
}
