//! The auditor's commands, on top of the pipeline: the semantic [`diff`] of
//! two plans, the artifact graph [`export`] (DOT, Mermaid, JSON) and the
//! [`verify`] of an output tree (or of one host's installed files) against
//! its plan, with its [`prometheus`] metrics. Everything here reads the
//! compiled model; only `verify` and the metrics read files, and nothing
//! here writes any.
//!
//! "Which component on which host reads this file", which all of them need,
//! is the graph's answer (`Graph::consumers`). The `inspect` report builds
//! on this module, never the other way round.

pub mod diff;
mod diff_render;
pub mod export;
pub mod prometheus;
pub mod verify;

pub use diff_render::{write_markdown as write_diff_markdown, write_text as write_diff_text};
pub use verify::write_verify_text;

use sha2::{Digest, Sha256};

/// The format of a report for people or programs (`diff`'s; `inspect` has
/// these and its metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people, coloured on a terminal.
    Text,
    /// For programs.
    Json,
    /// For pull requests and wikis.
    Markdown,
}

/// kubeadm's discovery hash of a CA: `sha256:` and the hex SHA-256 of its
/// DER `SubjectPublicKeyInfo` (`--discovery-token-ca-cert-hash`).
#[must_use]
pub fn discovery_hash(spki_der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(spki_der)))
}

/// The discovery hash of the first certificate in a PEM file, if it parses.
#[must_use]
pub fn discovery_hash_of_pem(pem: &[u8]) -> Option<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(discovery_hash(cert.public_key().raw))
}
