//! Material taken from the output tree for artifacts that are not issued
//! again: certificates and keys from intact copies, tokens from token.csv.
//! Reading needs no crypto; keys are parsed only if they must sign.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::changes::{ChangeError, Disk};
use crate::issue::{Issued, KeyMaterial, Material, Secret, parse_bootstrap_secret, parse_token_csv};
use crate::model::{Artifact, FileRole, Spec};
use crate::plan::KeyAlgorithm;
use crate::state::ArtifactState;

/// The material of a recorded artifact, if intact copies exist.
pub fn load(artifact: &Artifact, recorded: &ArtifactState, disk: &Disk) -> Option<Material> {
    let text = |role| disk.read_intact(&recorded.files, role).and_then(|b| String::from_utf8(b).ok());
    match &artifact.spec {
        Spec::Ca(cert) | Spec::Cert(cert) => {
            let cert_pem = text(FileRole::Cert)?;
            // A CA whose key is offline still has a certificate to embed
            // (signing with it is refused before issuing starts).
            // Not a key that is there and cannot be read (encrypted, no identity).
            let key_file_here = recorded.files.iter().any(|(path, f)| f.role == FileRole::Key && disk.exists(path));
            let key_pem = match text(FileRole::Key) {
                None if matches!(artifact.spec, Spec::Ca(_)) && !key_file_here => String::new(),
                key => key?,
            };
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

/// The key of a CA that no state records, read from the first of its key
/// files in the tree, so that the CA keeps it ([`Action::Adopt`]). It must
/// be a regular file holding a private key of the plan's algorithm.
///
/// [`Action::Adopt`]: crate::changes::Action::Adopt
pub fn adopt_key(artifact: &Artifact, disk: &Disk) -> Result<KeyMaterial, ChangeError> {
    let Some(cert) = artifact.spec.cert() else {
        return Err(unusable(artifact, "", "not a certificate authority".into()));
    };
    let Some(file) = artifact.files.iter().find(|f| f.role == FileRole::Key && disk.exists(&f.path)) else {
        return Err(unusable(artifact, "", "no key file".into()));
    };
    let path = disk.path(&file.path);
    let metadata = std::fs::symlink_metadata(&path).map_err(|e| unusable(artifact, &file.path, e.to_string()))?;
    if !metadata.is_file() {
        return Err(unusable(artifact, &file.path, "not a regular file".into()));
    }
    let bytes = std::fs::read(&path).map_err(|_| unusable(artifact, &file.path, "unreadable".into()))?;
    let pem = disk
        .plaintext(&file.path, bytes)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| unusable(artifact, &file.path, "unreadable, or encrypted and no age identity given".into()))?;
    let pair = rcgen::KeyPair::from_pem(&pem)
        .map_err(|_| unusable(artifact, &file.path, "not a PEM private key certplan can read".into()))?;
    if !same_algorithm(cert.key, &pair) {
        return Err(unusable(
            artifact,
            &file.path,
            format!("not a {} key, which the plan asks for", cert.key.as_str()),
        ));
    }
    Ok(KeyMaterial::from_disk(cert.key, Secret::new(pem), String::new()))
}

fn unusable(artifact: &Artifact, path: &str, reason: String) -> ChangeError {
    ChangeError::CaKeyUnusable { id: artifact.id.clone(), path: path.to_string(), reason }
}

/// Whether a parsed key is of the algorithm the plan names (RSA by modulus
/// size, read from the length of its PKCS#1 public key: 270, 398 or 526 bytes).
fn same_algorithm(algorithm: KeyAlgorithm, pair: &rcgen::KeyPair) -> bool {
    let rsa_bits = || match pair.public_key_raw().len() {
        0..=290 => 2048,
        291..=410 => 3072,
        _ => 4096,
    };
    let found = pair.algorithm();
    match algorithm {
        KeyAlgorithm::Rsa1024 => false,
        KeyAlgorithm::Rsa2048 => found == &rcgen::PKCS_RSA_SHA256 && rsa_bits() == 2048,
        KeyAlgorithm::Rsa3072 => found == &rcgen::PKCS_RSA_SHA256 && rsa_bits() == 3072,
        KeyAlgorithm::Rsa4096 => found == &rcgen::PKCS_RSA_SHA256 && rsa_bits() == 4096,
        KeyAlgorithm::EcdsaP256 => found == &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::EcdsaP384 => found == &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyAlgorithm::Ed25519 => found == &rcgen::PKCS_ED25519,
    }
}

/// A key read from disk alone (the certificate may be damaged).
pub fn load_key_only(artifact: &Artifact, recorded: &ArtifactState, disk: &Disk) -> Option<KeyMaterial> {
    let cert = artifact.spec.cert()?;
    let key = disk.read_intact(&recorded.files, FileRole::Key)?;
    Some(KeyMaterial::from_disk(cert.key, Secret::new(String::from_utf8(key).ok()?), String::new()))
}
