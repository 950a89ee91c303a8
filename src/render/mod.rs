//! Rendering: turns the model and the issued material into file contents —
//! PEM files, kubeconfigs, token.csv, flag files and manifests. Text formats
//! come from minijinja templates embedded in the binary. Pure: no disk I/O.

mod templates;

pub use templates::{RenderError, Templates};

use std::collections::HashMap;

use base64::Engine;
use zeroize::Zeroizing;

use crate::issue::Material;
use crate::model::{
    Artifact, ArtifactId, BootstrapTokenSpec, Credential, FileRole, FlagFileSpec, KubeconfigSpec, ManifestSpec, Model,
    Spec, TokenFileSpec,
};

/// One rendered file, ready to write.
pub struct RenderedFile {
    /// Path relative to the output directory.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Content; zeroed on drop since it may hold a key or token.
    pub contents: Zeroizing<Vec<u8>>,
    /// The artifact it belongs to.
    pub artifact: ArtifactId,
    /// What it holds.
    pub role: FileRole,
}

/// Renders every file of the artifacts at `indices`.
pub fn render_files(
    model: &Model,
    indices: &[usize],
    materials: &HashMap<ArtifactId, Material>,
    templates: &Templates,
) -> Result<Vec<RenderedFile>, RenderError> {
    let mut files = Vec::new();
    for &i in indices {
        let artifact = &model.artifacts[i];
        for placement in &artifact.files {
            let contents = render_one(model, artifact, placement.role, materials, templates)?;
            files.push(RenderedFile {
                path: placement.path.clone(),
                mode: placement.role.mode(),
                contents,
                artifact: artifact.id.clone(),
                role: placement.role,
            });
        }
    }
    Ok(files)
}

fn missing(id: &ArtifactId) -> RenderError {
    RenderError::MissingMaterial(id.clone())
}

/// Renders one file of an artifact with the function for its kind, ending
/// it with a newline.
fn render_one(
    model: &Model,
    artifact: &Artifact,
    role: FileRole,
    materials: &HashMap<ArtifactId, Material>,
    templates: &Templates,
) -> Result<Zeroizing<Vec<u8>>, RenderError> {
    let text: Zeroizing<String> = match (&artifact.spec, role) {
        (Spec::Ca(_) | Spec::Cert(_), FileRole::Cert | FileRole::Key) => cert_pem(artifact, role, materials)?,
        (Spec::Keypair(_), FileRole::Key | FileRole::PublicKey) => key_pair_pem(artifact, role, materials)?,
        (Spec::Bundle(_), FileRole::Cert | FileRole::PublicKey) => {
            Zeroizing::new(trusted_pem(model, &artifact.id, materials)?)
        }
        (Spec::Kubeconfig(spec), _) => kubeconfig(model, spec, materials, templates)?,
        (Spec::TokenFile(spec), _) => token_file(artifact, spec, materials, templates)?,
        (Spec::BootstrapToken(spec), _) => bootstrap_token(artifact, spec, materials, templates)?,
        (Spec::Flags(spec), _) => flag_file(model, spec, templates)?,
        (Spec::Manifest(spec), _) => manifest(spec, templates)?,
        (spec, role) => {
            return Err(RenderError::NoSuchFile { artifact: artifact.id.clone(), kind: spec.kind(), role });
        }
    };
    let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() + 1));
    bytes.extend_from_slice(text.as_bytes());
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    Ok(bytes)
}

/// The certificate or the private key of a CA or a certificate.
fn cert_pem(
    artifact: &Artifact,
    role: FileRole,
    materials: &HashMap<ArtifactId, Material>,
) -> Result<Zeroizing<String>, RenderError> {
    let issued = cert_of(materials, &artifact.id)?;
    Ok(Zeroizing::new(match role {
        FileRole::Key => issued.key.pem.expose().to_string(),
        _ => issued.cert_pem.clone(),
    }))
}

/// The private or the public key of a key pair.
fn key_pair_pem(
    artifact: &Artifact,
    role: FileRole,
    materials: &HashMap<ArtifactId, Material>,
) -> Result<Zeroizing<String>, RenderError> {
    let Some(Material::KeyPair(key)) = materials.get(&artifact.id) else {
        return Err(missing(&artifact.id));
    };
    Ok(Zeroizing::new(if role == FileRole::Key { key.pem.expose().to_string() } else { key.public_pem.clone() }))
}

/// A kubeconfig embedding its CA and its client certificate and key, or its token.
fn kubeconfig(
    model: &Model,
    spec: &KubeconfigSpec,
    materials: &HashMap<ArtifactId, Material>,
    templates: &Templates,
) -> Result<Zeroizing<String>, RenderError> {
    let ca = trusted_pem(model, &spec.ca, materials)?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let mut context = minijinja::context! {
        ca_data => b64(&ca),
        server => &spec.server,
        cluster_name => &spec.cluster_name,
        user => &spec.user,
        context_name => format!("{}@{}", spec.user, spec.cluster_name),
    };
    match &spec.credential {
        Credential::ClientCert(id) => {
            let client = cert_of(materials, id)?;
            let key = Zeroizing::new(b64(client.key.pem.expose()));
            context = minijinja::context! {
                client_certificate_data => b64(&client.cert_pem),
                client_key_data => key.as_str(),
                ..context
            };
        }
        Credential::Token(id) => {
            let Some(Material::Token { token, .. }) = materials.get(id) else {
                return Err(missing(id));
            };
            context = minijinja::context! { token => token.expose(), ..context };
        }
    }
    templates.render("kubeconfig.yaml", context)
}

/// The API server's `token.csv`.
fn token_file(
    artifact: &Artifact,
    spec: &TokenFileSpec,
    materials: &HashMap<ArtifactId, Material>,
    templates: &Templates,
) -> Result<Zeroizing<String>, RenderError> {
    let Some(Material::Token { token, .. }) = materials.get(&artifact.id) else {
        return Err(missing(&artifact.id));
    };
    templates.render(
        "token.csv",
        minijinja::context! { token => token.expose(), user => &spec.user, uid => &spec.uid, groups => &spec.groups },
    )
}

/// The bootstrap-token Secret.
fn bootstrap_token(
    artifact: &Artifact,
    spec: &BootstrapTokenSpec,
    materials: &HashMap<ArtifactId, Material>,
    templates: &Templates,
) -> Result<Zeroizing<String>, RenderError> {
    let Some(Material::Token { token, expires }) = materials.get(&artifact.id) else {
        return Err(missing(&artifact.id));
    };
    let (id, secret) = token.expose().split_once('.').ok_or_else(|| missing(&artifact.id))?;
    let expiration =
        expires.and_then(|e| e.format(&time::format_description::well_known::Rfc3339).ok()).unwrap_or_default();
    templates.render(
        "bootstrap-token-secret.yaml",
        minijinja::context! {
            token_id => id,
            token_secret => secret,
            expiration => expiration,
            groups => spec.groups.join(","),
        },
    )
}

/// A component's flag file on one host.
fn flag_file(model: &Model, spec: &FlagFileSpec, templates: &Templates) -> Result<Zeroizing<String>, RenderError> {
    let vars: Vec<_> = spec
        .vars
        .iter()
        .map(|var| {
            let flags: Vec<_> =
                var.flags.iter().map(|(name, value)| minijinja::context! { name => name, value => value }).collect();
            minijinja::context! { name => &var.name, flags => flags }
        })
        .collect();
    templates.render(
        "flags.env",
        minijinja::context! {
            component => spec.component,
            host => &spec.host,
            cluster => &model.cluster.name,
            version => format!("{}.{}", model.cluster.version.0, model.cluster.version.1),
            vars => vars,
        },
    )
}

/// An RBAC manifest from its template and values.
fn manifest(spec: &ManifestSpec, templates: &Templates) -> Result<Zeroizing<String>, RenderError> {
    let values: std::collections::BTreeMap<String, String> = spec.values.iter().cloned().collect();
    let values = minijinja::Value::from(values);
    templates.render(spec.template, values)
}

/// The PEM a component trusts through `id`: a CA's certificate, or every
/// member of a trust bundle in its order (CA certificates, or the public
/// keys of key pairs).
fn trusted_pem(
    model: &Model,
    id: &ArtifactId,
    materials: &HashMap<ArtifactId, Material>,
) -> Result<String, RenderError> {
    let Some(Spec::Bundle(bundle)) = model.artifact(id).map(|a| &a.spec) else {
        return Ok(cert_of(materials, id)?.cert_pem.clone());
    };
    let mut pem = String::new();
    for member in &bundle.members {
        let text = match materials.get(member) {
            Some(Material::Cert(issued)) => &issued.cert_pem,
            Some(Material::KeyPair(key)) => &key.public_pem,
            _ => return Err(missing(member)),
        };
        pem.push_str(text.trim_end());
        pem.push('\n');
    }
    Ok(pem)
}

fn cert_of<'m>(
    materials: &'m HashMap<ArtifactId, Material>,
    id: &ArtifactId,
) -> Result<&'m crate::issue::Issued, RenderError> {
    match materials.get(id) {
        Some(Material::Cert(issued)) => Ok(issued),
        _ => Err(missing(id)),
    }
}
