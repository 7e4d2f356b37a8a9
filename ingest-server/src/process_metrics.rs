//! `/metrics` gauges about the process itself, read from `/proc/self` at scrape time (the
//! names and meanings of Prometheus's process collector), and `faultline_build_info`.

/// Clock ticks per second in `/proc/self/stat`: `USER_HZ`, 100 on every Linux
/// architecture's user-space ABI (reading it with `sysconf` would need `unsafe`).
const TICKS_PER_SECOND: f64 = 100.0;

/// Sets the process gauges and the build info; a value `/proc` cannot give is left unset.
pub(crate) fn record() {
    metrics::gauge!(
        "faultline_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "target" => target(),
    )
    .set(1.0);
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may hold spaces.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |n: usize| fields.get(n).and_then(|f| f.parse::<f64>().ok());
        // man 5 proc numbers fields from 1 with the pid; `fields[0]` is field 3 (state).
        if let (Some(utime), Some(stime)) = (field(11), field(12)) {
            metrics::gauge!("process_cpu_seconds_total").set((utime + stime) / TICKS_PER_SECOND);
        }
        if let Some(threads) = field(17) {
            metrics::gauge!("process_threads").set(threads);
        }
        if let Some(vsize) = field(20) {
            metrics::gauge!("process_virtual_memory_bytes").set(vsize);
        }
        if let Some(rss_pages) = field(21) {
            // Pages of 4 KiB on x86_64 and aarch64 Linux defaults.
            metrics::gauge!("process_resident_memory_bytes").set(rss_pages * 4096.0);
        }
        if let (Some(start_ticks), Some(boot)) = (field(19), boot_time()) {
            metrics::gauge!("process_start_time_seconds")
                .set(boot + start_ticks / TICKS_PER_SECOND);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(fds.count() as f64);
    }
    if let Some(max) = max_fds() {
        metrics::gauge!("process_max_fds").set(max);
    }
}

/// The compilation target (`x86_64-linux-musl` for the static build).
fn target() -> String {
    let env = if cfg!(target_env = "musl") {
        "musl"
    } else if cfg!(target_env = "gnu") {
        "gnu"
    } else {
        "other"
    };
    format!("{}-{}-{env}", std::env::consts::ARCH, std::env::consts::OS)
}

/// Seconds since the epoch at boot (`btime` in `/proc/stat`).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit on open files.
fn max_fds() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
