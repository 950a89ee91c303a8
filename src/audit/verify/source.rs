//! What `verify` reads: an output tree as `apply` wrote it, or the files
//! one host has installed (`verify --host NAME --root ROOT`). A [`Source`]
//! maps each placement of the plan to the name the report gives it and to
//! the path it reads, so the checks are the same for both.

use std::path::{Path, PathBuf};

use crate::model::Placement;

/// Where the files to verify are.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// An output tree: every placement, at `DIR/<path>`, named by its path
    /// in the tree.
    Tree(&'a Path),
    /// One host's installed files: the placements on that host, at
    /// `ROOT/<on-host path>`, named by their on-host path. `ROOT` is `/`
    /// on the host itself.
    Host {
        /// The host's name in the plan.
        name: &'a str,
        /// The directory its paths are read under.
        root: &'a Path,
    },
}

impl Source<'_> {
    /// A placement as this source holds it, its `path` the name the report
    /// gives the file; `None` when the source does not hold it (a file of
    /// another host or of the cluster directory, seen from a host).
    pub(super) fn place(&self, placement: &Placement) -> Option<Placement> {
        match self {
            Self::Tree(_) => Some(placement.clone()),
            Self::Host { name, .. } => {
                let on_host = placement.host_path.as_deref().filter(|_| placement.host.as_deref() == Some(*name))?;
                Some(Placement { path: on_host.to_string(), ..placement.clone() })
            }
        }
    }

    /// Where a placement returned by [`Source::place`] is on disk.
    pub(super) fn disk_path(&self, placed: &Placement) -> PathBuf {
        match self {
            Self::Tree(dir) => dir.join(&placed.path),
            // An on-host path is absolute: joined as it is, it would replace the root.
            Self::Host { root, .. } => root.join(placed.path.trim_start_matches('/')),
        }
    }
}
