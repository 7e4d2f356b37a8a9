//! `GET /metrics`: Prometheus text from the `metrics` facade. Open like `/healthz`: it
//! carries counts, never record content.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app_state::AppState;

/// Latency buckets (seconds) for every `*_seconds` histogram.
const SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Installs the process-wide recorder once and returns its handle (again on later calls,
/// so several servers in one test process share it).
pub(crate) fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; the handle still renders ours.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            spawn_upkeep(handle.clone());
            handle
        })
        .clone()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The name of the upkeep thread.
const UPKEEP_THREAD: &str = "metrics-upkeep";

/// Histogram samples wait in the recorder until upkeep (or a scrape) folds them into their
/// buckets: without a Prometheus scraping `/metrics`, every request's samples would pile up
/// for the life of the process. A small thread runs the upkeep on its own schedule.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name(UPKEEP_THREAD.into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms are folded only when /metrics is read");
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "faultline_ingest_requests_total",
        "Ingest requests by status"
    );
    describe_counter!(
        "faultline_ingest_requests_rejected_total",
        "Ingest requests refused whole, by reason"
    );
    describe_counter!(
        "faultline_ingest_records_accepted_total",
        "Records made durable"
    );
    describe_counter!(
        "faultline_ingest_records_rejected_total",
        "Records rejected, by reason"
    );
    describe_counter!(
        "faultline_ingest_records_duplicate_total",
        "Accepted records already stored under the same id"
    );
    describe_counter!("faultline_ingest_bytes_total", "Request body bytes as sent");
    describe_histogram!(
        "faultline_ingest_request_seconds",
        "Ingest request latency, durable write included"
    );
    describe_gauge!(
        "faultline_sink_queue_depth",
        "Batches waiting for the store"
    );
    describe_gauge!(
        "faultline_sink_queue_capacity",
        "Most batches that may wait"
    );
    describe_gauge!("faultline_sink_ready", "1 when the store accepts writes");
    describe_gauge!(
        "faultline_build_info",
        "1, labelled with the version and the compilation target"
    );
    describe_counter!(
        "faultline_tls_reloads_total",
        "TLS certificate reloads, by result (ok, error: the old certificate stays)"
    );
    describe_gauge!(
        "faultline_alerts_leader",
        "1 while this node evaluates the alert rules (on PostgreSQL: holds the leader lock)"
    );
}

/// The handler.
pub(crate) async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let h = state.store.health();
    // Labelled by the store, as the file store's writer labels the depth it sets itself:
    // one series per store, never the same name with and without the label.
    metrics::gauge!("faultline_sink_queue_depth", "sink" => h.kind).set(h.queue_depth as f64);
    metrics::gauge!("faultline_sink_queue_capacity", "sink" => h.kind).set(h.queue_capacity as f64);
    metrics::gauge!("faultline_sink_ready", "sink" => h.kind).set(if h.ready { 1.0 } else { 0.0 });
    crate::process_metrics::record();
    metrics::gauge!("faultline_alerts_leader").set(if state.alerts.is_leader() {
        1.0
    } else {
        0.0
    });
    state.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upkeep threads of this process, by their name.
    fn upkeep_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == UPKEEP_THREAD)
            .count()
    }

    #[test]
    fn installing_the_recorder_starts_the_upkeep_thread_once() {
        let _ = install();
        let _ = install();
        // A new thread names itself once it runs: wait for the name, then count.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while upkeep_threads() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = install();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(upkeep_threads(), 1, "one upkeep thread per process");
    }
}
