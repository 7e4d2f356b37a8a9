//! `faultline summary --window 15m [--json]`: records per service and level over the
//! window, the firing alerts and the latest system checks, for health reports.
//!
//! It reads the store and the alert state directly, or, with `--server URL`, asks a running
//! server (the file store admits one process at a time) through its API with the admin
//! token.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use faultline_schema::{Level, Timestamp};
use faultline_store::StatsQuery;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use faultline_alerts::{CheckStatus, SystemCheck, firing_alerts};
use faultline_schema::HumanDuration;

use super::StoreArgs;
use crate::store::Purpose;

/// `faultline summary` flags.
#[derive(Debug, clap::Args)]
pub struct SummaryArgs {
    /// How far back to count (whole minutes, at most 24h).
    #[arg(long, default_value = "15m")]
    pub window: HumanDuration,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Ask this running server (`http://127.0.0.1:8080`) instead of opening the store.
    #[arg(long, env = "FAULTLINE_SERVER")]
    pub server: Option<String>,
    /// The admin token for `--server`.
    #[arg(long, env = "FAULTLINE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Write the JSON summary as the `log_summary` field of this JSON report (an object such
    /// as `latest_oneclick_report.json`), replacing the file atomically and keeping every
    /// other field as it was; a missing file is created.
    #[arg(long, value_name = "FILE")]
    pub merge_into: Option<std::path::PathBuf>,
    /// The config and the stores (without `--server`).
    #[command(flatten)]
    pub stores: StoreArgs,
}

/// The report.
#[derive(Debug, Serialize)]
struct Summary {
    window: HumanDuration,
    since: Timestamp,
    until: Timestamp,
    /// `ok`, or `firing` when an alert fires, or `failing` when only a check fails.
    status: &'static str,
    records: u64,
    counts: Vec<Count>,
    firing: Vec<Firing>,
    checks: Vec<SystemCheck>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Count {
    service: String,
    level: Level,
    count: u64,
}

#[derive(Debug, Serialize)]
struct Firing {
    rule: String,
    group: String,
    severity: String,
    since: Option<Timestamp>,
    summary: String,
}

const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Runs `faultline summary`.
pub(crate) async fn summary(args: SummaryArgs) -> anyhow::Result<()> {
    let window = args.window.0;
    if window.is_zero() || window > MAX_WINDOW {
        bail!("--window must be between 1m and 24h");
    }
    let until = Timestamp::now();
    let since_ms = until.unix_millis() - i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let since = Timestamp::from_unix_millis(since_ms - since_ms.rem_euclid(60_000));
    let mut report = match &args.server {
        Some(url) => remote(&args, url, since, until).await?,
        None => local(&args, since, until).await?,
    };
    report.counts.sort_by(|a, b| {
        (a.service.as_str(), std::cmp::Reverse(a.level))
            .cmp(&(b.service.as_str(), std::cmp::Reverse(b.level)))
    });
    report.records = report
        .counts
        .iter()
        .fold(0, |sum: u64, c| sum.saturating_add(c.count));
    report.status = if !report.firing.is_empty() {
        "firing"
    } else if report
        .checks
        .iter()
        .any(|c| c.status == CheckStatus::Failed)
    {
        "failing"
    } else {
        "ok"
    };
    if let Some(path) = &args.merge_into {
        merge_into(path, &report)?;
        eprintln!("summary merged into {} as log_summary", path.display());
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

/// The field of a report that `--merge-into` writes.
const MERGE_FIELD: &str = "log_summary";

/// Puts `summary` in `path`'s JSON object as [`MERGE_FIELD`] (replacing it, else appended
/// last), the other fields kept in their order and byte for byte; creates the file when it
/// is missing. The file is replaced atomically (a temporary file beside it, fsynced, renamed
/// over it, the directory fsynced), keeping its permissions, so a reader or a crash sees the
/// old report or the new one, never half of one. A file that is not a JSON object is left
/// alone with an error saying so.
fn merge_into(path: &std::path::Path, summary: &Summary) -> anyhow::Result<()> {
    use std::io::Write as _;
    let (mut fields, permissions) = match std::fs::read(path) {
        Ok(bytes) => {
            let fields: Fields = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a JSON object, so the summary cannot be merged into it",
                    path.display()
                )
            })?;
            (fields.0, Some(std::fs::metadata(path)?.permissions()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let value = Field::New(serde_json::to_value(summary)?);
    match fields.iter().position(|(k, _)| k == MERGE_FIELD) {
        Some(i) => {
            fields[i].1 = value;
            let mut seen = false;
            fields.retain(|(k, _)| k != MERGE_FIELD || !std::mem::replace(&mut seen, true));
        }
        None => fields.push((MERGE_FIELD.to_owned(), value)),
    }
    let mut bytes = serde_json::to_vec_pretty(&Fields(fields))?;
    bytes.push(b'\n');
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name().context("--merge-into needs a file name")?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        if let Some(p) = &permissions {
            file.set_permissions(p.clone())?;
        }
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
    })
}

/// A JSON object's fields in their order.
struct Fields(Vec<(String, Field)>);

/// A field's value: as it was written in the file, or the one merged in (indented with the
/// rest when written).
enum Field {
    Kept(Box<serde_json::value::RawValue>),
    New(Value),
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Kept(raw) => raw.serialize(serializer),
            Field::New(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some((key, raw)) = map.next_entry()? {
                    fields.push((key, Field::Kept(raw)));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

impl Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

fn empty(window: HumanDuration, since: Timestamp, until: Timestamp) -> Summary {
    Summary {
        window,
        since,
        until,
        status: "ok",
        records: 0,
        counts: Vec::new(),
        firing: Vec::new(),
        checks: Vec::new(),
    }
}

async fn local(args: &SummaryArgs, since: Timestamp, until: Timestamp) -> anyhow::Result<Summary> {
    let env = |k: &str| std::env::var(k).ok();
    let config = args.stores.load(&env)?;
    let opened = crate::store::open(&config, Purpose::Summary)
        .await
        .context(
            "cannot open the store (if a server is running on this data dir, ask it: \
         faultline summary --server http://HOST:PORT)",
        )?;
    let records = opened.records;
    let stats = records
        .stats(StatsQuery {
            since,
            until,
            service: None,
        })
        .await?;
    let mut report = empty(HumanDuration(until_minus(since, until)), since, until);
    let mut totals: BTreeMap<(String, Level), u64> = BTreeMap::new();
    for b in stats.buckets {
        let total = totals.entry((b.service, b.level)).or_default();
        *total = total.saturating_add(b.count);
    }
    report.counts = totals
        .into_iter()
        .map(|((service, level), count)| Count {
            service,
            level,
            count,
        })
        .collect();
    for a in firing_alerts(&config.alerts, opened.alerts.as_ref()).await? {
        report.firing.push(Firing {
            severity: a.severity.as_str().to_owned(),
            summary: a.summary,
            rule: a.rule,
            group: a.group,
            since: a.since,
        });
    }
    report.checks = opened.alerts.latest_checks().await?;
    // Last: on PostgreSQL the alert store shares the records's pool, which this closes.
    records.shutdown().await?;
    report.window = args.window;
    Ok(report)
}

fn until_minus(since: Timestamp, until: Timestamp) -> Duration {
    Duration::from_millis(u64::try_from(until.unix_millis() - since.unix_millis()).unwrap_or(0))
}

async fn remote(
    args: &SummaryArgs,
    url: &str,
    since: Timestamp,
    until: Timestamp,
) -> anyhow::Result<Summary> {
    let token = args
        .token
        .as_deref()
        .context("--server needs the admin token: set FAULTLINE_ADMIN_TOKEN or --token")?;
    let base = url.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let response = http
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!("GET {url}: HTTP {status}: {}", body["error"]);
            }
            anyhow::Ok(body)
        }
    };
    let mut report = empty(args.window, since, until);
    let stats = get(format!("/logs/stats?window={}", args.window)).await?;
    report.counts = serde_json::from_value(stats["totals"].clone()).unwrap_or_default();
    let alerts = get("/alerts".into()).await?;
    for rule in alerts["rules"].as_array().into_iter().flatten() {
        for g in rule["groups"].as_array().into_iter().flatten() {
            if g["status"] != "firing" {
                continue;
            }
            report.firing.push(Firing {
                rule: rule["name"].as_str().unwrap_or_default().to_owned(),
                group: g["group"].as_str().unwrap_or_default().to_owned(),
                severity: rule["severity"].as_str().unwrap_or_default().to_owned(),
                since: g["fired_at"]
                    .as_str()
                    .and_then(|t| Timestamp::parse(t).ok()),
                summary: g["current"]["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
    }
    let checks = get("/system/checks/latest".into()).await?;
    report.checks = serde_json::from_value(checks["checks"].clone()).unwrap_or_default();
    Ok(report)
}

fn print_text(r: &Summary) {
    println!(
        "Faultline summary, last {} ({} to {}): {}",
        r.window,
        r.since,
        r.until,
        r.status.to_uppercase()
    );
    println!("\nrecords: {}", r.records);
    let mut by_service: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for c in &r.counts {
        by_service
            .entry(&c.service)
            .or_default()
            .push(format!("{} {}", c.level, c.count));
    }
    for (service, levels) in by_service {
        println!("  {service:<16} {}", levels.join("  "));
    }
    println!("\nfiring alerts: {}", r.firing.len());
    for f in &r.firing {
        let group = if f.group.is_empty() {
            String::new()
        } else {
            format!(" [{}]", f.group)
        };
        let since = f.since.map(|t| format!(" since {t}")).unwrap_or_default();
        println!("  {}{group} ({}){since}: {}", f.rule, f.severity, f.summary);
    }
    println!("\nchecks: {}", r.checks.len());
    for c in &r.checks {
        let status = match c.status {
            CheckStatus::Ok => "ok",
            CheckStatus::Pending => "pending",
            CheckStatus::Failed => "FAILED",
        };
        println!(
            "  {status:<8} {:<24} {} ({})",
            c.name, c.detail, c.checked_at
        );
    }
}
