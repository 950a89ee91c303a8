//! The command line: one file per subcommand, argument types here. Each
//! command returns an [`Outcome`] or an [`Error`]; [`run`] hands that to
//! `exit::status`, the one place errors are printed and exit codes chosen:
//! 0 success, 1 an error in the plan or a failed command, 2 changes pending
//! (`plan --detailed-exitcode`); `diff` as diff(1).

/// `println!` that ignores a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::emit(format_args!($($arg)*))
    };
}

mod adopt;
mod apply;
mod check;
mod color;
mod completions;
mod diff;
mod error;
mod exit;
mod export;
mod global;
mod graph;
mod init;
mod inspect;
mod load;
mod man;
mod plan;
mod schema;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use error::Error;
pub use exit::Outcome;

/// certplan compiles a declarative cluster-PKI plan into certificates,
/// kubeconfigs, token files, RBAC manifests and flag files, changing only
/// what the plan's edits require.
#[derive(Debug, Parser)]
#[command(name = "certplan", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: global::GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// `certplan --help`: what certplan is, its exit codes and environment,
/// in one place (the book's exit-code page says the same).
const LONG_ABOUT: &str = "certplan compiles a declarative cluster-PKI plan into certificates, \
kubeconfigs, token files, RBAC manifests and flag files, changing only what the plan's edits require.

Exit codes:
  0  success; `plan --detailed-exitcode`: nothing to do; `diff`: the two plans give the same PKI
  1  an error in the plan or a failed command; `diff`: the plans differ; `verify`: a check failed,
     or a certificate expires within `--warn-within`
  2  `plan --detailed-exitcode`: changes pending; `diff`: trouble (a plan does not compile)

Environment:
  NO_COLOR           no colour in diagnostics, even on a terminal
  SOURCE_DATE_EPOCH  the clock, in seconds since 1970, when `--now` is not given
  CERTPLAN_AGE_IDENTITY       the age identity (`AGE-SECRET-KEY-1…`) that opens an encrypted tree's secrets
  CERTPLAN_AGE_IDENTITY_FILE  a file holding it, when `--identity` is not given
  CERTPLAN_JOBS      the most threads to use (`--jobs`), for shared CI runners";

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check plans; print diagnostics. Writes nothing.
    #[command(
        after_help = "Examples:\n  certplan check plans/classic.toml\n  certplan check plans/*.toml --deny warnings  # every plan, as CI does\n  certplan check plan.toml --format json --deny warnings"
    )]
    Check(check::CheckArgs),
    /// Show what `apply` would do to the output tree, and why.
    #[command(
        after_help = "Examples:\n  certplan plan plans/classic.toml --out out\n  certplan plan plan.toml --out out --detailed-exitcode  # 0 nothing to do, 2 changes pending\n  certplan plan plan.toml --out out --save reviewed.json  # then `certplan apply reviewed.json`"
    )]
    Plan(plan::PlanArgs),
    /// Compile a plan and write the output tree, changing only what is needed; or carry out a saved plan.
    #[command(
        after_help = "Examples:\n  certplan apply plans/classic.toml --out out\n  certplan apply reviewed.json  # a plan saved by `certplan plan ... --save reviewed.json`\n  CERTPLAN_AGE_IDENTITY_FILE=ci.agekey certplan apply plan.toml --out out  # a tree with [secrets]\n  certplan export plan.toml --out out --host node1 --to - | ssh root@node1 bsdtar -x --safe-writes -C /  # install a host"
    )]
    Apply(apply::ApplyArgs),
    /// Take over a running cluster's PKI: a new output tree from copies of its hosts' files, reissuing nothing.
    #[command(
        after_help = "Examples:\n  certplan adopt plan.toml --out out --host cp1=/mnt/cp1 --host node1=/mnt/node1\n  certplan adopt plan.toml --out out --host master1=backup/master1 --cluster backup/cluster --format json\n  certplan plan plan.toml --out out --detailed-exitcode  # then: what the adopted PKI lacks"
    )]
    Adopt(adopt::AdoptArgs),
    /// Write one host's files from the output tree, decrypted, under a root directory or as a tar stream.
    #[command(
        after_help = "Examples:\n  certplan export plan.toml --out out --host node1 --to - | ssh root@node1 bsdtar -x --safe-writes -C /\n  certplan export plan.toml --out out --host node1 --to /mnt/node1-root --identity ci.agekey"
    )]
    Export(export::ExportArgs),
    /// List every artifact of a plan, with what is on disk when `--out` is given.
    #[command(
        after_help = "Examples:\n  certplan inspect plans/classic.toml --out out\n  certplan inspect plans/classic.toml --out out --format json"
    )]
    Inspect(inspect::InspectArgs),
    /// Compare two plans: artifacts added, removed and changed, and what that does to hosts and components.
    #[command(
        after_help = "Examples:\n  certplan diff old.toml new.toml\n  certplan diff old.toml new.toml --format markdown  # for a pull request\n  git config diff.certplan.command 'certplan diff'    # with `*.toml diff=certplan` in .gitattributes\n\nExit status: 0 same PKI, 1 different, 2 trouble (as diff(1))."
    )]
    Diff(diff::DiffArgs),
    /// Draw the artifact graph: CAs, certificates, kubeconfigs and the components on each host.
    #[command(
        after_help = "Examples:\n  certplan graph plans/classic.toml | dot -Tsvg > pki.svg\n  certplan graph plans/classic.toml --format mermaid"
    )]
    Graph(graph::GraphArgs),
    /// Check an output tree, or a host's installed files, against the plan: files, modes, chains, keys and expiry.
    #[command(
        after_help = "Examples:\n  certplan verify plans/classic.toml --out out\n  certplan verify plans/classic.toml --out out --warn-within 30d --format json\n  certplan verify plan.toml --host \"$(hostname)\" --root / --format prometheus  # on a node"
    )]
    Verify(verify::VerifyArgs),
    /// Write a commented starter plan that passes `check` as written.
    #[command(
        after_help = "Examples:\n  certplan init --preset kubeadm --control-plane 10.0.0.11 10.0.0.12 10.0.0.13 --workers 10.0.1.21 --output plan.toml\n  certplan init --preset minimal --control-plane 10.10.0.5 > lab.toml"
    )]
    Init(init::InitArgs),
    /// Print the plan's JSON Schema (for editors), or the plan reference as Markdown.
    #[command(
        after_help = "Examples:\n  certplan schema > certplan.schema.json   # then start the plan with `#:schema ./certplan.schema.json`\n  certplan schema --format markdown > plan-reference.md"
    )]
    Schema(schema::SchemaArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  certplan completions bash > /etc/bash_completion.d/certplan\n  certplan completions zsh > \"${fpath[1]}/_certplan\"\n  certplan completions fish > ~/.config/fish/completions/certplan.fish"
    )]
    Completions(completions::CompletionsArgs),
    /// Print the man page, or write one page per command into a directory.
    #[command(after_help = "Examples:\n  certplan man | man -l -\n  certplan man --dir /usr/local/share/man/man1")]
    Man(man::ManArgs),
}

/// Output format of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// The plan and the output tree `plan` decides for.
#[derive(Debug, clap::Args)]
pub struct TreeArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The output directory.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Clock, rotations and templates.
    #[command(flatten)]
    pub decide: DecideArgs,
}

/// How `plan` and `apply` decide: the options they share besides the plan
/// and the output directory.
#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// Fix the clock (RFC 3339), for reproducible decisions; `SOURCE_DATE_EPOCH` works too.
    #[arg(long)]
    pub now: Option<String>,
    /// Issue a new key for this artifact (and reissue what it signs), e.g. `ca/kubernetes`.
    #[arg(long, value_name = "ID")]
    pub rotate: Vec<String>,
    /// Templates that replace the embedded ones file by file (`flags.env`,
    /// `kubeconfig.yaml`, ...); takes precedence over `templates` in the plan.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// The age identity that opens the tree's encrypted secrets (`[secrets]`),
    /// needed to sign; else `CERTPLAN_AGE_IDENTITY` (the identity itself) or
    /// `CERTPLAN_AGE_IDENTITY_FILE`.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

impl Command {
    /// `--color`, for the commands that take it.
    fn color(&self) -> color::ColorWhen {
        match self {
            Self::Diff(args) => args.color,
            Self::Verify(args) => args.color,
            _ => color::ColorWhen::Auto,
        }
    }

    /// The exit status when the command fails: `diff` keeps 1 for "the
    /// plans differ", as diff(1) does.
    fn failure_status(&self) -> u8 {
        if matches!(self, Self::Diff(_)) { exit::TROUBLE } else { exit::FAILED }
    }
}

/// Runs the command line.
#[must_use]
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    global::limit_threads(cli.global);
    global::set(cli.global);
    color::set(cli.command.color());
    let failed = cli.command.failure_status();
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Apply(args) => apply::run(&args),
        Command::Adopt(args) => adopt::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Init(args) => init::run(&args),
        Command::Schema(args) => Ok(schema::run(&args)),
        Command::Completions(args) => Ok(completions::run(&args)),
        Command::Man(args) => man::run(&args),
    };
    exit::status(result, failed)
}

/// Writes a line to stdout, ignoring a closed pipe (`certplan ... | head`)
/// instead of panicking as `println!` does.
pub(crate) fn emit(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
