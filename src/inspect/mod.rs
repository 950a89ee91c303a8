//! The inspect report: every artifact of a plan with its identity, SANs,
//! issuer, key and files, completed from the output tree when one is given
//! (real validity, file hashes). Its JSON form is the documented contract
//! automation builds on (`book/src/reference/output-tree.md`). [`write_text`]
//! and [`write_markdown`] render it as tables for people.

mod table;

pub use table::{write_markdown, write_text};

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::changes::sha256_hex;
use crate::graph::{Consumers, Graph};
use crate::model::{Artifact, CertSet, Model, Spec, Subject};

/// The inspect document.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Contract version.
    pub version: u32,
    /// The cluster's name.
    pub cluster: String,
    /// Every artifact, in plan order.
    pub artifacts: Vec<ArtifactReport>,
}

/// One artifact.
#[derive(Debug, Serialize)]
pub struct ArtifactReport {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: &'static str,
    /// Its set.
    pub set: Option<CertSet>,
    /// The host it is bound to.
    pub host: Option<String>,
    /// The signing CA's id.
    pub issuer: Option<String>,
    /// Its subject.
    pub subject: Option<SubjectReport>,
    /// Its SANs.
    pub sans: Option<SansReport>,
    /// Its EKUs.
    pub eku: Option<Vec<crate::model::Eku>>,
    /// Its key algorithm.
    pub key: Option<&'static str>,
    /// `NotBefore`, RFC 3339.
    pub not_before: Option<String>,
    /// `NotAfter`, RFC 3339.
    pub not_after: Option<String>,
    /// Its files.
    pub files: Vec<FileReport>,
    /// Its planned validity in seconds (certificates).
    pub validity_seconds: Option<u64>,
    /// Seconds from the clock to `NotAfter`, when read from the certificate on disk.
    pub residual_seconds: Option<i64>,
    /// kubeadm's discovery hash of a CA (`sha256:` + hex SHA-256 of its DER
    /// `SubjectPublicKeyInfo`), from its certificate on disk.
    pub discovery_hash: Option<String>,
}

/// A subject.
#[derive(Debug, Serialize)]
pub struct SubjectReport {
    /// Common name.
    pub cn: String,
    /// Organisations.
    pub o: Vec<String>,
    /// Organisational units.
    pub ou: Vec<String>,
    /// Country.
    pub c: Option<String>,
    /// State or province.
    pub st: Option<String>,
    /// Locality.
    pub l: Option<String>,
}

/// SANs as text.
#[derive(Debug, Serialize)]
pub struct SansReport {
    /// DNS names.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ip: Vec<String>,
}

/// One file.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// Relative to the output directory.
    pub path: String,
    /// What it holds.
    pub role: crate::model::FileRole,
    /// Its mode, on disk when it exists, else the one it will get.
    pub mode: String,
    /// SHA-256 of the file on disk, when it exists.
    pub sha256: Option<String>,
    /// The host it is placed on; `null` for the cluster directory.
    pub host: Option<String>,
    /// The components on that host whose flags name it (or whose flag file it is).
    pub consumers: Vec<String>,
}

/// Builds the report; `out` adds what is on disk.
pub fn report(model: &Model, graph: &Graph, out: Option<&Path>, now: OffsetDateTime) -> Report {
    let consumers = graph.consumers(&model.artifacts);
    Report {
        version: 1,
        cluster: model.cluster.name.clone(),
        artifacts: model.artifacts.iter().map(|a| artifact_report(a, out, now, consumers)).collect(),
    }
}

fn subject(s: &Subject) -> SubjectReport {
    SubjectReport {
        cn: s.cn.clone(),
        o: s.o.clone(),
        ou: s.ou.clone(),
        c: s.c.clone(),
        st: s.st.clone(),
        l: s.l.clone(),
    }
}

fn artifact_report(
    artifact: &Artifact,
    out: Option<&Path>,
    now: OffsetDateTime,
    consumers: &Consumers,
) -> ArtifactReport {
    let cert = artifact.spec.cert();
    let files: Vec<FileReport> = artifact
        .files
        .iter()
        .map(|f| {
            let on_disk = out.and_then(|o| crate::output::read_regular(&o.join(&f.path)).map(|b| (o.join(&f.path), b)));
            let mode = on_disk
                .as_ref()
                .and_then(|(p, _)| std::fs::symlink_metadata(p).ok())
                .map_or(f.role.mode(), |m| m.permissions().mode() & 0o7777);
            FileReport {
                path: f.path.clone(),
                role: f.role,
                mode: format!("{mode:04o}"),
                sha256: on_disk.map(|(_, b)| sha256_hex(&b)),
                host: f.host.clone(),
                consumers: f
                    .host
                    .as_deref()
                    .zip(f.host_path.as_deref())
                    .map(|(host, path)| consumers.components_of(host, path))
                    .unwrap_or_default(),
            }
        })
        .collect();
    let cert_file = artifact.files.iter().find(|f| f.role == crate::model::FileRole::Cert);
    let cert_on_disk = out.zip(cert_file).and_then(|(o, f)| crate::output::read_regular(&o.join(&f.path)));
    let from_disk = cert_on_disk.as_deref().and_then(validity_of_pem);
    let (not_before, not_after) = match cert {
        Some(spec) => {
            let (nb, na) = from_disk.unwrap_or_else(|| {
                let validity = time::Duration::try_from(spec.validity).unwrap_or(time::Duration::ZERO);
                (now - crate::issue::BACKDATE, now + validity)
            });
            (nb.format(&Rfc3339).ok(), na.format(&Rfc3339).ok())
        }
        None => (None, None),
    };
    let discovery_hash = match &artifact.spec {
        Spec::Ca(_) => cert_on_disk.as_deref().and_then(crate::audit::discovery_hash_of_pem),
        _ => None,
    };
    let (set, host, issuer) = match &artifact.spec {
        Spec::Ca(_) => (None, None, Some(artifact.id.to_string())),
        Spec::Cert(c) => (c.set, c.host.clone(), Some(c.issuer.to_string())),
        Spec::Keypair(k) => (Some(k.set), None, None),
        Spec::Flags(f) => (None, Some(f.host.clone()), None),
        _ => (None, artifact.files.first().and_then(|f| f.host.clone()).filter(|_| artifact.files.len() == 1), None),
    };
    ArtifactReport {
        id: artifact.id.to_string(),
        kind: artifact.spec.kind(),
        set,
        host,
        issuer,
        subject: cert.map(|c| subject(&c.subject)),
        sans: cert
            .map(|c| SansReport { dns: c.sans.dns.clone(), ip: c.sans.ip.iter().map(ToString::to_string).collect() }),
        eku: cert.map(|c| c.eku.clone()),
        key: match &artifact.spec {
            Spec::Ca(c) | Spec::Cert(c) => Some(c.key.as_str()),
            Spec::Keypair(k) => Some(k.key.as_str()),
            _ => None,
        },
        not_before,
        not_after,
        files,
        validity_seconds: cert.map(|c| c.validity.as_secs()),
        residual_seconds: from_disk.map(|(_, na)| (na - now).whole_seconds()),
        discovery_hash,
    }
}

fn validity_of_pem(bytes: &[u8]) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(bytes).ok()?;
    let cert = pem.parse_x509().ok()?;
    let validity = cert.validity();
    Some((validity.not_before.to_datetime(), validity.not_after.to_datetime()))
}
