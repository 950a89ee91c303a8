//! The generated certificates' dates as `openssl x509 -checkend` sees them,
//! and every private key as openssl and Go's `tls.X509KeyPair` read it.
//!
//! Declared from `kubectl_client.rs`; needs openssl (`tests/run.sh`).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::harness::{self, Applied, Variant, files_of_role, host_of_rel, openssl_ok, run};

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn classic_rsa_checkend_agrees_with_plan_validity() {
    checkend_suite(Variant::as_written("classic"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn classic_ecdsa_checkend_agrees_with_plan_validity() {
    checkend_suite(Variant::with_key("classic", "ecdsa-p256"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn kubeadm_ecdsa_checkend_agrees_with_plan_validity() {
    checkend_suite(Variant::as_written("kubeadm"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn kubeadm_rsa_checkend_agrees_with_plan_validity() {
    checkend_suite(Variant::with_key("kubeadm", "rsa-2048"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn minimal_checkend_agrees_with_inspect() {
    checkend_suite(Variant::as_written("minimal"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn classic_rsa_private_keys_are_what_go_reads() {
    keys_suite(Variant::as_written("classic"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn classic_ecdsa_private_keys_are_what_go_reads() {
    keys_suite(Variant::with_key("classic", "ecdsa-p256"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn kubeadm_ecdsa_private_keys_are_what_go_reads() {
    keys_suite(Variant::as_written("kubeadm"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn kubeadm_rsa_private_keys_are_what_go_reads() {
    keys_suite(Variant::with_key("kubeadm", "rsa-2048"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn minimal_private_keys_are_what_go_reads() {
    keys_suite(Variant::as_written("minimal"));
}

// ---------------------------------------------------------------------------
// Dates

const HOUR: i64 = 3600;

/// `openssl x509 -checkend <seconds>`: true when the certificate will not
/// have expired by then.
fn checkend(cert: &Path, seconds: i64) -> bool {
    let mut cmd = Command::new("openssl");
    cmd.args(["x509", "-noout", "-in"]).arg(cert).arg("-checkend").arg(seconds.max(0).to_string());
    let got = run(&mut cmd, Duration::from_secs(30));
    match got.status.and_then(|s| s.code()) {
        Some(0) => true,
        Some(1) => false,
        _ => panic!("openssl x509 -checkend failed:\n{}", got.describe()),
    }
}

/// The certificate's notAfter as openssl reads it.
fn openssl_not_after(cert: &Path) -> OffsetDateTime {
    let out = openssl_ok(&["x509", "-noout", "-in", &cert.to_string_lossy(), "-enddate", "-dateopt", "iso_8601"]);
    // notAfter=2027-11-23 10:33:00Z
    let value = out.trim().trim_start_matches("notAfter=").replacen(' ', "T", 1);
    OffsetDateTime::parse(&value, &Rfc3339).unwrap_or_else(|e| panic!("openssl printed notAfter {out:?}: {e}"))
}

fn rfc3339(v: &Value, what: &str) -> OffsetDateTime {
    let s = v.as_str().unwrap_or_else(|| panic!("{what} is not an RFC 3339 string: {v}"));
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{what} = {s:?}: {e}"))
}

/// The validity the plan gives artifact `id` (kind `kind`, set `set`), if it
/// states one.
fn planned_validity(applied: &Applied, id: &str, kind: &str, set: Option<&str>) -> Option<String> {
    if kind == "ca" {
        return applied.plan_str(&["defaults", "ca_validity"]);
    }
    if let Some(user) = id.strip_prefix("cert/users/")
        && let Some((_, _, Some(v))) = applied.plan_users().into_iter().find(|(n, _, _)| n == user)
    {
        return Some(v);
    }
    set.and_then(|s| applied.plan_str(&["sets", s, "validity"])).or_else(|| applied.plan_str(&["defaults", "validity"]))
}

fn checkend_suite(variant: Variant) {
    harness::require_tools(&["openssl"]);
    let tmp = harness::tempdir("certplan-checkend-");
    let applied = variant.apply(tmp.path(), "main");
    let now = OffsetDateTime::now_utc();
    let mut against_plan = 0;
    let mut year_leaves = 0;

    for art in applied.artifacts() {
        let kind = art["kind"].as_str().unwrap_or("");
        if kind != "ca" && kind != "cert" {
            continue;
        }
        let id = art["id"].as_str().expect("id");
        let cert =
            applied.out.join(files_of_role(art, "cert").first().unwrap_or_else(|| panic!("{id} lists no cert file")));

        // openssl and inspect agree on notAfter, and -checkend agrees with it.
        let not_after = openssl_not_after(&cert);
        assert_eq!(
            not_after,
            rfc3339(&art["not_after"], &format!("{id} not_after")),
            "{id}: inspect's not_after differs from the certificate on disk"
        );
        // A leaf does not outlive its CA.
        if kind == "cert" {
            let issuer = applied.issuer(id);
            let ca_end = rfc3339(&applied.artifact(&issuer)["not_after"], &issuer);
            assert!(not_after <= ca_end, "{id} (until {not_after}) outlives its CA {issuer} (until {ca_end})");
        }

        // -checkend agrees with the validity the plan asks for.
        let Some(validity) = planned_validity(&applied, id, kind, art["set"].as_str()) else {
            // The plan states none: -checkend agrees with notAfter itself.
            let left = (not_after - now).whole_seconds();
            assert!(
                checkend(&cert, left - 300),
                "{id}: openssl says it expires within {}s, but it is valid until {not_after}",
                left - 300
            );
            assert!(
                !checkend(&cert, left + 300),
                "{id}: openssl says it is still valid {}s from now, after its notAfter {not_after}",
                left + 300
            );
            continue;
        };
        let duration =
            humantime::parse_duration(&validity).unwrap_or_else(|e| panic!("plan validity {validity:?}: {e}"));
        let secs = i64::try_from(duration.as_secs()).expect("validity fits");
        let (pass_at, fail_at) = if secs == 8760 * HOUR {
            year_leaves += usize::from(kind == "cert");
            (8700 * HOUR, 8800 * HOUR)
        } else {
            let margin = (secs / 50).max(HOUR);
            (secs - margin, secs + margin)
        };
        assert!(
            checkend(&cert, pass_at),
            "{id}: validity {validity} in the plan, but `openssl x509 -checkend {pass_at}` ({}h) says it expires (notAfter {not_after})",
            pass_at / HOUR
        );
        assert!(
            !checkend(&cert, fail_at),
            "{id}: validity {validity} in the plan, but `openssl x509 -checkend {fail_at}` ({}h) says it is still valid (notAfter {not_after})",
            fail_at / HOUR
        );
        against_plan += 1;
    }

    if applied.plan_str(&["defaults", "validity"]).as_deref() == Some("8760h") {
        assert!(
            year_leaves > 0 && against_plan > 0,
            "{variant:?} asks for 8760h leaves, but no leaf was checked against it"
        );
    }
}

// ---------------------------------------------------------------------------
// Keys

/// The PEM blocks of a file: (type, DER).
fn pem_blocks(text: &str, what: &str) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line.trim().strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for inner in lines.by_ref() {
            if inner.trim() == end {
                closed = true;
                break;
            }
            body.push_str(inner.trim());
        }
        assert!(closed, "{what}: PEM block {label} has no END line");
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .unwrap_or_else(|e| panic!("{what}: PEM block {label} is not base64: {e}"));
        blocks.push((label.to_string(), der));
    }
    blocks
}

/// One DER TLV: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The children of a constructed DER value; `None` if it is not DER.
fn children(mut content: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tag, value, rest) = tlv(content)?;
        out.push((tag, value));
        content = rest;
    }
    Some(out)
}

/// The elements of a DER SEQUENCE that is the whole of `der`.
fn sequence(der: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let (tag, content, rest) = tlv(der)?;
    (tag == 0x30 && rest.is_empty()).then_some(())?;
    children(content)
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];

/// The key family and (for EC) curve a DER body holds, checking that it has
/// the structure its PEM label promises. `Err` says why not.
fn key_structure(label: &str, der: &[u8]) -> Result<(&'static str, Option<&'static str>), String> {
    let curve = |oid: &[u8]| match oid {
        OID_P256 => Ok("p256"),
        OID_P384 => Ok("p384"),
        OID_P521 => Ok("p521"),
        other => Err(format!("an EC curve Go does not know: OID bytes {other:02x?}")),
    };
    let seq = sequence(der).ok_or("the body is not one DER SEQUENCE")?;
    match label {
        "PRIVATE KEY" => {
            // PrivateKeyInfo ::= SEQUENCE { version INTEGER (0|1),
            //   privateKeyAlgorithm AlgorithmIdentifier, privateKey OCTET STRING, ... }
            let [(0x02, version), (0x30, alg), (0x04, _), ..] = seq.as_slice() else {
                return Err(format!("not PKCS#8 PrivateKeyInfo: elements {:02x?}", tags(&seq)));
            };
            if *version != [0] && *version != [1] {
                return Err(format!("PKCS#8 version {version:02x?}"));
            }
            let alg = children(alg).ok_or("AlgorithmIdentifier is not DER")?;
            match alg.as_slice() {
                [(0x06, OID_RSA), ..] => Ok(("rsa", None)),
                [(0x06, OID_EC), (0x06, named)] => Ok(("ecdsa", Some(curve(named)?))),
                [(0x06, OID_ED25519)] => Ok(("ed25519", None)),
                other => Err(format!("PKCS#8 algorithm Go does not read: {other:02x?}")),
            }
        }
        "RSA PRIVATE KEY" => {
            // RSAPrivateKey ::= SEQUENCE { version 0, n, e, d, p, q, dp, dq, qinv }
            if seq.len() == 9 && seq.iter().all(|(t, _)| *t == 0x02) && seq[0].1 == [0] {
                Ok(("rsa", None))
            } else {
                Err(format!("not a PKCS#1 RSAPrivateKey: elements {:02x?}", tags(&seq)))
            }
        }
        "EC PRIVATE KEY" => {
            // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING,
            //   [0] parameters (Go needs the named curve), [1] publicKey }
            let [(0x02, [1]), (0x04, _), (0xa0, params), rest @ ..] = seq.as_slice() else {
                return Err(format!("not a SEC1 ECPrivateKey with its curve: elements {:02x?}", tags(&seq)));
            };
            if rest.iter().any(|(t, _)| *t != 0xa1) {
                return Err(format!("unexpected SEC1 elements {:02x?}", tags(&seq)));
            }
            match children(params).as_deref() {
                Some([(0x06, named)]) => Ok(("ecdsa", Some(curve(named)?))),
                other => Err(format!("SEC1 parameters are not a named curve: {other:02x?}")),
            }
        }
        other => Err(format!("PEM type {other:?} is none of PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY")),
    }
}

fn tags(seq: &[(u8, &[u8])]) -> Vec<u8> {
    seq.iter().map(|(t, _)| *t).collect()
}

/// What `key` (inspect's `rsa-2048`, `ecdsa-p256`, `ed25519`) means:
/// family, curve, bits.
fn expected_key(spec: &str) -> (&'static str, Option<&'static str>, u32) {
    match spec {
        "rsa-2048" => ("rsa", None, 2048),
        "rsa-3072" => ("rsa", None, 3072),
        "rsa-4096" => ("rsa", None, 4096),
        "ecdsa-p256" => ("ecdsa", Some("p256"), 256),
        "ecdsa-p384" => ("ecdsa", Some("p384"), 384),
        "ed25519" => ("ed25519", None, 253),
        other => panic!("inspect names an unknown key algorithm {other:?}"),
    }
}

/// Checks one private key file as Go's `tls.X509KeyPair` and openssl read it.
fn check_private_key(path: &Path, text: &str, spec: &str, what: &str) {
    let shown = format!("{what} ({})", path.display());

    let p = path.to_string_lossy();

    // Go takes the first block whose type is "PRIVATE KEY" or ends in
    // " PRIVATE KEY", and parses PKCS#1, PKCS#8 or SEC1.
    let blocks = pem_blocks(text, &shown);
    let keys: Vec<&(String, Vec<u8>)> =
        blocks.iter().filter(|(label, _)| label == "PRIVATE KEY" || label.ends_with(" PRIVATE KEY")).collect();
    assert_eq!(
        keys.len(),
        1,
        "{shown}: expected one private key PEM block, found {:?}",
        blocks.iter().map(|(l, _)| l).collect::<Vec<_>>()
    );
    let (label, der) = keys[0];
    let (family, curve) = key_structure(label, der).unwrap_or_else(|why| panic!("{shown}: {label}: {why}"));

    // The body is what the header says, read by openssl strictly by format.
    match label.as_str() {
        "PRIVATE KEY" => {
            openssl_ok(&["pkcs8", "-nocrypt", "-in", &p, "-out", "/dev/null"]);
        }
        "RSA PRIVATE KEY" => {
            openssl_ok(&["rsa", "-in", &p, "-noout", "-check"]);
        }
        _ => {
            openssl_ok(&["ec", "-in", &p, "-noout", "-check"]);
        }
    }

    // openssl reads it (`pkey -noout`, here with -text), and it is the key
    // the plan asked for.
    let (want_family, want_curve, bits) = expected_key(spec);
    assert_eq!(
        (family, curve),
        (want_family, want_curve),
        "{shown}: a {label} of family {family} {curve:?}, but inspect says {spec}"
    );
    let described = openssl_ok(&["pkey", "-in", &p, "-noout", "-text"]);
    let first = described.lines().next().unwrap_or("");
    if want_family != "ed25519" {
        assert!(
            first.contains(&format!("({bits} bit")),
            "{shown}: {spec} should be {bits} bits; openssl says {first:?}"
        );
    }
}

/// The `SubjectPublicKeyInfo` PEM of a certificate, a private key or a public
/// key, asked of openssl once per distinct file content.
fn public_key_of(path: &Path, kind: &str, cache: &mut HashMap<Vec<u8>, String>) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if let Some(known) = cache.get(&bytes) {
        return known.clone();
    }
    let p = path.to_string_lossy();
    let pem = match kind {
        "cert" => openssl_ok(&["x509", "-in", &p, "-noout", "-pubkey"]),
        "key" => openssl_ok(&["pkey", "-in", &p, "-pubout"]),
        _ => openssl_ok(&["pkey", "-pubin", "-in", &p, "-pubout"]),
    }
    .trim()
    .to_string();
    cache.insert(bytes, pem.clone());
    pem
}

fn keys_suite(variant: Variant) {
    harness::require_tools(&["openssl"]);
    let tmp = harness::tempdir("certplan-keys-");
    let applied = variant.apply(tmp.path(), "main");
    let mut key_files = 0;
    let mut pairs = 0;
    // Copies of one file on several hosts are checked once (openssl is slow
    // to start); every copy is still read and compared by content.
    let mut checked: HashSet<Vec<u8>> = HashSet::new();
    let mut public_keys: HashMap<Vec<u8>, String> = HashMap::new();

    for art in applied.artifacts() {
        let id = art["id"].as_str().expect("id");
        let key_rels = files_of_role(art, "key");
        if key_rels.is_empty() {
            continue;
        }
        let spec = art["key"].as_str().unwrap_or_else(|| panic!("{id} has key files but no `key` in inspect: {art}"));
        for rel in &key_rels {
            let path = applied.out.join(rel);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {rel}: {e}"));
            if checked.insert(bytes.clone()) {
                let text =
                    String::from_utf8(bytes).unwrap_or_else(|_| panic!("{id} {rel}: a key file that is not text"));
                check_private_key(&path, &text, spec, &format!("{id} {rel}"));
            }
            key_files += 1;
        }

        // Go's X509KeyPair also insists that the key belongs to the
        // certificate next to it; the service-account key to its sa.pub.
        for (role, label) in [("cert", "CERTIFICATE"), ("public-key", "PUBLIC KEY")] {
            for rel in files_of_role(art, role) {
                let path = applied.out.join(&rel);
                let text = std::fs::read_to_string(&path).expect("read cert");
                let blocks = pem_blocks(&text, &rel);
                assert_eq!(
                    blocks.first().map(|(l, _)| l.as_str()),
                    Some(label),
                    "{id} {rel}: the first PEM block should be {label}"
                );
                let dir = Path::new(&rel).parent().expect("parent");
                let key_rel = key_rels.iter().filter(|k| host_of_rel(k) == host_of_rel(&rel)).max_by_key(|k| {
                    // The key in the same directory, else any on that host.
                    usize::from(Path::new(k).parent() == Some(dir))
                });
                let Some(key_rel) = key_rel else {
                    continue;
                };
                assert_eq!(
                    public_key_of(&path, role, &mut public_keys),
                    public_key_of(&applied.out.join(key_rel), "key", &mut public_keys),
                    "{id}: {rel} and {key_rel} are not a key pair"
                );
                pairs += 1;
            }
        }
    }
    assert!(key_files > 0 && pairs > 0, "{variant:?}: inspect lists no private key files (role `key`) or no key pairs");
    let sa = applied.artifact("keypair/service-account");
    assert!(
        !files_of_role(sa, "key").is_empty() && !files_of_role(sa, "public-key").is_empty(),
        "keypair/service-account should list its key and public key: {sa}"
    );
}
