//! `faultline silence add|list|expire`: silences on a running server (`/silences`,
//! docs/OPERATIONS.md), with the admin token.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use super::remote::{Body, ServerArgs};

/// `faultline silence` flags.
#[derive(Debug, clap::Args)]
pub struct SilenceArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SilenceCommand,
    /// Which server, with the admin token.
    #[command(flatten)]
    pub remote: ServerArgs,
}

/// `faultline silence` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SilenceCommand {
    /// Silence the alerts every MATCHER matches: `rule=api_errors`, `meta.user=~u_1.*`,
    /// `service!=ui` (`=`, `!=`, `=~`, `!~` on `rule`, `group` or a group field).
    Add {
        /// One or more matchers; all must match.
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long (`1h`, `30m`); or give --end.
        #[arg(long)]
        duration: Option<String>,
        /// When it ends (RFC 3339).
        #[arg(long)]
        end: Option<String>,
        /// When it starts (RFC 3339) [default: now].
        #[arg(long)]
        start: Option<String>,
        /// Also end once no alert it matches is pending or firing.
        #[arg(long)]
        until_resolved: bool,
        /// Why (required).
        #[arg(long)]
        comment: String,
        /// Who [default: $USER].
        #[arg(long, env = "USER")]
        created_by: Option<String>,
    },
    /// List silences: pending and active ones (with --all, expired ones too).
    List {
        /// Include expired silences.
        #[arg(long)]
        all: bool,
        /// Print the JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// End silences now.
    Expire {
        /// Silence ids (from `list`).
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// Runs `faultline silence ...`.
pub(super) async fn silence(args: SilenceArgs) -> anyhow::Result<()> {
    let client = args.remote.client(
        "no token: set FAULTLINE_ADMIN_TOKEN or --token (the admin token)",
        Duration::from_secs(30),
    )?;
    match args.command {
        SilenceCommand::Add {
            matchers,
            duration,
            end,
            start,
            until_resolved,
            comment,
            created_by,
        } => {
            let mut body = json!({
                "matchers": matchers,
                "comment": comment,
                "created_by": created_by.unwrap_or_default(),
                "until_resolved": until_resolved,
            });
            for (key, value) in [
                ("duration", duration),
                ("ends_at", end),
                ("starts_at", start),
            ] {
                if let Some(v) = value {
                    body[key] = Value::String(v);
                }
            }
            let answer = client
                .call(reqwest::Method::POST, &["silences"], Body::Json(body))
                .await?;
            println!("{}", answer["id"].as_str().unwrap_or_default());
            eprintln!(
                "silence {} ({}) until {}",
                answer["id"].as_str().unwrap_or_default(),
                answer["status"].as_str().unwrap_or_default(),
                answer["ends_at"].as_str().unwrap_or_default()
            );
            Ok(())
        }
        SilenceCommand::List { all, json } => {
            let answer = client
                .call(reqwest::Method::GET, &["silences"], Body::Empty)
                .await?;
            let listed: Vec<&Value> = answer["silences"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|s| all || s["status"] != "expired")
                        .collect()
                })
                .unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&listed)?);
                return Ok(());
            }
            if listed.is_empty() {
                println!(
                    "no silences{}",
                    if all {
                        ""
                    } else {
                        " (--all shows expired ones)"
                    }
                );
            }
            for s in listed {
                println!("{}", describe(s));
            }
            Ok(())
        }
        SilenceCommand::Expire { ids } => {
            for id in ids {
                client
                    .call(reqwest::Method::DELETE, &["silences", &id], Body::Empty)
                    .await
                    .with_context(|| format!("silence {id}"))?;
                println!("expired {id}");
            }
            Ok(())
        }
    }
}

/// One line: id, status, matchers, the time span, who and why.
fn describe(s: &Value) -> String {
    let matchers: Vec<String> = s["matchers"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    format!(
                        "{}{}{}",
                        m["name"].as_str().unwrap_or_default(),
                        m["op"].as_str().unwrap_or_default(),
                        m["value"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}  {:<7}  {}  {} .. {}{}  by {}: {}",
        s["id"].as_str().unwrap_or_default(),
        s["status"].as_str().unwrap_or_default(),
        matchers.join(" "),
        s["starts_at"].as_str().unwrap_or_default(),
        s["ends_at"].as_str().unwrap_or_default(),
        if s["until_resolved"] == true {
            " (or until resolved)"
        } else {
            ""
        },
        s["created_by"].as_str().unwrap_or_default(),
        s["comment"].as_str().unwrap_or_default()
    )
}
