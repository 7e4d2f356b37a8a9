//! TLS for the ingest benchmark: a self-signed certificate for 127.0.0.1 made on the spot,
//! and a client that trusts it and nothing else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The certificate and key files under `dir`, for `--tls-cert` and `--tls-key`, and a
/// connector whose only root is that certificate.
pub(crate) struct BenchTls {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) connector: tokio_rustls::TlsConnector,
}

/// Generates a self-signed certificate (ECDSA P-256, rcgen's default, as Let's Encrypt
/// issues for many sites) for `127.0.0.1` and `localhost` into `dir`.
pub(crate) fn generate(dir: &Path) -> BenchTls {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("generate a self-signed certificate");
    let cert = dir.join("bench.pem");
    let key = dir.join("bench.key");
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(generated.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    BenchTls {
        cert,
        key,
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
    }
}
