//! `cargo xtask bench NAME [options]`: run a benchmark and record its result, with the
//! command and the machine, in `docs/BENCHMARKS.md` (between `<!-- bench:NAME -->` and
//! `<!-- /bench:NAME -->`), then rebuild the page's summary (`report.rs`). Without a name
//! (or with `all`), every suite runs in turn with its defaults; `summary` only rebuilds the
//! summary from the figures already on the page.
//!
//! - `ingest [--seconds N] [--connections N] [--batches 1,10,100]`: the file store.
//! - `postgres [--seconds N] [--rows N]`: PostgreSQL direct and end to end, and query latency
//!   with `--rows` stored (10 million by default), on a throwaway cluster.
//! - `crash [--rounds N]`: `kill -9` under load N times (20 by default), on the file store
//!   and then on PostgreSQL (a throwaway cluster); nothing acknowledged may be lost or doubled.
//! - `soak [--minutes N] [--rate R]`: the file store at half its measured capacity (or R
//!   records/s) for N minutes (10 by default), batches of 1, 10 and 100 beside queries: RSS
//!   and p99 every 30 s, a plateau verdict, no acknowledged record lost; draws
//!   `docs/bench/soak.svg`.
//! - `alerts [--firings N]`: record-to-notification latency of the alert evaluator, over N
//!   firings (100 by default), idle and under background ingest.
//! - `scaleout [--seconds N] [--rounds N]`: one, two and three nodes on one PostgreSQL
//!   (records/s and CPU per node), and the alert leader's failover time over N `kill -9`
//!   rounds (10 by default), on a throwaway cluster.
//! - `reporter`: the browser reporter's shipped size and main-thread cost per capture
//!   against `@sentry/browser`, in headless Chromium (`tests/e2e/bench/reporter.bench.mjs`).
//! - `logger`: faultline-logger against `tracing-subscriber` JSON over
//!   `tracing-appender::non_blocking`: caller-side ns per call and sustained records/s
//!   (criterion, `service-logger/benches/logger.rs`).

use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Options and their values, passed through to the benchmark binaries.
fn options(args: &[String], allowed: &[&str]) -> Result<Vec<String>> {
    let mut pass = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !allowed.contains(&a.as_str()) {
            bail!(
                "unknown option {a:?}; this benchmark takes {}",
                allowed.join(", ")
            );
        }
        pass.push(a.clone());
        pass.push(
            it.next()
                .with_context(|| format!("{a} needs a value"))?
                .clone(),
        );
    }
    Ok(pass)
}

/// Every suite, in the order `cargo xtask bench` (or `bench all`) runs them.
const ALL: [&str; 8] = [
    "ingest", "postgres", "crash", "alerts", "scaleout", "soak", "reporter", "logger",
];

pub(crate) fn bench(args: &[String]) -> Result<ExitCode> {
    let (name, rest) = match args.split_first() {
        Some((name, rest)) if !name.starts_with('-') => (name.as_str(), rest),
        _ if args.is_empty() => ("all", args),
        _ => ("ingest", args),
    };
    if name == "summary" {
        summarize()?;
        println!("rebuilt the summary of docs/BENCHMARKS.md and docs/bench/summary.svg");
        return Ok(ExitCode::SUCCESS);
    }
    if name == "all" {
        if !rest.is_empty() {
            bail!("`bench all` takes no options: each suite runs with its defaults");
        }
        let mut failed = Vec::new();
        for suite in ALL {
            if let Err(e) = bench(&[suite.to_owned()]) {
                eprintln!("xtask: benchmark {suite} failed: {e:#}");
                failed.push(suite);
            }
        }
        if !failed.is_empty() {
            bail!("these benchmarks failed: {}", failed.join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let command = format!("cargo xtask bench {}", args.join(" "));
    println!("==> {command}");
    let result = match name {
        "ingest" => run_bench(
            "faultline-server",
            "ingest",
            &options(rest, &["--seconds", "--connections", "--batches"])?,
        )?,
        "postgres" => postgres(rest)?,
        "crash" => crash(rest)?,
        "soak" => run_bench(
            "faultline-server",
            "soak",
            &options(rest, &["--minutes", "--rate"])?,
        )?,
        "alerts" => run_bench(
            "faultline-server",
            "alerts",
            &options(rest, &["--firings"])?,
        )?,
        "scaleout" => scaleout(rest)?,
        "reporter" => reporter()?,
        "logger" => logger()?,
        other => bail!(
            "unknown benchmark {other:?}: ingest, postgres, crash, soak, alerts, scaleout, reporter or \
             logger"
        ),
    };
    let section = format!(
        "Command: `{}`  \nDate: {}  \nMachine: {}\n\n{}",
        command.trim(),
        probe("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine(),
        result.trim()
    );
    record(name, &section)?;
    summarize()?;
    println!("\nrecorded in docs/BENCHMARKS.md (and its summary)");
    Ok(ExitCode::SUCCESS)
}

/// Runs `cargo bench -p package --bench bench -- args` and returns what it printed.
fn run_bench(package: &str, bench: &str, args: &[String]) -> Result<String> {
    let mut c = cmd::cargo();
    c.args([
        "bench",
        "--locked",
        "--package",
        package,
        "--bench",
        bench,
        "--",
    ])
    .args(args);
    printed(&mut c, bench)
}

/// Runs a benchmark command, echoing its stdout, and returns that output.
fn printed(c: &mut Command, bench: &str) -> Result<String> {
    c.stdout(Stdio::piped());
    println!("$ {}", cmd::describe(c));
    let out = c.spawn()?.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{text}");
    if !out.status.success() {
        bail!("benchmark {bench} failed");
    }
    Ok(text)
}

/// A cluster configured the way a production one would be, durable commits kept on.
const DURABLE_CLUSTER: &[&str] = &[
    "-c shared_buffers=2GB",
    "-c max_wal_size=16GB",
    "-c checkpoint_timeout=30min",
    "-c maintenance_work_mem=1GB",
    "-c synchronous_commit=on",
    "-c fsync=on",
];

fn postgres(args: &[String]) -> Result<String> {
    let pass = options(args, &["--seconds", "--rows"])?;
    let seconds: Vec<String> = pass
        .chunks(2)
        .filter(|kv| kv[0] == "--seconds")
        .flatten()
        .cloned()
        .collect();
    let cluster = crate::postgres::Cluster::start_with(DURABLE_CLUSTER)?;
    let url = ["--url".to_owned(), cluster.url.clone()];
    let mut out = run_bench("faultline-store", "postgres", &[&url[..], &pass].concat())?;
    // PostgreSQL's own insert rate before and after the end-to-end runs, so the machine's
    // drift between them shows (issue 27: end to end at least 0.8x of the database alone).
    let baseline = || -> Result<f64> {
        let text = run_bench(
            "faultline-store",
            "postgres",
            &[&url[..], &seconds, &["--baseline".to_owned()][..]].concat(),
        )?;
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("<!-- baseline ")?
                    .strip_suffix(" -->")
            })
            .and_then(|v| v.parse().ok())
            .context("the baseline run printed no rate")
    };
    let before = baseline()?;
    let mut end_to_end = Vec::new();
    for method in ["unnest", "copy"] {
        let mut e2e = vec![
            "--database-url".to_owned(),
            cluster.url.clone(),
            "--pg-method".into(),
            method.into(),
            "--batches".into(),
            "100,1000".into(),
            "--connections".into(),
            "16".into(),
        ];
        e2e.extend(seconds.iter().cloned());
        let text = run_bench("faultline-server", "ingest", &e2e)?;
        let name = format!("PostgreSQL ({method}): records/s at batch 1000, durable acks");
        let rate = text
            .lines()
            .filter_map(|l| crate::report::parse_line("postgres", l))
            .find(|f| f.name == name)
            .map(|f| f.value)
            .with_context(|| format!("the {method} run printed no figure {name:?}"))?;
        end_to_end.push((method, rate));
        out.push_str(&format!(
            "\nEnd to end through `POST /logs/ingest` ({method}):\n\n{text}"
        ));
    }
    let after = baseline()?;
    out.push_str(&baseline_report(before, after, &end_to_end));
    Ok(out)
}

/// The end-to-end rates at batch 1000 against PostgreSQL's own (the mean of the runs before
/// and after them), as a table and the summary's figures (goal: 0.8x).
fn baseline_report(before: f64, after: f64, end_to_end: &[(&str, f64)]) -> String {
    let alone = (before + after) / 2.0;
    let mut text = format!(
        "\nEnd to end at batch 1000 against PostgreSQL alone (`INSERT ... SELECT` of 1000 \
         generated rows per transaction into a fresh database with the same migrations, 16 \
         sessions, durable commits): {before:.0} rows/s before the end-to-end runs, \
         {after:.0} after, {alone:.0} on average.\n\n\
         | write method | end to end, records/s | PostgreSQL alone, rows/s | ratio (goal 0.8) |\n\
         | --- | ---: | ---: | ---: |\n"
    );
    for (method, rate) in end_to_end {
        let ratio = rate / alone;
        text.push_str(&format!(
            "| {method} | {rate:.0} | {alone:.0} | {ratio:.2} |\n"
        ));
    }
    for (method, rate) in end_to_end {
        let figure = serde_json::json!({
            "name": format!("PostgreSQL ({method}): batch 1000 end to end relative to INSERT ... SELECT alone"),
            "unit": "ratio",
            "value": (rate / alone * 100.0).round() / 100.0,
            "better": "higher",
            "goal": 0.8,
        });
        text.push_str(&format!("<!-- figure {figure} -->\n"));
    }
    text
}

/// `kill -9` rounds on the file store, then on PostgreSQL as the primary store.
fn crash(args: &[String]) -> Result<String> {
    let pass = options(args, &["--rounds"])?;
    let file = run_bench("faultline-server", "crash", &pass)?;
    let cluster = crate::postgres::Cluster::start_with(DURABLE_CLUSTER)?;
    let pg = run_bench(
        "faultline-server",
        "crash",
        &[
            &["--database-url".to_owned(), cluster.url.clone()][..],
            &pass,
        ]
        .concat(),
    )?;
    Ok(format!("File store:\n\n{file}\nPostgreSQL:\n\n{pg}"))
}

/// Several nodes on one throwaway cluster (configured as for `postgres`).
fn scaleout(args: &[String]) -> Result<String> {
    let pass = options(args, &["--seconds", "--rounds"])?;
    let cluster = crate::postgres::Cluster::start_with(DURABLE_CLUSTER)?;
    run_bench(
        "faultline-server",
        "scaleout",
        &[&["--url".to_owned(), cluster.url.clone()][..], &pass].concat(),
    )
}

/// The browser reporter against `@sentry/browser`: size and main-thread cost, in Chromium.
fn reporter() -> Result<String> {
    crate::reporter::build()?;
    let named = crate::reporter::named()?;
    cmd::run(cmd::cargo().args(["build", "--locked", "--package", "faultline-server"]))?;
    let mut c = Command::new("node");
    c.current_dir(cmd::root().join("tests/e2e"))
        .env("FAULTLINE_WASM_NAMED", named)
        .arg("bench/reporter.bench.mjs");
    printed(&mut c, "reporter")
}

/// faultline-logger against tracing-appender: criterion's report is printed, the summary
/// after its `<!-- summary -->` line is recorded.
fn logger() -> Result<String> {
    let out = run_bench("faultline-logger", "logger", &[])?;
    let summary = out
        .split_once("<!-- summary -->")
        .map(|(_, s)| s.to_owned())
        .context("the logger benchmark printed no summary")?;
    Ok(summary)
}

fn probe(program: &str, args: &[&str]) -> String {
    cmd::probe(Command::new(program).args(args)).unwrap_or_else(|| "?".into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kb: f64 = s.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        })
        .unwrap_or_default();
    format!(
        "{} cores ({cpu}), {mem}, {}",
        probe("nproc", &[]),
        probe("uname", &["-sr"])
    )
}

/// Rebuilds the summary section and `docs/bench/summary.svg` from the figures every
/// suite's latest run printed (see `report.rs`).
fn summarize() -> Result<()> {
    let path = cmd::root().join("docs/BENCHMARKS.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let figures = crate::report::figures(&doc);
    let svg = cmd::root().join("docs/bench/summary.svg");
    std::fs::create_dir_all(svg.parent().context("docs/bench")?)?;
    std::fs::write(&svg, crate::report::chart(&figures))
        .with_context(|| format!("cannot write {}", svg.display()))?;
    record(
        "summary",
        &format!(
            "Rebuilt by every `cargo xtask bench` run from the headline figures of each \
             suite's latest run (its date in the first column; the suite's own section has the \
             command and the machine). \"Competitor, same run\" is measured in the same \
             process run as Faultline's figure; \"none runs here\" where no competing tool can \
             be installed from the package registries this machine reaches.\n\n{}\n\
             ![Faultline against its competitors and goals](bench/summary.svg)",
            crate::report::table(&figures)
        ),
    )
}

/// Replaces the marked section of docs/BENCHMARKS.md (appending it if absent).
fn record(name: &str, section: &str) -> Result<()> {
    let path = cmd::root().join("docs/BENCHMARKS.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let (open, close) = (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    );
    let block = format!("{open}\n{section}\n{close}");
    let updated = match (doc.find(&open), doc.find(&close)) {
        (Some(a), Some(b)) if a < b => format!("{}{block}{}", &doc[..a], &doc[b + close.len()..]),
        _ => format!("{doc}\n{block}\n"),
    };
    std::fs::write(&path, updated).with_context(|| format!("cannot write {}", path.display()))
}
