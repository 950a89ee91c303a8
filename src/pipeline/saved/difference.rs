//! [`ChangeDifference`]: the first way the changes decided when a saved
//! plan is applied differ from the saved ones.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::changes::{Action, Change};
use crate::model::ArtifactId;

/// The first way the changes decided now differ from the saved ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeDifference {
    /// A change decided now that was not saved.
    Added {
        /// The artifact.
        id: ArtifactId,
        /// What happens to it now.
        action: Action,
        /// Why.
        reason: String,
    },
    /// A saved change no longer decided.
    Dropped {
        /// The artifact.
        id: ArtifactId,
        /// What was to happen to it.
        action: Action,
    },
    /// Another action for the same artifact.
    Action {
        /// The artifact.
        id: ArtifactId,
        /// The saved action.
        saved: Action,
        /// The action now.
        now: Action,
        /// Why, now.
        reason: String,
    },
    /// A new key where none was saved, or the other way round.
    Key {
        /// The artifact.
        id: ArtifactId,
        /// Its action.
        action: Action,
        /// Whether it gets a new key now.
        new_key: bool,
    },
    /// Other files written or removed.
    Files {
        /// The artifact.
        id: ArtifactId,
        /// Its action.
        action: Action,
    },
}

impl fmt::Display for ChangeDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Added { id, action, reason } => write!(f, "now also `{} {id}` ({reason})", action.as_str()),
            Self::Dropped { id, action } => write!(f, "`{} {id}` is no longer needed", action.as_str()),
            Self::Action { id, saved, now, reason } => {
                write!(f, "`{id}` was to {}, now to {} ({reason})", saved.as_str(), now.as_str())
            }
            Self::Key { id, action, new_key: true } => write!(f, "`{} {id}` now makes a new key", action.as_str()),
            Self::Key { id, action, new_key: false } => {
                write!(f, "`{} {id}` no longer makes a new key", action.as_str())
            }
            Self::Files { id, action } => {
                write!(f, "`{} {id}` writes or removes other files than saved", action.as_str())
            }
        }
    }
}

/// The first way the changes decided `now` differ from the `saved` ones:
/// what each does (action, new key, files), not its reason, whose words
/// follow the clock ("expires in 40d") while what it does stays the same.
pub(super) fn first_change_difference(saved: &[Change], now: &[Change]) -> Option<ChangeDifference> {
    let by_id: HashMap<&ArtifactId, &Change> = saved.iter().map(|change| (&change.id, change)).collect();
    for change in now {
        let id = || change.id.clone();
        let difference = match by_id.get(&change.id) {
            None => ChangeDifference::Added { id: id(), action: change.action, reason: change.reason.clone() },
            Some(old) if old.action != change.action => ChangeDifference::Action {
                id: id(),
                saved: old.action,
                now: change.action,
                reason: change.reason.clone(),
            },
            Some(old) if old.new_key != change.new_key => {
                ChangeDifference::Key { id: id(), action: change.action, new_key: change.new_key }
            }
            Some(old) if old.writes != change.writes || old.removes != change.removes => {
                ChangeDifference::Files { id: id(), action: change.action }
            }
            Some(_) => continue,
        };
        return Some(difference);
    }
    let decided: HashSet<&ArtifactId> = now.iter().map(|change| &change.id).collect();
    saved
        .iter()
        .find(|change| !decided.contains(&change.id))
        .map(|change| ChangeDifference::Dropped { id: change.id.clone(), action: change.action })
}
