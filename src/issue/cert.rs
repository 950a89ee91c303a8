//! One certificate or key pair: generate (or reuse) the key, fill every
//! X.509 field explicitly (rcgen's defaults are wrong for a cluster PKI),
//! sign with the issuing CA.

use std::sync::Arc;

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::Secret;
use crate::model::{CertSpec, Eku};
use crate::plan::KeyAlgorithm;

/// How far `NotBefore` is backdated, for clock skew between machines.
pub const BACKDATE: Duration = Duration::minutes(5);

/// The last year a `GeneralizedTime` can hold (RFC 5280 4.1.2.5).
const LAST_YEAR: i32 = 9999;

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
    #[must_use]
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
    /// `NotBefore`.
    pub not_before: OffsetDateTime,
    /// `NotAfter`.
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
    /// A generated key could not be encoded.
    #[error(transparent)]
    Encoding(#[from] super::pkcs8::UnexpectedPkcs8),
    /// A validity that ends past what X.509 can write (the year 9999).
    #[error("the certificate for `{cn}` would end after the year 9999 when issued at {now}: shorten its validity")]
    ValidityOverflow {
        /// Its CN.
        cn: String,
        /// The time it would be issued at.
        now: OffsetDateTime,
    },
    /// A bootstrap token whose expiry cannot be written.
    #[error("the bootstrap token `{0}` would expire past the last date certplan can write: shorten its `token_ttl`")]
    TokenTtlOverflow(crate::model::ArtifactId),
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
    wrap(algorithm, pair)
}

fn wrap(algorithm: KeyAlgorithm, pair: KeyPair) -> Result<KeyMaterial, IssueError> {
    let der = zeroize::Zeroizing::new(pair.serialize_der());
    Ok(KeyMaterial {
        algorithm,
        pem: super::pkcs8::private_key_pem(algorithm, &der)?,
        public_pem: pair.public_key_pem(),
        pair: Some(Arc::new(pair)),
    })
}

/// Issues a certificate: self-signed when `issuer` is `None` (a root CA),
/// an intermediate CA when the spec has a `path_len`, else a leaf.
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
    let not_after = Duration::try_from(spec.validity)
        .ok()
        .and_then(|validity| now.checked_add(validity))
        .filter(|end| end.year() <= LAST_YEAR)
        .ok_or_else(|| IssueError::ValidityOverflow { cn: spec.subject.cn.clone(), now })?;
    params.not_before = now - BACKDATE;
    params.not_after = not_after;
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
    let is_ca = issuer.is_none() || spec.path_len.is_some();
    if is_ca {
        params.is_ca = IsCa::Ca(spec.path_len.map_or(BasicConstraints::Unconstrained, BasicConstraints::Constrained));
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.use_authority_key_identifier_extension = issuer.is_some();
    } else {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = leaf_key_usages(spec);
        params.use_authority_key_identifier_extension = true;
    }
    params.extended_key_usages = extended_key_usages(spec);
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

/// A certificate signing request for a leaf (or an intermediate CA) that
/// a CA whose key certplan does not have must sign: the whole extension request (SANs, key usage, extended key
/// usage) is in it, so a signer that copies the requested extensions
/// (`openssl x509 -req -copy_extensions copyall`, `cfssl sign`) gives
/// exactly the certificate the plan describes. Returns its PEM.
pub fn request(spec: &CertSpec, key: &KeyMaterial) -> Result<String, IssueError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(spec);
    params.subject_alt_names = subject_alt_names(spec)?;
    if let Some(path_len) = spec.path_len {
        // An intermediate: the CA extensions go in the request too.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    } else {
        params.key_usages = leaf_key_usages(spec);
    }
    params.extended_key_usages = extended_key_usages(spec);
    let pair = key.signing_key()?;
    let request = params
        .serialize_request(pair.as_ref())
        .map_err(crypto(format!("write the certificate request for `{}`", spec.subject.cn)))?;
    request.pem().map_err(crypto(format!("encode the certificate request for `{}`", spec.subject.cn)))
}

/// A leaf's key usage: signing, and key encipherment for an RSA key.
fn leaf_key_usages(spec: &CertSpec) -> Vec<KeyUsagePurpose> {
    let mut usages = vec![KeyUsagePurpose::DigitalSignature];
    if spec.key.is_rsa() {
        usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    usages
}

/// The extended key usages of a spec.
fn extended_key_usages(spec: &CertSpec) -> Vec<ExtendedKeyUsagePurpose> {
    spec.eku
        .iter()
        .map(|eku| match eku {
            Eku::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            Eku::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
        })
        .collect()
}

/// The material of a CA certplan does not hold: its certificate (PEM, as
/// read from the plan's file), and no key.
#[must_use]
pub fn external(spec: &CertSpec, pem: &str) -> Option<Issued> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = block.parse_x509().ok()?;
    let validity = cert.validity();
    Some(Issued {
        cert_pem: pem.to_string(),
        cert_der: block.contents.clone(),
        key: KeyMaterial::from_disk(spec.key, super::Secret::new(String::new()), String::new()),
        serial: hex::encode(cert.raw_serial()),
        not_before: OffsetDateTime::from_unix_timestamp(validity.not_before.timestamp()).ok()?,
        not_after: OffsetDateTime::from_unix_timestamp(validity.not_after.timestamp()).ok()?,
    })
}

/// The PEM of one DER certificate.
#[must_use]
pub fn certificate_pem(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
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
    let attributes = [
        (DnType::CountryName, subject.c.as_deref()),
        (DnType::StateOrProvinceName, subject.st.as_deref()),
        (DnType::LocalityName, subject.l.as_deref()),
        (DnType::OrganizationName, subject.o.first().map(String::as_str)),
        (DnType::OrganizationalUnitName, subject.ou.first().map(String::as_str)),
        (DnType::CommonName, Some(subject.cn.as_str())),
    ];
    for (kind, value) in attributes {
        if let Some(value) = value {
            dn.push(kind, directory_string(value));
        }
    }
    dn
}

/// A `DirectoryString` as Go and OpenSSL write one by default: `PrintableString`
/// when every character is in its set, `UTF8String` otherwise. countryName
/// must be a `PrintableString` (RFC 5280's `X520countryName`); `check` refuses a
/// `C` that is not two letters, so it always fits.
fn directory_string(value: &str) -> DnValue {
    match rcgen::string::PrintableString::try_from(value) {
        Ok(printable) => DnValue::PrintableString(printable),
        Err(_) => DnValue::Utf8String(value.to_string()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArtifactId, Sans, Subject};
    use x509_parser::der_parser::asn1_rs::Tag;

    fn spec(validity: std::time::Duration) -> CertSpec {
        CertSpec {
            path_len: None,
            external: None,
            set: None,
            host: None,
            issuer: ArtifactId::ca("test"),
            subject: Subject {
                cn: "test-ca".into(),
                c: Some("CH".into()),
                l: Some("Zürich".into()),
                ou: vec!["System".into()],
                ..Subject::default()
            },
            sans: Sans::default(),
            eku: Vec::new(),
            key: KeyAlgorithm::EcdsaP256,
            validity,
        }
    }

    /// Every attribute of the subject with its ASN.1 string tag.
    fn subject_tags(der: &[u8]) -> Vec<(String, Tag)> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).expect("parse");
        cert.subject()
            .iter_attributes()
            .map(|attr| (attr.attr_type().to_id_string(), attr.attr_value().header.tag()))
            .collect()
    }

    #[test]
    fn directory_strings_are_printable_where_they_fit() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let ca = issue_cert(&spec(std::time::Duration::from_hours(24)), None, None, now).unwrap();
        let tags = subject_tags(&ca.cert_der);
        // C, L, OU, CN: countryName must be a PrintableString (RFC 5280).
        assert!(tags.contains(&("2.5.4.6".into(), Tag::PrintableString)), "{tags:?}");
        assert!(tags.contains(&("2.5.4.11".into(), Tag::PrintableString)), "{tags:?}");
        assert!(tags.contains(&("2.5.4.3".into(), Tag::PrintableString)), "{tags:?}");
        assert!(tags.contains(&("2.5.4.7".into(), Tag::Utf8String)), "Zürich needs UTF8String: {tags:?}");
        assert!(matches!(directory_string("system:node:node1"), DnValue::PrintableString(_)));
        assert!(matches!(directory_string("a_b"), DnValue::Utf8String(_)));
    }

    #[test]
    fn a_validity_past_the_year_9999_is_an_error() {
        let now = OffsetDateTime::new_utc(
            time::Date::from_calendar_date(9990, time::Month::January, 1).unwrap(),
            time::Time::MIDNIGHT,
        );
        let error = issue_cert(&spec(std::time::Duration::from_hours(175_680)), None, None, now).unwrap_err();
        assert!(matches!(error, IssueError::ValidityOverflow { .. }), "{error}");
        assert!(error.to_string().contains("`test-ca`"), "{error}");
    }
}
