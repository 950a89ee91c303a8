//! [`TreeFingerprint`]: what deciding read of an output tree, kept in a
//! saved plan, and the first way a tree read later differs from it
//! ([`TreeChange`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::short;
use crate::changes::{FileStatus, sha256_hex};
use crate::pipeline::Tree;

/// What deciding read of an output tree, in short: its state and the
/// recorded files that are not as the state says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeFingerprint {
    /// The SHA-256 of the state as read (its JSON as certplan writes it);
    /// `None` when the tree records nothing.
    pub state_sha256: Option<String>,
    /// Every recorded file that is changed or missing, by path; the others
    /// are intact.
    pub damaged: BTreeMap<String, FileStatus>,
}

impl TreeFingerprint {
    /// The fingerprint of a tree as read.
    #[must_use]
    pub fn of(tree: &Tree) -> Self {
        let state_sha256 = (!tree.state.artifacts.is_empty()).then(|| sha256_hex(&tree.state.to_json()));
        let damaged = tree
            .state
            .artifacts
            .values()
            .flat_map(|artifact| artifact.files.iter())
            .map(|(path, recorded)| (path, tree.disk.status(path, recorded)))
            .filter(|(_, status)| *status != FileStatus::Intact)
            .map(|(path, status)| (path.clone(), status))
            .collect();
        Self { state_sha256, damaged }
    }

    /// The first way `now` differs from this fingerprint: the state, then
    /// the files by path.
    #[must_use]
    pub fn first_difference(&self, now: &Self) -> Option<TreeChange> {
        match (&self.state_sha256, &now.state_sha256) {
            (None, Some(_)) => return Some(TreeChange::StateAppeared),
            (Some(_), None) => return Some(TreeChange::StateGone),
            (Some(saved), Some(current)) if saved != current => {
                return Some(TreeChange::State { saved: saved.clone(), now: current.clone() });
            }
            _ => {}
        }
        let paths: BTreeSet<&String> = self.damaged.keys().chain(now.damaged.keys()).collect();
        paths.into_iter().find_map(|path| {
            let saved = self.damaged.get(path).copied().unwrap_or(FileStatus::Intact);
            let current = now.damaged.get(path).copied().unwrap_or(FileStatus::Intact);
            (saved != current).then(|| TreeChange::File { path: path.clone(), saved, now: current })
        })
    }
}

/// The first way an output tree differs from its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeChange {
    /// It recorded nothing, and records something now.
    StateAppeared,
    /// Its state is gone.
    StateGone,
    /// Its state is another.
    State {
        /// The digest saved.
        saved: String,
        /// The digest now.
        now: String,
    },
    /// A recorded file is not as it was.
    File {
        /// The file, relative to the output directory.
        path: String,
        /// How it was.
        saved: FileStatus,
        /// How it is.
        now: FileStatus,
    },
}

impl fmt::Display for TreeChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StateAppeared => f.write_str("it held no state and holds one now (another apply ran)"),
            Self::StateGone => f.write_str("its state is gone"),
            Self::State { saved, now } => {
                write!(f, "its state is another (sha256 {} → {}): another apply ran", short(saved), short(now))
            }
            Self::File { path, saved, now } => {
                write!(f, "`{path}` was {} and is {} now", condition(*saved), condition(*now))
            }
        }
    }
}

/// A file's status in words.
fn condition(status: FileStatus) -> &'static str {
    match status {
        FileStatus::Intact => "intact",
        FileStatus::Changed => "changed",
        FileStatus::Missing => "deleted",
    }
}
