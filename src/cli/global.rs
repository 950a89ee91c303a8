//! Flags every command takes (`--quiet`, `--verbose`), kept for the whole
//! run so commands read them without threading them through every call.

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
}

static GLOBAL: OnceLock<GlobalArgs> = OnceLock::new();

/// Records the flags of this run; the first call wins.
pub fn set(args: GlobalArgs) {
    let _ = GLOBAL.set(args);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    GLOBAL.get().is_some_and(|g| g.quiet)
}

/// Whether `--verbose` was given.
pub fn verbose() -> bool {
    GLOBAL.get().is_some_and(|g| g.verbose)
}
