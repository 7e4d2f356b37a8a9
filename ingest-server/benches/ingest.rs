//! Ingest benchmark: a load generator against the release `faultline` binary on loopback.
//!
//! Run with `cargo xtask bench ingest` (or `cargo bench -p faultline-server --bench ingest
//! -- --seconds 10`). It starts the server on a temp data dir with durable acks (the only
//! mode there is), then:
//!
//! 1. closed loop at batch sizes 1, 10 and 100: every connection sends its next request as
//!    soon as the previous one is answered; reports records/s, MB/s and latency;
//! 2. Sentry's `POST /api/1/envelope/`, one gzip event per envelope as SDKs send them,
//!    against batch 1 of `/logs/ingest` in the same run (the ratio is printed);
//! 3. grouping into issues at batch 100: error records of 200 fingerprints, the same bytes
//!    as records that are not errors, and plain ingest, in turns (the issues' counts are
//!    checked on `/issues` afterwards);
//! 4. open loop at half the batch-100 rate: requests go out on a fixed schedule and latency
//!    is measured from the scheduled time, so a slow response cannot hide the queue it
//!    causes (no coordinated omission);
//! 5. TLS: a second server with a self-signed certificate made for the run, at batch 100 in
//!    turns with the plain server, then the open loop at the same rate as the plain one;
//! 6. the competitor: Vector (`http_server` -> `file` with acknowledgements, the anchor in
//!    `../shared/anchors/`), fed the same records as NDJSON by the same loader at batch 10
//!    and 100.
//!
//! `--only issues,tls` (any of `batches`, `sentry`, `symbolication`, `issues`, `openloop`,
//! `tls`, `vector`) runs some of them, for profiling; `cargo xtask bench ingest` runs all.
//! Without `batches`, the steps compared with its rates (Sentry, symbolication, the open
//! loop) are skipped; grouping and TLS measure plain ingest in turns with their own rows.
//! `--only errors` (never run unless named) sends only the grouping step's error records,
//! for a profile of their path alone.
//!
//! The loader speaks raw HTTP/1.1 on keep-alive connections from one thread, so that as
//! much of the machine as possible is left to the server. It prints a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::time::Duration;

use tokio::net::TcpStream;

mod support;

use support::load::{
    fresh_db, ingest_request, load, load_requests, record, round_trip, row, start_server,
};
use support::sourcemap;

struct Args {
    seconds: u64,
    connections: usize,
    batches: Vec<usize>,
    /// A PostgreSQL superuser URL: the server then stores to a fresh database there.
    database_url: Option<String>,
    /// `unnest` or `copy`.
    pg_method: String,
    /// The steps to run (see the module docs); `None`: every one.
    only: Option<Vec<String>>,
}

impl Args {
    fn runs(&self, step: &str) -> bool {
        match &self.only {
            Some(only) => only.iter().any(|s| s == step),
            None => step != "errors",
        }
    }
}

/// The steps `--only` may name.
const STEPS: [&str; 8] = [
    "errors",
    "batches",
    "sentry",
    "symbolication",
    "issues",
    "openloop",
    "tls",
    "vector",
];

/// A headline figure for the summary (see [`support::load::figure`]).
struct Figure {
    name: String,
    unit: &'static str,
    value: f64,
    better: &'static str,
    competitor: Option<(String, f64)>,
    goal: Option<f64>,
}

impl Figure {
    fn new(name: impl Into<String>, unit: &'static str, value: f64, better: &'static str) -> Self {
        Figure {
            name: name.into(),
            unit,
            value,
            better,
            competitor: None,
            goal: None,
        }
    }

    fn goal(mut self, goal: Option<f64>) -> Self {
        self.goal = goal;
        self
    }
}

fn args() -> Args {
    let mut a = Args {
        seconds: 10,
        connections: 64,
        batches: vec![1, 10, 100],
        database_url: None,
        pg_method: "unnest".into(),
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(10),
            "--connections" => {
                a.connections = it.next().and_then(|v| v.parse().ok()).unwrap_or(64);
            }
            "--batches" => {
                a.batches = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|b| b.parse().ok())
                    .collect();
            }
            "--database-url" => a.database_url = it.next(),
            "--pg-method" => a.pg_method = it.next().unwrap_or_default(),
            "--only" => {
                let steps: Vec<String> = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_owned)
                    .collect();
                for s in &steps {
                    assert!(
                        STEPS.contains(&s.as_str()),
                        "--only {s}: the steps are {}",
                        STEPS.join(", ")
                    );
                }
                a.only = Some(steps);
            }
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

fn main() {
    let args = args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = args.database_url.as_deref().map(|base| fresh_db(&rt, base));
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(&str, &str)> = match &database {
        Some(url) => vec![
            ("DATABASE_URL", url.as_str()),
            ("FAULTLINE_POSTGRES_WRITE_METHOD", args.pg_method.as_str()),
            ("FAULTLINE_POSTGRES_POOL_SIZE", "16"),
            ("FAULTLINE_POSTGRES_WRITE_TIMEOUT", "30s"),
        ],
        None => Vec::new(),
    };
    let (mut server, addr) = start_server(dir.path(), &env);

    let nodes = [addr.clone()];
    let local = tokio::task::LocalSet::new();
    let duration = Duration::from_secs(args.seconds);
    let mut rows = Vec::new();
    let mut rate_at_100 = None;
    let mut figures: Vec<Figure> = Vec::new();
    let file_store = args.database_url.is_none();
    let mut rates: Vec<(usize, f64)> = Vec::new();
    let mut tls = None;
    let mut plain_open = None;
    let mut vector = Vec::new();
    let store = if args.database_url.is_some() {
        format!("PostgreSQL ({})", args.pg_method)
    } else {
        "file store".to_owned()
    };
    let (map, positions) = sourcemap::map();
    let mut symbolicated = None;
    let mut rate_at_1 = None;
    let mut grouping = None;
    let mut sentry = None;
    local.block_on(&rt, async {
        // Warm up: page cache, allocator, connection setup.
        load(&nodes, 10, args.connections, Duration::from_secs(1), None).await;
        let batches = if args.runs("batches") {
            &args.batches[..]
        } else {
            &[]
        };
        for &batch in batches {
            let o = load(&nodes, batch, args.connections, duration, None).await;
            eprintln!(
                "batch {batch}: {:.0} records/s",
                o.records as f64 / duration.as_secs_f64()
            );
            let rate = o.records as f64 / duration.as_secs_f64();
            if batch == 100 {
                rate_at_100 = Some(rate);
            }
            if batch == 1 {
                rate_at_1 = Some(rate);
            }
            rates.push((batch, rate));
            // The goals: 300,000 records/s at batch 100 on the file store, 100,000 at
            // batch 1000 on PostgreSQL.
            let goal = match (args.database_url.is_some(), batch) {
                (false, 100) => Some(300_000.0),
                (true, 1000) => Some(100_000.0),
                _ => None,
            };
            // Batch 10 and 100 get Vector beside them (step 6).
            if goal.is_some() || (file_store && batch == 10) {
                figures.push(
                    Figure::new(
                        format!("{store}: records/s at batch {batch}, durable acks"),
                        "records/s",
                        rate,
                        "higher",
                    )
                    .goal(goal),
                );
            }
            rows.push(row("max throughput (closed loop)", batch, &o));
        }
        // Sentry SDKs send one event per envelope, gzip: events/s against batch 1 above.
        if let Some(plain) = rate_at_1.filter(|_| args.runs("sentry")) {
            let reqs = (0..16).map(sentry_request).collect();
            let o = load_requests(&nodes, reqs, 1, args.connections, duration, None).await;
            let rate = o.records as f64 / duration.as_secs_f64();
            eprintln!("sentry envelopes: {rate:.0} events/s");
            rows.push(row(
                "Sentry envelope, one event, gzip (POST /api/1/envelope/)",
                1,
                &o,
            ));
            sentry = Some((plain, rate));
        }
        // Symbolication on: the same batch of 100, every record with 10 frames mapped
        // through a 2 MB map (file store only: the map store is the records' store).
        if let (Some(plain), true) = (rate_at_100, file_store && args.runs("symbolication")) {
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            let mut buf = Vec::new();
            let status = round_trip(&mut stream, &sourcemap::upload_request(&map), &mut buf)
                .await
                .unwrap();
            assert_eq!(status, 201, "{}", String::from_utf8_lossy(&buf));
            let reqs = (0..16)
                .map(|v| {
                    ingest_request(
                        &(0..100)
                            .map(|i| sourcemap::record(v * 100 + i, &positions))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            let o = load_requests(&nodes, reqs, 100, args.connections, duration, None).await;
            let rate = o.records as f64 / duration.as_secs_f64();
            eprintln!("batch 100, 10 mapped frames per record: {rate:.0} records/s");
            rows.push(row(
                "max throughput, 10 frames per record mapped (2 MB map)",
                100,
                &o,
            ));
            symbolicated = Some((plain, rate));
        }
        if args.runs("errors") {
            let reqs = support::issues::requests(100, true);
            let o = load_requests(&nodes, reqs, 100, args.connections, duration, None).await;
            rows.push(row("all errors, 200 fingerprints, alone", 100, &o));
        }
        // Grouping into issues: all-error records of 200 fingerprints against plain ingest
        // and against the same bytes as records that are not errors, in turns.
        if args.batches.contains(&100) && args.runs("issues") {
            let g = support::issues::run(&nodes, server.id(), args.connections, duration).await;
            support::issues::check(&addr, g.errors.records).await;
            let rate = |o: &support::load::Outcome| o.records as f64 / o.elapsed.as_secs_f64();
            eprintln!(
                "batch 100 in turns: plain {:.0} records/s, all errors of 200 fingerprints \
                 {:.0}, the same bytes not errors {:.0}",
                rate(&g.plain),
                rate(&g.errors),
                rate(&g.control)
            );
            rows.push(row("plain, in turns with the two below", 100, &g.plain));
            rows.push(row(
                "all errors, 200 fingerprints (grouped into issues)",
                100,
                &g.errors,
            ));
            rows.push(row("the same bytes, not errors (control)", 100, &g.control));
            grouping = Some((
                rate(&g.plain),
                rate(&g.errors),
                rate(&g.control),
                g.cpu_us_per_record(),
            ));
        }
        if let Some(rate) = rate_at_100.filter(|_| args.runs("openloop")) {
            let o = load(&nodes, 100, args.connections, duration, Some(rate / 2.0)).await;
            rows.push(row(
                &format!("open loop at {:.0} records/s (half of max)", rate / 2.0),
                100,
                &o,
            ));
            plain_open = Some((rate / 2.0, support::load::pct(&o.latencies_us, 0.99)));
            figures.push(
                Figure::new(
                    format!("{store}: p99 latency at half the batch-100 maximum"),
                    "ms",
                    support::load::pct(&o.latencies_us, 0.99),
                    "lower",
                )
                .goal(file_store.then_some(20.0)),
            );
        }
        // TLS (issue 26): a second server, same store, same key, with a certificate made
        // now; batch 100 in turns with the plain server, then the open loop at the plain
        // one's rate.
        if file_store && args.runs("tls") {
            let t = tls_rows(&addr, args.connections, duration, plain_open).await;
            rows.push(row("plain HTTP, in turns with TLS", 100, &t.plain));
            rows.push(row("TLS 1.3, in turns with plain HTTP", 100, &t.tls));
            rows.push(row(
                &format!("TLS 1.3, open loop at {:.0} records/s", t.open_rate),
                100,
                &t.tls_open,
            ));
            tls = Some(t);
        }
        // The competitor: Vector with the same loader, records and connections.
        if file_store && args.runs("vector") {
            let dir = tempfile::tempdir().unwrap();
            let v = support::vector::Vector::start(dir.path());
            let vnodes = [v.addr.clone()];
            load_requests(
                &vnodes,
                support::vector::requests(10),
                10,
                args.connections,
                Duration::from_secs(1),
                None,
            )
            .await;
            for batch in [10, 100] {
                let reqs = support::vector::requests(batch);
                let o = load_requests(&vnodes, reqs, batch, args.connections, duration, None).await;
                eprintln!(
                    "vector, batch {batch}: {:.0} records/s",
                    o.records as f64 / duration.as_secs_f64()
                );
                rows.push(row(
                    "Vector (http_server -> file, acks, no fsync), closed loop",
                    batch,
                    &o,
                ));
                vector.push((batch, o.records as f64 / duration.as_secs_f64()));
            }
            v.stop();
        }
    });
    let spool = local.block_on(&rt, async {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let mut buf = Vec::new();
        let req = b"GET /readyz HTTP/1.1\r\nHost: bench\r\n\r\n";
        round_trip(&mut stream, req, &mut buf).await.ok();
        let body = buf
            .split(|&b| b == b'\n')
            .next_back()
            .unwrap_or_default()
            .to_vec();
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .map(|v| v["store"]["spool"].clone())
    });
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .ok();
    let status = server.wait().unwrap();

    let store = match &database {
        Some(_) => format!(
            "PostgreSQL ({}, pool 16, durable commits); spool at the end: {}",
            args.pg_method,
            spool.map_or("?".into(), |s| s.to_string())
        ),
        None => "file store, durable acks (fsync before 202)".into(),
    };
    println!(
        "{} s per run, {} keep-alive connections, records of about {} bytes, {store}; server exit: {status}\n",
        args.seconds,
        args.connections,
        record(7).len()
    );
    println!("| run | batch | records/s | MB/s | p50 ms | p99 ms | max ms | errors |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        println!("{r}");
    }
    if let Some((plain, events)) = sentry {
        println!(
            "\nSentry protocol: {events:.0} events/s through `/api/1/envelope/` (one event of \
             about {} bytes, 8 frames, gzip, per envelope, as SDKs send them; the server \
             assigns ids, as for the records of `/logs/ingest`) against {plain:.0} records/s \
             through `/logs/ingest` at batch 1 in the same run: {:.2} of it.",
            sentry_event(0).len(),
            events / plain
        );
        figures.push(Figure::new(
            "Sentry envelopes: events/s relative to /logs/ingest at batch 1",
            "ratio",
            events / plain,
            "higher",
        ));
    }
    if let Some((plain, mapped)) = symbolicated {
        let measured = sourcemap::in_process(&map, &positions);
        let frames = sourcemap::FRAMES as f64;
        let machine_us = (1.0 / mapped - 1.0 / plain) * 1e6 / frames;
        println!(
            "\nSymbolication: a {:.1} MB map (60 sources with content, 150,000 tokens), {} \
             frames per record. Through HTTP, batch 100: {mapped:.0} records/s mapped against \
             {plain:.0} plain in the same run, {machine_us:.2} µs of the machine per frame. \
             In one process (the server's symbolicator over the file store, batches of 100): \
             {:.2} µs per frame once the map is cached; first use of the map {:.1} ms (its \
             parse alone {:.1} ms).",
            map.len() as f64 / 1e6,
            sourcemap::FRAMES,
            measured.per_frame.as_secs_f64() * 1e6,
            measured.first_use.as_secs_f64() * 1e3,
            measured.parse.as_secs_f64() * 1e3,
        );
        figures.push(
            Figure::new(
                "symbolication: µs per frame, map cached",
                "µs",
                measured.per_frame.as_secs_f64() * 1e6,
                "lower",
            )
            .goal(Some(15.0)),
        );
        figures.push(
            Figure::new(
                "symbolication: first use of a 2 MB map",
                "ms",
                measured.first_use.as_secs_f64() * 1e3,
                "lower",
            )
            .goal(Some(100.0)),
        );
    }
    if let Some((plain, errors, control, [cpu_plain, cpu_errors, cpu_control])) = grouping {
        // Wall-clock time per row the grouping adds at saturation: on PostgreSQL mostly the
        // upsert of the row's issue (and its user and hour) in the batch's transaction.
        let per_row_us = (1.0 / errors - 1.0 / control) * 1e6;
        println!(
            "\nGrouping into issues, batch 100: {errors:.0} records/s when every record is an \
             error of one of {} fingerprints (3 frames each; every count checked on /issues \
             afterwards), {control:.0} for the same bytes as records that are not errors, \
             {plain:.0} for plain ingest in turns with them: {:.2} of plain, {:.2} of the \
             control, {per_row_us:.2} µs more per error row. The server's CPU per record: \
             {cpu_errors:.2} µs for the errors, {cpu_control:.2} for the control, \
             {cpu_plain:.2} for plain ({:.2} and {:.2} of the errors' cost: the records/s \
             ratios of a server bound by its CPU).",
            support::issues::FINGERPRINTS,
            errors / plain,
            errors / control,
            cpu_plain / cpu_errors,
            cpu_control / cpu_errors,
        );
        if args.database_url.is_some() {
            figures.push(Figure::new(
                format!(
                    "PostgreSQL ({}): issue grouping, µs per error row (issue upsert)",
                    args.pg_method
                ),
                "µs",
                per_row_us,
                "lower",
            ));
        } else {
            figures.push(Figure::new("file store: all-error records (200 issues) relative to plain ingest, batch 100", "ratio", errors / plain, "higher").goal(Some(0.9)));
            figures.push(
                Figure::new(
                    "file store: server CPU per record, plain over all-error (200 issues)",
                    "ratio",
                    cpu_plain / cpu_errors,
                    "higher",
                )
                .goal(Some(0.9)),
            );
        }
    }
    if let Some(t) = tls {
        let rate = |o: &support::load::Outcome| o.records as f64 / o.elapsed.as_secs_f64();
        let (plain, over_tls) = (rate(&t.plain), rate(&t.tls));
        let p99 = support::load::pct(&t.tls_open.latencies_us, 0.99);
        println!(
            "\nTLS: {over_tls:.0} records/s at batch 100 over TLS 1.3 (rustls, a self-signed \
             ECDSA P-256 certificate made for the run, HTTP/1.1 keep-alive, the loader \
             encrypting too) against {plain:.0} over plain HTTP in turns with it: {:.2} of \
             plain. Open loop at {:.0} records/s over TLS: p99 {p99:.2} ms{}.",
            over_tls / plain,
            t.open_rate,
            t.plain_open_p99.map_or(String::new(), |p| format!(
                " (plain HTTP at the same rate, above: {p:.2} ms)"
            )),
        );
        figures.push(
            Figure::new(
                "file store over TLS: records/s at batch 100 relative to plain HTTP",
                "ratio",
                over_tls / plain,
                "higher",
            )
            .goal(Some(0.85)),
        );
        figures.push(Figure::new(
            "file store over TLS: p99 latency at half the batch-100 maximum",
            "ms",
            p99,
            "lower",
        ));
    }
    if !vector.is_empty() {
        let version = support::vector::Vector::version();
        let name = version
            .split(" (")
            .next()
            .unwrap_or("vector")
            .replace("vector", "Vector");
        let mut parts = Vec::new();
        for (batch, theirs) in &vector {
            let ours = rates.iter().find(|(b, _)| b == batch).map(|(_, r)| *r);
            parts.push(match ours {
                Some(ours) => format!(
                    "batch {batch}: {theirs:.0} records/s against Faultline's {ours:.0} \
                     ({:.1}x)",
                    ours / theirs
                ),
                None => format!("batch {batch}: {theirs:.0} records/s"),
            });
            let figure = format!("file store: records/s at batch {batch}, durable acks");
            if let Some(f) = figures.iter_mut().find(|f| f.name == figure) {
                f.competitor = Some((format!("{name}, acks before fsync"), *theirs));
            }
        }
        println!(
            "\nCompetitor: {version}, `http_server` -> `file` with end-to-end acknowledgements \
             (../shared/anchors/vector-http-file.toml), fed the same records as NDJSON by the \
             same loader on the same connections, after Faultline's rows: {}. Vector \
             acknowledges once a record is written to its file, without fsync; Faultline \
             only after fsync, so the comparison favours Vector.",
            parts.join("; ")
        );
    }
    for f in figures {
        let competitor = f.competitor.as_ref().map(|(who, v)| (who.as_str(), *v));
        support::load::figure(&f.name, f.unit, f.value, f.better, competitor, f.goal);
    }
}

/// What the TLS step measured (the rows of issue 26).
struct TlsRows {
    /// Batch 100 to the plain server, in turns with [`TlsRows::tls`].
    plain: support::load::Outcome,
    /// Batch 100 to the TLS server.
    tls: support::load::Outcome,
    /// The open loop over TLS at [`TlsRows::open_rate`].
    tls_open: support::load::Outcome,
    open_rate: f64,
    /// The plain open loop's p99 at the same rate, if it ran.
    plain_open_p99: Option<f64>,
}

/// Rounds of the plain and TLS turns.
const TLS_ROUNDS: u32 = 3;

/// Starts a second server with TLS (a certificate made now), measures batch 100 on it in
/// turns with the plain server at `plain_addr` ([`TLS_ROUNDS`] rounds sharing `duration`
/// each), then its open loop at `plain_open`'s rate (else half the plain rate just measured).
async fn tls_rows(
    plain_addr: &str,
    connections: usize,
    duration: Duration,
    plain_open: Option<(f64, f64)>,
) -> TlsRows {
    use support::load::{Outcome, load_over, requests};
    let dir = tempfile::tempdir().unwrap();
    let certs = support::tls::generate(dir.path());
    let (mut server, addr) = start_server(
        &dir.path().join("data"),
        &[
            ("FAULTLINE_TLS_CERT", certs.cert.to_str().unwrap()),
            ("FAULTLINE_TLS_KEY", certs.key.to_str().unwrap()),
        ],
    );
    let (plain_nodes, tls_nodes) = ([plain_addr.to_owned()], [addr]);
    let tls = Some(certs.connector);
    let warm_up = Duration::from_secs(1);
    load_over(
        &tls_nodes,
        tls.clone(),
        requests(10),
        10,
        connections,
        warm_up,
        None,
    )
    .await;
    let (mut plain, mut over_tls) = (Outcome::default(), Outcome::default());
    let slice = duration / TLS_ROUNDS;
    for _ in 0..TLS_ROUNDS {
        plain.add(
            load_over(
                &plain_nodes,
                None,
                requests(100),
                100,
                connections,
                slice,
                None,
            )
            .await,
        );
        over_tls.add(
            load_over(
                &tls_nodes,
                tls.clone(),
                requests(100),
                100,
                connections,
                slice,
                None,
            )
            .await,
        );
    }
    let plain_rate = plain.records as f64 / plain.elapsed.as_secs_f64();
    eprintln!(
        "batch 100 in turns: plain {plain_rate:.0} records/s, TLS {:.0}",
        over_tls.records as f64 / over_tls.elapsed.as_secs_f64()
    );
    let open_rate = plain_open.map_or(plain_rate / 2.0, |(rate, _)| rate);
    let tls_open = load_over(
        &tls_nodes,
        tls,
        requests(100),
        100,
        connections,
        duration,
        Some(open_rate),
    )
    .await;
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .ok();
    server.wait().ok();
    TlsRows {
        plain,
        tls: over_tls,
        tls_open,
        open_rate,
        plain_open_p99: plain_open.map(|(_, p99)| p99),
    }
}

/// A browser error as `@sentry/browser` sends it: an exception with 8 frames, breadcrumbs,
/// tags, contexts, the SDK and a user; no `event_id`, so every one is stored.
fn sentry_event(i: usize) -> String {
    let frames: Vec<String> = (0..8)
        .map(|f| {
            format!(
                r#"{{"filename":"https://shop.example/assets/index-4f2a9c.js","function":"fn{f}_{i}","in_app":true,"lineno":{},"colno":{}}}"#,
                1 + f,
                100 + f * 37
            )
        })
        .collect();
    format!(
        concat!(
            r#"{{"level":"error","platform":"javascript","timestamp":1764000000.{:03},"#,
            r#""release":"shop@1.4.2","environment":"production","#,
            r#""exception":{{"values":[{{"type":"TypeError","value":"Cannot read properties of undefined (reading 'total') #{}","#,
            r#""mechanism":{{"type":"onerror","handled":false}},"stacktrace":{{"frames":[{}]}}}}]}},"#,
            r#""breadcrumbs":[{{"timestamp":1764000000.0,"category":"ui.click","message":"button#pay"}},"#,
            r#"{{"timestamp":1764000000.5,"category":"fetch","data":{{"method":"POST","url":"/api/cart","status_code":500}}}}],"#,
            r#""tags":{{"page":"cart"}},"contexts":{{"browser":{{"name":"Chrome","version":"131.0"}},"os":{{"name":"Linux"}}}},"#,
            r#""request":{{"url":"https://shop.example/cart","headers":{{"User-Agent":"Mozilla/5.0"}}}},"#,
            r#""user":{{"id":"{}"}},"sdk":{{"name":"sentry.javascript.browser","version":"10.0.0"}}}}"#
        ),
        i % 1000,
        i,
        frames.join(","),
        1000 + i
    )
}

/// `POST /api/1/envelope/` of one gzip envelope holding [`sentry_event`] `i`.
fn sentry_request(i: usize) -> Vec<u8> {
    use std::io::Write as _;
    let envelope = format!(
        "{{\"sent_at\":\"2026-11-22T14:00:00Z\"}}\n{{\"type\":\"event\"}}\n{}\n",
        sentry_event(i)
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(envelope.as_bytes()).unwrap();
    let body = gz.finish().unwrap();
    let mut req = format!(
        "POST /api/1/envelope/ HTTP/1.1\r\nHost: bench\r\nX-Sentry-Auth: Sentry \
         sentry_key={}, sentry_version=7\r\nContent-Type: application/x-sentry-envelope\r\n\
         Content-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        support::load::KEY,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    req
}
