//! The test suites, in the order `cargo xtask test` runs them.
//!
//! Static checks come first (they are quick and catch most slips), then every crate's
//! tests, then the wasm checks. The run stops at the first failing step, whose output is
//! above the summary, and ends with a `N passed, N failed` line: test counts for test
//! steps, one per step for checks.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::{cmd, provision};

/// How a step's outcome is counted.
enum Count {
    /// The step is one check: 1 passed or 1 failed.
    Check,
    /// The step prints libtest `test result:` lines; their counts are summed.
    LibTest,
    /// The step is `node --test`, whose summary has `# pass N` and `# fail N` lines.
    NodeTest,
}

struct Step {
    name: &'static str,
    command: Command,
    count: Count,
    /// Runs before the command (a build the command needs); its failure fails the step.
    prepare: Option<fn() -> Result<()>>,
}

impl Step {
    fn check(name: &'static str, command: Command) -> Step {
        Step {
            name,
            command,
            count: Count::Check,
            prepare: None,
        }
    }

    fn tests(name: &'static str, command: Command) -> Step {
        Step {
            name,
            command,
            count: Count::LibTest,
            prepare: None,
        }
    }

    fn node_tests(name: &'static str, command: Command) -> Step {
        Step {
            name,
            command,
            count: Count::NodeTest,
            prepare: None,
        }
    }

    fn after(mut self, prepare: fn() -> Result<()>) -> Step {
        self.prepare = Some(prepare);
        self
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

fn cargo(args: &[&str]) -> Command {
    let mut c = cmd::cargo();
    c.args(args);
    c
}

/// The logger's opt-in outputs and layer, so clippy, rustdoc and the tests cover them too.
const LOGGER_OPT_IN: &str = "faultline-logger/postgres,faultline-logger/tower,faultline-logger/unix,faultline-logger/opentelemetry";

fn steps() -> Vec<Step> {
    let mut docs = cargo(&[
        "doc",
        "--workspace",
        "--no-deps",
        "--locked",
        "--features",
        LOGGER_OPT_IN,
    ]);
    docs.env("RUSTDOCFLAGS", "-D warnings");
    vec![
        Step::check("rustfmt", cargo(&["fmt", "--all", "--check"])),
        Step::check(
            "clippy",
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--features",
                LOGGER_OPT_IN,
                "--",
                "-D",
                "warnings",
            ]),
        ),
        Step::check("layout", layout()),
        Step::check("rustdoc", docs),
        Step::check("faultline-logger feature matrix", logger_features()),
        Step::tests(
            "cargo test",
            cargo(&[
                "test",
                "--workspace",
                "--locked",
                "--features",
                LOGGER_OPT_IN,
            ]),
        ),
        Step::check("cargo publish --dry-run", publish_dry_run()),
        Step::check(
            "faultline-schema for wasm32",
            cargo(&[
                "build",
                "--package",
                "faultline-schema",
                "--target",
                "wasm32-unknown-unknown",
                "--locked",
            ]),
        ),
        Step::tests("reporter wasm tests in Chromium", wasm_pack_test()),
        Step::node_tests("browser end-to-end", e2e()).after(build_for_e2e),
        // After the end-to-end step, which built reporter-wasm/pkg.
        Step::check("npm pack --dry-run", npm_pack_dry_run()),
    ]
}

/// The files of the npm package, exactly: what a user needs and nothing else.
const NPM_FILES: &[&str] = &[
    "README.md",
    "faultline_reporter.js",
    "faultline_reporter_bg.wasm",
    "index.d.ts",
    "index.js",
    "notices.js",
    "package.json",
    "react.d.ts",
    "react.js",
    "snippet.js",
    "vite.d.ts",
    "vite.js",
];

/// `npm pack --dry-run` of `reporter-wasm/pkg`, failing unless it packs exactly
/// [`NPM_FILES`].
fn npm_pack_dry_run() -> Command {
    let want = serde_json::to_string(NPM_FILES).unwrap_or_default();
    let mut c = Command::new("sh");
    c.current_dir(cmd::root().join("reporter-wasm/pkg")).args([
        "-c",
        r#"npm pack --dry-run --json --ignore-scripts 2>/dev/null | node -e '
let s = "";
process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const got = JSON.parse(s)[0].files.map((f) => f.path).sort();
  const want = JSON.parse(process.env.NPM_FILES).sort();
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    console.error("npm pack: packs", got, "expected", want);
    process.exit(1);
  }
  console.log(`npm pack: the ${got.length} files a user needs`);
});'"#,
    ]);
    c.env("NPM_FILES", want);
    c
}

/// `cargo check` of `faultline-logger` with no features, each feature alone, and all of
/// them (what `cargo hack --each-feature` does), so a service that picks only the outputs
/// it uses still builds. One `sh` loop, stopping at the first failure.
fn logger_features() -> Command {
    let mut c = Command::new("sh");
    c.current_dir(cmd::root()).args([
        "-c",
        r#"set -e
for f in "" file http postgres log tower unix opentelemetry; do
  echo "\$ cargo check -p faultline-logger --no-default-features --features '$f'"
  "$CARGO" check -q -p faultline-logger --locked --no-default-features --features "$f"
done
echo "\$ cargo check -p faultline-logger --all-features"
"$CARGO" check -q -p faultline-logger --locked --all-features"#,
    ]);
    c.env(
        "CARGO",
        std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
    );
    c
}

/// `cargo publish --dry-run` of the crates published to crates.io (packaged and built from
/// the package, as crates.io would; needs the crates.io index).
fn publish_dry_run() -> Command {
    cargo(&[
        "publish",
        "--dry-run",
        "--locked",
        "--allow-dirty",
        "-p",
        "faultline-schema",
        "-p",
        "faultline-store",
        "-p",
        "faultline-logger",
    ])
}

/// `cargo xtask layout`, run by this very binary.
fn layout() -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "cargo-xtask".into());
    let mut c = Command::new(exe);
    c.arg("layout");
    c
}

/// `wasm-pack test --headless --chrome` on the reporter crate, with the Debian driver
/// (`webdriver.json` in the crate holds the flags a root, sandbox-less Chromium needs).
fn wasm_pack_test() -> Command {
    let mut c = Command::new("wasm-pack");
    c.current_dir(cmd::root().join("reporter-wasm"))
        .args(["test", "--headless", "--chrome"])
        .env("CHROMEDRIVER", "/usr/bin/chromedriver");
    c
}

/// The Playwright suites of `tests/e2e` against the package and a debug `faultline`.
fn e2e() -> Command {
    let mut c = Command::new("npm");
    c.current_dir(cmd::root().join("tests/e2e"))
        .args(["test", "--silent"])
        .env("FAULTLINE_BIN", cmd::root().join("target/debug/faultline"))
        .env("FAULTLINE_PKG", crate::reporter::pkg_dir());
    c
}

/// The package, then `www` (it bundles the package), then the server (it embeds `www/dist`).
fn build_for_e2e() -> Result<()> {
    crate::reporter::build()?;
    crate::run::build_www()?;
    cmd::run(&mut cargo(&[
        "build",
        "--package",
        "faultline-server",
        "--bin",
        "faultline",
        "--locked",
    ]))
}

/// `cargo xtask test [--no-provision]`.
pub(crate) fn test(args: &[String]) -> Result<ExitCode> {
    let mut provision = true;
    for arg in args {
        match arg.as_str() {
            "--no-provision" => provision = false,
            other => bail!("unknown option {other:?} for test (see cargo xtask --help)"),
        }
    }
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut report: Vec<(&str, bool, Duration)> = Vec::new();

    if provision {
        let t = Instant::now();
        if let Err(e) = provision::provision() {
            eprintln!("xtask: provisioning failed: {e:#}");
            report.push(("provision", false, t.elapsed()));
            tally.failed += 1;
            return Ok(finish(&report, &tally, started));
        }
    }

    println!("\n==> PostgreSQL for the tests");
    let cluster = match crate::postgres::Cluster::start() {
        Ok(c) => {
            println!("    throwaway cluster at {}", c.url);
            c
        }
        Err(e) => {
            eprintln!("xtask: could not start PostgreSQL: {e:#}");
            report.push(("postgres", false, Duration::ZERO));
            tally.failed += 1;
            return Ok(finish(&report, &tally, started));
        }
    };
    for mut step in steps() {
        step.command.envs(cluster.env());
        println!("\n==> {}", step.name);
        let t = Instant::now();
        if let Some(prepare) = step.prepare
            && let Err(e) = prepare()
        {
            eprintln!("xtask: {e:#}");
            tally.failed += 1;
            report.push((step.name, false, t.elapsed()));
            eprintln!("\nxtask: step `{}` failed; its output is above", step.name);
            break;
        }
        let ok = match step.count {
            Count::Check => {
                let ok = cmd::run(&mut step.command).is_ok();
                if ok {
                    tally.passed += 1;
                } else {
                    tally.failed += 1;
                }
                ok
            }
            Count::LibTest | Count::NodeTest => {
                let mut seen = Tally::default();
                let node = matches!(step.count, Count::NodeTest);
                let ran = cmd::run_streaming(&mut step.command, |line| {
                    let counts = if node {
                        parse_node_summary(line)
                    } else {
                        parse_test_result(line)
                    };
                    if let Some((p, f)) = counts {
                        seen.passed += p;
                        seen.failed += f;
                    }
                })?;
                // A build failure prints no result line: count it as one failure.
                if !ran && seen.failed == 0 {
                    seen.failed = 1;
                }
                tally.passed += seen.passed;
                tally.failed += seen.failed;
                ran && seen.failed == 0
            }
        };
        report.push((step.name, ok, t.elapsed()));
        if !ok {
            eprintln!("\nxtask: step `{}` failed; its output is above", step.name);
            break;
        }
    }
    Ok(finish(&report, &tally, started))
}

fn finish(report: &[(&str, bool, Duration)], tally: &Tally, started: Instant) -> ExitCode {
    println!("\n==> summary ({:.0}s)", started.elapsed().as_secs_f64());
    for (name, ok, took) in report {
        let mark = if *ok { "ok  " } else { "FAIL" };
        println!("    {mark} {name:<32} {:>6.1}s", took.as_secs_f64());
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 && report.iter().all(|r| r.1) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Reads `test result: ok. 11 passed; 0 failed; ...` into (passed, failed).
fn parse_test_result(line: &str) -> Option<(usize, usize)> {
    let rest = line.strip_prefix("test result: ")?;
    let mut passed = None;
    let mut failed = None;
    for part in rest.split(';') {
        let mut words = part.split_whitespace().rev();
        let (label, n) = (words.next()?, words.next()?);
        match label {
            "passed" => passed = n.parse().ok(),
            "failed" => failed = n.parse().ok(),
            _ => {}
        }
    }
    Some((passed?, failed?))
}

/// Reads node's `# pass 9` / `# fail 1` summary lines into (passed, failed).
fn parse_node_summary(line: &str) -> Option<(usize, usize)> {
    let rest = line.trim().strip_prefix("# ")?;
    let (label, n) = rest.split_once(' ')?;
    let n = n.trim().parse().ok()?;
    match label {
        "pass" => Some((n, 0)),
        "fail" => Some((0, n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_node_summary, parse_test_result};

    #[test]
    fn reads_node_test_summary_lines() {
        assert_eq!(parse_node_summary("# pass 9"), Some((9, 0)));
        assert_eq!(parse_node_summary("# fail 2"), Some((0, 2)));
        assert_eq!(parse_node_summary("# tests 11"), None);
        assert_eq!(parse_node_summary("ok 1 - a test"), None);
    }

    #[test]
    fn reads_libtest_summary_lines() {
        let ok = "test result: ok. 11 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s";
        assert_eq!(parse_test_result(ok), Some((11, 0)));
        let bad = "test result: FAILED. 25 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(parse_test_result(bad), Some((25, 1)));
        assert_eq!(parse_test_result("running 3 tests"), None);
    }
}
