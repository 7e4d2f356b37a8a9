//! Code shared by the benchmark binaries (each includes it with `mod support;`).

#[allow(dead_code)]
pub(crate) mod issues;
pub(crate) mod load;
#[allow(dead_code)]
pub(crate) mod sourcemap;
#[allow(dead_code)]
pub(crate) mod tls;
#[allow(dead_code)]
pub(crate) mod vector;

/// User plus system CPU time of a process, from `/proc/PID/stat` (clock ticks of 10 ms).
#[allow(dead_code)]
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces; the fields after it are space separated.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
