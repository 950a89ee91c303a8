//! Issuing: key generation and certificate signing (rcgen, aws-lc-rs), and
//! random bootstrap tokens. The graph's waves give the order (a CA before
//! what it signs); each wave is issued in parallel across cores. Nothing here
//! touches the disk.

mod cert;
mod pkcs8;
mod secret;
mod token;

pub use cert::{
    BACKDATE, IssueError, Issued, KeyMaterial, certificate_pem, external, issue_cert, issue_keypair, request,
};
pub use secret::Secret;
pub use token::{new_bootstrap_token, new_csv_token, parse_bootstrap_secret, parse_token_csv};

use std::collections::HashMap;

use rayon::prelude::*;
use time::OffsetDateTime;

use crate::graph::Graph;
use crate::model::{ArtifactId, Model, Spec};

/// What issuing produced for one artifact.
#[derive(Debug, Clone)]
pub enum Material {
    /// A certificate (CA or leaf) and its key.
    Cert(Issued),
    /// A bare key pair.
    KeyPair(KeyMaterial),
    /// A bearer token, with its expiry when it has one.
    Token {
        /// The token.
        token: Secret,
        /// When it stops working.
        expires: Option<OffsetDateTime>,
    },
}

/// Material already on disk that must be kept (a CA, a key being reused).
#[derive(Debug, Default)]
pub struct Keep {
    /// Artifacts whose material is kept as it is.
    pub material: HashMap<ArtifactId, Material>,
    /// Keys to reuse for a certificate that is reissued.
    pub keys: HashMap<ArtifactId, KeyMaterial>,
}

/// Issues the material of every artifact that needs it (`wanted`), wave by
/// wave in the graph's order (a CA before what it signs), each wave in
/// parallel. `keep` supplies material that is not regenerated.
pub fn issue_all(
    model: &Model,
    graph: &Graph,
    wanted: &[usize],
    keep: Keep,
    now: OffsetDateTime,
    progress: &crate::progress::Progress,
) -> Result<HashMap<ArtifactId, Material>, IssueError> {
    let mut done: HashMap<ArtifactId, Material> = keep.material;
    if wanted.is_empty() {
        return Ok(done);
    }
    progress.phase("keys", wanted.len());
    let mut is_wanted = vec![false; model.artifacts.len()];
    for &i in wanted {
        is_wanted[i] = true;
    }
    for wave in graph.waves() {
        let issued: Vec<(ArtifactId, Material)> = wave
            .par_iter()
            .filter(|&&i| is_wanted[i])
            .filter_map(|&i| {
                let issued = issue_one(model, i, &done, &keep.keys, now).transpose();
                progress.tick();
                issued
            })
            .collect::<Result<_, IssueError>>()?;
        done.extend(issued);
    }
    Ok(done)
}

/// The PEM of the intermediate CAs from `ca` up to its root (the root
/// left out, as TLS peers send chains): empty when `ca` is a root.
fn intermediates(model: &Model, ca: &ArtifactId, done: &HashMap<ArtifactId, Material>) -> Result<String, IssueError> {
    let mut chain = String::new();
    let mut next = Some(ca);
    // At most one step per CA of the plan: the hierarchy has no cycles.
    for _ in 0..model.artifacts.len() {
        let Some(id) = next else { break };
        let Some(Spec::Ca(spec)) = model.artifact(id).map(|a| &a.spec) else { break };
        if spec.issuer == *id {
            break;
        }
        let Some(Material::Cert(issued)) = done.get(id) else {
            return Err(IssueError::MissingIssuer(id.clone()));
        };
        chain.push_str(&issued.cert_pem);
        next = Some(&spec.issuer);
    }
    Ok(chain)
}

/// The material of one artifact; `None` for artifacts that are rendered,
/// not issued. Its issuer, if any, is in `done`.
fn issue_one(
    model: &Model,
    i: usize,
    done: &HashMap<ArtifactId, Material>,
    keys: &HashMap<ArtifactId, KeyMaterial>,
    now: OffsetDateTime,
) -> Result<Option<(ArtifactId, Material)>, IssueError> {
    let artifact = &model.artifacts[i];
    let reuse = || keys.get(&artifact.id).cloned();
    let material = match &artifact.spec {
        Spec::Ca(spec) if spec.external.is_some() => {
            let pem =
                model.external_pem.get(&artifact.id).ok_or_else(|| IssueError::MissingIssuer(artifact.id.clone()))?;
            Material::Cert(external(spec, pem).ok_or_else(|| IssueError::MissingIssuer(artifact.id.clone()))?)
        }
        Spec::Ca(spec) if spec.issuer == artifact.id => Material::Cert(issue_cert(spec, None, reuse(), now)?),
        Spec::Ca(spec) | Spec::Cert(spec) => {
            let Some(Material::Cert(ca)) = done.get(&spec.issuer) else {
                return Err(IssueError::MissingIssuer(spec.issuer.clone()));
            };
            let mut issued = issue_cert(spec, Some(ca), reuse(), now)?;
            // A leaf presents the intermediates above it, up to the root.
            if matches!(artifact.spec, Spec::Cert(_)) {
                issued.cert_pem.push_str(&intermediates(model, &spec.issuer, done)?);
            }
            Material::Cert(issued)
        }
        Spec::Keypair(spec) => Material::KeyPair(issue_keypair(spec.key)?),
        Spec::TokenFile(_) => Material::Token { token: new_csv_token(), expires: None },
        Spec::BootstrapToken(spec) => {
            let expires = time::Duration::try_from(spec.ttl)
                .ok()
                .and_then(|ttl| now.checked_add(ttl))
                .ok_or_else(|| IssueError::TokenTtlOverflow(artifact.id.clone()))?;
            Material::Token { token: new_bootstrap_token(), expires: Some(expires) }
        }
        Spec::Kubeconfig(_) | Spec::Flags(_) | Spec::Manifest(_) | Spec::Bundle(_) => return Ok(None),
    };
    Ok(Some((artifact.id.clone(), material)))
}
