//! TLS in the process (rustls on ring; no OpenSSL): TLS 1.2 and 1.3, HTTP/2 or HTTP/1.1 by
//! ALPN, and a certificate that is replaced without a restart.
//!
//! The certificate lives behind a resolver ([`ReloadingCert`]) that every new handshake asks;
//! a reload swaps what it holds, so connections already open keep their session and new
//! ones get the new certificate. Reloads happen on SIGHUP and when the files change.
//!
//! Changes are found by polling the files' modification time, length and inode every
//! `tls.watch_interval` (two `stat` calls) rather than with inotify (the `notify` crate):
//! certbot swaps symlinks under `live/` and Kubernetes swaps a `..data` symlink over a
//! directory, which inotify on the named files misses unless the watcher follows every
//! level; a `stat` of the path follows the links and sees the new file whatever the swap.
//! It costs nothing measurable and adds no dependency.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate and key files, as configured.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub(crate) cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub(crate) key: PathBuf,
}

/// Reads and checks the certificate chain and key: the key must match the leaf.
pub(crate) fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("cannot read certificate {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad PEM in certificate {}", files.cert.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("cannot read a private key from {}", files.key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(certs, key, &provider).with_context(|| {
        format!(
            "certificate {} and key {} do not go together",
            files.cert.display(),
            files.key.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// The certificate new handshakes get; replaced by [`ReloadingCert::reload`].
#[derive(Debug)]
pub(crate) struct ReloadingCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCert {
    /// Loads the files once; an error here stops the start.
    pub(crate) fn new(files: TlsFiles) -> Result<ReloadingCert> {
        let current = RwLock::new(load(&files)?);
        Ok(ReloadingCert { files, current })
    }

    /// Reads the files again. On success new handshakes use them; on failure the old
    /// certificate stays, the reason is logged and `faultline_tls_reloads_total{result="error"}`
    /// counts it.
    pub(crate) fn reload(&self) -> bool {
        match load(&self.files) {
            Ok(new) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = new;
                metrics::counter!("faultline_tls_reloads_total", "result" => "ok").increment(1);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                metrics::counter!("faultline_tls_reloads_total", "result" => "error").increment(1);
                tracing::error!(error = %format!("{e:#}"), "TLS certificate not reloaded; keeping the old one");
                false
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

/// The rustls configuration: TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`, the certificate
/// from `cert`.
pub(crate) fn server_config(cert: Arc<ReloadingCert>) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What identifies a file's content cheaply: modification time, length, inode.
fn fingerprint(path: &Path) -> Option<(std::time::SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// Reloads `cert` when either file changes (polled every `every`) and on each `hup`
/// (SIGHUP). A half-written pair (key renewed, certificate not yet) fails the key check and
/// keeps the old certificate; the next change of either file tries again.
pub(crate) async fn watch(
    cert: Arc<ReloadingCert>,
    every: Duration,
    mut hup: tokio::sync::broadcast::Receiver<()>,
) {
    let seen = |c: &ReloadingCert| (fingerprint(&c.files.cert), fingerprint(&c.files.key));
    let mut last = seen(&cert);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = seen(&cert);
                if now != last {
                    last = now;
                    cert.reload();
                }
            }
            r = hup.recv() => {
                if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    return;
                }
                last = seen(&cert);
                cert.reload();
            }
        }
    }
}
