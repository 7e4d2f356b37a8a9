//! An axum service that logs through Faultline.
//!
//! [`CorrelationLayer`] reads the caller's W3C `traceparent` and `x-request-id` (or starts
//! them), opens a `request` span carrying `trace_id`, `span_id` and `correlation_id`, logs
//! one record per request with its status and duration, and returns both headers. Every
//! record logged inside a handler carries the same ids.
//!
//! ```text
//! cargo run -p faultline-logger --example axum_service
//! curl -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
//!      localhost:3000/orders/42
//! ```
//!
//! Records go to standard output; set `FAULTLINE_LOG_DIR` for a rotating file as well, and
//! `FAULTLINE_URL` with `FAULTLINE_KEY` to send errors to a Faultline server. Ctrl-C or
//! SIGTERM stops accepting, finishes the open requests, and then `main` returns, so the
//! guard drops and writes everything still queued.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use faultline_logger::{CorrelationLayer, FileConfig, HttpConfig, Output, Policy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut logger = faultline_logger::builder()
        .service("orders-api")
        .release(env!("CARGO_PKG_VERSION"))
        .heartbeat(Duration::from_secs(60))
        .output(
            Output::stdout()
                .policy(Policy::DropNewest)
                .never_drop_errors(true),
        );
    if let Ok(dir) = std::env::var("FAULTLINE_LOG_DIR") {
        logger = logger.output(Output::file(
            FileConfig::new(dir).max_bytes(64 << 20).keep_files(20),
        ));
    }
    if let (Ok(url), Ok(key)) = (
        std::env::var("FAULTLINE_URL"),
        std::env::var("FAULTLINE_KEY"),
    ) {
        logger =
            logger.output(Output::http(HttpConfig::new(url, key)).min_level(tracing::Level::ERROR));
    }
    // Dropped at the end of `main`, after the server has drained: nothing queued is lost.
    let _guard = logger.init()?;

    let app = Router::new()
        .route("/orders/{id}", get(order))
        .layer(CorrelationLayer::new());
    let addr: SocketAddr = std::env::var("LISTEN")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn order(Path(id): Path<u64>) -> Result<Json<serde_json::Value>, StatusCode> {
    if id == 0 {
        tracing::error!(order_id = id, "order 0 does not exist and never will");
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    tracing::debug!(order_id = id, "loading order");
    Ok(Json(serde_json::json!({ "id": id, "status": "shipped" })))
}

/// Ctrl-C or SIGTERM (what container runtimes send before killing).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
