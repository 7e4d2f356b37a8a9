//! SIGHUP: one listener for the process, fanned out to whoever reloads something (the TLS
//! certificate, the configuration).

use tokio::sync::broadcast;

/// Starts listening for SIGHUP; each signal is sent to every receiver of the returned
/// sender (`subscribe`). Without a signal handler (not Unix) nothing is ever sent.
pub(crate) fn sighup() -> broadcast::Sender<()> {
    let (tx, _) = broadcast::channel(4);
    let sender = tx.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload by restarting");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading");
            // No receiver (nothing to reload) is not an error.
            let _ = sender.send(());
        }
    });
    tx
}
