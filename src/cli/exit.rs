//! Exit statuses: what a command that ran to the end reports ([`Outcome`]),
//! and the one place a command's [`Error`] is printed and becomes a status.
//! The book's exit-code page and `certplan --help` say the same.

use std::process::ExitCode;

use super::Error;

/// How a command that ran to the end did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it was asked; `plan --detailed-exitcode`: nothing to do;
    /// `diff`: the two plans give the same PKI. Exit 0.
    Success,
    /// `diff`: the plans differ. Exit 1, as diff(1).
    Different,
    /// `plan --detailed-exitcode`: changes are pending. Exit 2.
    ChangesPending,
}

impl Outcome {
    fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Different => 1,
            Self::ChangesPending => 2,
        }
    }
}

/// The status of a command that failed: 1 for most commands.
pub const FAILED: u8 = 1;

/// The status of `diff` when it failed, diff(1)'s "trouble": its 1 says
/// that the plans differ.
pub const TROUBLE: u8 = 2;

/// The exit status of a command's result, printing its error on stderr
/// unless the command reported it already. `failed` is the command's
/// status for an error ([`FAILED`] or [`TROUBLE`]).
pub fn status(result: Result<Outcome, Error>, failed: u8) -> ExitCode {
    match result {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(error) => {
            if !error.is_reported() {
                eprintln!("error: {error}");
            }
            ExitCode::from(failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FAILED, Outcome, TROUBLE};

    #[test]
    fn statuses_are_those_the_book_documents() {
        assert_eq!(Outcome::Success.code(), 0);
        assert_eq!(Outcome::Different.code(), 1);
        assert_eq!(Outcome::ChangesPending.code(), 2);
        assert_eq!((FAILED, TROUBLE), (1, 2));
    }
}
