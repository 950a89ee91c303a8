//! Getting a host's files onto the host (`certplan export`): every file the
//! plan places on one host, read from the output tree (decrypted when the
//! tree encrypts it), written under a root directory or as a tar stream.
//! Installing never changes a directory that exists already (its owner,
//! mode and mtime stay the host's), creates missing ones as 0755, and
//! writes each file atomically with its mode.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use zeroize::Zeroizing;

use crate::changes::{Disk, FileStatus};
use crate::model::Model;
use crate::state::State;

/// One file for a host.
pub struct HostFile {
    /// Where it goes on the host (absolute).
    pub host_path: String,
    /// Its permission bits.
    pub mode: u32,
    /// What it holds, decrypted; zeroed on drop.
    pub contents: Zeroizing<Vec<u8>>,
}

/// Why a host's files cannot be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The plan has no such host.
    #[error("the plan has no host `{0}`")]
    UnknownHost(String),
    /// A file the plan places is not in the tree as the last apply wrote it.
    #[error("`{path}` is {what} in the output tree: run `certplan apply` first")]
    NotApplied {
        /// The tree path.
        path: String,
        /// `missing` or `changed`.
        what: &'static str,
    },
    /// An encrypted file and no identity to open it.
    #[error(
        "`{0}` is encrypted: give the age identity with `--identity FILE`, `CERTPLAN_AGE_IDENTITY` or `CERTPLAN_AGE_IDENTITY_FILE`"
    )]
    NeedIdentity(String),
    /// Decryption failed.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    /// Writing failed.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An on-host path that is not absolute or leaves the root.
    #[error("refusing to export `{0}`: not an absolute path inside the host's root")]
    Escapes(String),
    /// A directory on the way is a symbolic link: under a root other than
    /// `/`, it could point out of that root.
    #[error(
        "`{0}` is a symbolic link: under a root other than `/` it may point outside it, so export does not follow it (install from inside the root instead: `certplan export ... --to - | chroot ROOT tar -x -C /`)"
    )]
    Symlink(PathBuf),
    /// The root is not a directory.
    #[error("`{0}` is not a directory: `--to` names the host's `/` (or a copy of it), which must exist")]
    NoRoot(PathBuf),
}

/// Every file the plan places on `host`, read from the tree at its recorded
/// state, decrypted with the disk's identity where encrypted.
pub fn host_files(model: &Model, state: &State, disk: &Disk, host: &str) -> Result<Vec<HostFile>, ExportError> {
    if !model.hosts.iter().any(|h| h.name == host) {
        return Err(ExportError::UnknownHost(host.to_string()));
    }
    let mut files = Vec::new();
    for artifact in &model.artifacts {
        let recorded = state.artifacts.get(&artifact.id);
        for placement in artifact.files.iter().filter(|p| p.host.as_deref() == Some(host)) {
            let Some(host_path) = &placement.host_path else { continue };
            let not_applied = |what| ExportError::NotApplied { path: placement.path.clone(), what };
            let facts = recorded.and_then(|r| r.files.get(&placement.path)).ok_or_else(|| not_applied("missing"))?;
            match disk.status(&placement.path, facts) {
                FileStatus::Intact => {}
                FileStatus::Missing => return Err(not_applied("missing")),
                FileStatus::Changed => return Err(not_applied("changed")),
            }
            let bytes =
                crate::output::read_regular(&disk.path(&placement.path)).ok_or_else(|| not_applied("missing"))?;
            let contents = if crate::secrets::is_sealed(&placement.path) {
                let keyring = disk.keyring().ok_or_else(|| ExportError::NeedIdentity(placement.path.clone()))?;
                keyring.open(&placement.path, &bytes)?
            } else {
                Zeroizing::new(bytes)
            };
            files.push(HostFile { host_path: host_path.clone(), mode: placement.role.mode(), contents });
        }
    }
    Ok(files)
}

/// The relative path of an on-host path under a root, refusing anything
/// that is not absolute or climbs out.
fn under_root(host_path: &str) -> Result<PathBuf, ExportError> {
    let path = Path::new(host_path);
    let mut relative = PathBuf::new();
    for (n, component) in path.components().enumerate() {
        match component {
            Component::RootDir if n == 0 => {}
            Component::Normal(part) if n > 0 => relative.push(part),
            _ => return Err(ExportError::Escapes(host_path.to_string())),
        }
    }
    if relative.as_os_str().is_empty() {
        return Err(ExportError::Escapes(host_path.to_string()));
    }
    Ok(relative)
}

/// Writes the files under `root`: missing directories made 0755, existing
/// ones left as they are, each file written atomically with its mode.
pub fn install(root: &Path, files: &[HostFile]) -> Result<(), ExportError> {
    if !fs::metadata(root).is_ok_and(|m| m.is_dir()) {
        return Err(ExportError::NoRoot(root.to_path_buf()));
    }
    for file in files {
        let target = root.join(under_root(&file.host_path)?);
        if let Some(parent) = target.parent() {
            make_missing_dirs(root, parent)?;
        }
        crate::output::write_atomic(&target, &file.contents, file.mode).map_err(|e| ExportError::Io {
            action: "write",
            path: target.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    }
    Ok(())
}

/// Creates the directories from `root` down to `dir` that do not exist,
/// each 0755 whatever the umask; touches none that exist. Under a root
/// other than `/`, refuses to pass through a symbolic link.
fn make_missing_dirs(root: &Path, dir: &Path) -> Result<(), ExportError> {
    let Ok(below) = dir.strip_prefix(root) else { return Ok(()) };
    let real_root = root == Path::new("/");
    let mut current = root.to_path_buf();
    for part in below.components() {
        current.push(part);
        if let Ok(meta) = fs::symlink_metadata(&current) {
            if meta.file_type().is_symlink() && !real_root {
                return Err(ExportError::Symlink(current));
            }
            continue;
        }
        let failed = |action| {
            let path = current.clone();
            move |source| ExportError::Io { action, path, source }
        };
        fs::DirBuilder::new().mode(0o755).create(&current).map_err(failed("create the directory"))?;
        fs::set_permissions(&current, fs::Permissions::from_mode(0o755)).map_err(failed("set the mode of"))?;
    }
    Ok(())
}

/// Writes the files as a tar stream of regular files only (paths relative to
/// `/`, owner root, their modes), for `| ssh host bsdtar -x --safe-writes -C /`: with no
/// directory entries, tar creates missing directories and leaves existing
/// ones alone.
pub fn write_tar(out: impl Write, files: &[HostFile], mtime: u64) -> Result<(), ExportError> {
    let failed = |source| ExportError::Io { action: "write the tar stream to", path: PathBuf::from("-"), source };
    let mut builder = tar::Builder::new(out);
    for file in files {
        let relative = under_root(&file.host_path)?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(file.contents.len() as u64);
        header.set_mode(file.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        builder.append_data(&mut header, &relative, file.contents.as_slice()).map_err(failed)?;
    }
    builder.into_inner().and_then(|mut out| out.flush()).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_paths_inside_the_root_are_exported() {
        assert_eq!(under_root("/etc/kubernetes/pki/ca.crt").expect("fine"), PathBuf::from("etc/kubernetes/pki/ca.crt"));
        for bad in ["etc/x", "/", "/etc/../x", ""] {
            assert!(under_root(bad).is_err(), "{bad}");
        }
    }
}
