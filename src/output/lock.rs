//! The output tree's lock, `DIR/.certplan/lock`: one apply at a time. A
//! second apply waits, naming the process that holds the lock (found in
//! `/proc/locks`, so the lock file itself is never written).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::OutputError;

/// Where the lock lives, relative to the output directory.
pub const LOCK_PATH: &str = ".certplan/lock";

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct TreeLock {
    _file: File,
}

impl TreeLock {
    /// Takes the lock on `out`, waiting (and saying so on stderr) while
    /// another process holds it.
    pub fn acquire(out: &Path) -> Result<Self, OutputError> {
        super::ensure_root(out)?;
        let path = out.join(LOCK_PATH);
        let existed = fs::symlink_metadata(&path).is_ok();
        let dir = out.join(".certplan");
        if fs::symlink_metadata(&dir).is_err() {
            fs::create_dir(&dir).map_err(|source| OutputError::Io { action: "create", path: dir.clone(), source })?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(|source| OutputError::Io {
                action: "set the mode of",
                path: dir.clone(),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .open(&path)
            .map_err(|source| OutputError::Io { action: "open the lock", path: path.clone(), source })?;
        if !existed {
            file.set_permissions(fs::Permissions::from_mode(0o644)).map_err(|source| OutputError::Io {
                action: "set the mode of",
                path: path.clone(),
                source,
            })?;
        }
        Self::take(file, out, &path)
    }

    /// Takes the lock of a tree that already has a lock file, creating and
    /// writing nothing; `None` when there is no lock file (a new tree).
    pub fn acquire_existing(out: &Path) -> Result<Option<Self>, OutputError> {
        let path = out.join(LOCK_PATH);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            _ => return Ok(None),
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
            .open(&path)
            .map_err(|source| OutputError::Io { action: "open the lock", path: path.clone(), source })?;
        Self::take(file, out, &path).map(Some)
    }

    fn take(file: File, out: &Path, path: &Path) -> Result<Self, OutputError> {
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder =
                    holder_pid(&file).map_or_else(|| "another process".to_string(), |pid| format!("process {pid}"));
                eprintln!("waiting: {holder} is applying to `{}` (lock `{}`)", out.display(), path.display());
                file.lock().map_err(|source| lock_error(path, source))?;
            }
            Err(TryLockError::Error(source)) => return Err(lock_error(path, source)),
        }
        Ok(Self { _file: file })
    }
}

fn lock_error(path: &Path, source: std::io::Error) -> OutputError {
    OutputError::Io { action: "lock", path: PathBuf::from(path), source }
}

/// The pid holding a lock on this file's inode, from `/proc/locks`.
fn holder_pid(file: &File) -> Option<u32> {
    let inode = file.metadata().ok()?.ino();
    let locks = fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let device_inode = fields.iter().find(|f| f.matches(':').count() == 2)?;
        let found: u64 = device_inode.rsplit(':').next()?.parse().ok()?;
        if found != inode {
            return None;
        }
        let position = fields.iter().position(|f| f == device_inode)?;
        fields.get(position.checked_sub(1)?)?.parse().ok()
    })
}
