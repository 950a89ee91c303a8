//! Issuing: key generation and certificate signing (rcgen, aws-lc-rs), and
//! random bootstrap tokens. CAs are issued first, then every leaf and key
//! pair in parallel across cores; nothing here touches the disk.

mod cert;
mod pkcs8;
mod secret;
mod token;

pub use cert::{BACKDATE, IssueError, Issued, KeyMaterial, issue_cert, issue_keypair};
pub use secret::Secret;
pub use token::{new_bootstrap_token, new_csv_token, parse_bootstrap_secret, parse_token_csv};

use std::collections::HashMap;

use rayon::prelude::*;
use time::OffsetDateTime;

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

/// Issues the material of every artifact that needs it (`wanted`), CAs first,
/// the rest in parallel. `keep` supplies material that is not regenerated.
pub fn issue_all(
    model: &Model,
    wanted: &[usize],
    keep: Keep,
    now: OffsetDateTime,
) -> Result<HashMap<ArtifactId, Material>, IssueError> {
    let mut done: HashMap<ArtifactId, Material> = keep.material;
    let (cas, rest): (Vec<usize>, Vec<usize>) =
        wanted.iter().copied().partition(|&i| matches!(model.artifacts[i].spec, Spec::Ca(_)));
    let issued_cas: Vec<(ArtifactId, Material)> = cas
        .par_iter()
        .map(|&i| {
            let artifact = &model.artifacts[i];
            let Spec::Ca(spec) = &artifact.spec else { unreachable!("partitioned on Spec::Ca") };
            let issued = issue_cert(spec, None, keep.keys.get(&artifact.id).cloned(), now)?;
            Ok((artifact.id.clone(), Material::Cert(issued)))
        })
        .collect::<Result<_, IssueError>>()?;
    done.extend(issued_cas);
    let issued: Vec<(ArtifactId, Material)> = rest
        .par_iter()
        .filter_map(|&i| {
            let artifact = &model.artifacts[i];
            let result = match &artifact.spec {
                Spec::Cert(spec) => {
                    let Some(Material::Cert(ca)) = done.get(&spec.issuer) else {
                        return Some(Err(IssueError::MissingIssuer(spec.issuer.clone())));
                    };
                    issue_cert(spec, Some(ca), keep.keys.get(&artifact.id).cloned(), now).map(Material::Cert)
                }
                Spec::Keypair(spec) => issue_keypair(spec.key).map(Material::KeyPair),
                Spec::TokenFile(_) => Ok(Material::Token { token: new_csv_token(), expires: None }),
                Spec::BootstrapToken(spec) => time::Duration::try_from(spec.ttl)
                    .ok()
                    .and_then(|ttl| now.checked_add(ttl))
                    .map(|expires| Material::Token { token: new_bootstrap_token(), expires: Some(expires) })
                    .ok_or_else(|| IssueError::TokenTtlOverflow(artifact.id.clone())),
                _ => return None,
            };
            Some(result.map(|m| (artifact.id.clone(), m)))
        })
        .collect::<Result<_, IssueError>>()?;
    done.extend(issued);
    Ok(done)
}
