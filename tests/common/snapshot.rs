//! A tree as it stands: every file and directory under a root with its
//! content hash, mtime, mode and owner, to prove a command changed exactly
//! what it should (or nothing).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// What a file or directory looks like: its content hash (empty for a
/// directory), mtime, mode and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub sha256: String,
    pub mtime: SystemTime,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Every file and directory under a root (not the root itself), by path
/// relative to it; a directory's path ends in `/`.
pub type Snapshot = BTreeMap<String, Stamp>;

/// Takes the snapshot of everything under `root`.
pub fn snapshot(root: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, into: &mut Snapshot) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            let meta = fs::symlink_metadata(&path).expect("stat");
            let rel = path.strip_prefix(root).expect("under the root").to_string_lossy().into_owned();
            let sha256 = if meta.is_file() {
                hex::encode(Sha256::digest(fs::read(&path).expect("read a file")))
            } else {
                String::new()
            };
            let stamp = Stamp {
                sha256,
                mtime: meta.modified().expect("mtime"),
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
            };
            if meta.is_dir() {
                into.insert(format!("{rel}/"), stamp);
                walk(root, &path, into);
            } else {
                into.insert(rel, stamp);
            }
        }
    }
    let mut snapshot = Snapshot::new();
    walk(root, root, &mut snapshot);
    snapshot
}
