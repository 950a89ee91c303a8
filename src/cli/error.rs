//! [`Error`]: every way a command can fail. Commands return it; only
//! `exit::status` prints it and turns it into an exit status, so each
//! message is written in one place and each command's failure status is
//! decided in one place.

use std::path::PathBuf;

use crate::audit::verify::VerifyError;
use crate::init::InitError;
use crate::pipeline::ApplyError;
use crate::pipeline::saved::{SavedPlanError, Stale};
use crate::render::RenderError;

/// Why a command failed. Printed as `error: {self}` on stderr, except the
/// variants whose report is printed already ([`Error::is_reported`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The plan file cannot be read.
    #[error("cannot read the plan `{}`: {source}", path.display())]
    ReadPlan {
        /// The plan file, as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The plan has errors, or warnings that `--deny warnings` makes
    /// errors; its diagnostics are printed already.
    #[error("the plan does not compile")]
    Diagnostics,
    /// One of the plans `diff` compares has errors; its diagnostics are
    /// printed already, the message says which plan it was.
    #[error("`{plan}` does not compile")]
    PlanDoesNotCompile {
        /// The plan's name as `diff` shows it.
        plan: String,
    },
    /// `diff` got neither two plans nor a git diff driver's seven arguments.
    #[error("`certplan diff` takes two plan files, or the seven arguments of a git diff driver; got {got}")]
    DiffArguments {
        /// How many arguments it got.
        got: usize,
    },
    /// `apply` got a plan file but no `--out`; only a saved plan names its
    /// own output directory.
    #[error("`certplan apply PLAN` needs `--out DIR` (only a plan saved by `plan --save` names its own)")]
    NoOut,
    /// `apply` got JSON that is not a saved plan it can read.
    #[error("cannot read the saved plan `{}`: {source}", path.display())]
    ReadSavedPlan {
        /// The file, as given.
        path: PathBuf,
        /// Why.
        source: SavedPlanError,
    },
    /// `apply SAVED` got `--out`, `--templates` or `--rotate` other than
    /// those the plan was saved with.
    #[error("the saved plan was made {saved}, not with `{given}`: apply it as it was saved, or save it again")]
    NotAsSaved {
        /// What it was made with, in words: with the flag and its value, or
        /// without the flag.
        saved: String,
        /// What was given, as flags.
        given: String,
    },
    /// The plan a saved plan names changed since it was saved, or another
    /// certplan saved it; refusals found under the tree's lock are
    /// [`Error::Apply`].
    #[error(transparent)]
    Stale(Stale),
    /// `--now` or `SOURCE_DATE_EPOCH` is not a time.
    #[error("{0}")]
    Clock(String),
    /// The age identity cannot be read, or a secret not opened with it.
    #[error(transparent)]
    Secrets(crate::secrets::SecretsError),
    /// A host's files cannot be exported.
    #[error(transparent)]
    Export(crate::export::ExportError),
    /// `--warn-within` is not a duration.
    #[error("`--warn-within` wants a duration such as `30d` or `720h`: {0}")]
    WarnWithin(#[source] humantime::DurationError),
    /// The templates (`--templates`, the plan's `templates`, or the
    /// embedded ones) cannot be loaded.
    #[error(transparent)]
    Templates(RenderError),
    /// The output tree cannot be read, or its lock taken.
    #[error(transparent)]
    Tree(ApplyError),
    /// `plan` or `apply` could not decide or make the changes: a change
    /// certplan refuses unasked, or a failed key, template or write.
    #[error(transparent)]
    Apply(ApplyError),
    /// The certificate of an external CA cannot be used.
    #[error(transparent)]
    External(crate::pipeline::external::ExternalError),
    /// `adopt` stopped before writing anything.
    #[error(transparent)]
    Adopt(crate::adopt::AdoptError),
    /// The output tree cannot be verified at all.
    #[error(transparent)]
    Verify(VerifyError),
    /// `verify` found failures; its report is printed already.
    #[error("the output tree does not match its plan")]
    Findings,
    /// `verify --warn-within` found certificates that expire within the
    /// window, and nothing else; its report is printed already.
    #[error("certificates expire within `--warn-within`")]
    ExpiresSoon,
    /// `verify` was given neither an output tree nor a host's files; the
    /// argument parser refuses that first.
    #[error("`certplan verify` checks an output tree (`--out DIR`) or one host's files (`--host NAME --root DIR`)")]
    VerifyWhat,
    /// `inspect --format prometheus` without `--out`: metrics are about files.
    #[error("`--format prometheus` reports on the files of an output tree: name it with `--out`")]
    MetricsNeedTree,
    /// `init` cannot make a starter plan of its arguments.
    #[error(transparent)]
    Init(InitError),
    /// `init --output` names a file that exists, and `--force` is not given.
    #[error("`{}` exists; pass --force to replace it", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file cannot be written.
    #[error("cannot write `{}`: {source}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// What a command was asked to print or write (a report, the man
    /// pages) cannot be written.
    #[error("cannot write the {what}: {source}")]
    Write {
        /// What it is: `diff`, `report`, `graph as JSON`, `man pages`.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the command printed what went wrong already (diagnostics, a
    /// verify report), so nothing more is said.
    #[must_use]
    pub fn is_reported(&self) -> bool {
        matches!(self, Self::Diagnostics | Self::Findings | Self::ExpiresSoon)
    }

    /// The error of writing what a command prints, if any: a closed pipe
    /// (`certplan ... | head`) is not one.
    pub fn written(what: &'static str, result: std::io::Result<()>) -> Result<(), Self> {
        match result {
            Err(source) if source.kind() != std::io::ErrorKind::BrokenPipe => Err(Self::Write { what, source }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn messages_stay_as_the_suite_and_the_book_show_them() {
        let unreadable = Error::ReadPlan { path: "plan.toml".into(), source: std::io::Error::other("gone") };
        assert_eq!(unreadable.to_string(), "cannot read the plan `plan.toml`: gone");
        assert_eq!(
            Error::PlanDoesNotCompile { plan: "broken.toml".into() }.to_string(),
            "`broken.toml` does not compile"
        );
        assert_eq!(
            Error::DiffArguments { got: 3 }.to_string(),
            "`certplan diff` takes two plan files, or the seven arguments of a git diff driver; got 3"
        );
        assert_eq!(
            Error::Exists { path: "plan.toml".into() }.to_string(),
            "`plan.toml` exists; pass --force to replace it"
        );
        let elsewhere = Error::NotAsSaved { saved: "with `--out out`".into(), given: "--out other".into() };
        assert_eq!(
            elsewhere.to_string(),
            "the saved plan was made with `--out out`, not with `--out other`: apply it as it was saved, or save it again"
        );
    }

    #[test]
    fn a_closed_pipe_is_not_a_failed_write() {
        assert!(Error::written("diff", Err(std::io::ErrorKind::BrokenPipe.into())).is_ok());
        let full = Error::written("diff", Err(std::io::Error::other("no space left")));
        assert!(full.is_err_and(|e| e.to_string() == "cannot write the diff: no space left"));
    }

    #[test]
    fn only_what_a_command_printed_already_is_not_printed_again() {
        assert!(Error::Diagnostics.is_reported() && Error::Findings.is_reported() && Error::ExpiresSoon.is_reported());
        assert!(!Error::Clock("`--now x` is not an RFC 3339 time".into()).is_reported());
    }
}
