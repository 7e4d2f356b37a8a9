//! `cargo xtask run`: build what the server needs and start it on the embedded default.
//! The order matters: the npm package, then `www/` (which bundles the package), then the
//! server (whose `build.rs` embeds `www/dist`). Once the server answers, the demo's source
//! maps (`target/www-sourcemaps`, kept out of `www/dist` by `www/vite.config.js`) are uploaded
//! for the build's release, so the panel's errors read as `Panel.jsx` in the dashboard.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Builds the npm package, the dashboard and the release server and runs `faultline serve` from the repository root, so the
/// file store lands in `./data` (git-ignored). Extra arguments go to `faultline serve`.
pub(crate) fn run(extra: &[String]) -> Result<ExitCode> {
    crate::reporter::build()?;
    build_www()?;
    println!("==> build faultline (release)");
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "--locked",
        "--package",
        "faultline-server",
    ]))?;
    let bin = cmd::root().join("target/release/faultline");
    println!("==> start: faultline serve {}", extra.join(" "));
    println!("    data in ./data; the first start prints the generated keys; Ctrl-C stops it");
    println!(
        "    dashboard: http://127.0.0.1:8080 (admin token below or FAULTLINE_ADMIN_TOKEN), demo panel: /panel"
    );
    if flag(extra, "--config").is_none() && std::env::var_os("FAULTLINE_CONFIG").is_none() {
        println!(
            "    alerts: the four shipped rules run (docs/runbook.md); a channel notifies once its variable is set:\n    \
             FAULTLINE_SLACK_WEBHOOK_URL, FAULTLINE_PAGERDUTY_ROUTING_KEY, FAULTLINE_WORKER_RESTART_URL, FAULTLINE_APP_STOP_URL"
        );
    }
    println!();
    let mut server = Command::new(&bin)
        .arg("serve")
        .args(extra)
        .current_dir(cmd::root())
        .spawn()
        .with_context(|| format!("could not start {}", bin.display()))?;
    // The server keeps running whatever happens here: without the maps the demo still
    // works, with minified frames.
    if let Err(e) = upload_demo_maps(&bin, &mut server, extra) {
        eprintln!(
            "xtask: the demo's source maps were not uploaded: {e:#}\n    (the panel's errors will show minified frames; upload by hand with `faultline sourcemaps upload --release $(cat target/www-sourcemaps/release.txt) --url-prefix '~/' target/www-sourcemaps`)"
        );
    }
    let status = server.wait()?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Builds the panel and dashboard (`www/`, Vite) into `www/dist`, which the server's
/// `build.rs` embeds. Needs the npm package built first (Vite aliases it); installs
/// `www`'s locked dependencies when they are missing (`cargo xtask run` does not provision).
pub(crate) fn build_www() -> Result<()> {
    let www = cmd::root().join("www");
    if !www.join("node_modules").is_dir() {
        println!("==> npm ci in www");
        cmd::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&www),
        )?;
    }
    println!("==> build www (Vite) into www/dist");
    cmd::run(
        Command::new("npm")
            .args(["run", "build", "--silent"])
            .current_dir(&www),
    )
}

/// The value of `--name VALUE` or `--name=VALUE` among `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let eq = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if a == name {
            args.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix(&eq)
        }
    })
}

/// Waits until `addr` accepts connections (the server is up), while `server` runs.
fn wait_until_listening(server: &mut Child, addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.try_wait()? {
            bail!("the server exited ({status})");
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "nothing listens on {addr} after 60 s (a --config with another `listen`? set FAULTLINE_LISTEN)"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The admin token: `FAULTLINE_ADMIN_TOKEN`, else the one the server generated into
/// `<data dir>/secrets.toml` on its first start.
fn admin_token(extra: &[String]) -> Result<String> {
    if let Ok(t) = std::env::var("FAULTLINE_ADMIN_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_owned());
    }
    let dir = flag(extra, "--data-dir")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("FAULTLINE_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"));
    let file = cmd::root().join(dir).join("secrets.toml");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "no FAULTLINE_ADMIN_TOKEN and cannot read {}",
            file.display()
        )
    })?;
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "admin_token").then(|| v.trim().trim_matches('"').to_owned())
        })
        .with_context(|| format!("no admin_token in {}", file.display()))
}

/// Uploads `target/www-sourcemaps` for the release in its `release.txt` with
/// `faultline sourcemaps upload`, once the server listens.
fn upload_demo_maps(bin: &Path, server: &mut Child, extra: &[String]) -> Result<()> {
    let maps = cmd::root().join("target/www-sourcemaps");
    let release = std::fs::read_to_string(maps.join("release.txt"))
        .with_context(|| format!("cannot read {}/release.txt", maps.display()))?;
    let listen = flag(extra, "--listen")
        .map(str::to_owned)
        .or_else(|| std::env::var("FAULTLINE_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let mut addr = listen
        .to_socket_addrs()
        .with_context(|| format!("listen address {listen:?}"))?
        .next()
        .with_context(|| format!("listen address {listen:?} resolves to nothing"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    wait_until_listening(server, addr)?;
    println!(
        "==> upload the demo's source maps (release {})",
        release.trim()
    );
    cmd::run(
        Command::new(bin)
            .args(["sourcemaps", "upload", "--release", release.trim()])
            .args(["--url-prefix", "~/", "--server", &format!("http://{addr}")])
            .arg(&maps)
            .env("FAULTLINE_ADMIN_TOKEN", admin_token(extra)?)
            .current_dir(cmd::root()),
    )
}
