//! What `verify` checked: the kind of each finding, named by the tree walk
//! and by the X.509 checks alike.

use serde::Serialize;

/// What was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// An expected file is not there.
    Missing,
    /// Something other than a regular file is there.
    NotAFile,
    /// The file's permissions.
    Mode,
    /// The file cannot be parsed.
    Unreadable,
    /// Copies of one artifact on different hosts differ.
    CopiesDiffer,
    /// The subject (CN, O, OU, C, ST, L).
    Subject,
    /// The subject alternative names.
    Sans,
    /// The extended key usages.
    Eku,
    /// The CA flag of basicConstraints.
    BasicConstraints,
    /// The key algorithm and size.
    KeyAlgorithm,
    /// The issuer name and the signature.
    Chain,
    /// A leaf valid after its CA expires.
    OutlivesCa,
    /// A private key that does not belong to its certificate or public key.
    KeyMismatch,
    /// `NotAfter` is past.
    Expired,
    /// `NotBefore` is still to come.
    NotYetValid,
    /// `NotAfter` is within `--warn-within`.
    ExpiresSoon,
    /// A kubeconfig's server, CA or credential.
    Kubeconfig,
    /// A `token.csv` row.
    TokenFile,
    /// A flag file's flags.
    Flags,
    /// What a running server serves, compared with the installed file
    /// (`verify --probe`).
    Serves,
}

impl Check {
    /// Whether a finding of this check is about what a file holds, so it
    /// holds for every identical copy, rather than about the file itself
    /// (whether it is there, its mode, a copy that differs).
    #[must_use]
    pub fn is_about_content(self) -> bool {
        !matches!(self, Self::Missing | Self::NotAFile | Self::Mode | Self::CopiesDiffer)
    }
}
