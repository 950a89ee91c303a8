//! A read-only view of the output tree as the last apply left it: whether
//! each recorded file is still intact, and the material (certificates, keys,
//! tokens) that can be taken from intact copies. Size and mtime are checked
//! first, as git's index does, so an untouched tree is not re-hashed.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use rayon::prelude::*;

use crate::state::{FileState, State};

/// What a recorded file looks like now; a saved plan records the statuses
/// that are not [`FileStatus::Intact`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// As written.
    Intact,
    /// Different content, or not a regular file any more.
    Changed,
    /// Gone.
    Missing,
}

/// What deciding needs to know of the output tree: whether a file is there,
/// whether a recorded file is as written, and an intact copy's content. The
/// real tree is [`Disk`]; the decider's unit tests use one in memory.
pub trait TreeView {
    /// Whether a file exists (without following symlinks).
    fn exists(&self, relative: &str) -> bool;
    /// The status of a recorded file.
    fn status(&self, relative: &str, recorded: &FileState) -> FileStatus;
    /// The content of the first intact recorded file of `role`.
    fn read_intact(&self, files: &BTreeMap<String, FileState>, role: crate::model::FileRole) -> Option<Vec<u8>>;
}

impl TreeView for Disk {
    fn exists(&self, relative: &str) -> bool {
        Disk::exists(self, relative)
    }

    fn status(&self, relative: &str, recorded: &FileState) -> FileStatus {
        Disk::status(self, relative, recorded)
    }

    fn read_intact(&self, files: &BTreeMap<String, FileState>, role: crate::model::FileRole) -> Option<Vec<u8>> {
        Disk::read_intact(self, files, role)
    }
}

/// The output directory, read lazily.
pub struct Disk {
    root: PathBuf,
    /// Statuses looked up ahead, in parallel, by relative path.
    known: HashMap<String, FileStatus>,
    /// The identities that open its encrypted files, when given.
    keyring: Option<std::sync::Arc<crate::secrets::Keyring>>,
}

impl Disk {
    /// A view of `root`.
    #[must_use]
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_path_buf(), known: HashMap::new(), keyring: None }
    }

    /// A view of `root` with the status of every file the state records
    /// looked up at once, across cores: on an unchanged tree this is all the
    /// disk work a run does.
    ///
    /// Files are looked up directory by directory, relative to a handle on
    /// their directory, so the kernel walks each directory's path once and
    /// not once per file.
    #[must_use]
    pub fn with_statuses(root: &Path, state: &State) -> Self {
        let mut disk = Self::new(root);
        let mut by_dir: HashMap<&str, Vec<(&String, &FileState)>> = HashMap::new();
        for (path, recorded) in state.artifacts.values().flat_map(|a| a.files.iter()) {
            let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            by_dir.entry(dir).or_default().push((path, recorded));
        }
        let dirs: Vec<(&str, Vec<(&String, &FileState)>)> = by_dir.into_iter().collect();
        disk.known = dirs
            .par_iter()
            .flat_map_iter(|(dir, files)| {
                let handle = open_dir(&disk.path(dir));
                let disk = &disk;
                files.iter().map(move |(path, recorded)| {
                    let status = match &handle {
                        Some(handle) => disk.look_in(handle, path, recorded),
                        None => disk.look(path, recorded),
                    };
                    ((*path).clone(), status)
                })
            })
            .collect();
        disk
    }

    /// Opens the tree's encrypted files with these identities.
    pub fn set_keyring(&mut self, keyring: Option<std::sync::Arc<crate::secrets::Keyring>>) {
        self.keyring = keyring;
    }

    /// The identities that open the tree's encrypted files, when given.
    #[must_use]
    pub fn keyring(&self) -> Option<&crate::secrets::Keyring> {
        self.keyring.as_deref()
    }

    /// The plaintext of a file as read: itself, or decrypted when its name
    /// says it is encrypted (`None` without an identity that opens it).
    #[must_use]
    pub fn plaintext(&self, relative: &str, bytes: Vec<u8>) -> Option<Vec<u8>> {
        if !crate::secrets::is_sealed(relative) {
            return Some(bytes);
        }
        let mut opened = self.keyring.as_ref()?.open(relative, &bytes).ok()?;
        Some(std::mem::take(&mut *opened))
    }

    /// The absolute path of a relative output path.
    #[must_use]
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Whether a file exists (without following symlinks).
    #[must_use]
    pub fn exists(&self, relative: &str) -> bool {
        fs::symlink_metadata(self.path(relative)).is_ok()
    }

    /// The status of a recorded file.
    #[must_use]
    pub fn status(&self, relative: &str, recorded: &FileState) -> FileStatus {
        match self.known.get(relative) {
            Some(status) => *status,
            None => self.look(relative, recorded),
        }
    }

    /// [`Self::look`] for a file in the directory `handle` stands for.
    fn look_in(&self, handle: &OwnedFd, relative: &str, recorded: &FileState) -> FileStatus {
        let name = relative.rsplit_once('/').map_or(relative, |(_, name)| name);
        let found = rustix::fs::statat(handle, name, AtFlags::SYMLINK_NOFOLLOW).ok().map(|stat| Found {
            regular: FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile,
            size: u64::try_from(stat.st_size).unwrap_or(u64::MAX),
            mtime_ns: i128::from(stat.st_mtime) * 1_000_000_000 + i128::from(stat.st_mtime_nsec),
        });
        self.judge(relative, recorded, found)
    }

    fn look(&self, relative: &str, recorded: &FileState) -> FileStatus {
        let found = fs::symlink_metadata(self.path(relative)).ok().map(|meta| Found {
            regular: meta.file_type().is_file(),
            size: meta.len(),
            mtime_ns: crate::output::mtime_ns(&meta),
        });
        self.judge(relative, recorded, found)
    }

    /// The status of a recorded file from what a stat found (`None`: nothing
    /// there). Size and mtime as recorded mean intact; otherwise its content
    /// decides.
    fn judge(&self, relative: &str, recorded: &FileState, found: Option<Found>) -> FileStatus {
        let Some(found) = found else {
            return FileStatus::Missing;
        };
        if !found.regular {
            return FileStatus::Changed;
        }
        if found.size == recorded.size && found.mtime_ns == recorded.mtime_ns {
            return FileStatus::Intact;
        }
        match crate::output::read_regular(&self.path(relative)) {
            Some(bytes) if sha256_hex(&bytes) == recorded.sha256 => FileStatus::Intact,
            Some(_) => FileStatus::Changed,
            None => FileStatus::Missing,
        }
    }

    /// The content of the first intact recorded file of `role`, decrypted
    /// when it is encrypted (`None` for an encrypted one without an identity
    /// that opens it).
    #[must_use]
    pub fn read_intact(&self, files: &BTreeMap<String, FileState>, role: crate::model::FileRole) -> Option<Vec<u8>> {
        files.iter().filter(|(_, f)| f.role == role).find_map(|(path, recorded)| {
            let bytes = crate::output::read_regular(&self.path(path))?;
            (sha256_hex(&bytes) == recorded.sha256).then(|| self.plaintext(path, bytes))?
        })
    }

    /// The recorded facts of a file on disk whose content is `contents`.
    #[must_use]
    pub fn record(&self, relative: &str, contents: &[u8], role: crate::model::FileRole) -> FileState {
        let mtime_ns = fs::symlink_metadata(self.path(relative)).map_or(0, |meta| crate::output::mtime_ns(&meta));
        file_facts(contents, role, mtime_ns)
    }
}

/// What a stat of a recorded file found.
struct Found {
    regular: bool,
    size: u64,
    mtime_ns: i128,
}

/// The facts the state records of a file: hash and size of `contents`, its
/// role, and the mtime it was written with.
#[must_use]
pub fn file_facts(contents: &[u8], role: crate::model::FileRole, mtime_ns: i128) -> FileState {
    FileState { sha256: sha256_hex(contents), role, size: contents.len() as u64, mtime_ns }
}

/// A handle on a directory for looking up the files in it; `None` when it
/// cannot be opened (gone, not a directory), and its files are looked up
/// one by one.
fn open_dir(path: &Path) -> Option<OwnedFd> {
    rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()
}

/// Hex SHA-256 of bytes.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
