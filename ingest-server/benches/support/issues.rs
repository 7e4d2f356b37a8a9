//! Error records of 200 distinct fingerprints, and the same bytes as records that are not
//! errors, for the grouping rows of the ingest benchmark (issue grouping's cost at ingest).

/// Distinct fingerprints among the error records.
pub(crate) const FINGERPRINTS: usize = 200;

/// Record `i`: [`super::load::record`]'s fields with a 3-frame stack whose innermost function
/// is one of [`FINGERPRINTS`] names. As an error (`error: true`: level `ERROR`,
/// `meta.error_type`, `meta.stack`) it is grouped into the issue of that function; otherwise
/// the same bytes with level `DEBUG`, `meta.error_kind` and `meta.trace`, which no rule reads.
pub(crate) fn record(i: usize, error: bool) -> String {
    let (level, type_key, stack_key) = if error {
        ("ERROR", "error_type", "stack")
    } else {
        ("DEBUG", "error_kind", "trace")
    };
    let k = i % FINGERPRINTS;
    // Letters, not digits: digits in a function name are kept, but stay clear of templates.
    let name = format!(
        "{}{}",
        char::from(b'a' + (k / 26) as u8),
        char::from(b'a' + (k % 26) as u8)
    );
    format!(
        concat!(
            r#"{{"ts":"2026-11-22T14:{:02}:{:02}.{:03}Z","service":"ui","level":"{}","#,
            r#""event":"window.onerror","message":"TypeError: order {} is undefined","#,
            r#""meta":{{"{}":"TypeError","{}":["#,
            r#"{{"function":"Object.render_{}","file":"https://shop.example/assets/index-3f2a9c1b.js","line":{},"column":{}}},"#,
            r#"{{"function":"Array.forEach","file":"<anonymous>"}},"#,
            r#"{{"function":"main","file":"https://shop.example/assets/index-3f2a9c1b.js","line":1,"column":{}}}],"#,
            r#""user":"u_3f2a9c0d1b7e{:04x}","release":"shop@1.42.0","environment":"production","#,
            r#""url":"/checkout"}}}}"#
        ),
        i % 60,
        (i / 60) % 60,
        i % 1000,
        level,
        100_000 + i,
        type_key,
        stack_key,
        name,
        1 + i % 7,
        10 + i % 90,
        20 + i % 50,
        i % 65536,
    )
}

/// 16 pre-built requests of `batch` records each (see [`record`]).
pub(crate) fn requests(batch: usize, error: bool) -> Vec<Vec<u8>> {
    (0..16)
        .map(|v| {
            super::load::ingest_request(
                &(0..batch)
                    .map(|i| record(v * batch + i, error))
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// What [`run`] measured, each over the same rounds.
pub(crate) struct Grouping {
    /// Plain ingest: [`super::load::requests`] of 100.
    pub(crate) plain: super::load::Outcome,
    /// Error records of [`FINGERPRINTS`] fingerprints.
    pub(crate) errors: super::load::Outcome,
    /// The same bytes as records that are not errors.
    pub(crate) control: super::load::Outcome,
    /// The server's CPU seconds (user and system) during each: plain, errors, control.
    pub(crate) cpu: [f64; 3],
}

impl Grouping {
    /// The server's CPU µs per record of plain, errors, control: less swayed by other work
    /// on the machine than records/s.
    pub(crate) fn cpu_us_per_record(&self) -> [f64; 3] {
        let n = [&self.plain, &self.errors, &self.control].map(|o| o.records.max(1) as f64);
        [0, 1, 2].map(|i| self.cpu[i] * 1e6 / n[i])
    }
}

/// Rounds [`run`] alternates over.
const ROUNDS: u32 = 3;

/// The grouping rows at batch 100: plain ingest, error records of [`FINGERPRINTS`]
/// fingerprints and the same bytes as records that are not errors, in turn for [`ROUNDS`]
/// rounds of `duration / ROUNDS` each, so a change in the machine's speed (other work on it)
/// weighs on all three alike.
pub(crate) async fn run(
    nodes: &[String],
    server: u32,
    connections: usize,
    duration: std::time::Duration,
) -> Grouping {
    use super::load::{Outcome, load_requests};
    assert_eq!(record(7, true).len(), record(7, false).len());
    let mut g = Grouping {
        plain: Outcome::default(),
        errors: Outcome::default(),
        control: Outcome::default(),
        cpu: [0.0; 3],
    };
    let slice = duration / ROUNDS;
    for _ in 0..ROUNDS {
        let turns = [
            super::load::requests(100),
            requests(100, true),
            requests(100, false),
        ];
        for (i, reqs) in turns.into_iter().enumerate() {
            let cpu = super::cpu_seconds(server);
            let o = load_requests(nodes, reqs, 100, connections, slice, None).await;
            g.cpu[i] += super::cpu_seconds(server) - cpu;
            match i {
                0 => g.plain.add(o),
                1 => g.errors.add(o),
                _ => g.control.add(o),
            }
        }
    }
    g
}

/// Checks what the error rows left in `/issues`: [`FINGERPRINTS`] issues whose counts add up
/// to `acknowledged` (the store's writes may trail the 202 for a moment: waits up to 10 s).
/// Panics otherwise, so a benchmark of grouping that did not group fails.
pub(crate) async fn check(addr: &str, acknowledged: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (issues, total) = tally(addr).await;
        if (issues, total) == (FINGERPRINTS, acknowledged) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after the grouping rows /issues holds {issues} issues of {total} events, not \
             {FINGERPRINTS} of {acknowledged}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The issues of [`record`]'s functions on `/issues` and the sum of their counts.
async fn tally(addr: &str) -> (usize, u64) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    let (mut issues, mut total, mut cursor) = (0, 0, String::new());
    loop {
        let req = format!(
            "GET /issues?service=ui&status=all&limit=500{cursor} HTTP/1.1\r\nHost: bench\r\n\
             Authorization: Bearer {}\r\nAccept: application/json\r\n\r\n",
            super::load::ADMIN
        );
        let status = super::load::round_trip(&mut stream, req.as_bytes(), &mut buf)
            .await
            .unwrap();
        let start = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let page: serde_json::Value = serde_json::from_slice(&buf[start..]).unwrap();
        assert_eq!(status, 200, "{page}");
        for i in page["issues"].as_array().unwrap() {
            if i["culprit"]
                .as_str()
                .unwrap_or("")
                .starts_with("Object.render_")
            {
                issues += 1;
                total += i["count"].as_u64().unwrap();
            }
        }
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return (issues, total),
        }
    }
}
