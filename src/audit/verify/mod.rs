//! `verify`: an output tree checked against its plan, file by file. Every
//! expected file is present with its mode; copies of one artifact are
//! identical; certificates match their spec, chain to their CA and are in
//! their validity period; keys belong to their certificates; kubeconfigs,
//! `token.csv` and flag files say what the plan says. Like `kubeadm certs
//! check-expiration`, but against the plan. Reads only; writes nothing.
//!
//! [`Check`] names what a finding is about. The `verifier` walks the tree;
//! `x509` and `files` read what it finds; `render` shows the report to people.

mod check;
mod files;
mod render;
mod verifier;
mod x509;

pub use check::Check;
pub use render::write_verify_text;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::durations::remaining;
use crate::model::{FileRole, Model, Spec};

use verifier::Verifier;

/// What to verify against.
#[derive(Debug, Clone)]
pub struct Options {
    /// The clock.
    pub now: OffsetDateTime,
    /// Warn about certificates that expire within this long.
    pub warn_within: Option<time::Duration>,
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
    /// Whether nothing failed.
    pub ok: bool,
    /// Counts.
    pub summary: VerifySummary,
    /// Every certificate's expiry, in plan order.
    pub certificates: Vec<Expiry>,
    /// Every problem, in plan order.
    pub findings: Vec<Finding>,
}

/// Verifies the tree at `out` against a model.
pub fn verify(model: &Model, out: &Path, options: &Options) -> Result<VerifyReport, VerifyError> {
    if !out.is_dir() {
        return Err(VerifyError::NoTree { path: out.to_path_buf() });
    }
    let mut verifier =
        Verifier { model, root: out, options, files: HashMap::new(), findings: Vec::new(), certificates: Vec::new() };
    for artifact in &model.artifacts {
        for placement in &artifact.files {
            verifier.read(artifact, placement);
        }
    }
    for artifact in &model.artifacts {
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
        artifacts: model.artifacts.len(),
        files: verifier.files.len(),
        expected_files: model.artifacts.iter().map(|a| a.files.len()).sum(),
        failures,
        warnings: verifier.findings.len() - failures,
    };
    Ok(VerifyReport {
        version: 1,
        cluster: model.cluster.name.clone(),
        now: options.now.format(&Rfc3339).unwrap_or_default(),
        ok: failures == 0,
        summary,
        certificates: verifier.certificates,
        findings: verifier.findings,
    })
}
