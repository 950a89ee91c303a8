//! The X.509 half of `verify`: a certificate read back from disk against its
//! spec (subject, SANs, EKUs, CA flag, key algorithm), its signature against
//! the issuing CA, and private or public keys against certificates. Key
//! material is parsed only to derive its public half and is never shown.

use std::net::IpAddr;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_EC_P256, OID_NIST_EC_P384, OID_SIG_ED25519};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use super::check::Check;
use crate::model::{CertSpec, Eku};

/// The DER of the first certificate in a PEM file.
pub fn cert_der(pem: &[u8]) -> Option<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    (pem.label == "CERTIFICATE").then_some(pem.contents)
}

/// Parses DER, which [`cert_der`] produced.
pub fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    X509Certificate::from_der(der).ok().map(|(_, cert)| cert)
}

/// Every way a certificate differs from its spec.
pub fn profile(spec: &CertSpec, is_ca: bool, cert: &X509Certificate<'_>) -> Vec<(Check, String)> {
    let mut problems = Vec::new();
    let subject = cert.subject();
    let expected = &spec.subject;
    let fields: [(&str, Vec<String>, Vec<String>); 6] = [
        ("CN", vec![expected.cn.clone()], values(subject.iter_common_name())),
        ("O", expected.o.clone(), values(subject.iter_organization())),
        ("OU", expected.ou.clone(), values(subject.iter_organizational_unit())),
        ("C", expected.c.iter().cloned().collect(), values(subject.iter_country())),
        ("ST", expected.st.iter().cloned().collect(), values(subject.iter_state_or_province())),
        ("L", expected.l.iter().cloned().collect(), values(subject.iter_locality())),
    ];
    for (name, want, have) in fields {
        if want != have {
            problems.push((Check::Subject, format!("{name} is {} but the plan says {}", list(&have), list(&want))));
        }
    }
    let (dns, ip) = sans(cert);
    let mut want_dns = spec.sans.dns.clone();
    want_dns.sort();
    let mut want_ip: Vec<String> = spec.sans.ip.iter().map(ToString::to_string).collect();
    want_ip.sort();
    if dns != want_dns {
        problems.push((Check::Sans, set_difference("DNS SANs", &want_dns, &dns)));
    }
    if ip != want_ip {
        problems.push((Check::Sans, set_difference("IP SANs", &want_ip, &ip)));
    }
    let mut want_eku: Vec<&str> = spec.eku.iter().map(|e| eku_name(*e)).collect();
    want_eku.sort_unstable();
    let have_eku = ekus(cert);
    if have_eku != want_eku {
        problems.push((Check::Eku, format!("EKUs are {} but the plan says {}", list(&have_eku), list(&want_eku))));
    }
    let ca_flag = cert.basic_constraints().ok().flatten().is_some_and(|bc| bc.value.ca);
    if ca_flag != is_ca {
        let what = if is_ca { "a CA" } else { "a leaf" };
        problems.push((
            Check::BasicConstraints,
            format!("basicConstraints says CA:{} but it must be {what}", ca_flag.to_string().to_uppercase()),
        ));
    }
    let key = key_algorithm(cert.public_key());
    if key != spec.key.as_str() {
        problems.push((Check::KeyAlgorithm, format!("its key is {key} but the plan says {}", spec.key.as_str())));
    }
    problems
}

pub fn values<'a, 'b: 'a>(iter: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'b>>) -> Vec<String> {
    iter.map(|attr| attr.as_str().map_or_else(|_| "(unreadable)".into(), String::from)).collect()
}

fn list<T: AsRef<str>>(items: &[T]) -> String {
    if items.is_empty() { "none".to_string() } else { items.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ") }
}

fn set_difference(name: &str, want: &[String], have: &[String]) -> String {
    let missing: Vec<&String> = want.iter().filter(|w| !have.contains(w)).collect();
    let extra: Vec<&String> = have.iter().filter(|h| !want.contains(h)).collect();
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", list(&missing.iter().map(|s| s.as_str()).collect::<Vec<_>>())));
    }
    if !extra.is_empty() {
        parts.push(format!("not in the plan {}", list(&extra.iter().map(|s| s.as_str()).collect::<Vec<_>>())));
    }
    format!("{name}: {}", parts.join("; "))
}

/// The DNS and IP SANs of a certificate, sorted.
pub fn sans(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let mut dns = Vec::new();
    let mut ip = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(name) => dns.push(name.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => ip.push(ip_text(bytes)),
                _ => {}
            }
        }
    }
    dns.sort();
    ip.sort();
    (dns, ip)
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).map(|b| IpAddr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes).map(|b| IpAddr::from(b).to_string()),
        _ => return hex::encode(bytes),
    }
    .unwrap_or_else(|_| hex::encode(bytes))
}

pub fn eku_name(eku: Eku) -> &'static str {
    match eku {
        Eku::ServerAuth => "serverAuth",
        Eku::ClientAuth => "clientAuth",
    }
}

pub fn ekus(cert: &X509Certificate<'_>) -> Vec<&'static str> {
    let Ok(Some(ext)) = cert.extended_key_usage() else {
        return Vec::new();
    };
    let eku = ext.value;
    let mut names = Vec::new();
    for (present, name) in [
        (eku.any, "anyExtendedKeyUsage"),
        (eku.client_auth, "clientAuth"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.ocsp_signing, "OCSPSigning"),
        (eku.server_auth, "serverAuth"),
        (eku.time_stamping, "timeStamping"),
    ] {
        if present {
            names.push(name);
        }
    }
    if !eku.other.is_empty() {
        names.push("other");
    }
    names.sort_unstable();
    names
}

/// A key's algorithm named as plans name it (`rsa-2048`, `ecdsa-p256`).
pub fn key_algorithm(spki: &SubjectPublicKeyInfo<'_>) -> String {
    if spki.algorithm.algorithm == OID_SIG_ED25519 {
        return "ed25519".into();
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("rsa-{}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
            match curve {
                Some(oid) if oid == OID_EC_P256 => "ecdsa-p256".into(),
                Some(oid) if oid == OID_NIST_EC_P384 => "ecdsa-p384".into(),
                _ => "ecdsa (another curve)".into(),
            }
        }
        _ => format!("an unknown kind ({})", spki.algorithm.algorithm),
    }
}

/// Why a certificate is not signed by `issuer` (its own key for a CA), if it is not.
pub fn chain(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>, issuer_id: &str) -> Option<String> {
    if !same_name(cert.issuer(), issuer.subject()) {
        return Some(format!(
            "its issuer is `{}`, not the subject of `{issuer_id}` (`{}`)",
            cert.issuer(),
            issuer.subject()
        ));
    }
    cert.verify_signature(Some(issuer.public_key()))
        .err()
        .map(|_| format!("its signature does not verify with the key of `{issuer_id}`: it was signed by another CA"))
}

fn same_name(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw()
}

/// The raw public key of a PEM private key (PKCS#8, PKCS#1 or SEC1), or
/// `None` if it cannot be read. Never returns or prints the key itself.
pub fn private_key_public_raw(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let pair = rcgen::KeyPair::from_pem(text).ok()?;
    Some(pair.public_key_raw().to_vec())
}

/// The raw public key of a PEM `PUBLIC KEY` (PKIX `SubjectPublicKeyInfo`).
pub fn public_key_raw(pem: &[u8]) -> Option<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    if pem.label != "PUBLIC KEY" {
        return None;
    }
    let (_, spki) = SubjectPublicKeyInfo::from_der(&pem.contents).ok()?;
    Some(spki.subject_public_key.data.to_vec())
}
