//! The output tree as a run finds it: the recorded state and the status of
//! every file it records. Reading it needs only the output directory, not
//! the plan, so commands read it while the plan compiles on another core.

use std::path::Path;

use super::ApplyError;
use crate::changes::Disk;
use crate::output::TreeLock;
use crate::state::State;

/// The state of an output tree and what its files look like now; for
/// `apply`, read under the tree's lock, which it holds until dropped.
pub struct Tree {
    /// The state the last apply recorded.
    pub state: State,
    /// The status of every file that state records.
    pub disk: Disk,
    pub(super) lock: Option<TreeLock>,
}

impl Tree {
    /// Reads the tree without locking it (for `plan`, which writes nothing).
    pub fn read(out: &Path) -> Result<Self, ApplyError> {
        let state = State::load(out)?;
        let disk = Disk::with_statuses(out, &state);
        Ok(Self { state, disk, lock: None })
    }

    /// Locks the tree (creating it and its lock file when missing), then
    /// reads it.
    pub fn lock(out: &Path) -> Result<Self, ApplyError> {
        let lock = TreeLock::acquire(out)?;
        Ok(Self { lock: Some(lock), ..Self::read(out)? })
    }

    /// Locks and reads a tree that an earlier apply made, creating nothing:
    /// `None` when the tree has no lock file yet. Safe to run before the
    /// plan is known to be good, since it writes nothing.
    pub fn lock_existing(out: &Path) -> Result<Option<Self>, ApplyError> {
        let Some(lock) = TreeLock::acquire_existing(out)? else {
            return Ok(None);
        };
        Ok(Some(Self { lock: Some(lock), ..Self::read(out)? }))
    }

    /// Whether this read holds the tree's lock.
    #[must_use]
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }
}
