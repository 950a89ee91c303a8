//! One certificate or key pair: generate (or reuse) the key, fill every
//! X.509 field explicitly (rcgen's defaults are wrong for a cluster PKI),
//! sign with the issuing CA.

use std::sync::Arc;

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::Secret;
use crate::model::{CertSpec, Eku};
use crate::plan::KeyAlgorithm;

/// How far NotBefore is backdated, for clock skew between machines.
pub const BACKDATE: Duration = Duration::minutes(5);

/// A private key with its public half.
#[derive(Clone)]
pub struct KeyMaterial {
    /// Its algorithm.
    pub algorithm: KeyAlgorithm,
    /// PKCS#8 PEM.
    pub pem: Secret,
    /// PKIX `PUBLIC KEY` PEM.
    pub public_pem: String,
    /// The parsed key, when it was generated or parsed in this run.
    pair: Option<Arc<KeyPair>>,
}

impl KeyMaterial {
    /// Key material read from disk: parsed only if it has to sign.
    pub fn from_disk(algorithm: KeyAlgorithm, pem: Secret, public_pem: String) -> Self {
        Self { algorithm, pem, public_pem, pair: None }
    }

    /// The key as a signing key, parsing it if needed.
    fn signing_key(&self) -> Result<Arc<KeyPair>, IssueError> {
        match &self.pair {
            Some(pair) => Ok(pair.clone()),
            None => KeyPair::from_pem(self.pem.expose())
                .map(Arc::new)
                .map_err(|_| IssueError::UnreadableKey(self.algorithm.as_str().to_string())),
        }
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// An issued certificate and its key.
#[derive(Debug, Clone)]
pub struct Issued {
    /// PEM certificate.
    pub cert_pem: String,
    /// DER certificate.
    pub cert_der: Vec<u8>,
    /// Its key.
    pub key: KeyMaterial,
    /// Hex serial number.
    pub serial: String,
    /// NotBefore.
    pub not_before: OffsetDateTime,
    /// NotAfter.
    pub not_after: OffsetDateTime,
}

/// Why issuing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The crypto library refused.
    #[error("cannot {what}: {source}")]
    Crypto {
        /// What was being done.
        what: String,
        /// The library's error.
        source: rcgen::Error,
    },
    /// A certificate's CA was not issued first.
    #[error("the CA `{0}` was not issued before the certificates it signs")]
    MissingIssuer(crate::model::ArtifactId),
    /// A key on disk cannot be read.
    #[error("the private key of `{0}` on disk cannot be read as a PEM key")]
    UnreadableKey(String),
}

fn crypto(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> IssueError {
    let what = what.into();
    move |source| IssueError::Crypto { what, source }
}

/// Generates a new key pair.
pub fn issue_keypair(algorithm: KeyAlgorithm) -> Result<KeyMaterial, IssueError> {
    let pair = match algorithm {
        KeyAlgorithm::Rsa1024 => Err(rcgen::Error::KeyGenerationUnavailable),
        KeyAlgorithm::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048),
        KeyAlgorithm::Rsa3072 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072),
        KeyAlgorithm::Rsa4096 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096),
        KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyAlgorithm::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
    }
    .map_err(crypto(format!("generate a {} key", algorithm.as_str())))?;
    Ok(wrap(algorithm, pair))
}

fn wrap(algorithm: KeyAlgorithm, pair: KeyPair) -> KeyMaterial {
    KeyMaterial {
        algorithm,
        pem: Secret::new(pair.serialize_pem()),
        public_pem: pair.public_key_pem(),
        pair: Some(Arc::new(pair)),
    }
}

/// Issues a certificate: self-signed when `issuer` is `None` (a CA).
pub fn issue_cert(
    spec: &CertSpec,
    issuer: Option<&Issued>,
    reuse_key: Option<KeyMaterial>,
    now: OffsetDateTime,
) -> Result<Issued, IssueError> {
    let key = match reuse_key {
        Some(key) => key,
        None => issue_keypair(spec.key)?,
    };
    let mut params = CertificateParams::default();
    let validity = Duration::try_from(spec.validity).unwrap_or(Duration::MAX);
    params.not_before = now - BACKDATE;
    params.not_after = now.checked_add(validity).unwrap_or(now);
    if let Some(ca) = issuer
        && params.not_after > ca.not_after
    {
        params.not_after = ca.not_after;
    }
    params.not_before = truncate_seconds(params.not_before);
    params.not_after = truncate_seconds(params.not_after);
    let serial = random_serial();
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.distinguished_name = distinguished_name(spec);
    params.subject_alt_names = subject_alt_names(spec)?;
    let is_ca = issuer.is_none();
    if is_ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    } else {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.key.is_rsa() {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.use_authority_key_identifier_extension = true;
    }
    params.extended_key_usages = spec
        .eku
        .iter()
        .map(|eku| match eku {
            Eku::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            Eku::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
        })
        .collect();
    let subject_key = key.signing_key()?;
    let cert = match issuer {
        None => params.self_signed(subject_key.as_ref()),
        Some(ca) => {
            let ca_key = ca.key.signing_key()?;
            let signer = Issuer::from_ca_cert_der(&ca.cert_der.clone().into(), ca_key.as_ref())
                .map_err(crypto("read the CA certificate"))?;
            params.signed_by(subject_key.as_ref(), &signer)
        }
    }
    .map_err(crypto(format!("sign the certificate for `{}`", spec.subject.cn)))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key,
        serial: hex::encode(serial),
        not_before: params.not_before,
        not_after: params.not_after,
    })
}

fn truncate_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// 16 random bytes, positive and with no leading zero byte (so DER keeps all
/// 16): within RFC 5280's 20 octets.
fn random_serial() -> [u8; 16] {
    let mut serial = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x40;
    serial
}

fn distinguished_name(spec: &CertSpec) -> rcgen::DistinguishedName {
    let subject = &spec.subject;
    let mut dn = rcgen::DistinguishedName::new();
    if let Some(c) = &subject.c {
        dn.push(DnType::CountryName, c.as_str());
    }
    if let Some(st) = &subject.st {
        dn.push(DnType::StateOrProvinceName, st.as_str());
    }
    if let Some(l) = &subject.l {
        dn.push(DnType::LocalityName, l.as_str());
    }
    if let Some(o) = subject.o.first() {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    if let Some(ou) = subject.ou.first() {
        dn.push(DnType::OrganizationalUnitName, ou.as_str());
    }
    dn.push(DnType::CommonName, subject.cn.as_str());
    dn
}

fn subject_alt_names(spec: &CertSpec) -> Result<Vec<SanType>, IssueError> {
    let mut sans = Vec::new();
    for name in &spec.sans.dns {
        let ia5 = name.as_str().try_into().map_err(crypto(format!("encode the DNS name `{name}`")))?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(spec.sans.ip.iter().map(|ip| SanType::IpAddress(*ip)));
    Ok(sans)
}
