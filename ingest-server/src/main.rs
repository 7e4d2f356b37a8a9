//! The `faultline` binary; everything lives in the library (`faultline_server::cli`).

fn main() -> std::process::ExitCode {
    faultline_server::cli::main()
}
