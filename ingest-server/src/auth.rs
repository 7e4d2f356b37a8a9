//! Who is calling: ingest keys (public or secret) and the admin token.
//!
//! A key may arrive as `Authorization: Bearer <key>`, `X-Faultline-Key: <key>`, or `?key=`
//! (sendBeacon cannot set headers). Comparisons are constant-time.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use ipnet::IpNet;

use crate::config::{Config, KeyConfig, KeyKind, parse_proxy};
use crate::quota::Quotas;
use crate::ratelimit::{ClientBuckets, TokenBucket};

/// A resolved ingest key. Its `Debug` shows everything but the key itself.
pub struct Key {
    /// The configured name (for logs and metrics).
    pub name: String,
    /// Public or secret.
    pub kind: KeyKind,
    secret: String,
    /// Services it may write for; `None` means every service.
    pub services: Option<BTreeSet<String>>,
    /// Origins allowed to use it (public keys).
    pub origins: BTreeSet<String>,
    /// Its rate limit (shared with the key of the same name and limit after a reload).
    pub bucket: Arc<TokenBucket>,
    /// A public key's rate limit per client address (`limits.public_client_rate`); none
    /// for a secret key.
    pub clients: Option<Arc<ClientBuckets>>,
    /// Whether it may upload, list and delete source maps (`sourcemaps = true`).
    pub sourcemaps: bool,
    /// Its daily record quota (`daily_quota`, else `limits.daily_quota`), once
    /// [`KeyRing::count_quotas_in`] said where it is counted; `None`: no quota.
    pub(crate) daily_quota: Option<DailyQuota>,
    /// Records it may send per UTC day as configured (0: no quota).
    quota_records: u64,
}

/// A key's daily record quota and where it is counted.
#[derive(Debug, Clone)]
pub(crate) struct DailyQuota {
    /// Records per UTC day.
    pub records: u64,
    /// Every key's counts for today.
    pub counts: Arc<Quotas>,
}

impl Key {
    /// Whether this key may write records for `service`.
    pub fn allows_service(&self, service: &str) -> bool {
        self.services.as_ref().is_none_or(|s| s.contains(service))
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("secret", &REDACTED)
            .field("services", &self.services)
            .field("origins", &self.origins)
            .field("bucket", &self.bucket)
            .field("clients", &self.clients)
            .field("sourcemaps", &self.sourcemaps)
            .field("daily_quota", &self.quota_records)
            .finish()
    }
}

/// What `Debug` shows instead of a secret.
const REDACTED: Redacted = Redacted;

struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Every ingest key and the admin token. Its `Debug` shows neither the keys nor the token.
pub struct KeyRing {
    keys: Vec<Key>,
    admin_token: String,
    /// Every origin any public key allows (for CORS preflights, which carry no key).
    pub origins: BTreeSet<String>,
    /// Proxies whose `X-Forwarded-For` is believed (`trusted_proxies`).
    trusted_proxies: Vec<IpNet>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.keys)
            .field("admin_token", &REDACTED)
            .field("origins", &self.origins)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

impl KeyRing {
    /// Builds the ring from resolved key configs (with their values) and the admin token.
    pub fn new(config: &Config, keys: Vec<(KeyConfig, String)>, admin_token: String) -> KeyRing {
        let keys: Vec<Key> = keys
            .into_iter()
            .map(|(k, secret)| {
                let default_rate = match k.kind {
                    KeyKind::Public => config.limits.public_key_rate,
                    KeyKind::Secret => config.limits.secret_key_rate,
                };
                Key {
                    services: (!k.services.iter().any(|s| s == "*"))
                        .then(|| k.services.iter().cloned().collect()),
                    origins: k.origins.iter().cloned().collect(),
                    bucket: Arc::new(TokenBucket::new(k.rate_limit.unwrap_or(default_rate))),
                    clients: (k.kind == KeyKind::Public).then(|| {
                        Arc::new(ClientBuckets::new(
                            config.limits.public_client_rate,
                            config.limits.client_buckets,
                        ))
                    }),
                    sourcemaps: k.sourcemaps && k.kind == KeyKind::Secret,
                    daily_quota: None,
                    quota_records: k.daily_quota.unwrap_or(config.limits.daily_quota),
                    name: k.name,
                    kind: k.kind,
                    secret,
                }
            })
            .collect();
        let origins = keys
            .iter()
            .filter(|k| k.kind == KeyKind::Public)
            .flat_map(|k| k.origins.iter().cloned())
            .collect();
        KeyRing {
            keys,
            admin_token,
            origins,
            // `faultline validate` and the start report a bad entry; none is left here.
            trusted_proxies: config
                .trusted_proxies
                .iter()
                .filter_map(|p| parse_proxy(p))
                .collect(),
        }
    }

    /// Counts the daily quotas of the keys that have one in `counts` (before it, no quota
    /// is enforced).
    pub(crate) fn count_quotas_in(&mut self, counts: &Arc<Quotas>) {
        for key in &mut self.keys {
            key.daily_quota = (key.quota_records > 0).then(|| DailyQuota {
                records: key.quota_records,
                counts: Arc::clone(counts),
            });
        }
    }

    /// Takes over the token buckets of `previous`'s keys that have the same name, kind and
    /// limits (a reload): a key's clients do not get a full bucket because the file was
    /// reloaded, and a key whose limit changed starts with a full bucket at the new one.
    pub(crate) fn carry_over(&mut self, previous: &KeyRing) {
        for key in &mut self.keys {
            let Some(old) = previous
                .keys
                .iter()
                .find(|o| o.name == key.name && o.kind == key.kind)
            else {
                continue;
            };
            if old.bucket.limit() == key.bucket.limit() {
                key.bucket = Arc::clone(&old.bucket);
            }
            if let (Some(new), Some(old)) = (&mut key.clients, &old.clients)
                && new.same_limits(old)
            {
                *new = Arc::clone(old);
            }
        }
    }

    /// The address a request comes from: the peer's, or, when the peer is a trusted proxy,
    /// the rightmost `X-Forwarded-For` address that is not a trusted proxy itself (the one
    /// the nearest trusted proxy saw). Entries left of it are the client's to write and
    /// are never believed; an entry that does not parse stops the walk at the last one
    /// that did.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        let mut client = peer;
        if !trusted(&client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !trusted(&client) {
                break;
            }
        }
        client
    }

    /// The ingest key matching `presented`, if any.
    pub fn ingest_key(&self, presented: &str) -> Option<&Key> {
        // Check every key so the time taken does not reveal which one matched.
        let mut found = None;
        for key in &self.keys {
            if constant_time_eq(key.secret.as_bytes(), presented.as_bytes()) {
                found = Some(key);
            }
        }
        found
    }

    /// The first public key allowed to write for `service`, with its origins: what the
    /// demo panel served at `/` reports with (`GET /panel/config`). Public keys ship in
    /// browser code, so handing one out is no disclosure.
    pub fn public_key_for(&self, service: &str) -> Option<(&str, &BTreeSet<String>)> {
        self.keys
            .iter()
            .find(|k| k.kind == KeyKind::Public && k.allows_service(service))
            .map(|k| (k.secret.as_str(), &k.origins))
    }

    /// Whether `presented` is the admin token.
    pub fn is_admin(&self, presented: &str) -> bool {
        constant_time_eq(self.admin_token.as_bytes(), presented.as_bytes())
    }
}

/// The key a request presents, from the `Authorization` bearer, `X-Faultline-Key`, or the
/// `key` query parameter, in that order.
pub(crate) fn presented_key<'a>(
    headers: &'a HeaderMap,
    query_key: Option<&'a str>,
) -> Option<&'a str> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    bearer
        .or_else(|| {
            headers
                .get("x-faultline-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .or(query_key)
        .filter(|k| !k.is_empty())
}

/// One `X-Forwarded-For` entry: an address, with a port or in brackets as some proxies
/// write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
}

/// The client address of a request, for its per-address rate limit ([`KeyRing::client_address`]
/// of the connection's peer); `None` when the request came without a connection (in-process
/// tests), and then only the key's own limit applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) Option<IpAddr>);

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn key_sources_in_order() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h, Some("q")), Some("q"));
        h.insert("x-faultline-key", HeaderValue::from_static("hdr"));
        assert_eq!(presented_key(&h, Some("q")), Some("hdr"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer tok"));
        assert_eq!(presented_key(&h, Some("q")), Some("tok"));
        assert_eq!(presented_key(&HeaderMap::new(), Some("")), None);
    }

    /// Guards secrets in logs and panics: `Key` and `KeyRing` derived `Debug`, so any
    /// `{:?}` of them printed every ingest key and the admin token.
    #[test]
    fn debug_shows_no_secret() {
        let config = Config::default();
        let key = |name: &str, kind| KeyConfig {
            name: name.into(),
            kind,
            key: None,
            key_env: Some("X".into()),
            key_file: None,
            services: vec!["*".into()],
            origins: vec!["https://a.example".into()],
            rate_limit: None,
            daily_quota: None,
            sourcemaps: false,
        };
        let ring = KeyRing::new(
            &config,
            vec![
                (key("backend", KeyKind::Secret), "sk_very_secret_1".into()),
                (key("panel", KeyKind::Public), "pk_public_2".into()),
            ],
            "admin_token_3".into(),
        );
        let shown = format!("{ring:?} {:?} {ring:#?}", ring.keys[0]);
        for secret in ["sk_very_secret_1", "pk_public_2", "admin_token_3"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("backend") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let config = Config {
            trusted_proxies: vec!["10.0.0.0/8".into(), "::1".into()],
            ..Config::default()
        };
        let ring = KeyRing::new(&config, Vec::new(), "t".into());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let xff = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
            h
        };
        let none = HeaderMap::new();
        // An untrusted peer: its own address, whatever it writes.
        assert_eq!(
            ring.client_address(ip("198.51.100.1"), &xff("203.0.113.9")),
            ip("198.51.100.1")
        );
        // A trusted peer without the header: the peer.
        assert_eq!(ring.client_address(ip("10.1.1.1"), &none), ip("10.1.1.1"));
        // The rightmost untrusted hop; a client's forged entries on the left are ignored.
        assert_eq!(
            ring.client_address(ip("10.1.1.1"), &xff("6.6.6.6, 203.0.113.9, 10.2.2.2")),
            ip("203.0.113.9")
        );
        assert_eq!(
            ring.client_address(ip("::1"), &xff("[2001:db8::7]:443")),
            ip("2001:db8::7")
        );
        // Garbage stops the walk at the last address that parsed.
        assert_eq!(
            ring.client_address(ip("10.1.1.1"), &xff("203.0.113.9, nonsense, 10.2.2.2")),
            ip("10.2.2.2")
        );
        assert!(parse_proxy("10.0.0.0/33").is_none() && parse_proxy("fd00::/8").is_some());
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
