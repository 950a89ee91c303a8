//! Writing the output tree: the only stage that touches the disk. Every file
//! is written to a temporary file in its directory, given its mode, flushed
//! and renamed into place; directories get modes that do not depend on the
//! umask (0700 where they hold a secret).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

mod lock;

pub use lock::{LOCK_PATH, TreeLock};

use rayon::prelude::*;

use crate::render::RenderedFile;

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// A file system call failed.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A path would leave the output directory.
    #[error("refusing to write `{0}`: the path leaves the output directory")]
    Escapes(String),
    /// Something other than a directory is where a directory must be.
    #[error("`{0}` is in the way: a directory must be there")]
    NotADirectory(PathBuf),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> OutputError {
    let path = path.to_path_buf();
    move |source| OutputError::Io { action, path, source }
}

/// Reads a file only if it is a regular file: a symlink planted in the
/// output tree is never followed.
#[must_use]
pub fn read_regular(path: &Path) -> Option<Vec<u8>> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    fs::read(path).ok()
}

/// Checks a relative output path: no absolute part, no `..`.
pub fn safe_relative(path: &str) -> Result<&Path, OutputError> {
    let p = Path::new(path);
    if p.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(p)
    } else {
        Err(OutputError::Escapes(path.to_string()))
    }
}

/// Writes files under `out`, creating directories with the right modes, and
/// returns the modification time of each file written (nanoseconds since
/// the epoch, in the order of `files`), read from the open file, for the
/// state.
///
/// Every file is first written in full to a temporary file beside its final
/// path and made durable, then renamed into place, and the renames are made
/// durable. A crash at any moment leaves each final path with either its old
/// or its new content. Many files are made durable by flushing the whole
/// file system twice (`syncfs`), which costs less than one flush per file; a
/// few files (a one-certificate change) are flushed one by one, with their
/// directories, so the run does not wait for what other processes left
/// unwritten on the same file system.
pub fn write_files(
    out: &Path,
    files: &[RenderedFile],
    progress: &crate::progress::Progress,
) -> Result<Vec<i128>, OutputError> {
    progress.phase("files", files.len());
    // Absolute paths spare the temporary-file library a `getcwd` per file.
    let out = &std::path::absolute(out).map_err(io("resolve", out))?;
    // Directories by their relative path, which `safe_relative` checked is
    // plain `/`-separated names.
    let mut dir_modes: HashMap<&str, u32> = HashMap::new();
    for file in files {
        safe_relative(&file.path)?;
        let mut dir = parent_of(&file.path);
        let mut direct = true;
        while let Some(d) = dir {
            let entry = dir_modes.entry(d).or_insert(0o755);
            if direct && file.role.is_secret() {
                *entry = 0o700;
            }
            direct = false;
            dir = parent_of(d);
        }
    }
    ensure_root(out)?;
    let created = make_dirs(out, &dir_modes)?;
    let few = files.len() <= FEW_FILES;
    let staged: Vec<(tempfile::TempPath, PathBuf, i128)> = files
        .par_iter()
        .map(|file| {
            let relative = safe_relative(&file.path)?;
            // Nothing can be in the way in a directory made just now.
            let fresh = parent_of(&file.path).is_some_and(|dir| created.contains(dir));
            let path = out.join(relative);
            let (temp, mtime_ns) = stage(&path, &file.contents, file.mode, fresh, few)?;
            progress.tick();
            Ok((temp, path, mtime_ns))
        })
        .collect::<Result<_, OutputError>>()?;
    if !few {
        flush_file_system(out)?;
    }
    let mtimes = staged
        .into_par_iter()
        .map(|(temp, path, mtime_ns)| {
            temp.persist(&path).map_err(|e| io("rename into", &path)(e.error))?;
            Ok(mtime_ns)
        })
        .collect::<Result<_, OutputError>>()?;
    if few {
        // The directories the files were renamed into, and the parents of
        // directories made in this run, which hold their new entries.
        let mut dirs: HashSet<&str> = files.iter().map(|f| parent_of(&f.path).unwrap_or("")).collect();
        dirs.extend(created.iter().map(|dir| parent_of(dir).unwrap_or("")));
        dirs.par_iter().try_for_each(|dir| sync_dir(&out.join(dir)))?;
    } else {
        flush_file_system(out)?;
    }
    Ok(mtimes)
}

/// Makes every directory (relative to `out`) with its mode, parents before
/// children and the directories of one depth across cores; returns the ones
/// that did not exist before.
fn make_dirs<'a>(out: &Path, dir_modes: &HashMap<&'a str, u32>) -> Result<HashSet<&'a str>, OutputError> {
    let mut by_depth: BTreeMap<usize, Vec<(&'a str, u32)>> = BTreeMap::new();
    for (&dir, &mode) in dir_modes {
        by_depth.entry(dir.matches('/').count()).or_default().push((dir, mode));
    }
    let mut created = HashSet::new();
    for dirs in by_depth.values() {
        let fresh: Vec<Option<&str>> = dirs
            .par_iter()
            .map(|&(dir, mode)| Ok(make_dir(&out.join(dir), mode)?.then_some(dir)))
            .collect::<Result<_, OutputError>>()?;
        created.extend(fresh.into_iter().flatten());
    }
    Ok(created)
}

/// Up to this many files are flushed one by one rather than with the whole
/// file system.
const FEW_FILES: usize = 32;

/// Makes the entries of a directory (renames into it) durable.
fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("flush the directory", dir))
}

/// The directory part of a relative `/`-separated path, if it has one.
fn parent_of(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(dir, _)| dir)
}

/// Makes one directory whose parent exists, with `mode`; an existing one
/// gets the mode and loses the temporary files a killed run left in it.
/// Whether it is new.
fn make_dir(path: &Path, mode: u32) -> Result<bool, OutputError> {
    let fresh = match fs::create_dir(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(io("create the directory", path)(e)),
    };
    if !fresh {
        let meta = fs::symlink_metadata(path).map_err(io("inspect", path))?;
        if !meta.is_dir() {
            return Err(OutputError::NotADirectory(path.to_path_buf()));
        }
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io("set the mode of", path))?;
    if !fresh {
        remove_stale_temporaries(path)?;
    }
    Ok(fresh)
}

/// Writes `contents` to a new temporary file in the directory of `path`;
/// returns it with its modification time. Unless `fresh` (its directory was
/// just made), a directory at `path` is an error before anything is renamed.
/// With `flush`, the file is made durable before it is closed.
fn stage(
    path: &Path,
    contents: &[u8],
    mode: u32,
    fresh: bool,
    flush: bool,
) -> Result<(tempfile::TempPath, i128), OutputError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !fresh
        && let Ok(meta) = fs::symlink_metadata(path)
        && meta.is_dir()
    {
        return Err(OutputError::NotADirectory(path.to_path_buf()));
    }
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(io("create a temporary file in", dir))?;
    temp.as_file().set_permissions(fs::Permissions::from_mode(mode)).map_err(io("set the mode of", temp.path()))?;
    temp.write_all(contents).map_err(io("write", path))?;
    if flush {
        temp.as_file().sync_data().map_err(io("flush", path))?;
    }
    let meta = temp.as_file().metadata().map_err(io("inspect", temp.path()))?;
    Ok((temp.into_temp_path(), mtime_ns(&meta)))
}

/// A file's modification time in nanoseconds since the epoch, as the state
/// records it.
#[must_use]
pub fn mtime_ns(meta: &fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// The prefix of temporary files, so a run killed midway can clean them up.
pub const TEMP_PREFIX: &str = ".certplan-";

/// Removes temporary files a killed run left in a directory.
fn remove_stale_temporaries(dir: &Path) -> Result<(), OutputError> {
    let entries = fs::read_dir(dir).map_err(io("read the directory", dir))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_temp = name.to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX));
        if is_temp && entry.file_type().is_ok_and(|t| t.is_file()) {
            fs::remove_file(entry.path()).map_err(io("remove the stale temporary file", &entry.path()))?;
        }
    }
    Ok(())
}

/// Flushes the file system holding `out` to disk.
fn flush_file_system(out: &Path) -> Result<(), OutputError> {
    let dir = fs::File::open(out).map_err(io("open", out))?;
    rustix::fs::syncfs(&dir).map_err(|e| io("flush the file system of", out)(e.into()))
}

/// The output directory itself may be a symlink the user chose; it is
/// created (0755) when missing.
pub fn ensure_root(out: &Path) -> Result<(), OutputError> {
    match fs::metadata(out) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(OutputError::NotADirectory(out.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(out).map_err(io("create the directory", out))?;
            fs::set_permissions(out, fs::Permissions::from_mode(0o755)).map_err(io("set the mode of", out))
        }
        Err(e) => Err(io("inspect", out)(e)),
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, so the
/// final path never holds a partial file.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), OutputError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Ok(meta) = fs::symlink_metadata(path)
        && meta.is_dir()
    {
        return Err(OutputError::NotADirectory(path.to_path_buf()));
    }
    // A run killed while writing here left its temporary file behind.
    remove_stale_temporaries(dir)?;
    let mut temp =
        tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(dir).map_err(io("create a temporary file in", dir))?;
    temp.as_file().set_permissions(fs::Permissions::from_mode(mode)).map_err(io("set the mode of", temp.path()))?;
    temp.write_all(contents).map_err(io("write", path))?;
    temp.as_file().sync_all().map_err(io("flush", path))?;
    temp.persist(path).map_err(|e| io("rename into", path)(e.error))?;
    sync_dir(dir)
}

/// Removes files (relative to `out`) and then the directories they leave
/// empty, up to `out`.
pub fn remove_files(out: &Path, paths: &[String]) -> Result<(), OutputError> {
    for path in paths {
        let full = out.join(safe_relative(path)?);
        match fs::remove_file(&full) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove", &full)(e)),
        }
        let mut dir = full.parent();
        while let Some(d) = dir.filter(|d| *d != out && d.starts_with(out)) {
            if fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    Ok(())
}
