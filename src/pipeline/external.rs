//! The apply side of CAs certplan does not hold (`[cas.NAME] external`,
//! and offline CAs whose key is away when an intermediate needs signing):
//! reading each such CA's certificate from the file the plan names,
//! writing a key and a certificate request for each certificate it must
//! sign (with `requests/index.json`, what the signer must put in each), and
//! taking a signed certificate back only when it is exactly what the plan
//! describes, signed by that CA, for the key the request was made with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::Compiled;
use super::material;
use crate::audit::verify::x509::values;
use crate::changes::requests::{pending_key_path, request_path, signed_path};
use crate::changes::{Action, Change, Disk};
use crate::graph::Fingerprint;
use crate::issue::{self, Issued, KeyMaterial, Material};
use crate::model::{ArtifactId, FileRole, Spec};
use crate::render::RenderedFile;
use crate::state::State;

/// Where the index of outstanding requests is written, relative to the tree.
pub const INDEX_PATH: &str = "requests/index.json";

/// Why an external CA's certificate cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExternalError {
    /// Its file cannot be read.
    #[error("cannot read the certificate of the external CA `{id}` at `{}`: {source}", path.display())]
    Read {
        /// The CA.
        id: ArtifactId,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Its certificate is of another CA than the plan names.
    #[error(
        "`{}`, the certificate of the external CA `{id}`, has the CN `{found}` where `[cas.{name}]` says `cn = \"{plan}\"`: is it the right file?",
        path.display()
    )]
    OtherCa {
        /// The CA.
        id: ArtifactId,
        /// Its name in the plan.
        name: String,
        /// The file.
        path: PathBuf,
        /// The CN in the certificate.
        found: String,
        /// The CN in the plan.
        plan: String,
    },
    /// Its file holds no CA certificate.
    #[error("`{}`, the certificate of the external CA `{id}`, {reason}", path.display())]
    NotACa {
        /// The CA.
        id: ArtifactId,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A signed certificate brought back that is not what was asked for.
#[derive(Debug, thiserror::Error)]
#[error(
    "the signed certificate `{path}` for `{id}` is refused: {reason}; nothing was written (sign the request `{request}` again, as `requests/index.json` describes it)"
)]
pub struct Refused {
    /// The certificate it is for.
    pub id: ArtifactId,
    /// The file brought back.
    pub path: String,
    /// The request it answers.
    pub request: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Compiled {
    /// Reads the certificate of each external CA from the file the plan
    /// names (relative to `plan_dir`) into the model, and makes its digest
    /// part of the CA's spec: a new certificate there is a changed CA.
    pub fn use_external_cas(&mut self, plan_dir: &Path) -> Result<(), ExternalError> {
        if self.model.externals.is_empty() {
            return Ok(());
        }
        for external in self.model.externals.clone() {
            let path = plan_dir.join(&external.path);
            let id = external.id.clone();
            let bytes = std::fs::read(&path).map_err(|source| ExternalError::Read {
                id: id.clone(),
                path: path.clone(),
                source,
            })?;
            let not_a_ca = |reason| ExternalError::NotACa { id: id.clone(), path: path.clone(), reason };
            let der =
                crate::audit::verify::x509::cert_der(&bytes).ok_or_else(|| not_a_ca("is not a PEM certificate"))?;
            let cert = crate::audit::verify::x509::parse(&der).ok_or_else(|| not_a_ca("cannot be parsed"))?;
            if !cert.basic_constraints().ok().flatten().is_some_and(|bc| bc.value.ca) {
                return Err(not_a_ca("is not a CA certificate (basicConstraints CA:TRUE)"));
            }
            let digest = crate::changes::sha256_hex(&der);
            let cn = crate::audit::verify::x509::values(cert.subject().iter_common_name()).join(",");
            let key = crate::audit::verify::x509::key_algorithm(cert.public_key());
            if let Some(Spec::Ca(spec)) = self.model.index.get(&id).map(|&i| &mut self.model.artifacts[i].spec) {
                if cn != spec.subject.cn {
                    let name = id.ca_name().unwrap_or_default().to_string();
                    return Err(ExternalError::OtherCa { name, path, found: cn, plan: spec.subject.cn.clone(), id });
                }
                // The rest of its subject and its key are what its certificate says.
                let subject = cert.subject();
                spec.subject.o = values(subject.iter_organization());
                spec.subject.ou = values(subject.iter_organizational_unit());
                spec.subject.c = values(subject.iter_country()).into_iter().next();
                spec.subject.st = values(subject.iter_state_or_province()).into_iter().next();
                spec.subject.l = values(subject.iter_locality()).into_iter().next();
                if let Some(key) = crate::plan::KeyAlgorithm::from_name(&key) {
                    spec.key = key;
                }
                spec.external = Some(digest);
            }
            self.model.external_pem.insert(id, issue::certificate_pem(&der));
        }
        if let Ok(graph) = crate::graph::Graph::build(&self.model) {
            self.graph = graph;
        }
        Ok(())
    }
}

/// The key and certificate request of each `request` change: the key the
/// tree holds for it when there is one (a renewal keeps its key), else a
/// new one. A request already outstanding for the same spec is left as it
/// is. Returns the files to write and what each request asks for.
pub fn requests(
    compiled: &Compiled,
    changes: &[Change],
    state: &State,
    disk: &Disk,
) -> Result<(Vec<RenderedFile>, HashMap<ArtifactId, Fingerprint>), super::ApplyError> {
    let model = &compiled.model;
    let mut files = Vec::new();
    let mut asked = HashMap::new();
    for change in changes.iter().filter(|c| c.action == Action::Request) {
        let Some(i) = change.index else { continue };
        let artifact = &model.artifacts[i];
        let (Spec::Cert(spec) | Spec::Ca(spec)) = &artifact.spec else { continue };
        let fingerprint = compiled.graph.fingerprints[i].clone();
        let recorded = state.artifacts.get(&artifact.id);
        let kept = recorded
            .filter(|_| !change.new_key)
            .and_then(|r| material::load_key(artifact, r, disk).or_else(|| material::load_key_only(artifact, r, disk)));
        // A key the tree holds but this run cannot read (encrypted, no
        // identity) is never replaced behind the operator's back.
        let holds_key = recorded.is_some_and(|r| r.files.values().any(|f| f.role == FileRole::Key));
        if kept.is_none() && holds_key && !change.new_key {
            return Err(super::ApplyError::NeedIdentity(artifact.id.clone()));
        }
        // A new key for a certificate still in place waits beside its
        // request, so the key in place keeps matching the certificate.
        let in_place = recorded.is_some_and(|r| r.cert.is_some());
        let pending = match crate::changes::requests::waiting_key(&artifact.id, disk) {
            // A waiting key this run cannot read is never replaced either.
            Some(path) if change.new_key && in_place => Some(
                pending_key(spec, &path, disk).ok_or_else(|| super::ApplyError::NeedIdentity(artifact.id.clone()))?,
            ),
            _ => None,
        };
        let outstanding = recorded.is_some_and(|r| r.requested.as_ref() == Some(&fingerprint))
            && disk.exists(&request_path(&artifact.id));
        asked.insert(artifact.id.clone(), fingerprint);
        if outstanding && (kept.is_some() || pending.is_some()) {
            continue;
        }
        let key = if let Some(key) = kept.or(pending) {
            key
        } else {
            let pending_path = pending_key_path(&artifact.id, !model.recipients.is_empty());
            let key = issue::issue_keypair(spec.key)?;
            if change.new_key && in_place {
                files.push(RenderedFile {
                    path: pending_path,
                    mode: FileRole::Key.mode(),
                    contents: Zeroizing::new(key.pem.expose().as_bytes().to_vec()),
                    artifact: artifact.id.clone(),
                    role: FileRole::Key,
                });
            } else {
                files.extend(key_files(artifact, &key));
            }
            key
        };
        let csr = issue::request(spec, &key)?;
        files.push(RenderedFile {
            path: request_path(&artifact.id),
            mode: 0o644,
            contents: Zeroizing::new(csr.into_bytes()),
            artifact: artifact.id.clone(),
            role: FileRole::Cert,
        });
    }
    Ok((files, asked))
}

/// The new key waiting beside a request, if there is one this run can read.
fn pending_key(spec: &crate::model::CertSpec, path: &str, disk: &Disk) -> Option<KeyMaterial> {
    let bytes = crate::output::read_regular(&disk.path(path))?;
    let pem = String::from_utf8(disk.plaintext(path, bytes)?).ok()?;
    Some(KeyMaterial::from_disk(spec.key, issue::Secret::new(pem), String::new()))
}

/// The key files of a certificate, holding `key`.
fn key_files(artifact: &crate::model::Artifact, key: &KeyMaterial) -> Vec<RenderedFile> {
    artifact
        .files
        .iter()
        .filter(|f| f.role == FileRole::Key)
        .map(|f| {
            let mut contents = Zeroizing::new(key.pem.expose().as_bytes().to_vec());
            if !contents.ends_with(b"\n") {
                contents.push(b'\n');
            }
            RenderedFile {
                path: f.path.clone(),
                mode: f.role.mode(),
                contents,
                artifact: artifact.id.clone(),
                role: f.role,
            }
        })
        .collect()
}

/// The material of each certificate whose signed certificate came back
/// (a `create`, `reissue` or `renew` an external CA signs), checked
/// against the plan before anything is written.
pub fn returned(
    compiled: &Compiled,
    changes: &[Change],
    state: &State,
    disk: &Disk,
    now: OffsetDateTime,
) -> Result<HashMap<ArtifactId, Material>, Refused> {
    let model = &compiled.model;
    let mut materials = HashMap::new();
    for change in changes.iter().filter(|c| matches!(c.action, Action::Create | Action::Reissue | Action::Renew)) {
        let Some(i) = change.index else { continue };
        // What settled as a create, reissue or renew under a keyless signer
        // has its signed certificate beside its request.
        let Some(ca_id) = crate::changes::requests::keyless_signer(model, state, disk, i) else { continue };
        if !disk.exists(&signed_path(&change.id)) {
            continue;
        }
        let artifact = &model.artifacts[i];
        let (Spec::Cert(spec) | Spec::Ca(spec)) = &artifact.spec else { continue };
        let is_ca = matches!(artifact.spec, Spec::Ca(_));
        let path = signed_path(&artifact.id);
        let refuse = |reason: String| Refused {
            id: artifact.id.clone(),
            path: path.clone(),
            request: request_path(&artifact.id),
            reason,
        };
        let ca = ca_material(compiled, ca_id, state, disk)
            .ok_or_else(|| refuse(format!("the certificate of `{ca_id}` cannot be read")))?;
        let pending = match crate::changes::requests::waiting_key(&artifact.id, disk) {
            Some(path) => Some(pending_key(spec, &path, disk).ok_or_else(|| {
                refuse(format!("its new key waits at `{path}` and cannot be read: give the age identity"))
            })?),
            None => None,
        };
        let key = pending
            .or_else(|| {
                let recorded = state.artifacts.get(&artifact.id)?;
                material::load_key(artifact, recorded, disk)
                    .or_else(|| material::load_key_only(artifact, recorded, disk))
            })
            .ok_or_else(|| refuse("the key its request was made with is not in the tree".into()))?;
        let cert = crate::output::read_regular(&disk.path(&path)).ok_or_else(|| refuse("it cannot be read".into()))?;
        let taken =
            crate::adopt::certificate::take(spec, is_ca, &cert, Some(key.pem.expose().as_bytes()), Some(&ca), now)
                .map_err(refuse)?;
        // The signer chooses the lifetime; it must end within the CA's.
        let mut found = taken.spec.clone();
        found.validity = spec.validity;
        if found != *spec {
            let found = if is_ca { Spec::Ca(found) } else { Spec::Cert(found) };
            let old = serde_json::to_value(found).unwrap_or_default();
            let new = serde_json::to_value(&artifact.spec).unwrap_or_default();
            let difference = crate::changes::spec_difference(&old, &new).unwrap_or_else(|| "it differs".into());
            return Err(refuse(format!("it is not what the plan describes ({difference})")));
        }
        if taken.issued.not_after > ca.not_after {
            return Err(refuse(format!("it outlives `{ca_id}`")));
        }
        if taken.issued.not_after <= now {
            return Err(refuse("it has expired".into()));
        }
        if taken.issued.not_before > now {
            return Err(refuse("it is not valid yet (its NotBefore is in the future)".into()));
        }
        // Only its certificates (the leaf, and a chain the signer added).
        let cert_pem = String::from_utf8(crate::adopt::certificate::certificates_only(&cert).unwrap_or_default())
            .unwrap_or_default();
        materials.insert(artifact.id.clone(), Material::Cert(Issued { cert_pem, key, ..taken.issued }));
    }
    Ok(materials)
}

/// The certificate of a CA whose key this run does not have: an external
/// CA's from the plan's file, an offline CA's from the tree.
fn ca_material(compiled: &Compiled, id: &ArtifactId, state: &State, disk: &Disk) -> Option<Issued> {
    let artifact = compiled.model.artifact(id)?;
    let spec = artifact.spec.cert()?;
    if let Some(pem) = compiled.model.external_pem.get(id) {
        return issue::external(spec, pem);
    }
    match material::load(artifact, state.artifacts.get(id)?, disk)? {
        Material::Cert(issued) => Some(issued),
        _ => None,
    }
}

/// Writes `requests/index.json`: what the signer must put in each
/// certificate still requested (subject, SANs, EKUs, key usage, validity),
/// or removes it when nothing is.
pub fn write_index(out: &Path, compiled: &Compiled, state: &State) -> Result<(), crate::output::OutputError> {
    let model = &compiled.model;
    let mut requests = Vec::new();
    for (id, recorded) in &state.artifacts {
        if recorded.requested.is_none() {
            continue;
        }
        let Some(artifact) = model.artifact(id) else { continue };
        let (Spec::Cert(spec) | Spec::Ca(spec)) = &artifact.spec else { continue };
        let mut usage = vec!["digitalSignature"];
        if spec.path_len.is_some() {
            usage.extend(["keyCertSign", "cRLSign"]);
        } else if spec.key.is_rsa() {
            usage.push("keyEncipherment");
        }
        let constraints = spec.path_len.map(|n| format!("critical, CA:TRUE, pathlen:{n}"));
        requests.push(serde_json::json!({
            "basic_constraints": constraints,
            "id": id,
            "request": request_path(id),
            "certificate": signed_path(id),
            "signer": spec.issuer,
            "subject": spec.subject,
            "sans": spec.sans,
            "eku": spec.eku,
            "key_usage": usage,
            "validity": crate::durations::length(spec.validity),
        }));
    }
    let path = out.join(INDEX_PATH);
    if requests.is_empty() {
        if path.exists() {
            std::fs::remove_file(&path).map_err(|source| crate::output::OutputError::Io {
                action: "remove",
                path: path.clone(),
                source,
            })?;
        }
        return Ok(());
    }
    let doc = serde_json::json!({ "version": 1, "requests": requests });
    let mut json = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    json.push(b'\n');
    // The same requests: the same file, untouched.
    if std::fs::read(&path).is_ok_and(|old| old == json) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| crate::output::OutputError::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    crate::output::write_atomic(&path, &json, 0o644)
}
