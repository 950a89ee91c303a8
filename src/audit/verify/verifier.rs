//! The walk of `verify` over what its [`Source`] holds: every expected file
//! read once with its mode, copies compared, then each certificate, key
//! pair and kubeconfig checked against the plan, collecting findings,
//! expiries and, for monitoring, each certificate file's verdict.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use super::check::Check;
use super::source::Source;
use super::{CertFile, Expiry, Finding, Options, Severity, files, x509};
use crate::durations::remaining;
use crate::model::{Artifact, ArtifactId, CertSpec, Credential, FileRole, KubeconfigSpec, Model, Placement, Spec};

/// One run of `verify`: the files read so far and what was found in them.
pub(super) struct Verifier<'a> {
    pub(super) model: &'a Model,
    pub(super) source: Source<'a>,
    /// Per artifact of the model, in its order: the files the source holds,
    /// named as the report names them ([`Source::place`]).
    pub(super) placed: &'a [Vec<Placement>],
    pub(super) options: &'a Options,
    /// What was read, by the name of the file.
    pub(super) files: HashMap<String, Zeroizing<Vec<u8>>>,
    pub(super) findings: Vec<Finding>,
    pub(super) certificates: Vec<Expiry>,
    pub(super) cert_files: Vec<CertFile>,
}

impl<'a> Verifier<'a> {
    fn push(&mut self, artifact: &Artifact, path: Option<&str>, check: Check, severity: Severity, message: String) {
        self.findings.push(Finding {
            id: artifact.id.to_string(),
            path: path.map(String::from),
            check,
            severity,
            message,
        });
    }

    pub(super) fn fail(&mut self, artifact: &Artifact, path: Option<&str>, check: Check, message: String) {
        self.push(artifact, path, check, Severity::Failure, message);
    }

    /// The files of an artifact the source holds.
    fn placed(&self, artifact: &Artifact) -> &'a [Placement] {
        let placed: &'a [Vec<Placement>] = self.placed;
        // Every artifact the walk passes is one of the model's: it has a position.
        self.model.position(&artifact.id).and_then(|i| placed.get(i)).map(Vec::as_slice).unwrap_or_default()
    }

    /// Reads one expected file, checking that it is a regular file with its mode.
    pub(super) fn read(&mut self, artifact: &Artifact, placement: &Placement) {
        let path = self.source.disk_path(placement);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            self.fail(artifact, Some(&placement.path), Check::Missing, "the file is missing".into());
            return;
        };
        if !meta.file_type().is_file() {
            self.fail(artifact, Some(&placement.path), Check::NotAFile, "it is not a regular file".into());
            return;
        }
        let mode = meta.permissions().mode() & 0o7777;
        let want = placement.role.mode();
        // An encrypted file holds no secret readable without the identity:
        // a checkout from git (which keeps no 0600) is fine as it is.
        let encrypted = crate::secrets::is_sealed(&placement.path);
        if mode != want && !encrypted {
            let message = format!("its mode is {mode:04o} but a {} file must be {want:04o}", role_name(placement.role));
            self.fail(artifact, Some(&placement.path), Check::Mode, message);
        }
        match std::fs::read(&path) {
            Ok(bytes) if crate::secrets::is_sealed(&placement.path) => {
                // Without the identity, only its presence and mode are checked.
                let Some(keyring) = self.options.keyring.as_deref() else { return };
                match keyring.open(&placement.path, &bytes) {
                    Ok(plaintext) => {
                        self.files.insert(placement.path.clone(), plaintext);
                    }
                    Err(error) => self.fail(artifact, Some(&placement.path), Check::Unreadable, error.to_string()),
                }
            }
            Ok(bytes) => {
                self.files.insert(placement.path.clone(), Zeroizing::new(bytes));
            }
            Err(error) => {
                self.fail(artifact, Some(&placement.path), Check::Unreadable, format!("it cannot be read: {error}"));
            }
        }
    }

    /// The files of `role` that were read, the reference copy first: the
    /// cluster directory's master copy, else the content most hosts hold.
    fn present(&self, artifact: &Artifact, role: FileRole) -> Vec<&'a Placement> {
        let mut found: Vec<&Placement> =
            self.placed(artifact).iter().filter(|p| p.role == role && self.files.contains_key(&p.path)).collect();
        let holding =
            |p: &Placement| found.iter().filter(|q| self.files.get(&q.path) == self.files.get(&p.path)).count();
        let ranks: Vec<(bool, usize)> = found.iter().map(|p| (p.host.is_some(), usize::MAX - holding(p))).collect();
        let mut ranked: Vec<(usize, &Placement)> = found.drain(..).enumerate().collect();
        ranked.sort_by_key(|(i, _)| ranks[*i]);
        ranked.into_iter().map(|(_, p)| p).collect()
    }

    fn content(&self, path: &str) -> Zeroizing<Vec<u8>> {
        self.files.get(path).cloned().unwrap_or_default()
    }

    /// Each distinct content of an artifact's files of `role`, with the first path holding it.
    pub(super) fn distinct(&self, artifact: &Artifact, role: FileRole) -> Vec<(String, Zeroizing<Vec<u8>>)> {
        let mut seen: Vec<(String, Zeroizing<Vec<u8>>)> = Vec::new();
        for placement in self.present(artifact, role) {
            let bytes = self.content(&placement.path);
            if !seen.iter().any(|(_, b)| *b == bytes) {
                seen.push((placement.path.clone(), bytes));
            }
        }
        seen
    }

    /// The canonical copy of an artifact's file of `role`: the cluster
    /// directory's, else the first host's.
    fn canonical(&self, id: &ArtifactId, role: FileRole) -> Option<(String, Zeroizing<Vec<u8>>)> {
        let artifact = self.model.artifacts.iter().find(|a| a.id == *id)?;
        let placement = self.present(artifact, role).into_iter().next()?;
        Some((placement.path.clone(), self.content(&placement.path)))
    }

    /// Copies of one artifact must be identical: one file rendered once.
    pub(super) fn copies(&mut self, artifact: &Artifact) {
        let roles: Vec<FileRole> = self.placed(artifact).iter().map(|p| p.role).collect();
        let mut done: Vec<FileRole> = Vec::new();
        for role in roles {
            if done.contains(&role) {
                continue;
            }
            done.push(role);
            let present = self.present(artifact, role);
            let Some(first) = present.first() else { continue };
            let reference = self.content(&first.path);
            let differing: Vec<String> =
                present.iter().filter(|p| self.content(&p.path) != reference).map(|p| p.path.clone()).collect();
            for path in differing {
                let message = format!("it differs from `{}`, another copy of the same {}", first.path, role_name(role));
                self.fail(artifact, Some(&path), Check::CopiesDiffer, message);
            }
        }
    }

    pub(super) fn cert(&mut self, artifact: &Artifact, spec: &CertSpec, is_ca: bool) {
        // A root signs itself; an intermediate or a leaf is signed by its issuer.
        let is_root = is_ca && spec.issuer == artifact.id;
        let issuer = spec.issuer.to_string();
        let issuer_der = if is_root {
            None
        } else {
            self.canonical(&spec.issuer, FileRole::Cert).and_then(|(_, pem)| x509::cert_der(&pem))
        };
        let mut expiry = Expiry {
            id: artifact.id.to_string(),
            kind: artifact.spec.kind(),
            path: None,
            issuer: issuer.clone(),
            not_before: None,
            not_after: None,
            residual_seconds: None,
            status: "missing",
        };
        for (n, (path, pem)) in self.distinct(artifact, FileRole::Cert).into_iter().enumerate() {
            if n == 0 {
                expiry.path = Some(path.clone());
                expiry.status = "unreadable";
            }
            let Some(der) = x509::cert_der(&pem) else {
                self.fail(artifact, Some(&path), Check::Unreadable, "it is not a PEM certificate".into());
                continue;
            };
            let Some(cert) = x509::parse(&der) else {
                self.fail(artifact, Some(&path), Check::Unreadable, "it is not an X.509 certificate".into());
                continue;
            };
            for (check, message) in x509::profile(spec, is_ca, &cert) {
                self.fail(artifact, Some(&path), check, message);
            }
            let issuer_cert = if is_root { Some(cert.clone()) } else { issuer_der.as_deref().and_then(x509::parse) };
            // An external CA may itself hang under a PKI the plan does not
            // describe: its signature is not the plan's to check.
            let checked = spec.external.is_none();
            if let Some(ca) = issuer_cert.as_ref().filter(|_| checked) {
                if let Some(problem) = x509::chain(&cert, ca, &issuer) {
                    self.fail(artifact, Some(&path), Check::Chain, problem);
                }
                let ca_end = ca.validity().not_after.to_datetime();
                if !is_root && cert.validity().not_after.to_datetime() > ca_end {
                    let message = format!("it is valid until after `{issuer}` expires ({})", rfc3339(ca_end));
                    self.fail(artifact, Some(&path), Check::OutlivesCa, message);
                }
            } else if checked {
                let message = format!(
                    "the certificate of its CA `{issuer}` is missing or unreadable, so its signature cannot be checked"
                );
                self.fail(artifact, Some(&path), Check::Chain, message);
            }
            let status = self.validity(artifact, &path, &cert);
            if n == 0 {
                let (not_before, not_after) =
                    (cert.validity().not_before.to_datetime(), cert.validity().not_after.to_datetime());
                expiry.not_before = Some(rfc3339(not_before));
                expiry.not_after = Some(rfc3339(not_after));
                expiry.residual_seconds = Some((not_after - self.options.now).whole_seconds());
                expiry.status = status;
            }
        }
        self.keys_against_cert(artifact);
        self.certificates.push(expiry);
        self.record_cert_files(artifact, &issuer);
    }

    /// Each file of a certificate the source holds, as monitoring sees it:
    /// its `NotAfter`, and whether it is there and no check failed on it.
    /// The checks of a content were made on the first file holding it
    /// (`distinct`), so they count for every identical copy; the checks of
    /// a file itself (its mode, a copy that differs) only for that file.
    fn record_cert_files(&mut self, artifact: &Artifact, issuer: &str) {
        let id = artifact.id.to_string();
        let failed = |path: &str, content_only: bool| {
            self.findings.iter().any(|f| {
                f.severity == Severity::Failure
                    && f.id == id
                    && f.path.as_deref() == Some(path)
                    && (!content_only || f.check.is_about_content())
            })
        };
        let present = self.present(artifact, FileRole::Cert);
        let mut records = Vec::new();
        for placement in self.placed(artifact).iter().filter(|p| p.role == FileRole::Cert) {
            let content = self.files.get(&placement.path);
            let first = content.and_then(|c| present.iter().find(|q| self.files.get(&q.path) == Some(c)));
            let not_after = content
                .and_then(|pem| x509::cert_der(pem.as_slice()))
                .and_then(|der| x509::parse(&der).map(|cert| cert.validity().not_after.timestamp()));
            let valid = content.is_some()
                && !failed(placement.path.as_str(), false)
                && first.is_none_or(|q| !failed(q.path.as_str(), true));
            records.push(CertFile {
                id: id.clone(),
                host: placement.host.clone(),
                path: placement.host_path.clone().unwrap_or_else(|| placement.path.clone()),
                issuer: issuer.to_string(),
                not_after,
                valid,
            });
        }
        self.cert_files.extend(records);
    }

    /// Where the copies of the certificate file `path` are installed, for
    /// people: "`/etc/kubernetes/pki/ca.crt` on node1, node2"; `None` when
    /// no host holds it (a file of the cluster directory).
    fn installed(&self, artifact: &Artifact, path: &str) -> Option<String> {
        let content = self.files.get(path)?;
        let mut by_path: Vec<(&str, Vec<&str>)> = Vec::new();
        for placement in self.placed(artifact).iter().filter(|p| p.role == FileRole::Cert) {
            let (Some(host), Some(on_host)) = (placement.host.as_deref(), placement.host_path.as_deref()) else {
                continue;
            };
            if self.files.get(&placement.path) != Some(content) {
                continue;
            }
            match by_path.iter_mut().find(|(p, _)| *p == on_host) {
                Some((_, hosts)) => hosts.push(host),
                None => by_path.push((on_host, vec![host])),
            }
        }
        let places: Vec<String> =
            by_path.iter().map(|(on_host, hosts)| format!("`{on_host}` on {}", hosts.join(", "))).collect();
        if places.is_empty() { None } else { Some(places.join(" and as ")) }
    }

    fn validity(
        &mut self,
        artifact: &Artifact,
        path: &str,
        cert: &x509_parser::certificate::X509Certificate<'_>,
    ) -> &'static str {
        let now = self.options.now;
        let not_before = cert.validity().not_before.to_datetime();
        let not_after = cert.validity().not_after.to_datetime();
        if now > not_after {
            let message = format!(
                "it expired on {} ({} before {})",
                rfc3339(not_after),
                remaining(now - not_after),
                rfc3339(now)
            );
            self.fail(artifact, Some(path), Check::Expired, message);
            return "expired";
        }
        if now < not_before {
            let message = format!("it is not valid before {}", rfc3339(not_before));
            self.fail(artifact, Some(path), Check::NotYetValid, message);
            return "not-yet-valid";
        }
        if let Some(window) = self.options.warn_within
            && not_after - now < window
        {
            let mut message = format!("it expires on {}, in {}", rfc3339(not_after), remaining(not_after - now));
            if let Some(installed) = self.installed(artifact, path) {
                message.push_str("; installed as ");
                message.push_str(&installed);
            }
            self.push(artifact, Some(path), Check::ExpiresSoon, Severity::Warning, message);
            return "expires-soon";
        }
        "ok"
    }

    /// Each private key against the certificate on the same host (else the
    /// canonical one).
    fn keys_against_cert(&mut self, artifact: &Artifact) {
        let canonical = self.canonical(&artifact.id, FileRole::Cert);
        for key in self.present(artifact, FileRole::Key) {
            let Some(public) = x509::private_key_public_raw(&self.content(&key.path)) else {
                self.fail(
                    artifact,
                    Some(&key.path),
                    Check::Unreadable,
                    "it cannot be read as a PEM private key".into(),
                );
                continue;
            };
            let beside = self
                .placed(artifact)
                .iter()
                .find(|p| p.role == FileRole::Cert && p.host == key.host && self.files.contains_key(&p.path))
                .map(|p| (p.path.clone(), self.content(&p.path)));
            let Some((cert_path, pem)) = beside.or_else(|| canonical.clone()) else {
                continue;
            };
            let Some(der) = x509::cert_der(&pem) else { continue };
            let Some(cert) = x509::parse(&der) else { continue };
            if cert.public_key().subject_public_key.data.as_ref() != public.as_slice() {
                let message = format!("it is not the private key of the certificate `{cert_path}`");
                self.fail(artifact, Some(&key.path), Check::KeyMismatch, message);
            }
        }
    }

    pub(super) fn keypair(&mut self, artifact: &Artifact) {
        let publics: Vec<(&Placement, Option<Vec<u8>>)> = self
            .present(artifact, FileRole::PublicKey)
            .into_iter()
            .map(|p| (p, x509::public_key_raw(&self.content(&p.path))))
            .collect();
        for (placement, raw) in &publics {
            if raw.is_none() {
                self.fail(artifact, Some(&placement.path), Check::Unreadable, "it is not a PEM `PUBLIC KEY`".into());
            }
        }
        for key in self.present(artifact, FileRole::Key) {
            let Some(public) = x509::private_key_public_raw(&self.content(&key.path)) else {
                self.fail(
                    artifact,
                    Some(&key.path),
                    Check::Unreadable,
                    "it cannot be read as a PEM private key".into(),
                );
                continue;
            };
            let beside = publics.iter().find(|(p, _)| p.host == key.host).or_else(|| publics.first());
            if let Some((pub_placement, Some(raw))) = beside
                && *raw != public
            {
                let message = format!("it is not the private key of the public key `{}`", pub_placement.path);
                self.fail(artifact, Some(&key.path), Check::KeyMismatch, message);
            }
        }
    }

    pub(super) fn kubeconfig(&mut self, artifact: &Artifact, spec: &KubeconfigSpec) {
        let ca_der = self.canonical(&spec.ca, FileRole::Cert).and_then(|(_, pem)| x509::cert_der(&pem));
        for (path, text) in self.distinct(artifact, FileRole::Kubeconfig) {
            let fields = files::kubeconfig(&String::from_utf8_lossy(&text));
            let mut problems = Vec::new();
            if fields.server.as_deref() != Some(spec.server.as_str()) {
                problems.push((
                    Check::Kubeconfig,
                    format!(
                        "its server is `{}` but the plan says `{}`",
                        fields.server.as_deref().unwrap_or("none"),
                        spec.server
                    ),
                ));
            }
            let embedded_ca = fields.ca.as_deref().and_then(x509::cert_der);
            if embedded_ca.is_none() {
                problems.push((Check::Kubeconfig, "it embeds no readable CA certificate".to_string()));
            } else if ca_der.is_some() && embedded_ca != ca_der {
                problems
                    .push((Check::Kubeconfig, format!("the CA certificate it embeds is not `{}` on disk", spec.ca)));
            }
            match &spec.credential {
                Credential::ClientCert(id) => problems.extend(self.client_cert(id, &fields)),
                Credential::Token(id) => problems.extend(self.token(id, &fields)),
            }
            for (check, message) in problems {
                self.fail(artifact, Some(&path), check, message);
            }
        }
    }

    fn client_cert(&self, id: &ArtifactId, fields: &files::KubeconfigFields) -> Vec<(Check, String)> {
        let Some(embedded) = fields.client_cert.as_deref().and_then(x509::cert_der) else {
            return vec![(Check::Kubeconfig, "it embeds no readable client certificate".to_string())];
        };
        let mut problems = Vec::new();
        let on_disk = self.canonical(id, FileRole::Cert).and_then(|(_, pem)| x509::cert_der(&pem));
        if on_disk.is_some_and(|der| der != embedded) {
            problems.push((Check::Kubeconfig, format!("the client certificate it embeds is not `{id}` on disk")));
        }
        let key = fields.client_key.as_deref().and_then(|pem| x509::private_key_public_raw(pem));
        match (key, x509::parse(&embedded)) {
            (None, _) => problems.push((Check::Kubeconfig, "it embeds no readable client key".to_string())),
            (Some(public), Some(cert)) if cert.public_key().subject_public_key.data.as_ref() != public.as_slice() => {
                problems.push((
                    Check::KeyMismatch,
                    "the client key it embeds is not the key of its client certificate".to_string(),
                ));
            }
            _ => {}
        }
        problems
    }

    fn token(&self, id: &ArtifactId, fields: &files::KubeconfigFields) -> Vec<(Check, String)> {
        let Some(token) = &fields.token else {
            return vec![(Check::Kubeconfig, "it has no token".to_string())];
        };
        let is_token_file = self.model.artifact(id).is_some_and(|a| matches!(a.spec, Spec::TokenFile(_)));
        if !is_token_file {
            return Vec::new();
        }
        let row = self
            .canonical(id, FileRole::TokenFile)
            .and_then(|(_, text)| files::token_row(&String::from_utf8_lossy(&text)));
        match row {
            Some(row) if row.token != *token => {
                vec![(Check::Kubeconfig, format!("its token is not the one in `{id}`"))]
            }
            _ => Vec::new(),
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn role_name(role: FileRole) -> String {
    serde_json::to_value(role).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default().replace('-', " ")
}
