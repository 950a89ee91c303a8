//! A CA certplan does not hold (issue 17): `[cas.NAME] external = { cert =
//! "…" }` names only its certificate. `apply` writes each certificate it
//! must sign as a key and a request (`requests/ID.csr`, and
//! `requests/index.json` saying what each certificate must hold), and
//! what depends on them waits. The operator signs with any tool — here
//! `openssl x509 -req -copy_extensions copyall`, which copies what each
//! request asks for — and drops `ID.crt` beside the request; the next
//! `apply` checks each against the plan before placing it. The result is
//! checked by openssl and rustls, not by certplan's own reading; a signed
//! certificate with a SAN missing, the wrong EKU or for another key is
//! refused with nothing written. In its renewal window a certificate is
//! requested again for the same key and serves until the renewal is signed;
//! a new key (`--rotate`) waits beside its request, so the key in place
//! keeps matching the certificate in place.
//! The real etcd cluster test runs on such a tree too
//! (`etcd_cluster::kubeadm_external_etcd_ca_three_members`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::external::{ExternalCa, make_ca, openssl, requests, sign, sign_all, with_external};
use crate::common::problems::Problems;
use crate::common::snapshot::snapshot;
use crate::common::{certplan, describe, inspect, plan_path, without_entries, write_plan};

/// A plan of one control plane and one worker in kubeadm's shape whose
/// etcd CA is external, applied once: requests are waiting.
struct Pending {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    plan: PathBuf,
    out: PathBuf,
    ca: ExternalCa,
}

impl Pending {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let ca = make_ca(&dir, "security-team-etcd-ca", "etcd-ca");
        let source = fs::read_to_string(plan_path("kubeadm")).expect("read the plan");
        let source = without_entries(&source, "hosts", &["cp2", "cp3", "worker2"]);
        let plan = write_plan(&dir, &with_external(&source, "etcd", "security-team-etcd-ca.crt"));
        let out = dir.join("out");
        let pending = Self { _tmp: tmp, dir, plan, out, ca };
        let first = pending.run("apply", &[]);
        assert!(first.status.success(), "the first apply:\n{}", describe(&first));
        pending
    }

    fn run(&self, sub: &str, extra: &[&str]) -> Output {
        certplan().arg(sub).arg(&self.plan).arg("--out").arg(&self.out).args(extra).output().expect("run certplan")
    }

    /// The ids the external CA signs, from inspect.
    fn external_leaves(&self) -> Vec<String> {
        let doc = inspect(&self.plan, &self.out);
        doc["artifacts"]
            .as_array()
            .expect("artifacts")
            .iter()
            .filter(|a| a["kind"] == "cert" && a["issuer"] == "ca/etcd")
            .filter_map(|a| a["id"].as_str().map(str::to_string))
            .collect()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The first certificate of a PEM file, as DER.
fn first_der(path: &Path) -> Vec<u8> {
    crate::common::cert::pem_certificates(&fs::read(path).expect("read a certificate")).remove(0)
}

#[test]
fn requests_signed_with_openssl_complete_the_tree() {
    let pending = Pending::new();
    let out = &pending.out;
    let leaves = pending.external_leaves();
    assert!(leaves.len() >= 3, "the external etcd CA signs {leaves:?}");
    let mut p = Problems::new("requests of an external etcd CA");

    // What the first apply left: a key and a request per certificate, an index, no certificate.
    let index: Value =
        serde_json::from_slice(&fs::read(out.join("requests/index.json")).expect("requests/index.json")).expect("JSON");
    let listed: Vec<&str> =
        index["requests"].as_array().expect("requests").iter().filter_map(|r| r["id"].as_str()).collect();
    for id in &leaves {
        let request = out.join(format!("requests/{id}.csr"));
        p.check(request.is_file(), || format!("{id}: no request at {}", request.display()));
        p.check(listed.contains(&id.as_str()), || format!("{id} is not in requests/index.json"));
    }
    let doc = inspect(&pending.plan, out);
    for artifact in doc["artifacts"].as_array().expect("artifacts") {
        let Some(id) = artifact["id"].as_str().filter(|id| leaves.iter().any(|l| l == id)) else { continue };
        for file in artifact["files"].as_array().expect("files") {
            let path = out.join(file["path"].as_str().expect("path"));
            if file["role"] == "key" {
                p.check(path.is_file(), || format!("{id}: its key {} is not written", path.display()));
            } else if file["role"] == "cert" {
                p.check(!path.exists(), || format!("{id}: a certificate {} before signing", path.display()));
            }
        }
    }
    // Each request is well-formed and carries its extensions (openssl's reading).
    for request in requests(out) {
        let output = std::process::Command::new("openssl")
            .args(["req", "-noout", "-verify", "-text", "-in"])
            .arg(&request)
            .output()
            .expect("run openssl req");
        let shown = text(&output.stdout);
        p.check(output.status.success(), || format!("{}: openssl req -verify fails", request.display()));
        // Server certificates ask for their names; every one for its usages.
        let server =
            request.to_string_lossy().contains("etcd-server") || request.to_string_lossy().contains("etcd-peer");
        let wanted: &[&str] = if server {
            &["Requested Extensions", "Subject Alternative Name", "Extended Key Usage", "Key Usage"]
        } else {
            &["Requested Extensions", "Extended Key Usage", "Key Usage"]
        };
        for extension in wanted {
            p.check(shown.contains(extension), || format!("{}: the request has no {extension}", request.display()));
        }
    }
    p.finish();

    let plan = pending.run("plan", &["--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "requests waiting are changes:\n{}", describe(&plan));
    assert!(text(&plan.stdout).contains("request cert/etcd-server/cp1"), "{}", describe(&plan));
    // Applying again while nobody signed changes no file.
    let before = snapshot(out);
    let again = pending.run("apply", &[]);
    assert!(again.status.success(), "{}", describe(&again));
    let after = snapshot(out);
    let moved: Vec<&String> =
        after.keys().filter(|k| !k.starts_with(".certplan") && before.get(*k) != after.get(*k)).collect();
    assert!(moved.is_empty(), "an apply with nothing signed changed {moved:?}");

    // The CA signs; the next apply completes the tree.
    assert_eq!(sign_all(&pending.ca, out), leaves.len(), "one request per certificate of the external CA");
    let done = pending.run("apply", &[]);
    assert!(done.status.success(), "{}", describe(&done));
    assert!(text(&done.stdout).contains("create cert/etcd-server/cp1"), "{}", describe(&done));
    let settled = pending.run("plan", &["--detailed-exitcode"]);
    assert_eq!(settled.status.code(), Some(0), "{}", describe(&settled));
    assert!(requests(out).is_empty() && !out.join("requests/index.json").exists(), "requests left after signing");
    let verified = pending.run("verify", &[]);
    assert!(verified.status.success(), "{}", describe(&verified));

    // Checked by others: the tree's etcd CA is the external one, and every
    // leaf verifies against it with openssl and rustls.
    let mut p = Problems::new("a tree completed by an external etcd CA");
    let doc = inspect(&pending.plan, out);
    let ca_file = out.join("cluster/pki/etcd/ca.crt");
    p.check(first_der(&ca_file) == first_der(&pending.ca.cert), || "the tree's etcd CA is not the external one".into());
    let anchors = vec![first_der(&pending.ca.cert)];
    for artifact in doc["artifacts"].as_array().expect("artifacts") {
        let Some(id) = artifact["id"].as_str().filter(|id| leaves.iter().any(|l| l == id)) else { continue };
        let Some(cert) = artifact["files"]
            .as_array()
            .and_then(|files| files.iter().find(|f| f["role"] == "cert"))
            .and_then(|f| f["path"].as_str())
        else {
            p.add(format!("{id}: no certificate file"));
            continue;
        };
        let cert = out.join(cert);
        let chain = crate::common::cert::pem_certificates(&fs::read(&cert).expect("read"));
        let info = crate::common::cert::parse_cert_der(&cert, &chain[0]);
        for (eku, purpose) in [("serverAuth", "sslserver"), ("clientAuth", "sslclient")] {
            if !info.has_eku(eku) {
                continue;
            }
            let output = std::process::Command::new("openssl")
                .args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"])
                .arg(&ca_file)
                .arg(&cert)
                .output()
                .expect("run openssl verify");
            p.check(output.status.success(), || {
                format!("{id}: openssl verify -purpose {purpose}: {}", text(&output.stderr))
            });
            if let Err(e) = crate::hierarchy::rustls_verify(&anchors, &chain, purpose) {
                p.add(format!("{id}: rustls ({purpose}): {e}"));
            }
        }
    }
    p.finish();

    // Renewal: 300 days on, inside the renewal window, each certificate gets
    // a new request for the same key and keeps serving until it is signed.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(300))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a date");
    let server_cert = out.join("hosts/cp1/etc/kubernetes/pki/etcd/server.crt");
    let server_key = out.join("hosts/cp1/etc/kubernetes/pki/etcd/server.key");
    let (cert_before, key_before) = (fs::read(&server_cert).expect("cert"), fs::read(&server_key).expect("key"));
    let due = pending.run("apply", &["--now", &later]);
    assert!(due.status.success(), "{}", describe(&due));
    assert!(text(&due.stdout).contains("request cert/etcd-server/cp1: expires in"), "{}", describe(&due));
    assert_eq!(
        fs::read(&server_cert).expect("cert"),
        cert_before,
        "the certificate changed before the renewal was signed"
    );
    assert_eq!(requests(out).len(), leaves.len(), "one renewal request per certificate");
    // While they wait, nothing else changes: no kubeconfig, no flag file.
    let waiting = pending.run("plan", &["--now", &later]);
    let stdout = text(&waiting.stdout);
    let changed: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            let verb = l.split_whitespace().next().unwrap_or_default();
            ["create", "reissue", "renew", "rewrite", "wait"].contains(&verb) && l.contains(": ")
        })
        .collect();
    assert!(changed.is_empty(), "renewals waiting for a signature change other things: {changed:?}");
    for (n, request) in requests(out).iter().enumerate() {
        // Two years: the renewed certificate is not due again at `later`.
        sign(&pending.ca, request, 2000 + u32::try_from(n).expect("few requests"), 730);
    }
    let renewed = pending.run("apply", &["--now", &later]);
    assert!(renewed.status.success(), "{}", describe(&renewed));
    assert!(text(&renewed.stdout).contains("renew cert/etcd-server/cp1"), "{}", describe(&renewed));
    assert_ne!(fs::read(&server_cert).expect("cert"), cert_before, "the renewed certificate is not in place");
    assert_eq!(fs::read(&server_key).expect("key"), key_before, "renewal changed the key");
    let settled = pending.run("plan", &["--detailed-exitcode", "--now", &later]);
    assert_eq!(settled.status.code(), Some(0), "{}", describe(&settled));
    drop(pending.dir);
}

#[test]
fn a_signed_certificate_that_is_not_what_was_asked_is_refused() {
    let pending = Pending::new();
    let out = &pending.out;
    let id = "cert/etcd-server/cp1";
    let request = out.join(format!("requests/{id}.csr"));
    let signed = out.join(format!("requests/{id}.crt"));
    let (ca_cert, ca_key) = (pending.ca.cert.to_str().expect("UTF-8"), pending.ca.key.to_str().expect("UTF-8"));
    let sign_with = |csr: &Path, extensions: &str| {
        let extfile = pending.dir.join("ext.cnf");
        fs::write(&extfile, format!("[x]\n{extensions}\n")).expect("write the extensions");
        openssl(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().expect("UTF-8"),
            "-CA",
            ca_cert,
            "-CAkey",
            ca_key,
            "-set_serial",
            "7",
            "-days",
            "365",
            "-extfile",
            extfile.to_str().expect("UTF-8"),
            "-extensions",
            "x",
            "-out",
            signed.to_str().expect("UTF-8"),
        ]);
    };
    let doc = inspect(&pending.plan, out);
    let artifact =
        doc["artifacts"].as_array().expect("artifacts").iter().find(|a| a["id"] == id).expect("the etcd server");
    let names = |field: &str, prefix: &str| -> Vec<String> {
        artifact["sans"][field]
            .as_array()
            .map(|v| v.iter().filter_map(|s| s.as_str()).map(|s| format!("{prefix}:{s}")).collect())
            .unwrap_or_default()
    };
    let mut sans = names("dns", "DNS");
    sans.extend(names("ip", "IP"));
    assert!(sans.len() >= 2, "{id} has SANs {sans:?} (inspect: {artifact})");
    let usage = "keyUsage=critical,digitalSignature";
    let missing = sans.pop().expect("a SAN to leave out");
    let other_key = pending.dir.join("other.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        other_key.to_str().expect("UTF-8"),
    ]);
    let other_csr = pending.dir.join("other.csr");
    openssl(&[
        "req",
        "-new",
        "-key",
        other_key.to_str().expect("UTF-8"),
        "-subj",
        "/CN=cp1",
        "-out",
        other_csr.to_str().expect("UTF-8"),
    ]);
    let all_sans = {
        let mut all = sans.clone();
        all.push(missing.clone());
        all.join(",")
    };
    let cases: [(&str, &Path, String, String); 3] = [
        (
            "a SAN missing",
            &request,
            format!("subjectAltName={}\n{usage}\nextendedKeyUsage=serverAuth,clientAuth", sans.join(",")),
            missing.split_once(':').map(|(_, name)| name.to_string()).expect("a SAN"),
        ),
        (
            "the wrong EKU",
            &request,
            format!("subjectAltName={all_sans}\n{usage}\nextendedKeyUsage=clientAuth"),
            "serverAuth".into(),
        ),
        (
            "another key",
            &other_csr,
            format!("subjectAltName={all_sans}\n{usage}\nextendedKeyUsage=serverAuth,clientAuth"),
            "key".into(),
        ),
    ];
    let mut p = Problems::new("signed certificates that are not what the request asked for");
    for (what, csr, extensions, named) in &cases {
        sign_with(csr, extensions);
        let before = snapshot(out);
        let refused = pending.run("apply", &[]);
        let stderr = text(&refused.stderr);
        p.check(refused.status.code() == Some(1), || format!("{what}: not refused:\n{}", describe(&refused)));
        p.check(stderr.contains(&format!("requests/{id}.crt")) && stderr.contains(named.as_str()), || {
            format!("{what}: the refusal does not name the file and `{named}`:\n{stderr}")
        });
        p.check(before == snapshot(out), || format!("{what}: a refused apply changed the tree"));
        fs::remove_file(&signed).expect("take the bad certificate away");
    }
    // Signed as asked, for 30 days only (a signer's own limit), it is taken,
    // and its renewal window is a third of the life it was given, not of
    // the plan's year: nothing to do for it right after.
    sign(&pending.ca, &request, 8, 30);
    let taken = pending.run("apply", &[]);
    p.check(taken.status.success() && text(&taken.stdout).contains(&format!("create {id}")), || {
        format!("the certificate signed as asked is not taken:\n{}", describe(&taken))
    });
    let after = pending.run("plan", &[]);
    p.check(!text(&after.stdout).contains(id), || {
        format!("a 30-day certificate is due at once:\n{}", describe(&after))
    });
    p.finish();

    // A new key (`--rotate`) waits beside its request: the certificate and
    // key in place keep belonging together until the new one is signed.
    let cert = out.join("hosts/cp1/etc/kubernetes/pki/etcd/server.crt");
    let key = out.join("hosts/cp1/etc/kubernetes/pki/etcd/server.key");
    let waiting = out.join(format!("requests/{id}.key"));
    let (cert_before, key_before) = (fs::read(&cert).expect("cert"), fs::read(&key).expect("key"));
    let rekey = pending.run("apply", &["--rotate", id]);
    assert!(rekey.status.success() && text(&rekey.stdout).contains(&format!("request {id}")), "{}", describe(&rekey));
    assert_eq!((fs::read(&cert).expect("cert"), fs::read(&key).expect("key")), (cert_before, key_before.clone()));
    let mode = fs::metadata(&waiting).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "the waiting key {} is not 0600", waiting.display());
    let public_of = |args: &[&str]| {
        let output = std::process::Command::new("openssl").args(args).output().expect("run openssl");
        text(&output.stdout)
    };
    let cert_public = public_of(&["x509", "-noout", "-pubkey", "-in", cert.to_str().expect("UTF-8")]);
    assert_eq!(
        cert_public,
        public_of(&["pkey", "-pubout", "-in", key.to_str().expect("UTF-8")]),
        "key and certificate part"
    );
    let new_key = fs::read(&waiting).expect("the waiting key");
    sign(&pending.ca, &request, 9, 365);
    let rekeyed = pending.run("apply", &[]);
    assert!(
        rekeyed.status.success() && text(&rekeyed.stdout).contains(&format!("reissue {id}")),
        "{}",
        describe(&rekeyed)
    );
    assert_eq!(fs::read(&key).expect("key"), new_key, "the new key is not in place");
    assert!(!waiting.exists() && !request.exists(), "the request and its key are left behind");
    let cert_public = public_of(&["x509", "-noout", "-pubkey", "-in", cert.to_str().expect("UTF-8")]);
    assert_eq!(
        cert_public,
        public_of(&["pkey", "-pubout", "-in", key.to_str().expect("UTF-8")]),
        "new key and certificate part"
    );
    // The other requests of this tree were never signed: only they are left.
    let settled = pending.run("plan", &[]);
    assert!(!text(&settled.stdout).contains(id), "{id} still has a change:\n{}", describe(&settled));
}

/// A certificate that leaves the plan while its request is outstanding
/// takes the request with it.
#[test]
fn a_request_leaves_with_its_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    make_ca(tmp.path(), "etcd-ca", "etcd-ca");
    let source = fs::read_to_string(plan_path("kubeadm")).expect("read the plan");
    let two = with_external(&without_entries(&source, "hosts", &["cp3", "worker2"]), "etcd", "etcd-ca.crt");
    let plan = write_plan(tmp.path(), &two);
    let out = tmp.path().join("out");
    let run = || certplan().arg("apply").arg(&plan).arg("--out").arg(&out).output().expect("run certplan");
    let first = run();
    assert!(first.status.success(), "{}", describe(&first));
    let request = out.join("requests/cert/etcd-server/cp2.csr");
    assert!(request.is_file(), "no request for cp2's etcd server");
    fs::write(
        &plan,
        with_external(&without_entries(&source, "hosts", &["cp2", "cp3", "worker2"]), "etcd", "etcd-ca.crt"),
    )
    .expect("drop cp2");
    let second = run();
    assert!(second.status.success(), "{}", describe(&second));
    assert!(!request.exists(), "the request of a certificate no longer in the plan is left behind");
    assert!(out.join("requests/cert/etcd-server/cp1.csr").is_file(), "cp1's request went too");
}
