//! What an ingest request costs its key's token bucket, whether it succeeds or not.
//!
//! Tokens are records. A request that reaches the store is charged one token per record it
//! sent, rejected and sampled ones included, before anything is written (`take`: 429 when
//! the bucket cannot pay). A request refused on the way (a body too large, not gzip or not
//! JSON, too many records or attributes, no room in the in-flight budget, a content type
//! the server does not read) is charged afterwards for the work it made the server do: the
//! records counted in it, or the bytes read and inflated at one token per
//! `max_decompressed_bytes / max_batch_records` bytes (the size of an average record in the
//! largest batch), whichever is more, and at least one token (`charge`: the bucket may go
//! into debt, and the key's next request waits for it). So a client cannot make the server
//! work for free by sending what it will refuse.
//!
//! A public key's request pays twice the same: its client address's bucket
//! (`limits.public_client_rate`) and the key's own, the address first, so a client over its
//! share is refused before it drains the bucket every browser holding the key shares.
//!
//! A key with a daily quota (`quota.rs`) counts the same records against it first: a batch
//! the quota cannot take is refused (429 until the next UTC day) before any bucket pays,
//! and a batch a bucket then refuses is uncounted. Refused requests' work is charged to the
//! buckets only, not to the quota, which counts records sent.
//!
//! Not charged: requests without a known key (401, or a public key from another origin),
//! requests the bucket itself refused (429), and the server's own failures (5xx other than
//! a full in-flight budget).

use std::net::IpAddr;

use crate::auth::Key;
use crate::config::Limits;
use crate::error::ApiError;

/// The work one request has made the server do so far, and whether its key paid for it.
#[derive(Debug)]
pub(crate) struct RequestCost<'k> {
    key: Option<&'k Key>,
    client: Option<IpAddr>,
    bytes: u64,
    records: usize,
    paid: bool,
    bytes_per_token: u64,
}

impl<'k> RequestCost<'k> {
    /// Nothing done yet, for a request from `client` (see [`crate::auth::ClientAddr`]).
    pub(crate) fn new(limits: &Limits, client: Option<IpAddr>) -> RequestCost<'k> {
        let records = u64::try_from(limits.max_batch_records).unwrap_or(u64::MAX);
        RequestCost {
            key: None,
            client,
            bytes: 0,
            records: 0,
            paid: false,
            bytes_per_token: (limits.max_decompressed_bytes / records.max(1)).max(1),
        }
    }

    /// The key that pays, once it is known: 429 without billing it when its bucket, or its
    /// bucket for this client address, cannot pay for a single record now (a cheap check
    /// before the body is read).
    pub(crate) fn bill_to(&mut self, key: &'k Key) -> Result<(), ApiError> {
        if let Some(quota) = &key.daily_quota
            && let Some(retry_after) = quota.counts.exhausted(&key.name, quota.records)
        {
            return Err(over_quota(key, quota.records, retry_after));
        }
        let client_wait = self
            .clients(key)
            .and_then(|(clients, client)| clients.empty(client));
        if let Some(retry_after) = client_wait {
            return Err(limited(key, true, retry_after));
        }
        if let Some(retry_after) = key.bucket.is_empty() {
            return Err(limited(key, false, retry_after));
        }
        self.key = Some(key);
        Ok(())
    }

    /// A public key's client buckets and this request's address, when both are known.
    fn clients(&self, key: &'k Key) -> Option<(&'k crate::ratelimit::ClientBuckets, IpAddr)> {
        Some((key.clients.as_ref()?, self.client?))
    }

    /// Bytes read from the client or inflated from what it sent.
    pub(crate) fn add_bytes(&mut self, bytes: u64) {
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// Records (or OTLP log records) counted in the body so far.
    pub(crate) fn counted_records(&mut self, records: usize) {
        self.records = self.records.max(records);
    }

    /// Takes one token per record sent (at least one) before records are stored: 429 when
    /// the bucket cannot pay, and then nothing more is charged.
    pub(crate) fn take(&mut self, sent: usize) -> Result<(), ApiError> {
        let Some(key) = self.key else {
            return Ok(());
        };
        self.paid = true;
        let records = u64::try_from(sent.max(1)).unwrap_or(u64::MAX);
        if let Some(quota) = &key.daily_quota {
            quota
                .counts
                .take(&key.name, quota.records, records)
                .map_err(|retry_after| over_quota(key, quota.records, retry_after))?;
        }
        let uncount = || {
            if let Some(quota) = &key.daily_quota {
                quota.counts.give_back(&key.name, records);
            }
        };
        let n = sent.max(1) as f64;
        let clients = self.clients(key);
        if let Some((clients, client)) = clients
            && let Err(retry_after) = clients.take(client, n)
        {
            uncount();
            return Err(limited(key, true, retry_after));
        }
        key.bucket.take(n).map_err(|retry_after| {
            // Refused by everyone's bucket: the client's share is not spent on it.
            if let Some((clients, client)) = clients {
                clients.give_back(client, n);
            }
            uncount();
            limited(key, false, retry_after)
        })
    }

    /// Charges a refused request (see the module docs) and hands its result on.
    pub(crate) fn settle<T>(self, result: Result<T, ApiError>) -> Result<T, ApiError> {
        if let (Err(error), Some(key), false) = (&result, self.key, self.paid)
            && charged(error)
        {
            let tokens = self.tokens() as f64;
            key.bucket.charge(tokens);
            if let Some((clients, client)) = self.clients(key) {
                clients.charge(client, tokens);
            }
        }
        result
    }

    /// What a refused request is charged.
    fn tokens(&self) -> u64 {
        let records = u64::try_from(self.records).unwrap_or(u64::MAX);
        (self.bytes / self.bytes_per_token).max(records).max(1)
    }
}

fn limited(key: &Key, per_client: bool, retry_after: std::time::Duration) -> ApiError {
    ApiError::RateLimited {
        key: key.name.clone(),
        per_client,
        retry_after,
    }
}

fn over_quota(key: &Key, quota: u64, retry_after: std::time::Duration) -> ApiError {
    ApiError::QuotaExceeded {
        key: key.name.clone(),
        quota,
        retry_after,
    }
}

/// Whether a refusal is charged: the client's doing, or a full in-flight budget (which a
/// client filling it would otherwise fill again for free); not a 429 or the server's own
/// failure.
fn charged(error: &ApiError) -> bool {
    match error {
        ApiError::RateLimited { .. } | ApiError::QuotaExceeded { .. } => false,
        ApiError::Unavailable { .. } => true,
        other => other.status().is_client_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_costs_its_records_or_its_bytes_and_at_least_one_token() {
        let limits = Limits::default();
        let per_token = limits.max_decompressed_bytes / limits.max_batch_records as u64;
        let mut cost = RequestCost::new(&limits, None);
        assert_eq!(cost.tokens(), 1);
        cost.add_bytes(per_token * 10);
        assert_eq!(cost.tokens(), 10);
        cost.counted_records(10_001);
        assert_eq!(cost.tokens(), 10_001);
        cost.add_bytes(limits.max_decompressed_bytes);
        assert_eq!(cost.tokens(), 10_010);
    }

    #[test]
    fn which_refusals_are_charged() {
        assert!(charged(&ApiError::bad_request("x")));
        assert!(charged(&ApiError::TooLarge("x".into())));
        assert!(charged(&ApiError::UnsupportedMediaType("x".into())));
        assert!(charged(&ApiError::Unavailable {
            message: "x".into(),
            retry_after: std::time::Duration::from_secs(1),
        }));
        assert!(!charged(&ApiError::RateLimited {
            key: "k".into(),
            per_client: true,
            retry_after: std::time::Duration::from_secs(1),
        }));
        assert!(!charged(&ApiError::Internal("x".into())));
    }
}
