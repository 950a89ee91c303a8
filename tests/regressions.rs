//! Regression tests for defects found with checkers certplan did not write
//! (issue 14), each named after the defect and checked as a user would meet
//! it: through the binary, read back with OpenSSL.

use std::path::Path;
use std::process::Command;

use crate::common::{artifact, certplan, file_of, inspect, plan_path, plan_with_key, write_plan};

/// `openssl` with its output, or a panic naming the command.
fn openssl(args: &[&str], file: &Path) -> String {
    let output = Command::new("openssl").args(args).arg(file).output().expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {} {} failed: {}",
        args.join(" "),
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn apply_in(dir: &Path, plan: &Path) -> std::path::PathBuf {
    let out = dir.join("out");
    let output = certplan().arg("apply").arg(plan).arg("--out").arg(&out).output().expect("run certplan");
    assert!(output.status.success(), "apply failed: {}", String::from_utf8_lossy(&output.stderr));
    out
}

/// RFC 5280: countryName is a `PrintableString`; it was a `UTF8String`.
#[test]
fn country_is_a_printable_string_in_subject_and_issuer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = plan_path("classic");
    let out = apply_in(dir.path(), &plan);
    let doc = inspect(&plan, &out);
    let cert = file_of(&out, artifact(&doc, "cert/apiserver"), "cert", None);
    let text = openssl(&["x509", "-noout", "-subject", "-issuer", "-nameopt", "multiline,show_type", "-in"], &cert);
    let countries: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("countryName")).collect();
    assert_eq!(countries.len(), 2, "subject and issuer each carry C:\n{text}");
    for line in countries {
        assert!(line.contains("PRINTABLESTRING:CN"), "countryName must be a PrintableString: {line}");
    }
}

/// OpenSSL 3.0 refused Ed25519 keys written as PKCS#8 v2 (`unsupported`).
#[test]
fn ed25519_keys_are_read_by_openssl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(dir.path(), &plan_with_key("minimal", "ed25519"));
    let out = apply_in(dir.path(), &plan);
    let doc = inspect(&plan, &out);
    let ca = artifact(&doc, "ca/lab");
    let key = file_of(&out, ca, "key", None);
    openssl(&["pkey", "-noout", "-in"], &key);
    let from_key = openssl(&["pkey", "-pubout", "-in"], &key);
    let from_cert = openssl(&["x509", "-noout", "-pubkey", "-in"], &file_of(&out, ca, "cert", None));
    assert_eq!(from_key, from_cert, "the CA key does not match its certificate");
}

/// A dual-stack service range was refused as "not a CIDR".
#[test]
fn dual_stack_ranges_reach_the_flags_and_ipv6_urls_are_bracketed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = plan_path("dual-stack");
    let out = apply_in(dir.path(), &plan);
    let env = std::fs::read_to_string(out.join("hosts/cp1/etc/kubernetes/kube-apiserver.env")).expect("read env");
    for flag in [
        "--service-cluster-ip-range=10.96.0.0/12,fd00:10:96::/112",
        "--advertise-address=fd00:10::11",
        "--etcd-servers=https://[fd00:10::11]:2379,https://[fd00:10::12]:2379,https://[fd00:10::13]:2379",
    ] {
        assert!(env.contains(flag), "kube-apiserver.env lacks {flag}:\n{env}");
    }
    let etcd = std::fs::read_to_string(out.join("hosts/cp2/etc/kubernetes/etcd.env")).expect("read env");
    for flag in [
        "--listen-client-urls=https://[fd00:10::12]:2379,https://[::1]:2379",
        "--listen-peer-urls=https://[fd00:10::12]:2380",
    ] {
        assert!(etcd.contains(flag), "etcd.env lacks {flag}:\n{etcd}");
    }
    let doc = inspect(&plan, &out);
    let apiserver = file_of(&out, artifact(&doc, "cert/apiserver"), "cert", Some("cp1"));
    let sans = openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in"], &apiserver);
    for ip in ["IP Address:10.96.0.1", "IP Address:FD00:10:0:0:0:0:0:100", "IP Address:0:0:0:0:0:0:0:1"] {
        assert!(sans.contains(ip), "the API server certificate lacks {ip}:\n{sans}");
    }
    assert!(!sans.contains("FD00:10:96:0:0:0:0:1"), "only the primary range's first address is a SAN:\n{sans}");
}

/// A validity past the year 9999 became a certificate that expired as it
/// was issued; now it is an error and nothing is written.
#[test]
fn a_validity_past_the_year_9999_is_refused_with_nothing_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let output = certplan()
        .arg("apply")
        .arg(plan_path("minimal"))
        .arg("--out")
        .arg(&out)
        .args(["--now", "9995-01-01T00:00:00Z"])
        .output()
        .expect("run certplan");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("year 9999"), "the error should say why: {stderr}");
    let written: Vec<_> = walk(&out).into_iter().filter(|p| !p.contains(".certplan")).collect();
    assert!(written.is_empty(), "nothing may be written, found {written:?}");
}

fn walk(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() { walk(&path) } else { vec![path.display().to_string()] }
        })
        .collect()
}
