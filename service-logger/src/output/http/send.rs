//! One `POST /logs/ingest` and what its answer means for the batch.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use flate2::Compression;
use flate2::write::GzEncoder;

/// Longest `Retry-After` honored; a larger value (or a date far ahead) waits this long.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What the endpoint did with a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx: stored (`accepted`), already stored (`duplicates`), or refused per record.
    Accepted {
        accepted: u64,
        duplicates: u64,
        rejected: u64,
        first_error: Option<String>,
    },
    /// Worth retrying: a connection error, a timeout, 408, 429 or 5xx.
    Retry {
        retry_after: Option<Duration>,
        error: String,
    },
    /// 413: the batch is too large for the server; smaller ones may pass.
    TooLarge,
    /// Any other 4xx (and unexpected statuses): retrying cannot help.
    Rejected { error: String },
}

/// What a request needs.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) client: reqwest::Client,
    pub(crate) url: reqwest::Url,
    pub(crate) auth: Arc<str>,
    pub(crate) gzip: bool,
}

/// Sends `body` (NDJSON) and classifies the answer. Never panics and never returns early:
/// every failure is an [`Outcome`].
pub(crate) async fn send(req: Request, body: Arc<Vec<u8>>, records: u64) -> Outcome {
    let mut builder = req
        .client
        .post(req.url.clone())
        .header(reqwest::header::AUTHORIZATION, &*req.auth)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson");
    let payload = if req.gzip {
        let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
        match enc.write_all(&body).and_then(|()| enc.finish()) {
            Ok(gz) => {
                builder = builder.header(reqwest::header::CONTENT_ENCODING, "gzip");
                gz
            }
            Err(_) => body.to_vec(),
        }
    } else {
        body.to_vec()
    };
    let response = match builder.body(payload).send().await {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Retry {
                retry_after: None,
                error: format!("POST {}: {}", req.url, error_chain(&e)),
            };
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let text = response.text().await.unwrap_or_default();
    classify(status.as_u16(), retry_after, &text, records)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    crate::capture::ErrorChain(e).to_string()
}

/// The outcome of a response with `status`, its `Retry-After` and `body`.
pub(crate) fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
    records: u64,
) -> Outcome {
    let snippet = || {
        let mut s: String = body.chars().take(300).collect();
        if s.len() < body.len() {
            s.push('…');
        }
        format!("HTTP {status}: {s}")
    };
    match status {
        200..=299 => {
            let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            let num = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
            let rejected_list = v.get("rejected").and_then(|r| r.as_array());
            let first_error = rejected_list.and_then(|r| r.first()).map(|r| {
                r.get("error")
                    .and_then(|e| e.as_str())
                    .unwrap_or("rejected")
                    .to_owned()
            });
            let listed = rejected_list.map_or(0, |r| r.len() as u64);
            let accepted = num("accepted").unwrap_or(records.saturating_sub(listed));
            let duplicates = num("duplicates").unwrap_or(0);
            Outcome::Accepted {
                accepted,
                duplicates,
                rejected: listed.max(records.saturating_sub(accepted + duplicates)),
                first_error,
            }
        }
        408 | 429 | 500..=599 => Outcome::Retry {
            retry_after,
            error: snippet(),
        },
        413 => Outcome::TooLarge,
        _ => Outcome::Rejected { error: snippet() },
    }
}

/// `Retry-After`: delay-seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_api_documents() {
        let ok = classify(
            202,
            None,
            r#"{"accepted":2,"duplicates":1,"rejected":[{"index":3,"error":"level: bad"}]}"#,
            4,
        );
        assert_eq!(
            ok,
            Outcome::Accepted {
                accepted: 2,
                duplicates: 1,
                rejected: 1,
                first_error: Some("level: bad".into())
            }
        );
        let plain = classify(200, None, "", 5);
        assert!(matches!(
            plain,
            Outcome::Accepted {
                accepted: 5,
                rejected: 0,
                ..
            }
        ));
        for s in [408, 429, 500, 502, 503] {
            assert!(
                matches!(classify(s, None, "x", 1), Outcome::Retry { .. }),
                "{s}"
            );
        }
        assert_eq!(classify(413, None, "", 1), Outcome::TooLarge);
        for s in [400, 401, 403, 404, 415, 422, 302] {
            assert!(
                matches!(classify(s, None, "x", 1), Outcome::Rejected { .. }),
                "{s}"
            );
        }
        let Outcome::Retry { retry_after, .. } = classify(429, Some(Duration::from_secs(3)), "", 1)
        else {
            panic!()
        };
        assert_eq!(retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
