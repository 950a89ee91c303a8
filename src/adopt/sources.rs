//! Where `adopt` reads: copies of hosts' file systems (`--host NAME=ROOT`)
//! and a directory shaped like the tree's `cluster/` (`--cluster ROOT`).
//! A file the plan places is looked up at its host path under its host's
//! root, or at its path under `cluster/` in the cluster root. Files are
//! only read, never followed through a symlink, never written.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::AdoptError;
use crate::model::{Model, Placement};

/// The roots `adopt` reads from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Each host's root, by host name.
    pub hosts: BTreeMap<String, PathBuf>,
    /// The root that holds what the tree keeps under `cluster/`.
    pub cluster: Option<PathBuf>,
}

/// A file read from a root.
pub struct Found {
    /// Its bytes (zeroed when dropped: it may hold a key).
    pub bytes: Zeroizing<Vec<u8>>,
    /// Where it was read, for people: `cp1:/etc/kubernetes/pki/ca.crt` or
    /// `cluster:pki/ca.key`.
    pub origin: String,
    /// Its permission bits.
    pub mode: u32,
}

impl Sources {
    /// Parses `NAME=ROOT` arguments and checks every root is a directory and
    /// every name a host of the plan.
    pub fn new(model: &Model, hosts: &[String], cluster: Option<&Path>) -> Result<Self, AdoptError> {
        let mut sources = Self::default();
        for arg in hosts {
            let Some((name, root)) = arg.split_once('=').filter(|(n, r)| !n.is_empty() && !r.is_empty()) else {
                return Err(AdoptError::HostArgument(arg.clone()));
            };
            if !model.hosts.iter().any(|h| h.name == name) {
                let known: Vec<&str> = model.hosts.iter().map(|h| h.name.as_str()).collect();
                return Err(AdoptError::UnknownHost { name: name.to_string(), known: known.join(", ") });
            }
            let root = PathBuf::from(root);
            directory(&root)?;
            if sources.hosts.insert(name.to_string(), root).is_some() {
                return Err(AdoptError::HostTwice(name.to_string()));
            }
        }
        if let Some(root) = cluster {
            directory(root)?;
            sources.cluster = Some(root.to_path_buf());
        }
        if sources.hosts.is_empty() && sources.cluster.is_none() {
            return Err(AdoptError::NothingToRead);
        }
        Ok(sources)
    }

    /// The file a placement names, read from its root, if there.
    #[must_use]
    pub fn read(&self, placement: &Placement) -> Option<Found> {
        let (path, origin) = self.locate(placement)?;
        read_at(&path, origin)
    }

    /// Where a placement's file would be under its root, and how to name it.
    fn locate(&self, placement: &Placement) -> Option<(PathBuf, String)> {
        if let (Some(host), Some(host_path)) = (&placement.host, &placement.host_path) {
            let root = self.hosts.get(host)?;
            return Some((root.join(host_path.trim_start_matches('/')), format!("{host}:{host_path}")));
        }
        let root = self.cluster.as_ref()?;
        let inside = placement.path.strip_prefix("cluster/")?;
        let inside = inside.strip_suffix(".age").unwrap_or(inside);
        Some((root.join(inside), format!("cluster:{inside}")))
    }

    /// A file named `name` in the directory of a host placement, on that
    /// host's root: where installs keep a CA's key beside its certificate.
    #[must_use]
    pub fn beside(&self, placement: &Placement, name: &str) -> Option<Found> {
        let host = placement.host.as_ref()?;
        let host_path = placement.host_path.as_ref()?;
        let root = self.hosts.get(host)?;
        let dir = Path::new(host_path).parent()?;
        let host_path = dir.join(name);
        let origin = format!("{host}:{}", host_path.display());
        read_at(&root.join(host_path.strip_prefix("/").unwrap_or(&host_path)), origin)
    }
}

fn directory(root: &Path) -> Result<(), AdoptError> {
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(AdoptError::NotADirectory(root.to_path_buf())),
        Err(source) => Err(AdoptError::Root { path: root.to_path_buf(), source }),
    }
}

/// Reads a regular file (never through a symlink).
fn read_at(path: &Path, origin: String) -> Option<Found> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    let bytes = Zeroizing::new(std::fs::read(path).ok()?);
    Some(Found { bytes, origin, mode: meta.permissions().mode() & 0o7777 })
}
