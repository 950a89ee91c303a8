//! `verify`: an output tree checked against its plan, file by file. Every
//! expected file is present with its mode; copies of one artifact are
//! identical; certificates match their spec, chain to their CA and are in
//! their validity period; keys belong to their certificates; kubeconfigs,
//! `token.csv` and flag files say what the plan says. Like `kubeadm certs
//! check-expiration`, but against the plan. Reads only; writes nothing.
//! The same checks run on one host's installed files (`--host --root`),
//! and `probe` asks the host's running servers which certificates they
//! serve (`--probe`).
//!
//! [`Check`] names what a finding is about; a [`Source`] says which files
//! are read and where. The `verifier` walks them; `x509` and `files` read
//! what it finds; `render` shows the report to people.

mod check;
mod files;
mod probe;
mod render;
mod source;
mod verifier;
pub(crate) mod x509;

pub use check::Check;
pub use probe::{ENDPOINTS as PROBE_ENDPOINTS, Probe, probe_host};
pub use render::write_verify_text;
pub use source::Source;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::durations::remaining;
use crate::model::{FileRole, Model, Placement, Spec};

use verifier::Verifier;

/// What to verify against.
#[derive(Debug, Clone)]
pub struct Options {
    /// The clock.
    pub now: OffsetDateTime,
    /// Warn about certificates that expire within this long.
    pub warn_within: Option<time::Duration>,
    /// The identity that opens the tree's encrypted files; without it their
    /// content is not checked (their presence and mode still are).
    pub keyring: Option<std::sync::Arc<crate::secrets::Keyring>>,
}

/// Why a tree cannot be verified at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The output directory is not there.
    #[error("`{}` is not a directory: run `certplan apply` first, or name the output directory with `--out`", path.display())]
    NoTree {
        /// The directory.
        path: PathBuf,
    },
    /// The root directory of `--host` is not there.
    #[error("`{}` is not a directory: `--root` names the directory the host's files are under, `/` on the host itself", path.display())]
    NoRoot {
        /// The directory.
        path: PathBuf,
    },
    /// `--host` names no host of the plan.
    #[error("the plan has no host `{name}`; its hosts are {}", known.join(", "))]
    UnknownHost {
        /// The name given.
        name: String,
        /// The plan's hosts.
        known: Vec<String>,
    },
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `verify` fails.
    Failure,
    /// Reported; `verify` still succeeds.
    Warning,
}

/// One problem.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The artifact.
    pub id: String,
    /// The file, relative to the output directory.
    pub path: Option<String>,
    /// What was checked.
    pub check: Check,
    /// How bad it is.
    pub severity: Severity,
    /// What is wrong, for people.
    pub message: String,
}

/// The expiry of one certificate (its canonical copy).
#[derive(Debug, Clone, Serialize)]
pub struct Expiry {
    /// The artifact.
    pub id: String,
    /// `ca` or `cert`.
    pub kind: &'static str,
    /// The file read.
    pub path: Option<String>,
    /// The signing CA's id.
    pub issuer: String,
    /// `NotBefore`, RFC 3339.
    pub not_before: Option<String>,
    /// `NotAfter`, RFC 3339.
    pub not_after: Option<String>,
    /// Seconds from `now` to `NotAfter` (negative once expired).
    pub residual_seconds: Option<i64>,
    /// `ok`, `expires-soon`, `expired`, `not-yet-valid`, `missing` or `unreadable`.
    pub status: &'static str,
}

impl Expiry {
    /// The residual time as `kubeadm` shows it.
    #[must_use]
    pub fn residual(&self) -> String {
        self.residual_seconds.map_or_else(|| "-".to_string(), |s| remaining(time::Duration::seconds(s)))
    }
}

/// One file that holds a certificate (a CA's or a leaf's), as monitoring
/// sees it (`verify --format prometheus`).
#[derive(Debug, Clone)]
pub struct CertFile {
    /// The certificate's artifact id.
    pub id: String,
    /// The host the file is placed on; `None` for the cluster directory.
    pub host: Option<String>,
    /// Its path on the host, or in the output tree for the cluster directory.
    pub path: String,
    /// The signing CA's id (its own for a CA).
    pub issuer: String,
    /// Its `NotAfter` as Unix seconds, when it holds a certificate.
    pub not_after: Option<i64>,
    /// Whether it is there and passed every check at the clock.
    pub valid: bool,
}

/// Counts.
#[derive(Debug, Default, Clone, Serialize)]
pub struct VerifySummary {
    /// Artifacts checked.
    pub artifacts: usize,
    /// Files found and read.
    pub files: usize,
    /// Files expected.
    pub expected_files: usize,
    /// Failures.
    pub failures: usize,
    /// Warnings.
    pub warnings: usize,
}

/// The verify document (`certplan verify --format json`).
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Contract version.
    pub version: u32,
    /// The cluster's name.
    pub cluster: String,
    /// The clock, RFC 3339.
    pub now: String,
    /// Whether nothing failed and, with `--warn-within`, nothing expires
    /// within it: `verify` exits 0.
    pub ok: bool,
    /// Counts.
    pub summary: VerifySummary,
    /// Every certificate's expiry, in plan order.
    pub certificates: Vec<Expiry>,
    /// Every problem, in plan order.
    pub findings: Vec<Finding>,
    /// What each endpoint of the host serves (`verify --host --probe`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
    /// Every file that holds a certificate, in plan order, for monitoring.
    #[serde(skip)]
    pub cert_files: Vec<CertFile>,
}

impl VerifyReport {
    /// Whether a certificate expires within `--warn-within`.
    #[must_use]
    pub fn expires_soon(&self) -> bool {
        self.findings.iter().any(|f| f.check == Check::ExpiresSoon)
    }
}

/// Verifies what `source` holds against a model. An artifact the source
/// holds no file of is not checked: a host's report is about its own files.
pub fn verify(model: &Model, source: Source<'_>, options: &Options) -> Result<VerifyReport, VerifyError> {
    match source {
        Source::Tree(dir) if !dir.is_dir() => return Err(VerifyError::NoTree { path: dir.to_path_buf() }),
        Source::Host { root, .. } if !root.is_dir() => return Err(VerifyError::NoRoot { path: root.to_path_buf() }),
        Source::Host { name, .. } if !model.hosts.iter().any(|h| h.name == name) => {
            let known = model.hosts.iter().map(|h| h.name.clone()).collect();
            return Err(VerifyError::UnknownHost { name: name.to_string(), known });
        }
        _ => {}
    }
    // An offline CA's key is meant to be off the tree: not looked for.
    let offline_key =
        |a: &crate::model::Artifact, p: &Placement| model.offline.contains(&a.id) && p.role == FileRole::Key;
    let placed: Vec<Vec<Placement>> = model
        .artifacts
        .iter()
        .map(|a| a.files.iter().filter(|p| !offline_key(a, p)).filter_map(|p| source.place(p)).collect())
        .collect();
    let in_scope: Vec<_> = model.artifacts.iter().zip(&placed).filter(|(_, files)| !files.is_empty()).collect();
    let mut verifier = Verifier {
        model,
        source,
        placed: &placed,
        options,
        files: HashMap::new(),
        findings: Vec::new(),
        certificates: Vec::new(),
        cert_files: Vec::new(),
    };
    for &(artifact, files) in &in_scope {
        for placement in files {
            verifier.read(artifact, placement);
        }
    }
    for &(artifact, _) in &in_scope {
        verifier.copies(artifact);
        match &artifact.spec {
            Spec::Ca(cert) => verifier.cert(artifact, cert, true),
            Spec::Cert(cert) => verifier.cert(artifact, cert, false),
            Spec::Keypair(_) => verifier.keypair(artifact),
            Spec::Kubeconfig(spec) => verifier.kubeconfig(artifact, spec),
            Spec::TokenFile(spec) => {
                for (path, text) in verifier.distinct(artifact, FileRole::TokenFile) {
                    let problems = match files::token_row(&String::from_utf8_lossy(&text)) {
                        Some(row) => files::token_problems(&row, spec),
                        None => vec!["it has no `token,user,uid,\"groups\"` row".to_string()],
                    };
                    for problem in problems {
                        verifier.fail(artifact, Some(&path), Check::TokenFile, problem);
                    }
                }
            }
            Spec::Flags(spec) => {
                for (path, text) in verifier.distinct(artifact, FileRole::Flags) {
                    let missing = files::missing_flags(&String::from_utf8_lossy(&text), spec);
                    if !missing.is_empty() {
                        let message = format!("it lacks {}", missing.join(", "));
                        verifier.fail(artifact, Some(&path), Check::Flags, message);
                    }
                }
            }
            _ => {}
        }
    }
    let failures = verifier.findings.iter().filter(|f| f.severity == Severity::Failure).count();
    let summary = VerifySummary {
        artifacts: in_scope.len(),
        files: verifier.files.len(),
        expected_files: placed.iter().map(Vec::len).sum(),
        failures,
        warnings: verifier.findings.len() - failures,
    };
    let mut report = VerifyReport {
        version: 1,
        cluster: model.cluster.name.clone(),
        now: options.now.format(&Rfc3339).unwrap_or_default(),
        ok: failures == 0,
        summary,
        certificates: verifier.certificates,
        findings: verifier.findings,
        probes: Vec::new(),
        cert_files: verifier.cert_files,
    };
    report.ok = report.ok && !report.expires_soon();
    Ok(report)
}
