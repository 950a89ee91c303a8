//! The state file, `DIR/.certplan/state.json`: what the last apply wrote, so
//! the next run can tell what changed. It holds fingerprints, specs (which
//! are public), file hashes and certificate serials and dates — never a key
//! or token.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::ArtifactId;

/// Where the state lives, relative to the output directory.
pub const STATE_PATH: &str = ".certplan/state.json";

/// The current state format.
pub const STATE_VERSION: u32 = 1;

/// The recorded state of an output tree.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// Per artifact id.
    pub artifacts: BTreeMap<ArtifactId, ArtifactState>,
    /// The step of every CA rotation the tree is in, by CA name; absent
    /// when none is under way.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rotations: BTreeMap<String, crate::plan::RotationStep>,
    /// The age recipients its secret files are encrypted to (public keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub age_recipients: Vec<String>,
    /// The step of the service-account key pair's rotation the tree is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_rotation: Option<crate::plan::RotationStep>,
}

/// What was written for one artifact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactState {
    /// Fingerprint of its spec and inputs.
    pub fingerprint: crate::graph::Fingerprint,
    /// Its spec as it was (no secrets: specs never hold any), kept as text
    /// and parsed only when the fingerprint says it changed.
    pub spec: Box<serde_json::value::RawValue>,
    /// Certificate facts, for CAs and leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertState>,
    /// Every file written, by path relative to the output directory.
    pub files: BTreeMap<String, FileState>,
    /// For a certificate a CA certplan does not hold must sign: the
    /// fingerprint of what its outstanding request (`requests/ID.csr`) asks
    /// for, until the signed certificate comes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<crate::graph::Fingerprint>,
}

/// Facts of an issued certificate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertState {
    /// Hex serial.
    pub serial: String,
    /// `NotBefore`, RFC 3339.
    pub not_before: String,
    /// `NotAfter`, RFC 3339.
    pub not_after: String,
}

/// One written file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileState {
    /// SHA-256 of its content, hex.
    pub sha256: String,
    /// Its role (`cert`, `key`, ...).
    pub role: crate::model::FileRole,
    /// Its size, to skip hashing unchanged files.
    pub size: u64,
    /// Its modification time in nanoseconds since the epoch.
    pub mtime_ns: i128,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// It exists but cannot be read.
    #[error("cannot read the state file `{path}`: {source}")]
    Read {
        /// Its path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// It is not a state file certplan understands.
    #[error("the state file `{path}` is damaged or from another version: {reason}")]
    Corrupt {
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl State {
    /// Loads the state of an output tree; an absent file is an empty state.
    pub fn load(out: &Path) -> Result<Self, StateError> {
        let path = out.join(STATE_PATH);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self { version: STATE_VERSION, ..Self::default() });
            }
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let state: Self = serde_json::from_str(&text)
            .map_err(|e| StateError::Corrupt { path: path.clone(), reason: e.to_string() })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Corrupt {
                path,
                reason: format!("version {} is not {STATE_VERSION}", state.version),
            });
        }
        Ok(state)
    }

    /// The state as compact JSON (it is read on every run), ending in a newline.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key(id: &str) -> String {
        format!(r#"{{"version":1,"artifacts":{{"{id}":{{"fingerprint":"f","spec":{{}},"files":{{}}}}}}}}"#)
    }

    #[test]
    fn its_keys_are_artifact_ids() {
        let state: State = serde_json::from_str(&with_key("cert/apiserver")).expect("a state");
        assert_eq!(state.artifacts.keys().map(ArtifactId::as_str).collect::<Vec<_>>(), ["cert/apiserver"]);
        assert_eq!(String::from_utf8(state.to_json()).expect("UTF-8"), with_key("cert/apiserver") + "\n");
        assert!(serde_json::from_str::<State>(&with_key("apiserver")).is_err(), "not an id");
    }
}
