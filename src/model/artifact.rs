//! Artifacts: everything certplan produces, each with a stable id, a spec
//! (what it must contain) and the files it is written to.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::{ArtifactId, CertSet};
use crate::plan::KeyAlgorithm;

/// One thing certplan produces.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Its stable id.
    pub id: ArtifactId,
    /// What it must contain.
    pub spec: Spec,
    /// Where it is written.
    pub files: Vec<Placement>,
    /// The plan text it comes from, for diagnostics.
    pub origin: Option<std::ops::Range<usize>>,
    /// Where particular values of it are written in the plan.
    pub spans: Spans,
}

/// Where values of an artifact are written in the plan, for diagnostics.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    /// Its key algorithm.
    pub key: Option<std::ops::Range<usize>>,
    /// Its CA choice.
    pub issuer: Option<std::ops::Range<usize>>,
    /// Its subject (an identity override or a user).
    pub subject: Option<std::ops::Range<usize>>,
    /// Its SAN list.
    pub sans: Option<std::ops::Range<usize>>,
    /// The URL it dials (kubeconfigs).
    pub server: Option<std::ops::Range<usize>>,
    /// Its validity, where the plan writes it (its own, its set's or the default's).
    pub validity: Option<std::ops::Range<usize>>,
    /// Its CN, where the plan writes it (an identity override or a user name).
    pub cn: Option<std::ops::Range<usize>>,
    /// Its O values, where the plan writes them (an identity override or a user's groups).
    pub o: Option<std::ops::Range<usize>>,
}

/// What an artifact must contain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Spec {
    /// A certificate authority: a self-signed certificate and its key.
    Ca(CertSpec),
    /// A leaf certificate and its key.
    Cert(CertSpec),
    /// A bare key pair (the service-account signing key).
    Keypair(KeyPairSpec),
    /// A trust bundle: the certificates of a CA under rotation, old and new,
    /// in one file, where components read that CA's trust (or the public
    /// keys of the service-account key pairs under rotation).
    Bundle(BundleSpec),
    /// A kubeconfig embedding a CA and a credential.
    Kubeconfig(KubeconfigSpec),
    /// A static token file (`token.csv`).
    TokenFile(TokenFileSpec),
    /// A bootstrap token, written as a `bootstrap.kubernetes.io/token` Secret.
    BootstrapToken(BootstrapTokenSpec),
    /// A component's flag file.
    Flags(FlagFileSpec),
    /// A Kubernetes manifest.
    Manifest(ManifestSpec),
}

impl Spec {
    /// The `kind` name used in reports.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ca(_) => "ca",
            Self::Cert(_) => "cert",
            Self::Keypair(_) => "keypair",
            Self::Bundle(_) => "bundle",
            Self::Kubeconfig(_) => "kubeconfig",
            Self::TokenFile(_) => "token-file",
            Self::Flags(_) => "flags",
            Self::BootstrapToken(_) | Self::Manifest(_) => "manifest",
        }
    }

    /// The template that renders it, for artifacts rendered from one.
    #[must_use]
    pub fn template_name(&self) -> Option<&'static str> {
        match self {
            Self::Kubeconfig(_) => Some("kubeconfig.yaml"),
            Self::TokenFile(_) => Some("token.csv"),
            Self::BootstrapToken(_) => Some("bootstrap-token-secret.yaml"),
            Self::Flags(_) => Some("flags.env"),
            Self::Manifest(manifest) => Some(manifest.template),
            Self::Ca(_) | Self::Cert(_) | Self::Keypair(_) | Self::Bundle(_) => None,
        }
    }

    /// Records the override template that renders it (see `template_override`).
    pub fn set_template_override(&mut self, stamp: Option<String>) {
        match self {
            Self::Kubeconfig(spec) => spec.template_override = stamp,
            Self::TokenFile(spec) => spec.template_override = stamp,
            Self::BootstrapToken(spec) => spec.template_override = stamp,
            Self::Flags(spec) => spec.template_override = stamp,
            Self::Manifest(spec) => spec.template_override = stamp,
            Self::Ca(_) | Self::Cert(_) | Self::Keypair(_) | Self::Bundle(_) => {}
        }
    }

    /// Whether issuing produces material for it (keys, certificates, tokens).
    #[must_use]
    pub fn has_material(&self) -> bool {
        matches!(self, Self::Ca(_) | Self::Cert(_) | Self::Keypair(_) | Self::TokenFile(_) | Self::BootstrapToken(_))
    }

    /// Whether its material is a token.
    #[must_use]
    pub fn is_token(&self) -> bool {
        matches!(self, Self::TokenFile(_) | Self::BootstrapToken(_))
    }

    /// The certificate spec of a CA or leaf.
    #[must_use]
    pub fn cert(&self) -> Option<&CertSpec> {
        match self {
            Self::Ca(cert) | Self::Cert(cert) => Some(cert),
            _ => None,
        }
    }
}

/// A certificate to issue (CA or leaf).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CertSpec {
    /// The set it belongs to; `None` for CAs and users outside sets.
    pub set: Option<CertSet>,
    /// The host it is bound to.
    pub host: Option<String>,
    /// The signing CA's id (a root CA's own id; an intermediate's parent).
    pub issuer: ArtifactId,
    /// For an intermediate CA: how many intermediates may follow it in a
    /// chain (basicConstraints' pathLenConstraint). Absent for roots and
    /// leaves, and then not part of the spec's JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_len: Option<u8>,
    /// For a CA certplan does not hold (`external`): the SHA-256 of its
    /// certificate as read from its file (empty until read). Absent for
    /// every other certificate, and then not part of the spec's JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
    /// Its subject.
    pub subject: Subject,
    /// Its subject alternative names.
    pub sans: Sans,
    /// Extended key usages (empty for CAs).
    pub eku: Vec<Eku>,
    /// Its key algorithm.
    pub key: KeyAlgorithm,
    /// How long it is valid.
    #[serde(with = "humantime_serde_secs")]
    pub validity: Duration,
}

/// A subject distinguished name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Subject {
    /// Common name: the user for the API server.
    pub cn: String,
    /// Organisations: the groups for the API server.
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

/// Subject alternative names, in a stable order without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Sans {
    /// DNS names.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ip: Vec<IpAddr>,
}

impl Sans {
    /// Adds a DNS name unless present.
    pub fn add_dns(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        if !self.dns.contains(&name) {
            self.dns.push(name);
        }
    }

    /// Adds an IP address unless present.
    pub fn add_ip(&mut self, ip: IpAddr) {
        if !self.ip.contains(&ip) {
            self.ip.push(ip);
        }
    }

    /// Whether a host (IP or DNS name, as dialled) is covered by these SANs,
    /// with the wildcard rule of RFC 6125 (one leftmost label).
    #[must_use]
    pub fn covers(&self, host: &str) -> bool {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return self.ip.contains(&ip);
        }
        let host = host.to_ascii_lowercase();
        self.dns.iter().any(|name| match name.strip_prefix("*.") {
            Some(suffix) => host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => *name == host,
        })
    }
}

/// An extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Eku {
    /// TLS server authentication.
    #[serde(rename = "serverAuth")]
    ServerAuth,
    /// TLS client authentication.
    #[serde(rename = "clientAuth")]
    ClientAuth,
}

/// A bare key pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct KeyPairSpec {
    /// The set it belongs to.
    pub set: CertSet,
    /// Its key algorithm.
    pub key: KeyAlgorithm,
}

/// A trust bundle: CA certificates, or the public keys of key pairs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BundleSpec {
    /// The CAs or key pairs it holds, in the order written: the outgoing one first.
    pub members: Vec<ArtifactId>,
}

/// A kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct KubeconfigSpec {
    /// The cluster entry's name.
    pub cluster_name: String,
    /// The URL it dials.
    pub server: String,
    /// The CA it trusts (a trust bundle while that CA is rotated).
    pub ca: ArtifactId,
    /// The user entry's name.
    pub user: String,
    /// How it authenticates.
    pub credential: Credential,
    /// The digest of the override template that renders it (`NAME sha256:…`);
    /// absent with the embedded templates. Part of the spec so that editing
    /// an override rewrites exactly the files it renders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_override: Option<String>,
}

/// How a kubeconfig authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Credential {
    /// An embedded client certificate and key.
    ClientCert(ArtifactId),
    /// A bearer token from a token file.
    Token(ArtifactId),
}

impl Credential {
    /// The artifact holding the credential.
    #[must_use]
    pub fn artifact(&self) -> &ArtifactId {
        match self {
            Self::ClientCert(id) | Self::Token(id) => id,
        }
    }
}

/// A static token file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TokenFileSpec {
    /// The user the token authenticates as.
    pub user: String,
    /// Its uid.
    pub uid: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// The digest of the override template that renders it (`NAME sha256:…`);
    /// absent with the embedded templates. Part of the spec so that editing
    /// an override rewrites exactly the files it renders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_override: Option<String>,
}

/// A bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`) and its Secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BootstrapTokenSpec {
    /// How long it lives.
    #[serde(with = "humantime_serde_secs")]
    pub ttl: Duration,
    /// Its `auth-extra-groups`.
    pub groups: Vec<String>,
    /// The digest of the override template that renders it (`NAME sha256:…`);
    /// absent with the embedded templates. Part of the spec so that editing
    /// an override rewrites exactly the files it renders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_override: Option<String>,
}

/// A component's flag file: variables of flags.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FlagFileSpec {
    /// The component (`etcd`, `kube-apiserver`, ...).
    pub component: &'static str,
    /// The host it is for.
    pub host: String,
    /// Environment variables, each a list of flags.
    pub vars: Vec<FlagVar>,
    /// The digest of the override template that renders it (`NAME sha256:…`);
    /// absent with the embedded templates. Part of the spec so that editing
    /// an override rewrites exactly the files it renders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_override: Option<String>,
}

/// One environment variable of a flag file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FlagVar {
    /// Its name, such as `KUBE_APISERVER_TLS_ARGS`.
    pub name: String,
    /// `(flag, value)` pairs, flags without the leading dashes.
    pub flags: Vec<(String, String)>,
}

impl FlagVar {
    /// The value of a flag, if present.
    #[must_use]
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.flags.iter().find(|(f, _)| f == flag).map(|(_, v)| v.as_str())
    }
}

/// A manifest rendered from a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ManifestSpec {
    /// The template that renders it.
    pub template: &'static str,
    /// Values the template needs.
    pub values: Vec<(String, String)>,
    /// The digest of the override template that renders it (`NAME sha256:…`);
    /// absent with the embedded templates. Part of the spec so that editing
    /// an override rewrites exactly the files it renders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_override: Option<String>,
}

/// Where one file of an artifact is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Placement {
    /// The host it goes to, or `None` for the cluster directory.
    pub host: Option<String>,
    /// Its path relative to the output directory.
    pub path: String,
    /// Its path on the host (absolute), when host-bound.
    pub host_path: Option<String>,
    /// What the file holds.
    pub role: FileRole,
}

/// What a file holds; decides its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    /// A PEM certificate.
    Cert,
    /// A PEM private key.
    Key,
    /// A PEM public key.
    PublicKey,
    /// A kubeconfig (embeds a key or token).
    Kubeconfig,
    /// A token file.
    TokenFile,
    /// A flag file.
    Flags,
    /// A manifest.
    Manifest,
    /// A manifest holding a secret (the bootstrap-token Secret).
    SecretManifest,
}

impl FileRole {
    /// The file's permission bits.
    #[must_use]
    pub fn mode(self) -> u32 {
        if self.is_secret() { 0o600 } else { 0o644 }
    }

    /// Whether the file holds a secret.
    #[must_use]
    pub fn is_secret(self) -> bool {
        matches!(self, Self::Key | Self::Kubeconfig | Self::TokenFile | Self::SecretManifest)
    }
}

mod humantime_serde_secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_secs())
    }
}
