//! `openssl verify -x509_strict` accepts every certificate certplan writes,
//! for the purposes it is issued for, against its own CA, and refuses it
//! against any other CA.

use std::path::Path;
use std::process::Command;

use crate::common::applied::{Applied, apply_example};
use crate::common::cert::{read_cert, required_ekus};
use crate::common::problems::Problems;

/// Runs `openssl verify -x509_strict [-purpose P] -CAfile CA CERT`.
fn openssl_verify(ca: &Path, cert: &Path, purpose: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-x509_strict"]);
    if let Some(purpose) = purpose {
        cmd.args(["-purpose", purpose]);
    }
    let output = cmd.arg("-CAfile").arg(ca).arg(cert).output().expect("run openssl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() && stdout.contains(": OK") {
        Ok(())
    } else {
        Err(format!("{} {}", stdout.trim(), stderr.trim()).trim().to_string())
    }
}

fn command_line(ca: &Path, cert: &Path, purpose: Option<&str>) -> String {
    let purpose = purpose.map(|p| format!(" -purpose {p}")).unwrap_or_default();
    format!("openssl verify -x509_strict{purpose} -CAfile {} {}", ca.display(), cert.display())
}

/// The purposes a leaf must pass: those its set is issued for, and every one
/// its extendedKeyUsage names.
fn purposes(set: &str, cert: &Path) -> Vec<&'static str> {
    let info = read_cert(cert);
    let mut out = Vec::new();
    let needs = required_ekus(set);
    if needs.contains(&"serverAuth") || info.has_eku("serverAuth") {
        out.push("sslserver");
    }
    if needs.contains(&"clientAuth") || info.has_eku("clientAuth") {
        out.push("sslclient");
    }
    out
}

/// Every file of every certificate verifies against its issuer for its
/// purposes; every CA verifies as a strict self-signed root.
fn check_all_verify(applied: &Applied, p: &mut Problems) {
    let mut leaves = 0;
    for a in applied.of_kind("ca") {
        let id = a["id"].as_str().unwrap_or("?");
        for cert in applied.files(a, "cert") {
            if let Err(e) = openssl_verify(&cert, &cert, None) {
                p.add(format!(
                    "{id}: the CA does not verify as a strict root: `{}` says: {e}",
                    command_line(&cert, &cert, None)
                ));
            }
        }
    }
    for a in applied.of_kind("cert") {
        let id = a["id"].as_str().unwrap_or("?");
        let set = a["set"].as_str().unwrap_or("");
        let Some(issuer) = a["issuer"].as_str() else {
            p.add(format!("{id}: inspect gives no issuer"));
            continue;
        };
        let ca = applied.ca_cert_file(issuer);
        for cert in applied.files(a, "cert") {
            leaves += 1;
            let wanted = purposes(set, &cert);
            p.check(!wanted.is_empty(), || {
                format!("{id}: serves no TLS purpose (set {set:?}, no serverAuth/clientAuth)")
            });
            for purpose in wanted {
                if let Err(e) = openssl_verify(&ca, &cert, Some(purpose)) {
                    p.add(format!("{id} (set {set}) fails `{}`: {e}", command_line(&ca, &cert, Some(purpose))));
                }
            }
            // A client-only certificate must not pass as a server.
            if required_ekus(set) == ["clientAuth"] {
                p.check(openssl_verify(&ca, &cert, Some("sslserver")).is_err(), || {
                    format!(
                        "{id} (set {set}) is a client certificate but `{}` accepts it as a TLS server",
                        command_line(&ca, &cert, Some("sslserver"))
                    )
                });
            }
        }
    }
    p.check(leaves > 0, || "inspect lists no leaf certificates at all".to_string());
}

/// Every leaf for which `refuse(id)` is true fails against `wrong_ca`.
fn check_refused(applied: &Applied, wrong_ca: &Path, why: &str, refuse: impl Fn(&str) -> bool, p: &mut Problems) {
    let mut tried = 0;
    for a in applied.of_kind("cert") {
        let id = a["id"].as_str().unwrap_or("?");
        if !refuse(id) {
            continue;
        }
        let set = a["set"].as_str().unwrap_or("");
        for cert in applied.files(a, "cert") {
            tried += 1;
            for purpose in purposes(set, &cert) {
                p.check(openssl_verify(wrong_ca, &cert, Some(purpose)).is_err(), || {
                    format!("{id} verifies against {why}: `{}` says OK", command_line(wrong_ca, &cert, Some(purpose)))
                });
            }
        }
    }
    p.check(tried > 0, || format!("no certificate to try against {why}"));
}

#[test]
fn classic_every_certificate_verifies_strictly() {
    let applied = apply_example("classic");
    let mut p = Problems::new("openssl verify on the classic plan's tree");
    check_all_verify(&applied, &mut p);
    p.finish();
}

#[test]
fn classic_certificates_fail_against_the_ca_of_another_apply() {
    let applied = apply_example("classic");
    let other = apply_example("classic");
    let other_ca = other.ca_cert_file("ca/kubernetes");
    let mut p =
        Problems::new("openssl verify of classic certificates against a second apply's CA (same name, other key)");
    check_refused(&applied, &other_ca, "the CA of a second, independent apply", |_| true, &mut p);
    p.finish();
}

#[test]
fn kubeadm_every_certificate_verifies_strictly() {
    let applied = apply_example("kubeadm");
    let mut p = Problems::new("openssl verify on the kubeadm plan's tree");
    check_all_verify(&applied, &mut p);
    p.finish();
}

#[test]
fn kubeadm_etcd_and_cluster_certificates_do_not_cross_cas() {
    let applied = apply_example("kubeadm");
    let mut p = Problems::new("openssl verify across the kubeadm plan's three CAs");
    let is_etcd = |id: &str| {
        id.starts_with("cert/etcd-server/") || id.starts_with("cert/etcd-peer/") || id == "cert/apiserver-etcd-client"
    };
    let cluster_ca = applied.ca_cert_file("ca/kubernetes");
    let etcd_ca = applied.ca_cert_file("ca/etcd");
    let front_proxy_ca = applied.ca_cert_file("ca/front-proxy");
    check_refused(&applied, &cluster_ca, "the cluster CA", is_etcd, &mut p);
    check_refused(&applied, &front_proxy_ca, "the front-proxy CA", is_etcd, &mut p);
    check_refused(&applied, &etcd_ca, "the etcd CA", |id| !is_etcd(id), &mut p);
    p.finish();
}

#[test]
fn minimal_every_certificate_verifies_strictly() {
    let applied = apply_example("minimal");
    let mut p = Problems::new("openssl verify on the minimal plan's tree");
    check_all_verify(&applied, &mut p);
    p.finish();
}

#[test]
fn dual_stack_every_certificate_verifies_strictly() {
    let applied = apply_example("dual-stack");
    let mut p = Problems::new("openssl verify on the dual-stack plan's tree");
    check_all_verify(&applied, &mut p);
    p.finish();
}
