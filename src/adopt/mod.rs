//! `adopt`: take over a running cluster's PKI without reissuing it. Reads
//! every file the plan places from copies of the hosts' file systems,
//! holds each certificate and key against the plan, and writes a new
//! output tree whose state records the adopted material as if certplan had
//! issued it, the files copied byte for byte. What does not match is
//! recorded as it is, so the next `plan` reissues exactly that and says
//! why; what cannot be adopted at all is left for `apply` to create.
//!
//! Nothing under a root is ever written; nothing outside the new tree is.

pub(crate) mod certificate;
mod kubeconfig;
mod sources;

pub use sources::Sources;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::audit::verify::x509;
use crate::changes::file_facts;
use crate::graph::{Fingerprint, Graph};
use crate::issue::{KeyMaterial, Material, Secret};
use crate::model::{Artifact, ArtifactId, Credential, FileRole, Model, Spec};
use crate::output::OutputError;
use crate::pipeline::Compiled;
use crate::render::{self, RenderError, RenderedFile, Templates};
use crate::state::{ArtifactState, CertState, STATE_PATH, STATE_VERSION, State};

/// Why `adopt` stopped, having written nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdoptError {
    /// A `--host` argument that is not `NAME=ROOT`.
    #[error("`--host {0}` is not NAME=ROOT (a host of the plan and the directory holding a copy of its file system)")]
    HostArgument(String),
    /// A `--host` name the plan does not have.
    #[error("`{name}` is not a host of the plan (its hosts: {known})")]
    UnknownHost {
        /// The name given.
        name: String,
        /// The plan's hosts.
        known: String,
    },
    /// A host given twice.
    #[error("`--host {0}=…` is given twice")]
    HostTwice(String),
    /// Neither `--host` nor `--cluster`.
    #[error(
        "nothing to adopt from: give `--host NAME=ROOT` for each host copied, and `--cluster ROOT` if you have one"
    )]
    NothingToRead,
    /// A root that is not a directory.
    #[error("`{0}` is not a directory")]
    NotADirectory(PathBuf),
    /// A root that cannot be read.
    #[error("cannot read `{path}`: {source}")]
    Root {
        /// The root.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The output directory already holds a tree certplan wrote.
    #[error(
        "`{0}` already holds an output tree (its state file is `{0}/.certplan/state.json`): `adopt` writes a new tree; run `certplan plan` on this one, or give an empty directory"
    )]
    TreeExists(String),
    /// The output directory already holds something.
    #[error(
        "`{0}` is not empty: `adopt` writes a new output tree; give a directory that does not exist yet or is empty"
    )]
    NotEmpty(PathBuf),
    /// A rotation is under way in the plan.
    #[error(
        "the plan has a rotation under way (`rotation = ` in `[{0}]`): adopt the cluster as it runs, without the rotation line, then rotate"
    )]
    Rotation(String),
    /// A CA certificate that cannot be taken over as the plan describes it.
    #[error(
        "`{id}` cannot be adopted from `{origin}`: {reason}. A CA is adopted only as it is: make the plan describe it"
    )]
    Ca {
        /// The CA.
        id: ArtifactId,
        /// Where its certificate was read.
        origin: String,
        /// Why.
        reason: String,
    },
    /// A CA certificate found without its key.
    #[error(
        "the certificate of `{id}` is at `{origin}` but its key is not at {looked}: adopting a CA needs its key (give `--cluster ROOT` with the key where the tree keeps it)"
    )]
    CaKeyMissing {
        /// The CA.
        id: ArtifactId,
        /// Where its certificate was read.
        origin: String,
        /// Where its key was looked for.
        looked: String,
    },
    /// Rendering a file to compare failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Writing the new tree failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Encrypting a secret file failed.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
}

/// One artifact taken over, and where its files came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Adopted {
    /// The artifact.
    pub id: ArtifactId,
    /// Where each file was read (`host:/path`, `cluster:path`).
    pub from: Vec<String>,
}

/// A remark about an artifact that does not stop adoption.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Note {
    /// The artifact.
    pub id: ArtifactId,
    /// What is worth knowing.
    pub note: String,
}

/// What `adopt` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Adoption {
    /// The artifacts taken over.
    pub adopted: Vec<Adopted>,
    /// Remarks, including why artifacts were not taken over.
    pub notes: Vec<Note>,
}

/// Adopts what `sources` hold into a new output tree at `out`.
pub fn adopt(
    compiled: &Compiled,
    out: &Path,
    sources: &Sources,
    templates: &Templates,
    now: OffsetDateTime,
) -> Result<Adoption, AdoptError> {
    let model = &compiled.model;
    if let Some(name) = model.rotations.keys().next() {
        return Err(AdoptError::Rotation(format!("cas.{name}")));
    }
    if model.key_rotation.is_some() {
        return Err(AdoptError::Rotation("sets.service-account".into()));
    }
    if out.join(STATE_PATH).exists() {
        return Err(AdoptError::TreeExists(out.display().to_string()));
    }
    let empty = match std::fs::read_dir(out) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(_) => false,
    };
    if !empty {
        return Err(AdoptError::NotEmpty(out.to_path_buf()));
    }
    let mut taker = Taker {
        model,
        graph: &compiled.graph,
        sources,
        templates,
        now,
        materials: HashMap::new(),
        files: Vec::new(),
        records: BTreeMap::new(),
        adoption: Adoption::default(),
    };
    for &i in &compiled.graph.order {
        taker.take(i)?;
    }
    let Taker { mut files, records, mut adoption, .. } = taker;
    let position = |id: &ArtifactId| model.position(id).unwrap_or(usize::MAX);
    adoption.adopted.sort_by_key(|a| position(&a.id));
    adoption.notes.sort_by_key(|n| position(&n.id));
    seal(model, &mut files)?;
    let progress = crate::progress::Progress::hidden();
    let mtimes = crate::output::write_files(out, &files, &progress)?;
    let mut state = State { version: STATE_VERSION, age_recipients: model.recipients.clone(), ..State::default() };
    for (id, (fingerprint, spec, cert)) in records {
        state.artifacts.insert(
            id,
            ArtifactState {
                fingerprint,
                spec: serde_json::value::to_raw_value(&spec)
                    .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
                cert,
                files: BTreeMap::new(),
                requested: None,
            },
        );
    }
    for (file, mtime) in files.iter().zip(mtimes) {
        if let Some(recorded) = state.artifacts.get_mut(&file.artifact) {
            recorded.files.insert(file.path.clone(), file_facts(&file.contents, file.role, mtime));
        }
    }
    let state_dir = out.join(".certplan");
    std::fs::create_dir_all(&state_dir).map_err(|source| OutputError::Io {
        action: "create",
        path: state_dir.clone(),
        source,
    })?;
    crate::output::write_atomic(&out.join(STATE_PATH), &state.to_json(), 0o644)?;
    Ok(adoption)
}

/// What the state records of an adopted artifact: fingerprint, the spec
/// it satisfies, certificate facts.
type Record = (Fingerprint, Spec, Option<CertState>);

/// Walks the graph in its order (a CA before what it signs, material
/// before what embeds it), taking over what matches.
struct Taker<'a> {
    model: &'a Model,
    graph: &'a Graph,
    sources: &'a Sources,
    templates: &'a Templates,
    now: OffsetDateTime,
    /// The material adopted so far.
    materials: HashMap<ArtifactId, Material>,
    /// The files to write.
    files: Vec<RenderedFile>,
    /// The state of each adopted artifact.
    records: BTreeMap<ArtifactId, Record>,
    adoption: Adoption,
}

impl Taker<'_> {
    fn take(&mut self, i: usize) -> Result<(), AdoptError> {
        let model = self.model;
        let artifact = &model.artifacts[i];
        match &artifact.spec {
            Spec::Ca(_) | Spec::Cert(_) => self.take_cert(i),
            Spec::Keypair(_) => {
                self.take_keypair(i);
                Ok(())
            }
            Spec::TokenFile(_) => self.take_token(i),
            Spec::Kubeconfig(_) => {
                self.take_kubeconfig(i);
                Ok(())
            }
            Spec::BootstrapToken(_) => {
                self.note(&artifact.id, "bootstrap tokens are not adopted: `apply` makes a new one");
                Ok(())
            }
            Spec::Flags(_) | Spec::Manifest(_) | Spec::Bundle(_) => self.take_rendered(i),
        }
    }

    fn note(&mut self, id: &ArtifactId, note: impl Into<String>) {
        self.adoption.notes.push(Note { id: id.clone(), note: note.into() });
    }

    /// The first file of `role` found at one of the artifact's placements.
    fn first_found(&self, artifact: &Artifact, role: FileRole) -> Option<sources::Found> {
        artifact.files.iter().filter(|f| f.role == role).find_map(|f| self.sources.read(f))
    }

    /// A CA or a leaf: its certificate and key from its own files, a CA's
    /// key also beside its certificate, a client's also from a kubeconfig
    /// that embeds it.
    fn take_cert(&mut self, i: usize) -> Result<(), AdoptError> {
        let model = self.model;
        let artifact = &model.artifacts[i];
        let (Spec::Ca(spec) | Spec::Cert(spec)) = &artifact.spec else {
            return Ok(());
        };
        let is_ca = matches!(artifact.spec, Spec::Ca(_));
        if spec.external.is_some() {
            return self.take_external(i);
        }
        let (cert, key) = self.cert_and_key(artifact, is_ca);
        let offline = model.offline.contains(&artifact.id);
        let (cert, key) = match (cert, key) {
            (Some(cert), Some(key)) => (cert, Some(key)),
            // An offline CA's key is meant to be away: its certificate is enough.
            (Some(cert), None) if is_ca && offline => (cert, None),
            (Some(cert), None) if is_ca => {
                let looked: Vec<String> = artifact
                    .files
                    .iter()
                    .filter(|f| f.role == FileRole::Key)
                    .map(|f| format!("`{}`", f.path))
                    .collect();
                return Err(AdoptError::CaKeyMissing {
                    id: artifact.id.clone(),
                    origin: cert.origin,
                    looked: looked.join(", "),
                });
            }
            (Some(cert), None) => {
                self.note(
                    &artifact.id,
                    format!("not adopted: its key was not found (certificate at `{}`)", cert.origin),
                );
                return Ok(());
            }
            (None, key) => {
                let note = match (is_ca, key) {
                    (true, Some(key)) => format!(
                        "only its key was found (`{}`), not its certificate: `apply` issues a certificate for that key",
                        key.origin
                    ),
                    (true, None) => "not found on the roots given: `apply` makes a new CA".into(),
                    (false, _) => "not found on the roots given: `apply` issues it".into(),
                };
                self.note(&artifact.id, note);
                return Ok(());
            }
        };
        let is_root = is_ca && spec.issuer == artifact.id;
        let issuer = match self.materials.get(&spec.issuer) {
            Some(Material::Cert(issued)) if !is_root => Some(issued),
            _ if is_ca && !is_root => {
                let reason = format!("its parent `{}` was not adopted", spec.issuer);
                return Err(AdoptError::Ca { id: artifact.id.clone(), origin: cert.origin, reason });
            }
            _ => None,
        };
        let key_pem = key.as_ref().map(|k| k.bytes.as_slice());
        let taken = match certificate::take(spec, is_ca, &cert.bytes, key_pem, issuer, self.now) {
            Ok(taken) => taken,
            Err(reason) if is_ca => {
                return Err(AdoptError::Ca { id: artifact.id.clone(), origin: cert.origin, reason });
            }
            Err(reason) => {
                self.note(&artifact.id, format!("not adopted from `{}`: {reason}", cert.origin));
                return Ok(());
            }
        };
        if is_ca && taken.spec != *spec {
            let old = serde_json::to_value(Spec::Ca(taken.spec.clone())).unwrap_or_default();
            let new = serde_json::to_value(&artifact.spec).unwrap_or_default();
            let reason = crate::changes::spec_difference(&old, &new).unwrap_or_else(|| "it differs".into());
            return Err(AdoptError::Ca { id: artifact.id.clone(), origin: cert.origin, reason });
        }
        for note in taken.notes {
            self.note(&artifact.id, note);
        }
        let found: Vec<&sources::Found> = std::iter::once(&cert).chain(key.as_ref()).collect();
        self.check_modes(&artifact.id, &found);
        let found_spec = if is_ca { Spec::Ca(taken.spec) } else { Spec::Cert(taken.spec) };
        let cert_state = CertState {
            serial: taken.issued.serial.clone(),
            not_before: taken.issued.not_before.format(&Rfc3339).unwrap_or_default(),
            not_after: taken.issued.not_after.format(&Rfc3339).unwrap_or_default(),
        };
        // Only the certificates of the file go where certificates go.
        let cert_bytes = certificate::certificates_only(&cert.bytes).unwrap_or_default();
        if cert_bytes != cert.bytes.as_slice() {
            self.note(
                &artifact.id,
                format!("`{}` holds more than certificates: the tree keeps only those", cert.origin),
            );
        }
        let mut by_role: Vec<(FileRole, &[u8])> = vec![(FileRole::Cert, &cert_bytes)];
        by_role.extend(key.as_ref().map(|k| (FileRole::Key, k.bytes.as_slice())));
        self.place_all(i, &by_role);
        let from = std::iter::once(cert.origin.clone()).chain(key.as_ref().map(|k| k.origin.clone())).collect();
        self.adoption.adopted.push(Adopted { id: artifact.id.clone(), from });
        self.materials.insert(artifact.id.clone(), Material::Cert(taken.issued));
        self.record(i, found_spec, Some(cert_state));
        Ok(())
    }

    /// The certificate and key of a CA or leaf as found: its own files, a
    /// CA's key also beside its certificate, a client's also from a
    /// kubeconfig that embeds them.
    fn cert_and_key(&self, artifact: &Artifact, is_ca: bool) -> (Option<sources::Found>, Option<sources::Found>) {
        let mut cert = self.first_found(artifact, FileRole::Cert);
        let mut key = self.first_found(artifact, FileRole::Key);
        if is_ca && key.is_none() {
            key = self.ca_key_beside(artifact);
        }
        if (cert.is_none() || key.is_none())
            && let Some((found_cert, found_key)) = self.embedded_client(&artifact.id)
        {
            cert = cert.or(Some(found_cert));
            key = key.or(Some(found_key));
        }
        (cert, key)
    }

    /// A CA certplan does not hold: its certificate is the plan's file,
    /// wherever the hosts keep a copy of it.
    fn take_external(&mut self, i: usize) -> Result<(), AdoptError> {
        let model = self.model;
        let artifact = &model.artifacts[i];
        let Some(spec) = artifact.spec.cert() else { return Ok(()) };
        let Some(issued) = model.external_pem.get(&artifact.id).and_then(|pem| crate::issue::external(spec, pem))
        else {
            return Ok(());
        };
        // The hosts must trust the CA the plan names, not another one.
        for found in artifact.files.iter().filter(|f| f.role == FileRole::Cert).filter_map(|f| self.sources.read(f)) {
            if x509::cert_der(&found.bytes).as_deref() != Some(issued.cert_der.as_slice()) {
                let reason = "it is not the certificate the plan's `external` file holds".to_string();
                return Err(AdoptError::Ca { id: artifact.id.clone(), origin: found.origin, reason });
            }
        }
        let pem = issued.cert_pem.clone();
        let by_role: [(FileRole, &[u8]); 1] = [(FileRole::Cert, pem.as_bytes())];
        self.place_all(i, &by_role);
        let from = artifact.files.iter().filter_map(|f| self.sources.read(f)).map(|f| f.origin).take(1).collect();
        self.adoption.adopted.push(Adopted { id: artifact.id.clone(), from });
        self.materials.insert(artifact.id.clone(), Material::Cert(issued));
        self.record(i, artifact.spec.clone(), None);
        Ok(())
    }

    /// A CA key the plan keeps only in `cluster/`, looked for beside the
    /// CA's certificate on each host (where installs keep it).
    fn ca_key_beside(&self, artifact: &Artifact) -> Option<sources::Found> {
        let name = artifact.files.iter().find(|f| f.role == FileRole::Key)?.path.rsplit('/').next()?;
        let name = name.strip_suffix(".age").unwrap_or(name);
        artifact
            .files
            .iter()
            .filter(|f| f.role == FileRole::Cert && f.host.is_some())
            .find_map(|f| self.sources.beside(f, name))
    }

    /// The client certificate and key a kubeconfig of the plan embeds for
    /// `id`, as kubeadm's `controller-manager.conf` does.
    fn embedded_client(&self, id: &ArtifactId) -> Option<(sources::Found, sources::Found)> {
        self.model.artifacts.iter().find_map(|artifact| {
            let Spec::Kubeconfig(spec) = &artifact.spec else {
                return None;
            };
            if spec.credential != Credential::ClientCert(id.clone()) {
                return None;
            }
            artifact.files.iter().find_map(|placement| {
                let found = self.sources.read(placement)?;
                let embedded = kubeconfig::read(&found.bytes);
                let cert = embedded.client_cert?;
                let key = embedded.client_key?;
                let origin = format!("{} (embedded)", found.origin);
                Some((
                    sources::Found { bytes: Zeroizing::new(cert), origin: origin.clone(), mode: found.mode },
                    sources::Found { bytes: key, origin, mode: found.mode },
                ))
            })
        })
    }

    /// The service-account key pair: its private key must match its public key.
    fn take_keypair(&mut self, i: usize) {
        let model = self.model;
        let artifact = &model.artifacts[i];
        let Spec::Keypair(spec) = &artifact.spec else {
            return;
        };
        let (Some(key), Some(public)) =
            (self.first_found(artifact, FileRole::Key), self.first_found(artifact, FileRole::PublicKey))
        else {
            self.note(&artifact.id, "not found on the roots given: `apply` makes a new key pair");
            return;
        };
        let public_text = String::from_utf8_lossy(&public.bytes);
        if public_text.matches("-----BEGIN ").count() != 1 || !public_text.contains("-----BEGIN PUBLIC KEY-----") {
            self.note(&artifact.id, format!("not adopted: `{}` is not one PEM public key", public.origin));
            return;
        }
        let private_half = x509::private_key_public_raw(&key.bytes);
        if private_half.is_none() || private_half != x509::public_key_raw(&public.bytes) {
            self.note(
                &artifact.id,
                format!("not adopted: `{}` is not the public key of `{}`", public.origin, key.origin),
            );
            return;
        }
        let algorithm = x509_public_algorithm(&public.bytes);
        let mut found = spec.clone();
        let Some(algorithm) = algorithm else {
            self.note(
                &artifact.id,
                format!("not adopted: `{}` holds a key of a kind certplan does not make", key.origin),
            );
            return;
        };
        found.key = algorithm;
        let Ok(key_text) = String::from_utf8(key.bytes.to_vec()) else {
            return;
        };
        let public_text = String::from_utf8_lossy(&public.bytes).into_owned();
        self.check_modes(&artifact.id, &[&key]);
        let by_role: [(FileRole, &[u8]); 2] = [(FileRole::Key, &key.bytes), (FileRole::PublicKey, &public.bytes)];
        self.place_all(i, &by_role);
        self.adoption.adopted.push(Adopted { id: artifact.id.clone(), from: vec![key.origin, public.origin] });
        self.materials.insert(
            artifact.id.clone(),
            Material::KeyPair(KeyMaterial::from_disk(found.key, Secret::new(key_text), public_text)),
        );
        self.record(i, Spec::Keypair(found), None);
    }

    /// A static token: the row of a `token.csv` with the plan's user, uid
    /// and groups.
    fn take_token(&mut self, i: usize) -> Result<(), AdoptError> {
        let model = self.model;
        let artifact = &model.artifacts[i];
        let Spec::TokenFile(spec) = &artifact.spec else {
            return Ok(());
        };
        let Some(found) = self.first_found(artifact, FileRole::TokenFile) else {
            self.note(&artifact.id, "not found on the roots given: `apply` makes a new token");
            return Ok(());
        };
        let text = String::from_utf8_lossy(&found.bytes);
        let Some(token) = token_row(&text, &spec.user, &spec.uid, &spec.groups) else {
            self.note(
                &artifact.id,
                format!(
                    "not adopted: `{}` has no row for user `{}`, uid `{}` with the plan's groups",
                    found.origin, spec.user, spec.uid
                ),
            );
            return Ok(());
        };
        self.materials.insert(artifact.id.clone(), Material::Token { token: Secret::new(token), expires: None });
        let rendered = render::render_files(model, &[i], &self.materials, self.templates)?;
        for (file, placement) in rendered.into_iter().zip(&artifact.files) {
            let same = self.sources.read(placement).is_some_and(|f| f.bytes.as_slice() == file.contents.as_slice());
            if !same {
                self.note(
                    &artifact.id,
                    format!(
                        "`{}` is written in certplan's form (one row, the same token): install it from the tree",
                        file.path
                    ),
                );
            }
            self.files.push(file);
        }
        self.adoption.adopted.push(Adopted { id: artifact.id.clone(), from: vec![found.origin] });
        self.record(i, artifact.spec.clone(), None);
        Ok(())
    }

    /// A kubeconfig, kept as it is where its server, CA and credential are
    /// the plan's (with the material adopted); certplan writes the others.
    fn take_kubeconfig(&mut self, i: usize) {
        let model = self.model;
        let artifact = &model.artifacts[i];
        let Spec::Kubeconfig(spec) = &artifact.spec else {
            return;
        };
        let mut kept = Vec::new();
        let mut origins = Vec::new();
        for placement in &artifact.files {
            let Some(found) = self.sources.read(placement) else { continue };
            let embedded = kubeconfig::read(&found.bytes);
            match self.kubeconfig_mismatch(spec, &embedded) {
                None => {
                    kept.push(RenderedFile {
                        path: placement.path.clone(),
                        mode: placement.role.mode(),
                        contents: Zeroizing::new(found.bytes.to_vec()),
                        artifact: artifact.id.clone(),
                        role: placement.role,
                    });
                    origins.push(found.origin);
                }
                Some(reason) => self.note(&artifact.id, format!("`{}` not adopted: {reason}", found.origin)),
            }
        }
        if kept.is_empty() {
            return;
        }
        self.files.extend(kept);
        self.adoption.adopted.push(Adopted { id: artifact.id.clone(), from: origins });
        self.record(i, artifact.spec.clone(), None);
    }

    /// Why a kubeconfig's embedded fields are not what the plan and the
    /// adopted material say, if they are not.
    fn kubeconfig_mismatch(
        &self,
        spec: &crate::model::KubeconfigSpec,
        embedded: &kubeconfig::Embedded,
    ) -> Option<String> {
        if embedded.server.as_deref() != Some(spec.server.as_str()) {
            return Some(format!(
                "it dials {}, the plan {}",
                embedded.server.as_deref().unwrap_or("nothing"),
                spec.server
            ));
        }
        let Some(Material::Cert(ca)) = self.materials.get(&spec.ca) else {
            return Some(format!("`{}` was not adopted", spec.ca));
        };
        if embedded.ca.as_deref().and_then(x509::cert_der).as_deref() != Some(ca.cert_der.as_slice()) {
            return Some(format!("its certificate-authority-data is not `{}`", spec.ca));
        }
        match (&spec.credential, self.materials.get(spec.credential.artifact())) {
            (Credential::ClientCert(id), Some(Material::Cert(client))) => {
                let cert = embedded.client_cert.as_deref().and_then(x509::cert_der);
                let key = embedded.client_key.as_deref().and_then(|k| x509::private_key_public_raw(k));
                let adopted_key = x509::private_key_public_raw(client.key.pem.expose().as_bytes());
                (cert.as_deref() != Some(client.cert_der.as_slice()) || key.is_none() || key != adopted_key)
                    .then(|| format!("its client certificate or key is not `{id}`'s"))
            }
            (Credential::Token(id), Some(Material::Token { token, .. })) => {
                (embedded.token.as_deref().map(String::as_str) != Some(token.expose()))
                    .then(|| format!("its token is not `{id}`'s"))
            }
            (credential, _) => Some(format!("`{}` was not adopted", credential.artifact())),
        }
    }

    /// A file certplan writes in its own form (flags, manifests, bundles):
    /// adopted where the host has exactly what certplan would write.
    fn take_rendered(&mut self, i: usize) -> Result<(), AdoptError> {
        let model = self.model;
        let artifact = &model.artifacts[i];
        let rendered = match render::render_files(self.model, &[i], &self.materials, self.templates) {
            Ok(rendered) => rendered,
            Err(RenderError::MissingMaterial(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut origins = Vec::new();
        let mut kept = Vec::new();
        for (file, placement) in rendered.into_iter().zip(&artifact.files) {
            if let Some(found) = self.sources.read(placement)
                && found.bytes.as_slice() == file.contents.as_slice()
            {
                origins.push(found.origin);
                kept.push(file);
            }
        }
        if kept.is_empty() {
            return Ok(());
        }
        self.files.extend(kept);
        self.adoption.adopted.push(Adopted { id: artifact.id.clone(), from: origins });
        self.record(i, artifact.spec.clone(), None);
        Ok(())
    }

    /// Writes adopted material to every placement of its artifact: the
    /// bytes found there when they are the adopted ones, else the adopted
    /// bytes of that role (a host that had another copy, or none, gets
    /// the adopted one when the tree is installed).
    fn place_all(&mut self, i: usize, by_role: &[(FileRole, &[u8])]) {
        let model = self.model;
        let artifact = &model.artifacts[i];
        for placement in &artifact.files {
            let Some((_, adopted)) = by_role.iter().find(|(role, _)| *role == placement.role) else { continue };
            if let Some(found) = self.sources.read(placement)
                && found.bytes.as_slice() != *adopted
            {
                self.adoption.notes.push(Note {
                    id: artifact.id.clone(),
                    note: format!("`{}` differs from the adopted copy: the tree has the adopted one", found.origin),
                });
            }
            self.files.push(RenderedFile {
                path: placement.path.clone(),
                mode: placement.role.mode(),
                contents: Zeroizing::new(adopted.to_vec()),
                artifact: artifact.id.clone(),
                role: placement.role,
            });
        }
    }

    /// Notes a secret file readable by others than its owner.
    fn check_modes(&mut self, id: &ArtifactId, found: &[&sources::Found]) {
        for file in found {
            if file.origin.ends_with("(embedded)") {
                continue;
            }
            let is_key = x509::private_key_public_raw(&file.bytes).is_some();
            if is_key && file.mode & 0o077 != 0 {
                self.note(id, format!("`{}` has mode {:04o}; the tree writes it 0600", file.origin, file.mode));
            }
        }
    }

    /// Records an adopted artifact: the plan's fingerprint when it is what
    /// the plan describes, else one that makes `plan` compare the specs.
    fn record(&mut self, i: usize, found: Spec, cert: Option<CertState>) {
        let model = self.model;
        let artifact = &model.artifacts[i];
        let fingerprint =
            if found == artifact.spec { self.graph.fingerprints[i].clone() } else { Fingerprint::differing() };
        self.records.insert(artifact.id.clone(), (fingerprint, found, cert));
    }
}

/// The algorithm of a PEM public key, as plans name it.
fn x509_public_algorithm(pem: &[u8]) -> Option<crate::plan::KeyAlgorithm> {
    use x509_parser::prelude::FromDer;
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&pem.contents).ok()?;
    crate::plan::KeyAlgorithm::from_name(&x509::key_algorithm(&spki))
}

/// The token of the `token.csv` row `token,user,uid,"group1,group2"` for
/// this user, uid and groups (in any order).
fn token_row(text: &str, user: &str, uid: &str, groups: &[String]) -> Option<String> {
    let mut want: Vec<&str> = groups.iter().map(String::as_str).collect();
    want.sort_unstable();
    text.lines().find_map(|line| {
        let mut parts = line.trim().splitn(4, ',');
        let token = parts.next()?.trim();
        let row_user = parts.next()?.trim();
        let row_uid = parts.next()?.trim();
        let row_groups = parts.next().unwrap_or("").trim().trim_matches('"');
        let mut have: Vec<&str> = row_groups.split(',').map(str::trim).filter(|g| !g.is_empty()).collect();
        have.sort_unstable();
        (row_user == user && row_uid == uid && have == want && !token.is_empty()).then(|| token.to_string())
    })
}

/// Encrypts the secret files of a plan with `[secrets]`.
fn seal(model: &Model, files: &mut [RenderedFile]) -> Result<(), AdoptError> {
    if model.recipients.is_empty() {
        return Ok(());
    }
    let recipients = crate::secrets::Recipients::parse(&model.recipients)?;
    for file in files.iter_mut().filter(|f| crate::secrets::is_sealed(&f.path)) {
        file.contents = Zeroizing::new(recipients.seal(&file.path, &file.contents)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::token_row;

    #[test]
    fn finds_the_row_of_the_plans_user() {
        let csv = "abc,admin,1,\"system:masters\"\n0123,kubelet-bootstrap,10001,\"system:kubelet-bootstrap\"\n";
        let groups = vec!["system:kubelet-bootstrap".to_string()];
        assert_eq!(token_row(csv, "kubelet-bootstrap", "10001", &groups).as_deref(), Some("0123"));
        assert_eq!(token_row(csv, "kubelet-bootstrap", "10002", &groups), None);
        assert_eq!(token_row(csv, "admin", "1", &groups), None);
    }
}
