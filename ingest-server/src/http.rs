//! The connection loop: HTTP/1.1 in plain text, HTTP/2 or HTTP/1.1 (by ALPN) over TLS.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never runs: a client
//! that sends its headers a byte at a time, or opens a connection and sends nothing, holds
//! it (and a task and its buffers) forever, and enough of them exhaust the server's file
//! descriptors. This loop is `axum::serve` with a timer: a request's headers must arrive
//! within the request timeout (a TLS handshake too), and an idle keep-alive connection is
//! closed after it. The body is then bounded by the same timeout in the router's deadline
//! layer (408).
//!
//! On shutdown the listener closes, open connections finish the requests they have
//! (graceful), and whatever is still open after `shutdown_timeout` is closed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// How long to wait after a failed `accept` (out of file descriptors, most likely) before
/// trying again, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How the loop serves.
pub(crate) struct ServeOptions {
    /// Headers (and a TLS handshake) must arrive within this; idle connections close after it.
    pub(crate) header_timeout: Duration,
    /// After the stop, how long open connections get before they are closed.
    pub(crate) shutdown_timeout: Duration,
    /// TLS, when configured.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, waits for
/// open connections to finish their requests for at most `shutdown_timeout`, and closes
/// the rest.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(options.header_timeout))
        .keep_alive_timeout(options.header_timeout);
    let acceptor = options.tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    // Set once the shutdown deadline passes: every connection task drops its connection.
    let (close_tx, close_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // The peer's address, for per-client rate limits (`auth::ClientAddr`).
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let mut close = close_rx.clone();
        let Some(acceptor) = acceptor.clone() else {
            let connection = graceful.watch(http1.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(until_closed(connection, close));
            continue;
        };
        // The handshake runs in the connection's task, bounded by the header timeout, so a
        // slow or silent client holds neither the accept loop nor a task for long.
        let (http1, http2) = (http1.clone(), http2.clone());
        let watcher = graceful.watcher();
        let timeout = options.header_timeout;
        tokio::spawn(async move {
            let handshake = tokio::select! {
                r = tokio::time::timeout(timeout, acceptor.accept(stream)) => r,
                _ = close.changed() => return,
            };
            let tls = match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = TokioIo::new(tls);
            if h2 {
                until_closed(watcher.watch(http2.serve_connection(io, service)), close).await;
            } else {
                until_closed(watcher.watch(http1.serve_connection(io, service)), close).await;
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(options.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout = ?options.shutdown_timeout,
            "connections still open at the shutdown deadline; closing them"
        );
        let _ = close_tx.send(true);
        // Let the tasks run their drops (the sockets close) before the store drains.
        tokio::task::yield_now().await;
    }
}

/// Runs a connection until it ends or `close` says the shutdown deadline has passed (the
/// connection, and its socket, are then dropped).
async fn until_closed<E: std::fmt::Display>(
    connection: impl Future<Output = Result<(), E>>,
    mut close: watch::Receiver<bool>,
) {
    tokio::select! {
        r = connection => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        }
        _ = close.wait_for(|closed| *closed) => {}
    }
}
