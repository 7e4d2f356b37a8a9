//! What one stored error event adds to its issue, and the top values among an issue's events.

use std::collections::HashMap;

use faultline_schema::{Level, Record, Timestamp, Value, fingerprint};
use serde::Serialize;

/// What one stored record adds to its issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueEvent {
    /// The record's `issue`.
    pub issue: String,
    /// Its service.
    pub service: String,
    /// Its level.
    pub level: Level,
    /// The issue's title if this event creates it.
    pub title: String,
    /// The issue's culprit if this event creates it.
    pub culprit: String,
    /// `meta.error_type`.
    pub error_type: Option<String>,
    /// When it happened.
    pub ts: Timestamp,
    /// How many events it stands for ([`event_weight`]).
    pub weight: u64,
    /// `meta.user`.
    pub user: Option<String>,
    /// `meta.release`.
    pub release: Option<String>,
}

/// How many events a record stands for: `meta.count` (folded duplicates; default and
/// minimum 1) times [`Record::sample_weight`], saturating.
pub fn event_weight(record: &Record) -> u64 {
    let count = record
        .meta
        .get("count")
        .and_then(Value::as_u64)
        .map_or(1, |c| c.max(1));
    count.saturating_mul(record.sample_weight())
}

fn meta_str(record: &Record, key: &str) -> Option<String> {
    record
        .meta
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl IssueEvent {
    /// The event of a record that carries an issue; `None` for other records.
    pub fn from_record(record: &Record) -> Option<IssueEvent> {
        let mut event = IssueEvent::undescribed(record)?;
        event.title =
            fingerprint::title(event.error_type.as_deref(), &record.message, &record.event);
        event.culprit = fingerprint::culprit(record);
        Some(event)
    }

    /// [`IssueEvent::from_record`] without the title and culprit (left empty), which only
    /// an event that creates its issue needs: the culprit reads the frames again, as much
    /// work as the fingerprint. The file store's writer describes the few events that
    /// create an issue from their stored line.
    pub fn undescribed(record: &Record) -> Option<IssueEvent> {
        let issue = record.issue.clone()?;
        let error_type = meta_str(record, "error_type");
        Some(IssueEvent {
            issue,
            service: record.service.clone(),
            level: record.level,
            title: String::new(),
            culprit: String::new(),
            error_type,
            ts: record.ts,
            weight: event_weight(record),
            user: meta_str(record, "user"),
            release: meta_str(record, "release"),
        })
    }
}

/// A value and how many events had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagCount {
    /// The value.
    pub value: String,
    /// Events with it.
    pub count: u64,
}

/// The most common values among an issue's events, most common first (ties by value), at
/// most [`IssueTags::TOP`] each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IssueTags {
    /// `meta.release`.
    pub release: Vec<TagCount>,
    /// `meta.environment`.
    pub environment: Vec<TagCount>,
    /// The browser and its major version, from `meta.user_agent` ([`browser_of`]).
    pub browser: Vec<TagCount>,
    /// The path of `meta.url` ([`url_path`]).
    pub url: Vec<TagCount>,
}

impl IssueTags {
    /// Values kept per tag.
    pub const TOP: usize = 10;

    /// The tags of `records`, each counted as the events it stands for.
    pub fn from_records(records: &[Record]) -> IssueTags {
        let mut counts: [HashMap<String, u64>; 4] = Default::default();
        for r in records {
            let w = event_weight(r);
            let values = [
                meta_str(r, "release"),
                meta_str(r, "environment"),
                r.meta
                    .get("user_agent")
                    .and_then(Value::as_str)
                    .map(browser_of),
                r.meta.get("url").and_then(Value::as_str).map(url_path),
            ];
            for (map, value) in counts.iter_mut().zip(values) {
                if let Some(v) = value {
                    let slot = map.entry(v).or_default();
                    *slot = slot.saturating_add(w);
                }
            }
        }
        let [release, environment, browser, url] = counts.map(top);
        IssueTags {
            release,
            environment,
            browser,
            url,
        }
    }
}

fn top(map: HashMap<String, u64>) -> Vec<TagCount> {
    let mut v: Vec<TagCount> = map
        .into_iter()
        .map(|(value, count)| TagCount { value, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v.truncate(IssueTags::TOP);
    v
}

/// The browser and its major version named by a user agent (`Chrome 120`, `Firefox 121`,
/// `Safari 17`, `Edge 120`, `Opera 105`), else `Other`.
pub fn browser_of(user_agent: &str) -> String {
    // Order matters: Edge and Opera say Chrome too, Chrome says Safari.
    let named = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
    ];
    for (marker, name) in named {
        if let Some(at) = user_agent.find(marker) {
            let version: String = user_agent[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if name == "Safari" && !user_agent.contains("Safari/") {
                continue;
            }
            return if version.is_empty() {
                name.to_owned()
            } else {
                format!("{name} {version}")
            };
        }
    }
    "Other".to_owned()
}

/// The path of a URL: no scheme, host, query or fragment (`https://a.io/cart?id=7` →
/// `/cart`).
pub fn url_path(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let path = match no_query.find("://") {
        Some(at) => {
            let after = &no_query[at + 3..];
            after.find('/').map_or("/", |slash| &after[slash..])
        }
        None => no_query,
    };
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_and_paths() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36";
        let edge = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91";
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
        let safari = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15";
        assert_eq!(browser_of(chrome), "Chrome 120");
        assert_eq!(browser_of(edge), "Edge 120");
        assert_eq!(browser_of(firefox), "Firefox 121");
        assert_eq!(browser_of(safari), "Safari 17");
        assert_eq!(browser_of("curl/8"), "Other");
        assert_eq!(url_path("https://a.io/cart/7?x=1#top"), "/cart/7");
        assert_eq!(url_path("https://a.io"), "/");
        assert_eq!(url_path("/local"), "/local");
    }

    #[test]
    fn tags_count_weights_and_keep_the_top() {
        let mut records = Vec::new();
        for (release, count) in [("1.0", 1u64), ("1.1", 5), ("1.0", 1)] {
            let mut r = Record::new(Timestamp::from_unix_millis(0), "ui", Level::Error, "e", "m");
            r.meta.insert("release".into(), release.into());
            r.meta.insert("count".into(), count.into());
            r.meta.insert("url".into(), "https://a.io/cart?id=1".into());
            records.push(r);
        }
        let tags = IssueTags::from_records(&records);
        assert_eq!(
            tags.release,
            [
                TagCount {
                    value: "1.1".into(),
                    count: 5
                },
                TagCount {
                    value: "1.0".into(),
                    count: 2
                }
            ]
        );
        assert_eq!(tags.url[0].count, 7);
        assert!(tags.browser.is_empty());
    }
}
