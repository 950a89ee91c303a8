//! Material taken from the output tree for artifacts that are not issued
//! again: certificates and keys from intact copies, tokens from token.csv.
//! Reading needs no crypto; keys are parsed only if they must sign.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::changes::Disk;
use crate::issue::{Issued, KeyMaterial, Material, Secret, parse_bootstrap_secret, parse_token_csv};
use crate::model::{Artifact, FileRole, Spec};
use crate::state::ArtifactState;

/// The material of a recorded artifact, if intact copies exist.
pub fn load(artifact: &Artifact, recorded: &ArtifactState, disk: &Disk) -> Option<Material> {
    let text = |role| disk.read_intact(&recorded.files, role).and_then(|b| String::from_utf8(b).ok());
    match &artifact.spec {
        Spec::Ca(cert) | Spec::Cert(cert) => {
            let cert_pem = text(FileRole::Cert)?;
            let key_pem = text(FileRole::Key)?;
            let facts = recorded.cert.as_ref()?;
            let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
            Some(Material::Cert(Issued {
                cert_der: pem.contents,
                cert_pem,
                key: KeyMaterial::from_disk(cert.key, Secret::new(key_pem), String::new()),
                serial: facts.serial.clone(),
                not_before: OffsetDateTime::parse(&facts.not_before, &Rfc3339).ok()?,
                not_after: OffsetDateTime::parse(&facts.not_after, &Rfc3339).ok()?,
            }))
        }
        Spec::Keypair(pair) => Some(Material::KeyPair(KeyMaterial::from_disk(
            pair.key,
            Secret::new(text(FileRole::Key)?),
            text(FileRole::PublicKey)?,
        ))),
        Spec::TokenFile(_) => {
            parse_token_csv(&text(FileRole::TokenFile)?).map(|token| Material::Token { token, expires: None })
        }
        Spec::BootstrapToken(_) => {
            let token = parse_bootstrap_secret(&text(FileRole::SecretManifest)?)?;
            let expires = recorded.cert.as_ref().and_then(|c| OffsetDateTime::parse(&c.not_after, &Rfc3339).ok());
            Some(Material::Token { token, expires })
        }
        _ => None,
    }
}

/// The key of a recorded certificate, to keep when it is reissued.
pub fn load_key(artifact: &Artifact, recorded: &ArtifactState, disk: &Disk) -> Option<KeyMaterial> {
    match load(artifact, recorded, disk)? {
        Material::Cert(issued) => Some(issued.key),
        Material::KeyPair(key) => Some(key),
        Material::Token { .. } => None,
    }
}

/// A key read from disk alone (the certificate may be damaged).
pub fn load_key_only(artifact: &Artifact, recorded: &ArtifactState, disk: &Disk) -> Option<KeyMaterial> {
    let cert = artifact.spec.cert()?;
    let key = disk.read_intact(&recorded.files, FileRole::Key)?;
    Some(KeyMaterial::from_disk(cert.key, Secret::new(String::from_utf8(key).ok()?), String::new()))
}
