//! A certificate read back from the output tree with x509-parser: the fields
//! the tests look at, and the extended key usages the design gives each
//! certificate set.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The key algorithm family of a certificate's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ec,
    Ed25519,
    Other,
}

/// The fields of a certificate the tests look at, parsed with x509-parser.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub path: PathBuf,
    pub version: u32,
    pub subject: String,
    pub issuer: String,
    pub cn: Vec<String>,
    pub o: Vec<String>,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// (critical, ca) of basicConstraints, when present.
    pub basic_constraints: Option<(bool, bool)>,
    /// keyUsage, when present.
    pub key_usage: Option<KeyUsageBits>,
    /// Extended key usages by name (`serverAuth`, `clientAuth`, ...), when present.
    pub eku: Option<Vec<String>>,
    pub ski: Option<Vec<u8>>,
    pub aki: Option<Vec<u8>>,
    pub serial: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    /// The DER `SubjectPublicKeyInfo`.
    pub spki: Vec<u8>,
    pub key_kind: KeyKind,
}

#[derive(Debug, Clone, Copy)]
pub struct KeyUsageBits {
    pub digital_signature: bool,
    pub key_encipherment: bool,
    pub key_cert_sign: bool,
}

impl CertInfo {
    pub fn has_eku(&self, name: &str) -> bool {
        self.eku.as_ref().is_some_and(|e| e.iter().any(|x| x == name))
    }

    /// Whether the certificate's SANs cover `host` (an IP or a DNS name).
    pub fn covers(&self, host: &str) -> bool {
        match host.parse::<IpAddr>() {
            Ok(ip) => self.ips.contains(&ip),
            Err(_) => self.dns.iter().any(|d| d.eq_ignore_ascii_case(host)),
        }
    }
}

/// The DER of every `CERTIFICATE` PEM block in `pem`.
pub fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    Pem::iter_from_buffer(pem).filter_map(Result::ok).filter(|p| p.label == "CERTIFICATE").map(|p| p.contents).collect()
}

/// Parses the first certificate of a PEM file; panics with what is wrong.
pub fn read_cert(path: &Path) -> CertInfo {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let der = pem_certificates(&pem)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{} holds no PEM CERTIFICATE block", path.display()));
    parse_cert_der(path, &der)
}

/// Parses one DER certificate; `path` only names it in messages.
pub fn parse_cert_der(path: &Path, der: &[u8]) -> CertInfo {
    let (_, cert) = X509Certificate::from_der(der)
        .unwrap_or_else(|e| panic!("{} is not a parseable X.509 certificate: {e}", path.display()));
    let strings = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.map(|a| a.as_str().map_or_else(|_| "<not a string>".into(), str::to_string)).collect::<Vec<_>>()
    };
    let cn = strings(&mut cert.subject().iter_common_name());
    let o = strings(&mut cert.subject().iter_organization());

    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap())),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap())),
                    n => panic!("{} has an IP SAN of {n} bytes", path.display()),
                },
                _ => {}
            }
        }
    }
    let basic_constraints = cert
        .basic_constraints()
        .unwrap_or_else(|e| panic!("{}: bad basicConstraints: {e}", path.display()))
        .map(|bc| (bc.critical, bc.value.ca));
    let key_usage =
        cert.key_usage().unwrap_or_else(|e| panic!("{}: bad keyUsage: {e}", path.display())).map(|ku| KeyUsageBits {
            digital_signature: ku.value.digital_signature(),
            key_encipherment: ku.value.key_encipherment(),
            key_cert_sign: ku.value.key_cert_sign(),
        });
    let eku = cert
        .extended_key_usage()
        .unwrap_or_else(|e| panic!("{}: bad extendedKeyUsage: {e}", path.display()))
        .map(|e| {
            let e = e.value;
            let mut names = Vec::new();
            for (on, name) in [
                (e.any, "anyExtendedKeyUsage"),
                (e.server_auth, "serverAuth"),
                (e.client_auth, "clientAuth"),
                (e.code_signing, "codeSigning"),
                (e.email_protection, "emailProtection"),
                (e.time_stamping, "timeStamping"),
                (e.ocsp_signing, "OCSPSigning"),
            ] {
                if on {
                    names.push(name.to_string());
                }
            }
            names.extend(e.other.iter().map(x509_parser::asn1_rs::Oid::to_id_string));
            names
        });
    let mut ski = None;
    let mut aki = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = Some(a.key_identifier.as_ref().map(|k| k.0.to_vec()).unwrap_or_default());
            }
            _ => {}
        }
    }
    let alg = &cert.public_key().algorithm.algorithm;
    let key_kind = if *alg == OID_PKCS1_RSAENCRYPTION {
        KeyKind::Rsa
    } else if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        KeyKind::Ec
    } else if *alg == OID_SIG_ED25519 {
        KeyKind::Ed25519
    } else {
        KeyKind::Other
    };
    CertInfo {
        path: path.to_path_buf(),
        version: cert.version().0,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        cn,
        o,
        dns,
        ips,
        basic_constraints,
        key_usage,
        eku,
        ski,
        aki,
        serial: cert.raw_serial().to_vec(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        spki: cert.public_key().raw.to_vec(),
        key_kind,
    }
}

/// The extended key usages the DESIGN's table gives each certificate set.
pub fn required_ekus(set: &str) -> &'static [&'static str] {
    match set {
        "etcd-server" => &["serverAuth"],
        "etcd-peer" => &["serverAuth", "clientAuth"],
        "etcd-client" => &["clientAuth"],
        "apiserver" => &["serverAuth"],
        "apiserver-client" => &["clientAuth"],
        "kubelet-server" => &["serverAuth"],
        "kubelet-client" => &["clientAuth"],
        "front-proxy" => &["clientAuth"],
        _ => &[],
    }
}
