//! The `faultline` binary; everything lives in the library (`faultline_server::cli`).

// Ingest allocates and frees many small objects per record on every core; mimalloc's
// per-thread free lists measured faster than the system allocator (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    faultline_server::cli::main()
}
