//! Flags every command takes (`--quiet`, `--verbose`, `--jobs`), kept for
//! the whole run so commands read them without threading them through every
//! call.

use std::sync::OnceLock;

/// Flags accepted before or after any subcommand.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct GlobalArgs {
    /// Print nothing but errors and what the command was asked to print.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: every file `plan` and `apply` write and remove, and what `check` compiled.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// Use at most N threads for key generation, signing, hashing and
    /// reading the tree (default: one per core), for shared CI runners.
    #[arg(long, short = 'j', global = true, value_name = "N", env = "CERTPLAN_JOBS",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

static GLOBAL: OnceLock<GlobalArgs> = OnceLock::new();

/// Records the flags of this run; the first call wins.
pub fn set(args: GlobalArgs) {
    let _ = GLOBAL.set(args);
}

/// Bounds the worker threads to `--jobs N`, when given. Runs before any
/// parallel work, so the first pool rayon builds is this one.
pub fn limit_threads(args: GlobalArgs) {
    if let Some(jobs) = args.jobs {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(usize::from(jobs)).build_global();
    }
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    GLOBAL.get().is_some_and(|g| g.quiet)
}

/// Whether `--verbose` was given.
pub fn verbose() -> bool {
    GLOBAL.get().is_some_and(|g| g.verbose)
}
