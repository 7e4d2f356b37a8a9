//! `cargo xtask bench [ingest] [--seconds N]`: run a benchmark and record its result, with
//! the command and the machine, in `docs/BENCHMARKS.md` (between `<!-- bench:NAME -->` and
//! `<!-- /bench:NAME -->`).

use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};

use crate::cmd;

pub(crate) fn bench(args: &[String]) -> Result<ExitCode> {
    let mut name = "ingest".to_owned();
    let mut pass = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "ingest" => name = a.clone(),
            "--seconds" | "--connections" | "--batches" => {
                pass.push(a.clone());
                pass.push(it.next().context("missing value")?.clone());
            }
            other => {
                bail!("unknown bench argument {other:?}: cargo xtask bench [ingest] [--seconds N]")
            }
        }
    }
    let command = format!("cargo xtask bench {}", args.join(" "));
    println!("==> {command}");
    let mut c = cmd::cargo();
    c.args([
        "bench",
        "--locked",
        "--package",
        "faultline-server",
        "--bench",
        &name,
        "--",
    ])
    .args(&pass)
    .stdout(Stdio::piped());
    println!("$ {}", cmd::describe(&c));
    let out = c.spawn()?.wait_with_output()?;
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{table}");
    if !out.status.success() {
        bail!("benchmark failed");
    }
    let section = format!(
        "Command: `{}`  \nDate: {}  \nMachine: {}\n\n{}",
        command.trim(),
        probe("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine(),
        table.trim()
    );
    record(&name, &section)?;
    println!("\nrecorded in docs/BENCHMARKS.md");
    Ok(ExitCode::SUCCESS)
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
