//! Hierarchical CAs (issue 17): `[cas.NAME] parent` makes a CA an
//! intermediate of another, and `offline` keeps a CA's key off the tree.
//! `plans/hierarchy.toml` puts kubeadm's three CAs under one offline root.
//! Proven with checkers certplan did not write:
//!
//! - every leaf verifies with `openssl verify -x509_strict` and with rustls'
//!   webpki verifiers trusting the root alone, from the chain its own file
//!   carries (leaf, then its intermediate);
//! - each intermediate is `CA:TRUE, pathlen:0`, signed by the root, with key
//!   identifiers that link them; the root signs itself;
//! - the trust split of the three CAs holds: a component trusts its
//!   intermediate, not the root, so a leaf of one intermediate does not
//!   verify where another intermediate is trusted;
//! - with the root's key taken off the tree, `plan`, `apply` and `verify`
//!   work as long as the root need not sign; an intermediate it must sign
//!   becomes a request (key and CSR with the CA extensions) that openssl
//!   signs with the root key kept aside, and what it signs waits until then;
//!   the root's own renewal is refused, writing nothing, naming where its
//!   key goes back.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::applied::{Applied, apply_example};
use crate::common::cert::{parse_cert_der, pem_certificates};
use crate::common::problems::Problems;
use crate::common::snapshot::snapshot;
use crate::common::{certplan, describe, plan_path, write_plan};

/// The intermediates of `plans/hierarchy.toml` and the root above them.
const INTERMEDIATES: &[&str] = &["ca/kubernetes", "ca/etcd", "ca/front-proxy"];
const ROOT: &str = "ca/root";

/// `openssl verify -x509_strict -purpose P -CAfile ANCHOR -untrusted LEAF LEAF`
/// (the leaf file's own certificates as the untrusted chain), with
/// `-partial_chain` when the anchor is not a root.
fn openssl_verify(anchor: &Path, leaf: &Path, purpose: &str, partial: bool) -> Result<(), String> {
    let mut command = Command::new("openssl");
    command.args(["verify", "-x509_strict", "-purpose", purpose]);
    if partial {
        command.arg("-partial_chain");
    }
    command.arg("-CAfile").arg(anchor).arg("-untrusted").arg(leaf).arg(leaf);
    let output = command.output().expect("run openssl");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl verify -x509_strict -purpose {purpose}{} -CAfile {} -untrusted {leaf} {leaf}: {}",
            if partial { " -partial_chain" } else { "" },
            anchor.display(),
            String::from_utf8_lossy(&output.stdout).trim().to_string() + String::from_utf8_lossy(&output.stderr).trim(),
            leaf = leaf.display(),
        ))
    }
}

/// Verifies a leaf and the intermediates its file carries with rustls'
/// webpki verifiers, trusting `anchors` alone: as a client certificate for
/// `sslclient`, else as a server certificate for the first name it has.
pub(crate) fn rustls_verify(anchors: &[Vec<u8>], chain: &[Vec<u8>], purpose: &str) -> Result<(), String> {
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::server::WebPkiClientVerifier;

    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut store = rustls::RootCertStore::empty();
    for der in anchors {
        store.add(CertificateDer::from(der.clone())).map_err(|e| format!("trust anchor: {e}"))?;
    }
    let store = std::sync::Arc::new(store);
    let (leaf, intermediates) = chain.split_first().ok_or("an empty certificate file")?;
    let end = CertificateDer::from(leaf.clone());
    let intermediates: Vec<CertificateDer<'_>> =
        intermediates.iter().map(|d| CertificateDer::from(d.clone())).collect();
    let now = UnixTime::now();
    if purpose == "sslclient" {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(store, provider).build().map_err(|e| e.to_string())?;
        return verifier.verify_client_cert(&end, &intermediates, now).map(|_| ()).map_err(|e| e.to_string());
    }
    let info = parse_cert_der(Path::new("leaf"), leaf);
    let name = match (info.dns.first(), info.ips.first()) {
        (Some(dns), _) => ServerName::try_from(dns.clone()).map_err(|e| e.to_string())?,
        (None, Some(ip)) => ServerName::from(*ip),
        (None, None) => return Err("a server certificate without a name".into()),
    };
    let verifier = WebPkiServerVerifier::builder_with_provider(store, provider).build().map_err(|e| e.to_string())?;
    verifier.verify_server_cert(&end, &intermediates, &name, &[], now).map(|_| ()).map_err(|e| e.to_string())
}

/// A leaf of the tree.
struct Leaf {
    id: String,
    /// The first copy of its certificate file.
    path: std::path::PathBuf,
    /// The certificates in that file (DER), the leaf first.
    chain: Vec<Vec<u8>>,
    /// Its CA's id.
    issuer: String,
    /// What `openssl verify -purpose` it serves.
    purposes: Vec<&'static str>,
}

/// Every leaf of the tree.
fn leaves(applied: &Applied) -> Vec<Leaf> {
    applied
        .of_kind("cert")
        .into_iter()
        .map(|artifact| {
            let id = artifact["id"].as_str().expect("an id").to_string();
            let path = applied.file(artifact, "cert", None);
            let chain = pem_certificates(&fs::read(&path).expect("read a certificate file"));
            let info = parse_cert_der(&path, &chain[0]);
            let mut purposes = Vec::new();
            if info.has_eku("serverAuth") {
                purposes.push("sslserver");
            }
            if info.has_eku("clientAuth") {
                purposes.push("sslclient");
            }
            let issuer = artifact["issuer"].as_str().expect("an issuer").to_string();
            Leaf { id, path, chain, issuer, purposes }
        })
        .collect()
}

#[test]
fn every_leaf_verifies_with_only_the_root_trusted() {
    let applied = apply_example("hierarchy");
    let root_file = applied.ca_cert_file(ROOT);
    let root = pem_certificates(&fs::read(&root_file).expect("read the root"));
    let mut p = Problems::new("leaves of plans/hierarchy.toml against the root alone");
    let all = leaves(&applied);
    assert!(all.len() > 20, "the hierarchy plan has {} leaves", all.len());
    for Leaf { id, path, chain, issuer, purposes } in &all {
        p.check(INTERMEDIATES.contains(&issuer.as_str()), || {
            format!("{id} is signed by {issuer}, not an intermediate")
        });
        p.check(chain.len() == 2, || {
            format!("{id}: {} holds {} certificates, not the leaf and its intermediate", path.display(), chain.len())
        });
        let intermediate = pem_certificates(&fs::read(applied.ca_cert_file(issuer)).expect("read an intermediate"));
        p.check(chain.get(1) == intermediate.first(), || format!("{id}: the chain in its file is not `{issuer}`"));
        for purpose in purposes {
            if let Err(e) = openssl_verify(&root_file, path, purpose, false) {
                p.add(format!("{id}: {e}"));
            }
            if let Err(e) = rustls_verify(&root, chain, purpose) {
                p.add(format!("{id}: rustls trusting the root alone ({purpose}): {e}"));
            }
        }
    }
    p.finish();
}

#[test]
fn intermediates_are_constrained_and_keep_the_trust_split() {
    let applied = apply_example("hierarchy");
    let mut p = Problems::new("the CAs of plans/hierarchy.toml");
    let text = |path: &Path| {
        let output = Command::new("openssl").arg("x509").arg("-noout").arg("-text").arg("-in").arg(path).output();
        String::from_utf8_lossy(&output.expect("run openssl x509").stdout).into_owned()
    };
    let root_file = applied.ca_cert_file(ROOT);
    let root = parse_cert_der(&root_file, &pem_certificates(&fs::read(&root_file).expect("read"))[0]);
    p.check(root.subject == root.issuer, || format!("the root is not self-issued: {}", root.issuer));
    p.check(!text(&root_file).contains("pathlen"), || "the root has a path length constraint".into());
    for id in INTERMEDIATES {
        let file = applied.ca_cert_file(id);
        let certs = pem_certificates(&fs::read(&file).expect("read an intermediate"));
        p.check(certs.len() == 1, || format!("{id}: its file holds {} certificates, not one", certs.len()));
        let info = parse_cert_der(&file, &certs[0]);
        p.check(info.issuer == root.subject, || format!("{id} is issued by {}, not the root", info.issuer));
        p.check(info.aki.is_some() && info.aki == root.ski, || format!("{id}: its AKI is not the root's SKI"));
        p.check(text(&file).contains("CA:TRUE, pathlen:0"), || format!("{id} is not `CA:TRUE, pathlen:0`"));
        if let Err(e) = openssl_verify(&root_file, &file, "any", false) {
            p.add(format!("{id} does not verify under the root: {e}"));
        }
    }
    // Components trust their intermediate alone: a leaf of one does not
    // verify where another is trusted.
    for Leaf { id, path, issuer, purposes, .. } in leaves(&applied) {
        let Some(purpose) = purposes.first() else { continue };
        for anchor in INTERMEDIATES {
            let result = openssl_verify(&applied.ca_cert_file(anchor), &path, purpose, true);
            if *anchor == issuer {
                if let Err(e) = result {
                    p.add(format!("{id} does not verify against its own intermediate's file: {e}"));
                }
            } else {
                p.check(result.is_err(), || format!("{id} (of {issuer}) verifies against {anchor}'s trust file"));
            }
        }
    }
    p.finish();
}

#[test]
fn an_offline_root_is_needed_only_to_sign_intermediates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = fs::read_to_string(plan_path("hierarchy")).expect("read the plan");
    let plan = write_plan(dir.path(), &source);
    let out = dir.path().join("out");
    let run = |args: &[&str]| {
        let mut command = certplan();
        command.arg(args[0]).arg(&plan).arg("--out").arg(&out).args(&args[1..]);
        command.output().expect("run certplan")
    };
    let applied = run(&["apply"]);
    assert!(applied.status.success(), "{}", describe(&applied));
    let root_key = out.join("cluster/pki/root-ca.key");
    let key = fs::read(&root_key).expect("the root key is in the tree after the first apply");
    fs::remove_file(&root_key).expect("take the root key offline");

    let planned = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(planned.status.code(), Some(0), "a tree without its offline root key:\n{}", describe(&planned));
    let verified = run(&["verify"]);
    assert!(verified.status.success(), "verify without the offline root key:\n{}", describe(&verified));

    // A new SAN: the kubernetes intermediate signs, the root need not.
    let with_san = source.replace("[sets.apiserver]\n", "[sets.apiserver]\nextra_sans = [\"api.example.net\"]\n");
    fs::write(&plan, &with_san).expect("edit the plan");
    let applied = run(&["apply"]);
    assert!(applied.status.success(), "an apply the intermediate signs:\n{}", describe(&applied));
    assert!(!root_key.exists(), "apply put a root key back");

    // A new key for the intermediate: the root must sign it, and its key is
    // away, so the intermediate becomes a request to it (key and CSR with
    // the CA extensions) and everything it signs waits.
    let intermediate = out.join("cluster/pki/ca.crt");
    let before = fs::read(&intermediate).expect("the kubernetes intermediate");
    let requested = run(&["apply", "--rotate", "ca/kubernetes"]);
    let stdout = String::from_utf8_lossy(&requested.stdout).into_owned();
    assert!(requested.status.success(), "{}", describe(&requested));
    assert!(stdout.contains("request ca/kubernetes") && stdout.contains("`ca/root` must sign it"), "{stdout}");
    assert!(stdout.contains("wait cert/apiserver"), "the intermediate's leaves do not wait:\n{stdout}");
    assert_eq!(fs::read(&intermediate).expect("read"), before, "the intermediate changed before it was signed");
    let request = out.join("requests/ca/kubernetes.csr");
    let shown = Command::new("openssl").args(["req", "-noout", "-text", "-verify", "-in"]).arg(&request).output();
    let shown = String::from_utf8_lossy(&shown.expect("openssl req").stdout).into_owned();
    assert!(shown.contains("CA:TRUE, pathlen:0") && shown.contains("Certificate Sign"), "{shown}");

    // The root signs it offline (here: openssl with the key kept aside).
    let root_key_aside = dir.path().join("root-ca.key");
    fs::write(&root_key_aside, &key).expect("keep the root key aside");
    let signed = out.join("requests/ca/kubernetes.crt");
    let status = Command::new("openssl")
        .args(["x509", "-req", "-days", "3650", "-set_serial", "77", "-copy_extensions", "copyall", "-in"])
        .arg(&request)
        .arg("-CA")
        .arg(out.join("cluster/pki/root-ca.crt"))
        .arg("-CAkey")
        .arg(&root_key_aside)
        .arg("-out")
        .arg(&signed)
        .status()
        .expect("run openssl x509 -req");
    assert!(status.success(), "openssl could not sign the intermediate's request");
    let applied = run(&["apply"]);
    let stdout = String::from_utf8_lossy(&applied.stdout).into_owned();
    assert!(applied.status.success(), "{}", describe(&applied));
    assert!(stdout.contains("reissue ca/kubernetes") && stdout.contains("reissue cert/apiserver"), "{stdout}");
    assert!(!root_key.exists(), "apply put a root key back");
    let settled = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(settled.status.code(), Some(0), "{}", describe(&settled));
    let verified = run(&["verify"]);
    assert!(verified.status.success(), "{}", describe(&verified));
    let mut p = Problems::new("leaves under an intermediate the offline root signed");
    let root_file = out.join("cluster/pki/root-ca.crt");
    let doc = crate::common::inspect(&plan, &out);
    for artifact in doc["artifacts"].as_array().expect("artifacts").iter().filter(|a| a["issuer"] == "ca/kubernetes") {
        let Some(path) = crate::common::applied::files_of_role(artifact, "cert").into_iter().next() else { continue };
        if artifact["kind"] != "cert" {
            continue;
        }
        if let Err(e) = openssl_verify(&root_file, &out.join(path), "any", false) {
            p.add(format!("{}: {e}", artifact["id"]));
        }
    }
    p.finish();

    // The root's own renewal needs its key: refused, naming where it goes.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(15 * 365))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a date");
    let before = snapshot(&out);
    let refused = run(&["apply", "--now", &later]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(
        stderr.contains("`ca/root`") && stderr.contains("cluster/pki/root-ca.key") && stderr.contains("offline"),
        "the refusal does not name the root and where its key goes:\n{stderr}"
    );
    assert_eq!(before, snapshot(&out), "a refused apply changed the tree");
}
