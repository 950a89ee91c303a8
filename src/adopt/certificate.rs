//! One certificate and key found on a host, held against the plan: the key
//! must match the certificate, a CA must be a self-signed CA that may sign,
//! a leaf must be signed by the plan's CA and may sign with its key. What
//! the certificate holds becomes the spec the state records, the plan's own
//! where they agree, so that the next `plan` reissues exactly what differs
//! and says what, in its usual words.

use std::time::Duration;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

use crate::audit::verify::x509;
use crate::issue::{Issued, KeyMaterial, Secret};
use crate::model::{CertSpec, Eku, Sans};
use crate::plan::KeyAlgorithm;

/// How far a certificate's lifetime may be from the plan's validity and
/// still count as that validity: issuers backdate `NotBefore` by minutes
/// (kubeadm and cfssl by five) for clock skew.
const LIFETIME_SLACK: Duration = Duration::from_hours(1);

/// A certificate and key taken over.
pub struct Taken {
    /// Them, as issuing would have produced them.
    pub issued: Issued,
    /// The spec they satisfy: the plan's wherever they agree with it.
    pub spec: CertSpec,
    /// What is worth knowing but does not stop adoption.
    pub notes: Vec<String>,
}

/// Holds a certificate (`cert`, PEM) and its key (`key`, PEM; `None` for
/// an offline CA whose key is away) against `spec`. `signer` is the adopted CA that must have signed it: a leaf's
/// CA, an intermediate's parent; `None` for a root, which signs itself.
/// `Err` says why they cannot be adopted at all.
pub fn take(
    spec: &CertSpec,
    is_ca: bool,
    cert_pem: &[u8],
    key_pem: Option<&[u8]>,
    signer: Option<&Issued>,
    now: OffsetDateTime,
) -> Result<Taken, String> {
    let der = x509::cert_der(cert_pem).ok_or("not a PEM certificate")?;
    let cert = x509::parse(&der).ok_or("a certificate that cannot be parsed")?;
    // An offline CA's key is away (`None`): there is no key to hold against it.
    let key_text = match key_pem {
        Some(key_pem) => {
            let key_text = std::str::from_utf8(key_pem).map_err(|_| "a key that is not PEM text")?;
            let key_public = x509::private_key_public_raw(key_pem).ok_or("a key certplan cannot read")?;
            if key_public != cert.public_key().subject_public_key.data.as_ref() {
                return Err("the key does not belong to the certificate".into());
            }
            key_text
        }
        None => "",
    };
    let mut notes = Vec::new();
    let ca_flag = cert.basic_constraints().ok().flatten().is_some_and(|bc| bc.value.ca);
    let usage = cert.key_usage().ok().flatten().map(|ext| *ext.value);
    if is_ca {
        if !ca_flag {
            return Err("not a CA certificate (basicConstraints CA:FALSE or absent)".into());
        }
        if usage.is_some_and(|u| !u.key_cert_sign()) {
            return Err("a CA certificate whose key usage does not allow keyCertSign".into());
        }
        // An intermediate is signed by its parent (`signer`), a root by itself.
        if let Some(parent) = signer {
            let parent = x509::parse(&parent.cert_der).ok_or("its parent cannot be parsed")?;
            if let Some(reason) = x509::chain(&cert, &parent, spec.issuer.as_str()) {
                return Err(reason);
            }
        } else if let Some(reason) = x509::chain(&cert, &cert, "itself") {
            return Err(format!("not self-signed ({reason}); a CA signed by another is described with `parent`"));
        }
    } else {
        if ca_flag {
            return Err("a CA certificate where the plan has a leaf".into());
        }
        let signer = signer.ok_or("its CA was not adopted")?;
        let ca = x509::parse(&signer.cert_der).ok_or("its CA cannot be parsed")?;
        if let Some(reason) = x509::chain(&cert, &ca, spec.issuer.as_str()) {
            return Err(reason);
        }
        if usage.is_some_and(|u| !u.digital_signature()) {
            return Err("its key usage lacks digitalSignature, which TLS needs".into());
        }
    }
    let found = as_found(spec, &cert, &mut notes)?;
    let not_before = timestamp(cert.validity().not_before.timestamp())?;
    let not_after = timestamp(cert.validity().not_after.timestamp())?;
    if not_after <= now {
        notes.push(format!("expired on {}: `plan` renews it", date(not_after)));
    }
    let issued = Issued {
        cert_pem: single_pem(cert_pem, &der),
        cert_der: der.clone(),
        key: KeyMaterial::from_disk(found.key, Secret::new(key_text.to_string()), String::new()),
        serial: hex::encode(cert.raw_serial()),
        not_before,
        not_after,
    };
    Ok(Taken { issued, spec: found, notes })
}

/// The plan's spec with every field the certificate does not match
/// replaced by what it holds. Lists compare as sets; EKUs beyond the
/// plan's are kept (and noted); a lifetime within [`LIFETIME_SLACK`] of
/// the plan's validity counts as it.
fn as_found(spec: &CertSpec, cert: &X509Certificate<'_>, notes: &mut Vec<String>) -> Result<CertSpec, String> {
    let mut found = spec.clone();
    let subject = cert.subject();
    let cn = x509::values(subject.iter_common_name());
    if cn != [spec.subject.cn.clone()] {
        found.subject.cn = cn.join(",");
    }
    let same_set = |a: &[String], b: &[String]| {
        let mut a = a.to_vec();
        let mut b = b.to_vec();
        a.sort();
        b.sort();
        a == b
    };
    let o = x509::values(subject.iter_organization());
    if !same_set(&o, &spec.subject.o) {
        found.subject.o = in_plan_order(&spec.subject.o, &o);
    }
    let ou = x509::values(subject.iter_organizational_unit());
    if !same_set(&ou, &spec.subject.ou) {
        found.subject.ou = in_plan_order(&spec.subject.ou, &ou);
    }
    let single = |values: Vec<String>| if values.is_empty() { None } else { Some(values.join(",")) };
    found.subject.c = single(x509::values(subject.iter_country()));
    found.subject.st = single(x509::values(subject.iter_state_or_province()));
    found.subject.l = single(x509::values(subject.iter_locality()));

    let (dns, ip) = x509::sans(cert);
    let plan_ip: Vec<String> = spec.sans.ip.iter().map(ToString::to_string).collect();
    if !same_set(&dns, &spec.sans.dns) || !same_set(&ip, &plan_ip) {
        let ip = in_plan_order(&plan_ip, &ip);
        found.sans =
            Sans { dns: in_plan_order(&spec.sans.dns, &dns), ip: ip.iter().filter_map(|ip| ip.parse().ok()).collect() };
    }

    let have = x509::ekus(cert);
    let wanted: Vec<&str> = spec.eku.iter().map(|e| x509::eku_name(*e)).collect();
    if wanted.iter().all(|w| have.contains(w)) {
        let extra: Vec<&str> = have.iter().copied().filter(|h| !wanted.contains(h)).collect();
        if !extra.is_empty() {
            notes.push(format!("also allows {} beyond the plan's EKUs; kept as it is", extra.join(", ")));
        }
    } else {
        found.eku = [(Eku::ServerAuth, "serverAuth"), (Eku::ClientAuth, "clientAuth")]
            .into_iter()
            .filter(|(_, name)| have.contains(name))
            .map(|(eku, _)| eku)
            .collect();
    }

    let algorithm = x509::key_algorithm(cert.public_key());
    found.key = KeyAlgorithm::from_name(&algorithm)
        .ok_or_else(|| format!("a key of a kind certplan does not issue ({algorithm})"))?;

    let validity = cert.validity();
    let lifetime = u64::try_from(validity.not_after.timestamp() - validity.not_before.timestamp()).unwrap_or(0);
    let lifetime = Duration::from_secs(lifetime);
    if lifetime.abs_diff(spec.validity) > LIFETIME_SLACK {
        found.validity = lifetime;
    }
    Ok(found)
}

/// The certificates of a PEM file and nothing else: the file as it is when
/// it holds only certificates, else its certificates encoded anew (a file
/// that also holds a private key must not be copied where certificates go,
/// readable by all and never encrypted). `None` without any certificate.
#[must_use]
pub fn certificates_only(file: &[u8]) -> Option<Vec<u8>> {
    let blocks: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(file).filter_map(Result::ok).collect();
    if blocks.is_empty() || blocks.iter().all(|b| b.label != "CERTIFICATE") {
        return None;
    }
    if blocks.iter().all(|b| b.label == "CERTIFICATE") {
        return Some(file.to_vec());
    }
    let pem: String = blocks
        .iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| crate::issue::certificate_pem(&b.contents))
        .collect();
    Some(pem.into_bytes())
}

/// What a certificate holds, in the plan's order where the plan has it
/// (then the rest), so that `plan` reports what differs, not the order.
fn in_plan_order(plan: &[String], held: &[String]) -> Vec<String> {
    let mut ordered: Vec<String> = plan.iter().filter(|p| held.contains(p)).cloned().collect();
    ordered.extend(held.iter().filter(|h| !plan.contains(h)).cloned());
    ordered
}

fn timestamp(seconds: i64) -> Result<OffsetDateTime, String> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| "a validity date out of range".to_string())
}

fn date(when: OffsetDateTime) -> String {
    when.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The PEM of one certificate: the file's own text when it holds just that
/// one, else the first encoded anew (a file with a chain behind the leaf).
fn single_pem(file: &[u8], der: &[u8]) -> String {
    let text = String::from_utf8_lossy(file);
    if text.matches("-----BEGIN ").count() == 1 {
        return text.into_owned();
    }
    crate::issue::certificate_pem(der)
}
