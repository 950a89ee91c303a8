//! The `certplan` binary: parses arguments and runs a command.

fn main() -> std::process::ExitCode {
    certplan::cli::run()
}
