//! The structure of the PKI that `certplan apply` writes, read back from the
//! files themselves: who each certificate names (CN, O, SANs, derived from the
//! plan's rules and written out by hand below), the X.509 profile of CAs and
//! leaves, keys that match their certificates, file names and modes, workers
//! without CA keys, kubeconfigs and token.csv.
//!
//! Every check collects what is wrong into a list, so one failing run shows a
//! user everything that is wrong with a tree, not just the first thing.
//!
//! Applying a plan and reading it back (`common::applied`), parsing a
//! certificate (`common::cert`) and the list of problems (`common::problems`)
//! are shared with `tls_handshake`, `openssl_verify` and
//! `independent_checkers`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::Value;
use sha2::Digest as _;

use crate::common::applied::{Applied, apply_example, apply_source, artifacts, files_of_role};
use crate::common::cert::{CertInfo, KeyKind, parse_cert_der, pem_certificates, read_cert, required_ekus};
use crate::common::problems::Problems;
use crate::common::{certplan, inspect, plan_path, plan_with_key};

// ---------------------------------------------------------------------------
// support
// ---------------------------------------------------------------------------

/// The host a relative output path belongs to (`hosts/<host>/...`).
fn host_of_path(rel: &str) -> Option<&str> {
    rel.strip_prefix("hosts/").and_then(|r| r.split('/').next())
}

/// The DER `SubjectPublicKeyInfo` of a PEM private key, as `openssl pkey
/// -pubout` derives it.
fn public_key_of_private_pem(pem: &[u8]) -> Result<Vec<u8>, String> {
    openssl_pipe(&["pkey", "-pubout", "-outform", "DER"], pem)
}

/// The DER `SubjectPublicKeyInfo` of a PEM public key file.
fn public_key_of_public_pem(pem: &[u8]) -> Result<Vec<u8>, String> {
    openssl_pipe(&["pkey", "-pubin", "-pubout", "-outform", "DER"], pem)
}

fn openssl_pipe(args: &[&str], input: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    child.stdin.take().expect("stdin").write_all(input).map_err(|e| format!("cannot feed openssl: {e}"))?;
    let output = child.wait_with_output().map_err(|e| format!("openssl: {e}"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(format!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

// ---------------------------------------------------------------------------
// Expectations, written out by hand from the rules
// ---------------------------------------------------------------------------

/// What the rules derive from one example plan.
struct Expected {
    /// The cfssl or kubeadm file names, when the plan names a preset.
    layout: Option<Layout>,
    pki_dir: &'static str,
    config_dir: &'static str,
    /// (name, address) of every etcd host.
    etcd_hosts: &'static [(&'static str, &'static str)],
    control_plane_hosts: &'static [&'static str],
    /// Hosts that run a kubelet (role `worker`).
    kubelet_hosts: &'static [&'static str],
    /// Hosts that are only workers: they must not receive a CA key.
    worker_only_hosts: &'static [&'static str],
    apiserver_dns: &'static [&'static str],
    apiserver_ip: &'static [&'static str],
    /// (name, groups) of every user.
    users: &'static [(&'static str, &'static [&'static str])],
    token_csv: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    Cfssl,
    Kubeadm,
}

const CLASSIC: Expected = Expected {
    layout: Some(Layout::Cfssl),
    pki_dir: "etc/kubernetes/ssl",
    config_dir: "etc/kubernetes",
    etcd_hosts: &[("master1", "192.168.214.88"), ("master2", "192.168.214.89"), ("master3", "192.168.214.90")],
    control_plane_hosts: &["master1", "master2", "master3"],
    kubelet_hosts: &["node1", "node2"],
    worker_only_hosts: &["node1", "node2"],
    // kubernetes.default.svc.<cluster domain>, localhost, extra_sans DNS
    apiserver_dns: &[
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "kube-api.example.com",
    ],
    // first address of 10.254.0.0/16, the control-plane addresses, the host
    // of apiserver_url, 127.0.0.1, extra_sans IP
    apiserver_ip: &[
        "10.254.0.1",
        "192.168.214.88",
        "192.168.214.89",
        "192.168.214.90",
        "192.168.214.200",
        "127.0.0.1",
        "192.168.214.210",
    ],
    users: &[("admin", &["system:masters"])],
    token_csv: true,
};

const KUBEADM: Expected = Expected {
    layout: Some(Layout::Kubeadm),
    pki_dir: "etc/kubernetes/pki",
    config_dir: "etc/kubernetes",
    etcd_hosts: &[("cp1", "10.0.0.11"), ("cp2", "10.0.0.12"), ("cp3", "10.0.0.13")],
    control_plane_hosts: &["cp1", "cp2", "cp3"],
    kubelet_hosts: &["cp1", "cp2", "cp3", "worker1", "worker2"],
    worker_only_hosts: &["worker1", "worker2"],
    // the host of apiserver_url is a name here
    apiserver_dns: &[
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "k8s-api.prod.example.com",
    ],
    // first address of 10.96.0.0/12, the control-plane addresses, 127.0.0.1
    apiserver_ip: &["10.96.0.1", "10.0.0.11", "10.0.0.12", "10.0.0.13", "127.0.0.1"],
    users: &[("admin", &["kubeadm:cluster-admins"]), ("break-glass", &["system:masters"])],
    token_csv: false,
};

const MINIMAL: Expected = Expected {
    layout: None,
    pki_dir: "",
    config_dir: "",
    etcd_hosts: &[("solo", "10.10.0.5")],
    control_plane_hosts: &["solo"],
    kubelet_hosts: &["solo"],
    worker_only_hosts: &[],
    apiserver_dns: &[
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    ],
    // 10.10.0.5 is both the control-plane address and the apiserver_url host
    apiserver_ip: &["10.96.0.1", "10.10.0.5", "127.0.0.1"],
    users: &[("admin", &["system:masters"])],
    token_csv: false,
};

const DUAL_STACK: Expected = Expected {
    layout: Some(Layout::Kubeadm),
    pki_dir: "etc/kubernetes/pki",
    config_dir: "etc/kubernetes",
    etcd_hosts: &[("cp1", "fd00:10::11"), ("cp2", "fd00:10::12"), ("cp3", "fd00:10::13")],
    control_plane_hosts: &["cp1", "cp2", "cp3"],
    kubelet_hosts: &["node1"],
    worker_only_hosts: &["node1"],
    apiserver_dns: &[
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    ],
    // the first address of the primary (IPv4) service network only, the
    // IPv6 control-plane addresses, the IPv6 literal of apiserver_url, and
    // both loopback addresses
    apiserver_ip: &["10.96.0.1", "fd00:10::11", "fd00:10::12", "fd00:10::13", "fd00:10::100", "127.0.0.1", "::1"],
    users: &[("admin", &["kubeadm:cluster-admins"])],
    token_csv: false,
};

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn classic_rsa_tree_is_correct() {
    let applied = apply_example("classic");
    check_tree(&applied, &CLASSIC, "classic (RSA)");
}

#[test]
fn classic_ecdsa_tree_is_correct() {
    let applied = apply_source(&plan_with_key("classic", "ecdsa-p256"));
    check_tree(&applied, &CLASSIC, "classic (ecdsa-p256)");
}

#[test]
fn kubeadm_tree_is_correct() {
    let applied = apply_example("kubeadm");
    check_tree(&applied, &KUBEADM, "kubeadm");
}

#[test]
fn dual_stack_tree_is_correct() {
    let applied = apply_example("dual-stack");
    check_tree(&applied, &DUAL_STACK, "dual-stack");
}

#[test]
fn minimal_tree_is_correct() {
    let applied = apply_example("minimal");
    check_tree(&applied, &MINIMAL, "minimal");
}

/// `umask 077` and `umask 000` give the same, documented modes.
#[test]
fn modes_do_not_depend_on_umask() {
    let mut problems = Problems::new("minimal plan applied under different umasks");
    let mut runs = Vec::new();
    for umask in ["0077", "0000"] {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let out = dir.path().join("out");
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(certplan().get_program())
            .arg("apply")
            .arg(plan_path("minimal"))
            .arg("--out")
            .arg(&out)
            .output()
            .expect("run certplan under sh");
        assert!(
            output.status.success(),
            "certplan apply under umask {umask} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let doc = inspect(&plan_path("minimal"), &out);
        let mut p = Problems::new(format!("umask {umask}"));
        check_file_modes(&out, &doc, &mut p);
        check_dir_modes(&out, &mut p);
        for item in p.list {
            problems.add(format!("under umask {umask}: {item}"));
        }
        let modes: BTreeMap<String, u32> = walk_files(&out)
            .into_iter()
            .map(|f| {
                let rel = f.strip_prefix(&out).unwrap_or(&f).display().to_string();
                (rel, mode_of(&f).unwrap_or(0))
            })
            .collect();
        for (rel, mode) in &modes {
            problems.check(mode & 0o022 == 0, || {
                format!("under umask {umask}: {rel} has mode {mode:04o}, writable by others")
            });
        }
        runs.push((umask, modes));
    }
    let (a, b) = (&runs[0], &runs[1]);
    for (rel, mode_a) in &a.1 {
        if let Some(mode_b) = b.1.get(rel) {
            problems.check(mode_a == mode_b, || {
                format!("{rel} has mode {mode_a:04o} under umask {} but {mode_b:04o} under umask {}", a.0, b.0)
            });
        }
    }
    problems.finish();
}

// ---------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------

fn check_tree(applied: &Applied, expected: &Expected, what: &str) {
    let mut p = Problems::new(format!("certplan apply {what}"));
    let certs = load_certs(applied, &mut p);
    check_identities(applied, expected, &certs, &mut p);
    check_profile(applied, &certs, &mut p);
    check_keys(applied, &certs, &mut p);
    check_file_modes(&applied.out, &applied.doc, &mut p);
    check_dir_modes(&applied.out, &mut p);
    check_workers_have_no_ca_key(applied, expected, &certs, &mut p);
    check_layout(applied, expected, &mut p);
    check_kubeconfigs(applied, expected, &certs, &mut p);
    check_token_csv(applied, expected, &mut p);
    p.finish();
}

/// Every certificate of every `ca` and `cert` artifact, by artifact id (the
/// first copy), after checking that every copy on every host is the same
/// certificate.
fn load_certs(applied: &Applied, p: &mut Problems) -> BTreeMap<String, CertInfo> {
    let mut certs = BTreeMap::new();
    for a in applied.of_kind("ca").into_iter().chain(applied.of_kind("cert")) {
        let id = a["id"].as_str().unwrap_or("?").to_string();
        let files = applied.files(a, "cert");
        if files.is_empty() {
            p.add(format!("{id}: inspect lists no certificate file"));
            continue;
        }
        let mut first: Option<CertInfo> = None;
        for f in files {
            if !f.exists() {
                p.add(format!("{id}: {} is listed by inspect but does not exist", f.display()));
                continue;
            }
            let info = read_cert(&f);
            match &first {
                None => first = Some(info),
                Some(c) => p.check(c.serial == info.serial && c.spki == info.spki, || {
                    format!("{id}: the copies {} and {} are different certificates", c.path.display(), f.display())
                }),
            }
        }
        if let Some(c) = first {
            certs.insert(id, c);
        }
    }
    certs
}

fn sorted_unique<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    items.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect()
}

/// Compares a certificate's SANs with the expected ones, as sets, and flags
/// duplicates.
fn check_sans(id: &str, cert: &CertInfo, dns: &[String], ips: &[&str], p: &mut Problems) {
    let want_dns = sorted_unique(dns);
    let got_dns = sorted_unique(&cert.dns);
    p.check(want_dns == got_dns, || {
        format!(
            "{id}: DNS SANs are {got_dns:?}, the plan's rules give {want_dns:?} (missing {:?}, unexpected {:?})",
            want_dns.iter().filter(|d| !got_dns.contains(d)).collect::<Vec<_>>(),
            got_dns.iter().filter(|d| !want_dns.contains(d)).collect::<Vec<_>>()
        )
    });
    let want_ips: Vec<IpAddr> = sorted_unique(&ips.iter().map(|i| i.parse().expect("IP in test")).collect::<Vec<_>>());
    let got_ips = sorted_unique(&cert.ips);
    p.check(want_ips == got_ips, || {
        format!(
            "{id}: IP SANs are {got_ips:?}, the plan's rules give {want_ips:?} (missing {:?}, unexpected {:?})",
            want_ips.iter().filter(|d| !got_ips.contains(d)).collect::<Vec<_>>(),
            got_ips.iter().filter(|d| !want_ips.contains(d)).collect::<Vec<_>>()
        )
    });
    p.check(got_dns.len() == cert.dns.len() && got_ips.len() == cert.ips.len(), || {
        format!("{id}: the certificate lists a SAN twice: DNS {:?}, IP {:?}", cert.dns, cert.ips)
    });
}

fn check_subject(id: &str, cert: &CertInfo, cn: &str, o: Option<&[&str]>, p: &mut Problems) {
    p.check(cert.cn == [cn], || {
        format!("{id}: subject CN is {:?}, the API server would see user {:?}, expected {cn:?}", cert.cn, cert.cn)
    });
    if let Some(o) = o {
        let want = sorted_unique(&o.iter().map(std::string::ToString::to_string).collect::<Vec<_>>());
        let got = sorted_unique(&cert.o);
        p.check(want == got && got.len() == cert.o.len(), || {
            format!("{id}: subject O (the RBAC groups) is {:?}, expected exactly {want:?}", cert.o)
        });
    }
}

fn check_identities(applied: &Applied, e: &Expected, certs: &BTreeMap<String, CertInfo>, p: &mut Problems) {
    let get = |id: &str, p: &mut Problems| -> Option<CertInfo> {
        let c = certs.get(id).cloned();
        if c.is_none() {
            p.add(format!("no certificate {id} in the output tree (inspect lists none, or its file is missing)"));
        }
        c
    };

    for (host, addr) in e.etcd_hosts {
        for set in ["etcd-server", "etcd-peer"] {
            let id = format!("cert/{set}/{host}");
            if let Some(c) = get(&id, p) {
                let dns = [host.to_string(), "localhost".to_string()];
                check_sans(&id, &c, &dns, &[addr, "127.0.0.1", "::1"], p);
            }
        }
    }

    if let Some(c) = get("cert/apiserver", p) {
        let dns: Vec<String> = e.apiserver_dns.iter().map(std::string::ToString::to_string).collect();
        check_sans("cert/apiserver", &c, &dns, e.apiserver_ip, p);
    }

    for host in e.kubelet_hosts {
        let id = format!("cert/kubelet/{host}");
        if let Some(c) = get(&id, p) {
            check_subject(&id, &c, &format!("system:node:{host}"), Some(&["system:nodes"]), p);
        }
    }
    for (id, cn) in [
        ("cert/kube-proxy", "system:kube-proxy"),
        ("cert/kube-scheduler", "system:kube-scheduler"),
        ("cert/kube-controller-manager", "system:kube-controller-manager"),
    ] {
        if let Some(c) = get(id, p) {
            check_subject(id, &c, cn, None, p);
            p.check(!c.o.iter().any(|o| o == "system:masters"), || {
                format!("{id}: O includes system:masters, which makes {cn} a cluster admin that bypasses RBAC")
            });
        }
    }
    for (name, groups) in e.users {
        let id = format!("cert/users/{name}");
        if let Some(c) = get(&id, p) {
            check_subject(&id, &c, name, Some(groups), p);
        }
    }

    // inspect must describe what is on disk.
    for (id, c) in certs {
        let a = applied.get(id);
        let cn = a["subject"]["cn"].as_str();
        p.check(cn.is_some_and(|cn| c.cn == [cn]), || {
            format!("{id}: inspect says CN {}, the certificate has {:?}", a["subject"]["cn"], c.cn)
        });
        let o: Vec<String> = a["subject"]["o"]
            .as_array()
            .map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        p.check(sorted_unique(&o) == sorted_unique(&c.o), || {
            format!("{id}: inspect says O {o:?}, the certificate has {:?}", c.o)
        });
        let dns: Vec<String> = a["sans"]["dns"]
            .as_array()
            .map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        p.check(sorted_unique(&dns) == sorted_unique(&c.dns), || {
            format!("{id}: inspect says DNS SANs {dns:?}, the certificate has {:?}", c.dns)
        });
        let ips: Vec<IpAddr> = a["sans"]["ip"]
            .as_array()
            .map(|v| v.iter().filter_map(|s| s.as_str().and_then(|s| s.parse().ok())).collect())
            .unwrap_or_default();
        p.check(sorted_unique(&ips) == sorted_unique(&c.ips), || {
            format!("{id}: inspect says IP SANs {}, the certificate has {:?}", a["sans"]["ip"], c.ips)
        });
        if a["kind"] == "cert" {
            let set = a["set"].as_str().unwrap_or("");
            for eku in required_ekus(set) {
                p.check(c.has_eku(eku), || {
                    format!("{id} (set {set}): extendedKeyUsage {:?} lacks {eku}, so TLS peers will refuse it", c.eku)
                });
            }
        }
    }
}

fn check_profile(applied: &Applied, certs: &BTreeMap<String, CertInfo>, p: &mut Problems) {
    let mut serials: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    for (id, c) in certs {
        let a = applied.get(id);
        let is_ca = a["kind"] == "ca";
        p.check(c.version == 2, || format!("{id}: X.509 version {} (v{}), expected v3", c.version, c.version + 1));

        // serial: positive, at most 20 octets, distinct
        let positive = !c.serial.is_empty() && c.serial[0] & 0x80 == 0 && c.serial.iter().any(|b| *b != 0);
        p.check(positive, || format!("{id}: serial {} is not a positive integer", hex::encode(&c.serial)));
        p.check(c.serial.len() <= 20, || {
            format!("{id}: serial is {} octets long, RFC 5280 allows at most 20", c.serial.len())
        });
        if let Some(other) = serials.insert(c.serial.clone(), id.clone()) {
            p.add(format!("{id} and {other} have the same serial {}", hex::encode(&c.serial)));
        }

        p.check(c.not_before < applied.started, || {
            format!(
                "{id}: NotBefore is {} but apply started at {}; it is not backdated for clock skew",
                c.not_before, applied.started
            )
        });
        p.check(c.not_after > c.not_before, || format!("{id}: NotAfter is not after NotBefore"));

        if matches!(c.key_kind, KeyKind::Ec | KeyKind::Ed25519) {
            p.check(!c.key_usage.is_some_and(|k| k.key_encipherment), || {
                format!("{id}: keyUsage has keyEncipherment on a {:?} key, which cannot encrypt", c.key_kind)
            });
        }

        if is_ca {
            p.check(c.basic_constraints == Some((true, true)), || {
                format!(
                    "{id}: basicConstraints is {:?} (critical, CA), expected CA:TRUE marked critical",
                    c.basic_constraints
                )
            });
            p.check(c.key_usage.is_some_and(|k| k.key_cert_sign), || {
                format!("{id}: keyUsage {:?} lacks keyCertSign, so the CA cannot sign certificates", c.key_usage)
            });
            p.check(c.ski.as_ref().is_some_and(|s| !s.is_empty()), || format!("{id}: CA has no subjectKeyIdentifier"));
            p.check(c.eku.is_none(), || format!("{id}: a CA must have no extendedKeyUsage, it has {:?}", c.eku));
            p.check(c.subject == c.issuer, || {
                format!("{id}: CA is not self-issued: subject {} issuer {}", c.subject, c.issuer)
            });
            continue;
        }

        // leaves
        p.check(c.basic_constraints.is_some_and(|(_, ca)| !ca), || {
            format!("{id}: basicConstraints is {:?}, a leaf needs CA:FALSE", c.basic_constraints)
        });
        p.check(c.key_usage.is_none_or(|k| k.digital_signature), || {
            format!(
                "{id}: keyUsage {:?} lacks digitalSignature, which a TLS certificate needs to sign the handshake",
                c.key_usage
            )
        });
        p.check(c.eku.as_ref().is_some_and(|e| !e.is_empty()), || {
            format!("{id}: a leaf needs at least one extendedKeyUsage, it has {:?}", c.eku)
        });
        let Some(issuer_id) = a["issuer"].as_str() else {
            p.add(format!("{id}: inspect gives no issuer"));
            continue;
        };
        let Some(ca) = certs.get(issuer_id) else {
            p.add(format!("{id}: its issuer {issuer_id} has no certificate in the tree"));
            continue;
        };
        p.check(c.issuer == ca.subject, || {
            format!("{id}: issuer DN {} is not the subject of {issuer_id} ({})", c.issuer, ca.subject)
        });
        p.check(c.aki.is_some() && c.aki == ca.ski, || {
            format!(
                "{id}: authorityKeyIdentifier {:?} is not the subjectKeyIdentifier of {issuer_id} ({:?})",
                c.aki.as_ref().map(hex::encode),
                ca.ski.as_ref().map(hex::encode)
            )
        });
        p.check(c.not_after <= ca.not_after, || {
            format!(
                "{id}: NotAfter {} is after its CA {issuer_id}'s NotAfter {}: the leaf outlives its CA",
                c.not_after, ca.not_after
            )
        });
    }
}

/// Every key file holds the private key of its certificate; the
/// service-account key pair's halves match.
fn check_keys(applied: &Applied, certs: &BTreeMap<String, CertInfo>, p: &mut Problems) {
    for (id, c) in certs {
        let a = applied.get(id);
        let keys = applied.files(a, "key");
        if a["kind"] == "cert" && keys.is_empty() {
            p.add(format!("{id}: inspect lists no private key file"));
        }
        for key in keys {
            let Ok(pem) = std::fs::read(&key) else {
                p.add(format!("{id}: key file {} is missing", key.display()));
                continue;
            };
            match public_key_of_private_pem(&pem) {
                Ok(spki) => p.check(spki == c.spki, || {
                    format!("{id}: the key {} does not belong to the certificate {}", key.display(), c.path.display())
                }),
                Err(e) => p.add(format!("{id}: {} is not a readable private key: {e}", key.display())),
            }
        }
    }
    match applied.find("keypair/service-account") {
        None => p.add("no keypair/service-account in inspect output".to_string()),
        Some(a) => {
            let keys = applied.files(a, "key");
            let pubs = applied.files(a, "public-key");
            p.check(!keys.is_empty() && !pubs.is_empty(), || {
                format!("keypair/service-account: expected key and public-key files, inspect lists {}", a["files"])
            });
            let private: Vec<_> = keys
                .iter()
                .map(|k| std::fs::read(k).map_err(|e| e.to_string()).and_then(|pem| public_key_of_private_pem(&pem)))
                .collect();
            for pubfile in &pubs {
                let text = std::fs::read_to_string(pubfile).unwrap_or_default();
                p.check(text.starts_with("-----BEGIN PUBLIC KEY-----"), || {
                    format!("{}: sa.pub must be a PKIX `PUBLIC KEY` PEM", pubfile.display())
                });
                let public = public_key_of_public_pem(text.as_bytes());
                for (k, spki) in keys.iter().zip(&private) {
                    p.check(spki.is_ok() && public.is_ok() && spki == &public, || {
                        format!(
                            "keypair/service-account: {} and {} are not the two halves of one key ({:?} / {:?})",
                            k.display(),
                            pubfile.display(),
                            spki.as_ref().err(),
                            public.as_ref().err()
                        )
                    });
                }
            }
        }
    }
}

/// The mode a file of `role` must have, per the output-tree reference.
fn expected_mode(role: &str, path: &Path) -> Option<u32> {
    match role {
        "key" | "kubeconfig" | "token-file" => Some(0o600),
        "cert" | "public-key" | "flags" => Some(0o644),
        // An RBAC manifest is public; a manifest that carries a bootstrap
        // token Secret is a secret.
        "manifest" => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.contains("kind: Secret") { Some(0o600) } else { Some(0o644) }
        }
        _ => None,
    }
}

fn mode_of(path: &Path) -> Option<u32> {
    std::fs::symlink_metadata(path).ok().map(|m| m.permissions().mode() & 0o7777)
}

fn check_file_modes(out: &Path, doc: &Value, p: &mut Problems) {
    for a in artifacts(doc) {
        let id = a["id"].as_str().unwrap_or("?");
        for f in a["files"].as_array().into_iter().flatten() {
            let rel = f["path"].as_str().unwrap_or("");
            let role = f["role"].as_str().unwrap_or("");
            let path = out.join(rel);
            let Some(mode) = mode_of(&path) else {
                p.add(format!("{id}: {rel} is listed by inspect but does not exist"));
                continue;
            };
            if let Some(want) = expected_mode(role, &path) {
                p.check(mode == want, || format!("{id}: {rel} ({role}) has mode {mode:04o}, expected {want:04o}"));
            }
            p.check(f["mode"].as_str() == Some(&format!("{mode:04o}")), || {
                format!("{id}: inspect says {rel} has mode {}, it has {mode:04o}", f["mode"])
            });
            if let Ok(bytes) = std::fs::read(&path) {
                let sha = hex::encode(sha2::Sha256::digest(&bytes));
                p.check(f["sha256"].as_str() == Some(&sha), || {
                    format!("{id}: inspect says {rel} has sha256 {}, it is {sha}", f["sha256"])
                });
            }
        }
    }
}

/// Directories that directly hold a secret (a 0600 file) are 0700, others
/// 0755. `hosts/<host>/` and `hosts/<host>/etc` are what `rsync -a` copies onto
/// the host's `/` and `/etc`, so they must stay 0755.
fn check_dir_modes(out: &Path, p: &mut Problems) {
    fn walk(dir: &Path, out: &Path, p: &mut Problems) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut holds_secret = false;
        let mut subdirs = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                subdirs.push(path);
            } else if meta.is_file() && meta.permissions().mode() & 0o077 == 0 {
                holds_secret = true;
            }
        }
        let rel = match dir.strip_prefix(out) {
            Ok(r) if r.as_os_str().is_empty() => "<output dir>".to_string(),
            Ok(r) => r.display().to_string(),
            Err(_) => dir.display().to_string(),
        };
        let want = if holds_secret { 0o700 } else { 0o755 };
        let mode = mode_of(dir).unwrap_or(0);
        let rsync_root = {
            let parts: Vec<&str> = rel.split('/').collect();
            parts.first() == Some(&"hosts") && parts.len() <= 3
        };
        p.check(mode == want, || {
            let why = if holds_secret { "it holds a secret" } else { "it holds no secret" };
            let extra =
                if rsync_root && mode != 0o755 { " (rsync -a would give the host's directory this mode)" } else { "" };
            format!("directory {rel}/ has mode {mode:04o}, expected {want:04o} as {why}{extra}")
        });
        for sub in subdirs {
            walk(&sub, out, p);
        }
    }
    // The output directory itself is included: certplan created it.
    if out.is_dir() {
        walk(out, out, p);
    } else {
        p.add(format!("output dir {} does not exist", out.display()));
    }
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk_files(&path));
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files
}

/// No file under a worker-only host holds the private key of any CA.
fn check_workers_have_no_ca_key(applied: &Applied, e: &Expected, certs: &BTreeMap<String, CertInfo>, p: &mut Problems) {
    let ca_keys: Vec<(&String, &Vec<u8>)> =
        certs.iter().filter(|(id, _)| id.starts_with("ca/")).map(|(id, c)| (id, &c.spki)).collect();
    for host in e.worker_only_hosts {
        let root = applied.out.join("hosts").join(host);
        let files = walk_files(&root);
        p.check(!files.is_empty(), || format!("worker {host} has no files at all under {}", root.display()));
        for f in files {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.check(!(name.ends_with("ca-key.pem") || name.ends_with("ca.key")), || {
                format!("worker {host} receives {}, named like a CA private key", f.display())
            });
            let Ok(text) = std::fs::read(&f) else {
                continue;
            };
            if !String::from_utf8_lossy(&text).contains("PRIVATE KEY-----") {
                continue;
            }
            if let Ok(spki) = public_key_of_private_pem(&text) {
                for (ca, ca_spki) in &ca_keys {
                    p.check(&spki != *ca_spki, || {
                        format!("worker {host} receives the private key of {ca} in {}", f.display())
                    });
                }
            }
        }
    }
}

/// The documented file names of the cfssl and kubeadm presets.
fn check_layout(applied: &Applied, e: &Expected, p: &mut Problems) {
    let Some(layout) = e.layout else { return };
    let cfssl = layout == Layout::Cfssl;
    // (artifact id, cert or public-key name, key name), relative to pki_dir
    let mut expected: Vec<(String, &str, &str)> = vec![
        ("ca/kubernetes".into(), if cfssl { "ca.pem" } else { "ca.crt" }, if cfssl { "ca-key.pem" } else { "ca.key" }),
        (
            "cert/apiserver".into(),
            if cfssl { "kubernetes.pem" } else { "apiserver.crt" },
            if cfssl { "kubernetes-key.pem" } else { "apiserver.key" },
        ),
        (
            "cert/apiserver-etcd-client".into(),
            if cfssl { "apiserver-etcd-client.pem" } else { "apiserver-etcd-client.crt" },
            if cfssl { "apiserver-etcd-client-key.pem" } else { "apiserver-etcd-client.key" },
        ),
        (
            "cert/apiserver-kubelet-client".into(),
            if cfssl { "apiserver-kubelet-client.pem" } else { "apiserver-kubelet-client.crt" },
            if cfssl { "apiserver-kubelet-client-key.pem" } else { "apiserver-kubelet-client.key" },
        ),
        (
            "cert/kube-controller-manager".into(),
            if cfssl { "kube-controller-manager.pem" } else { "kube-controller-manager.crt" },
            if cfssl { "kube-controller-manager-key.pem" } else { "kube-controller-manager.key" },
        ),
        (
            "cert/kube-scheduler".into(),
            if cfssl { "kube-scheduler.pem" } else { "kube-scheduler.crt" },
            if cfssl { "kube-scheduler-key.pem" } else { "kube-scheduler.key" },
        ),
        (
            "cert/kube-proxy".into(),
            if cfssl { "kube-proxy.pem" } else { "kube-proxy.crt" },
            if cfssl { "kube-proxy-key.pem" } else { "kube-proxy.key" },
        ),
        (
            "keypair/service-account".into(),
            if cfssl { "service-account.pub" } else { "sa.pub" },
            if cfssl { "service-account-key.pem" } else { "sa.key" },
        ),
    ];
    if !cfssl {
        expected.push(("ca/etcd".into(), "etcd/ca.crt", "etcd/ca.key"));
        expected.push(("ca/front-proxy".into(), "front-proxy-ca.crt", "front-proxy-ca.key"));
    }
    expected.push((
        "cert/front-proxy-client".into(),
        if cfssl { "front-proxy-client.pem" } else { "front-proxy-client.crt" },
        if cfssl { "front-proxy-client-key.pem" } else { "front-proxy-client.key" },
    ));
    for (host, _) in e.etcd_hosts {
        expected.push((
            format!("cert/etcd-server/{host}"),
            if cfssl { "etcd.pem" } else { "etcd/server.crt" },
            if cfssl { "etcd-key.pem" } else { "etcd/server.key" },
        ));
        expected.push((
            format!("cert/etcd-peer/{host}"),
            if cfssl { "etcd-peer.pem" } else { "etcd/peer.crt" },
            if cfssl { "etcd-peer-key.pem" } else { "etcd/peer.key" },
        ));
    }
    for host in e.kubelet_hosts {
        expected.push((
            format!("cert/kubelet/{host}"),
            if cfssl { "kubelet-client.pem" } else { "kubelet-client.crt" },
            if cfssl { "kubelet-client-key.pem" } else { "kubelet-client.key" },
        ));
        expected.push((
            format!("cert/kubelet-server/{host}"),
            if cfssl { "kubelet.pem" } else { "kubelet.crt" },
            if cfssl { "kubelet-key.pem" } else { "kubelet.key" },
        ));
    }
    for (id, cert_name, key_name) in &expected {
        let Some(a) = applied.find(id) else {
            p.add(format!("no artifact {id} in inspect output"));
            continue;
        };
        let cert_role = if id.starts_with("keypair/") { "public-key" } else { "cert" };
        for (role, name) in [(cert_role, *cert_name), ("key", *key_name)] {
            for rel in files_of_role(a, role) {
                let Some(host) = host_of_path(&rel) else {
                    continue;
                };
                let want = format!("hosts/{host}/{}/{name}", e.pki_dir);
                p.check(rel == want, || format!("{id}: {role} file is {rel}, the {layout:?} layout names it {want}"));
            }
        }
        if !id.starts_with("ca/") {
            let on_a_host = files_of_role(a, cert_role).iter().any(|r| host_of_path(r).is_some());
            p.check(on_a_host, || format!("{id}: is placed on no host (files {})", a["files"]));
        }
    }
    // kubeconfigs in config_dir
    let kc = |c: &'static str, k: &'static str| if cfssl { c } else { k };
    let mut kubeconfigs: Vec<(String, &str, &[&str])> = vec![
        (
            "kubeconfig/kube-controller-manager".into(),
            kc("kube-controller-manager.kubeconfig", "controller-manager.conf"),
            e.control_plane_hosts,
        ),
        ("kubeconfig/kube-scheduler".into(), kc("kube-scheduler.kubeconfig", "scheduler.conf"), e.control_plane_hosts),
        ("kubeconfig/kube-proxy".into(), kc("kube-proxy.kubeconfig", "kube-proxy.conf"), e.kubelet_hosts),
    ];
    for host in e.kubelet_hosts {
        let one: &[&str] = std::slice::from_ref(host);
        kubeconfigs.push((format!("kubeconfig/kubelet/{host}"), kc("kubelet.kubeconfig", "kubelet.conf"), one));
    }
    for (id, name, hosts) in kubeconfigs {
        let Some(a) = applied.find(&id) else {
            p.add(format!("no artifact {id} in inspect output"));
            continue;
        };
        let rels = files_of_role(a, "kubeconfig");
        for host in hosts {
            let want = format!("hosts/{host}/{}/{name}", e.config_dir);
            p.check(rels.contains(&want), || format!("{id}: expected {want}, inspect lists {rels:?}"));
        }
    }
    for (name, _) in e.users {
        let id = format!("kubeconfig/users/{name}");
        let Some(a) = applied.find(&id) else {
            p.add(format!("no artifact {id} in inspect output"));
            continue;
        };
        let rels = files_of_role(a, "kubeconfig");
        let ok = rels.iter().any(|r| {
            *r == format!("cluster/kubeconfigs/{name}.kubeconfig") || *r == format!("cluster/kubeconfigs/{name}.conf")
        });
        p.check(ok, || {
            format!("{id}: expected cluster/kubeconfigs/{name}.kubeconfig or .conf, inspect lists {rels:?}")
        });
    }
    for a in applied.of_kind("ca") {
        let rels = files_of_role(a, "cert");
        p.check(rels.iter().any(|r| r.starts_with("cluster/pki/")), || {
            format!(
                "{}: the master copy of every CA certificate belongs under cluster/pki/, inspect lists {rels:?}",
                a["id"]
            )
        });
        let keys = files_of_role(a, "key");
        p.check(keys.iter().any(|r| r.starts_with("cluster/pki/")), || {
            format!("{}: the master copy of every CA key belongs under cluster/pki/, inspect lists {keys:?}", a["id"])
        });
    }
}

/// A kubeconfig, read line by line the way `kubectl config --embed-certs`
/// writes it.
// TODO: parse with serde_yaml_ng once it is a dev-dependency.
struct Kubeconfig {
    text: String,
}

impl Kubeconfig {
    /// The values of every `key: value` line with this key, quotes removed.
    fn values(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key}:");
        self.text
            .lines()
            .map(|l| l.trim_start().trim_start_matches("- ").trim())
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
            .collect()
    }

    fn value(&self, key: &str) -> Option<String> {
        self.values(key).into_iter().next()
    }

    fn data(&self, key: &str) -> Result<Vec<u8>, String> {
        let v = self.value(key).ok_or_else(|| format!("no {key}"))?;
        base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).map_err(|e| format!("{key} is not base64: {e}"))
    }
}

/// The identity each kubeconfig must present: (the cert it embeds, its CN).
fn kubeconfig_identity(id: &str) -> Option<(String, String)> {
    let rest = id.strip_prefix("kubeconfig/")?;
    if let Some(host) = rest.strip_prefix("kubelet/") {
        return Some((format!("cert/kubelet/{host}"), format!("system:node:{host}")));
    }
    if let Some(user) = rest.strip_prefix("users/") {
        return Some((format!("cert/users/{user}"), user.to_string()));
    }
    match rest {
        "kube-proxy" | "kube-scheduler" | "kube-controller-manager" => {
            Some((format!("cert/{rest}"), format!("system:{rest}")))
        }
        _ => None,
    }
}

fn check_kubeconfigs(applied: &Applied, e: &Expected, certs: &BTreeMap<String, CertInfo>, p: &mut Problems) {
    let cluster_ca = certs.get(&applied.ca_of_set("apiserver")).cloned();
    let client_ca = certs.get(&applied.ca_of_set("apiserver-client")).cloned();
    let apiserver = certs.get("cert/apiserver").cloned();
    let (Some(cluster_ca), Some(client_ca), Some(apiserver)) = (cluster_ca, client_ca, apiserver) else {
        p.add("kubeconfigs not checked: the API server certificate or its CAs are missing".to_string());
        return;
    };
    let tokens: Vec<String> = token_csv_rows(applied).into_iter().map(|(_, row)| row).collect();

    let mut seen = BTreeSet::new();
    for a in applied.of_kind("kubeconfig") {
        let id = a["id"].as_str().unwrap_or("?").to_string();
        seen.insert(id.clone());
        for path in applied.files(a, "kubeconfig") {
            let where_ = format!("{id} ({})", path.strip_prefix(&applied.out).unwrap_or(&path).display());
            let Ok(text) = std::fs::read_to_string(&path) else {
                p.add(format!("{where_}: missing"));
                continue;
            };
            let kc = Kubeconfig { text };
            for key in ["clusters", "users", "contexts"] {
                p.check(kc.text.lines().any(|l| l.trim_end() == format!("{key}:")), || {
                    format!("{where_}: no top-level `{key}:` list")
                });
            }
            p.check(kc.value("apiVersion").as_deref() == Some("v1"), || format!("{where_}: apiVersion is not v1"));
            p.check(kc.value("kind").as_deref() == Some("Config"), || format!("{where_}: kind is not Config"));
            match kc.value("current-context") {
                Some(ctx) if !ctx.is_empty() => p.check(kc.values("name").contains(&ctx), || {
                    format!("{where_}: current-context {ctx:?} names no context")
                }),
                _ => p.add(format!("{where_}: no current-context, kubectl would not know what to use")),
            }

            // the cluster: CA and server URL
            match kc.data("certificate-authority-data") {
                Ok(pem) => match pem_certificates(&pem).first() {
                    Some(der) => {
                        let ca = parse_cert_der(&path, der);
                        p.check(ca.spki == cluster_ca.spki, || {
                            format!("{where_}: certificate-authority-data is not the CA that signs the API server's certificate")
                        });
                    }
                    None => p.add(format!("{where_}: certificate-authority-data holds no PEM certificate")),
                },
                Err(err) => p.add(format!("{where_}: {err}")),
            }
            match kc.value("server").and_then(|s| url::Url::parse(&s).ok()) {
                Some(u) => {
                    let host = u.host_str().unwrap_or("").trim_matches(|c| c == '[' || c == ']').to_string();
                    p.check(u.scheme() == "https", || format!("{where_}: server {u} is not https"));
                    p.check(apiserver.covers(&host), || {
                        format!(
                            "{where_}: server {u} dials {host}, which the API server certificate's SANs do not cover"
                        )
                    });
                }
                None => p.add(format!("{where_}: no parseable `server:` URL")),
            }

            // the user: a client certificate and key, or a token
            if let Some(token) = kc.value("token") {
                if e.token_csv {
                    p.check(tokens.contains(&token), || {
                        format!("{where_}: its token is not in token.csv, the API server would reject it")
                    });
                } else {
                    p.check(is_bootstrap_token(&token), || {
                        format!("{where_}: token does not match [a-z0-9]{{6}}\\.[a-z0-9]{{16}}")
                    });
                }
                continue;
            }
            let cert = match kc.data("client-certificate-data") {
                Ok(pem) => {
                    if let Some(der) = pem_certificates(&pem).first() {
                        parse_cert_der(&path, der)
                    } else {
                        p.add(format!("{where_}: client-certificate-data holds no PEM certificate"));
                        continue;
                    }
                }
                Err(err) => {
                    p.add(format!("{where_}: neither a token nor a client certificate: {err}"));
                    continue;
                }
            };
            match kc.data("client-key-data").and_then(|pem| public_key_of_private_pem(&pem)) {
                Ok(spki) => p.check(spki == cert.spki, || {
                    format!("{where_}: client-key-data is not the key of client-certificate-data")
                }),
                Err(err) => p.add(format!("{where_}: client-key-data: {err}")),
            }
            p.check(cert.aki.is_some() && cert.aki == client_ca.ski, || {
                format!("{where_}: the client certificate is not signed by the CA the API server trusts for clients")
            });
            if let Some((cert_id, cn)) = kubeconfig_identity(&id) {
                p.check(cert.cn == [cn.clone()], || {
                    format!("{where_}: authenticates as {:?}, expected {cn:?}", cert.cn)
                });
                if let Some(on_disk) = certs.get(&cert_id) {
                    p.check(on_disk.serial == cert.serial, || {
                        format!("{where_}: embeds a different certificate than {cert_id} on disk (a stale kubeconfig)")
                    });
                }
            }
        }
    }
    let mut want = vec![
        "kubeconfig/kube-controller-manager".to_string(),
        "kubeconfig/kube-scheduler".to_string(),
        "kubeconfig/kube-proxy".to_string(),
    ];
    want.extend(e.kubelet_hosts.iter().map(|h| format!("kubeconfig/kubelet/{h}")));
    want.extend(e.users.iter().map(|(u, _)| format!("kubeconfig/users/{u}")));
    for id in want {
        p.check(seen.contains(&id), || format!("no kubeconfig artifact {id}"));
    }
}

fn is_bootstrap_token(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    parts.len() == 2 && ok(parts[0], 6) && ok(parts[1], 16)
}

/// (file, token) of every token.csv row in the tree.
fn token_csv_rows(applied: &Applied) -> Vec<(PathBuf, String)> {
    let mut rows = Vec::new();
    for a in applied.of_kind("token-file") {
        for path in applied.files(a, "token-file") {
            for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
                if let Some(token) = line.split(',').next() {
                    rows.push((path.clone(), token.to_string()));
                }
            }
        }
    }
    rows
}

fn check_token_csv(applied: &Applied, e: &Expected, p: &mut Problems) {
    let files: Vec<(String, PathBuf)> = applied
        .of_kind("token-file")
        .into_iter()
        .flat_map(|a| {
            files_of_role(a, "token-file").into_iter().map(|r| (r.clone(), applied.out.join(r))).collect::<Vec<_>>()
        })
        .collect();
    if !e.token_csv {
        return;
    }
    for host in e.control_plane_hosts {
        let want = format!("hosts/{host}/{}/token.csv", e.config_dir);
        p.check(files.iter().any(|(r, _)| *r == want), || {
            format!(
                "the API server on {host} needs {want}; inspect lists {:?}",
                files.iter().map(|f| &f.0).collect::<Vec<_>>()
            )
        });
    }
    for (rel, path) in &files {
        if let Some(host) = host_of_path(rel) {
            p.check(e.control_plane_hosts.contains(&host), || {
                format!("token.csv is on {host}, which runs no API server: {rel}")
            });
        }
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let rows: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        p.check(!rows.is_empty(), || format!("{rel} is empty"));
        for row in rows {
            let ok = match row.split_once(',') {
                Some((token, rest)) => {
                    token.len() == 32
                        && token.bytes().all(|b| b.is_ascii_hexdigit())
                        && rest == "kubelet-bootstrap,10001,\"system:bootstrappers\""
                }
                None => false,
            };
            p.check(ok, || {
                format!("{rel}: row {row:?} is not `<32 hex chars>,kubelet-bootstrap,10001,\"system:bootstrappers\"`")
            });
        }
    }
}
