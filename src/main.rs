//! The `certplan` binary: parses arguments and runs a command.

// A large plan is hundreds of thousands of small allocations, many made on
// worker threads; mimalloc serves them several times faster than the
// system allocator's per-thread arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    certplan::cli::run()
}
