//! `GET /healthz` (the process answers) and `GET /readyz` (it can take writes).
//!
//! Both are open (load balancers call them without credentials), so they answer with
//! statuses and counts only, the same as `/metrics`: the store's error text (file paths,
//! SQL errors) is shown only to a request that carries the admin token.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::api::admin::Admin;
use crate::app_state::AppState;

/// Readiness fails once the ingest queue is this full, before it starts refusing writes.
const SATURATED: f64 = 0.9;

/// Liveness: always 200 while the process serves requests.
pub(crate) async fn healthz(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "uptime_seconds": state.started.elapsed().as_secs() }))
}

/// Readiness: the store accepts writes and the queue is not saturated. With the admin
/// token (in a header), the body also carries the store's last error (`store.last_error`,
/// and as the `reason` when that error is why it is not ready).
pub(crate) async fn readyz(
    State(state): State<AppState>,
    admin: Option<Admin>,
) -> (StatusCode, Json<Value>) {
    let h = state.store.health();
    let saturated =
        h.queue_capacity > 0 && h.queue_depth as f64 >= SATURATED * h.queue_capacity as f64;
    let ready = h.ready && !saturated;
    let last_error = h.last_error.filter(|_| admin.is_some());
    let reason = if !h.ready && h.spool.is_some() {
        "outage spool nearly full".to_owned()
    } else if !h.ready {
        last_error
            .clone()
            .unwrap_or_else(|| "store not ready (the admin token shows its last error)".into())
    } else if saturated {
        "ingest queue saturated".into()
    } else {
        String::new()
    };
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "alerts": { "leader": state.alerts.is_leader() },
        "reason": if ready { Value::Null } else { Value::String(reason) },
        "store": {
            "kind": h.kind,
            "ready": h.ready,
            "queue_depth": h.queue_depth,
            "queue_capacity": h.queue_capacity,
            "stored_bytes": h.stored_bytes,
            "last_error": last_error,
            "archive": h.archive.map(|a| json!({
                "failing": a.last_error.is_some(),
                "last_error": a.last_error.filter(|_| admin.is_some()),
                "files": a.files,
                "records": a.records,
            })),
            "spool": h.spool.map(|s| json!({
                "batches": s.batches,
                "records": s.records,
                "bytes": s.bytes,
                "capacity_bytes": s.capacity_bytes,
                "oldest_age_seconds": s.oldest_age_secs,
            })),
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
