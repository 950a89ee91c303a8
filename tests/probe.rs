//! `verify --host solo --root DIR --probe` against real servers, on
//! `plans/minimal.toml`: one etcd member on free loopback ports, with the
//! TLS flags of the generated `etcd.env`, and an `openssl s_server` with the
//! API server's certificate.
//!
//! etcd reads its certificate files again on every handshake, so a member
//! started on the installed files never serves a stale one. The member here
//! runs on its own copy of the host's files (what a component that loaded
//! its certificate at start-up holds in memory); `apply --rotate` then
//! changes the installed file under it, and `verify --probe` must fail,
//! naming etcd, until the member runs on the new files. `s_server` loads its
//! certificate once: it serves a stale one for real.
//!
//! These tests need etcd and openssl: `tests/run.sh` installs them and runs
//! everything, ignored tests included.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::certplan;
use crate::etcd_cluster::harness::{
    self, Applied, Proc, Variant, env_args, free_port, poll, require_tools, rewrite_host_paths, scrub_env, tail,
};

const LOOPBACK: &str = "127.0.0.1";

/// `verify --host solo --root ROOT --probe` with `--probe-port` for every
/// endpoint: whether it succeeded, and its stdout and stderr.
fn verify_probe(applied: &Applied, root: &Path, ports: &[(&str, u16)]) -> (bool, String) {
    let mut cmd = certplan();
    cmd.arg("verify").arg(&applied.plan).args(["--host", "solo", "--root"]).arg(root).arg("--probe");
    for (endpoint, port) in ports {
        cmd.arg("--probe-port").arg(format!("{endpoint}={port}"));
    }
    let output = cmd.env("NO_COLOR", "1").output().expect("run certplan verify");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// The line of the **Probes** section about `endpoint`.
fn probe_line<'a>(text: &'a str, endpoint: &str) -> &'a str {
    let prefix = format!("  {endpoint} ");
    text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no probe of {endpoint}:\n{text}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

fn apply_rotate(applied: &Applied, id: &str) {
    let output =
        certplan().arg("apply").arg(&applied.plan).arg("--out").arg(&applied.out).args(["--rotate", id, "-q"]).output();
    let output = output.expect("run certplan apply --rotate");
    assert!(output.status.success(), "apply --rotate {id} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// One etcd member for host `solo` on the files under `root`, listening on
/// `client` and `peer`; ready once its client port accepts connections.
fn start_etcd(applied: &Applied, root: &Path, data: &Path, (client, peer): (u16, u16), log: &Path) -> Proc {
    let rel = applied.rel_files("flags/etcd/solo", "flags").into_iter().next().expect("an etcd.env for solo");
    let env = applied.out.join(rel);
    let tls_args = rewrite_host_paths(&env_args(&env, "ETCD_TLS_ARGS"), root);
    let client_url = format!("https://{LOOPBACK}:{client}");
    let peer_url = format!("https://{LOOPBACK}:{peer}");
    let mut cmd = Command::new("etcd");
    scrub_env(&mut cmd)
        .args(&tls_args)
        .arg("--name=solo")
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=solo={peer_url}"))
        .arg("--initial-cluster-state=new");
    let mut proc = Proc::spawn("etcd solo", &mut cmd, log);
    let ready = poll(Duration::from_secs(30), || {
        if proc.exited().is_some() {
            return Some(false);
        }
        let up = [client, peer].iter().all(|port| {
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], *port));
            std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
        });
        up.then_some(true)
    });
    assert_eq!(ready, Some(true), "etcd did not start:\n{}", tail(&proc.log_text(), 30));
    proc
}

/// `openssl s_server` on a free loopback port with a certificate and key.
fn start_s_server(cert: &Path, key: &Path, log: &Path) -> (Proc, u16) {
    let port = free_port(LOOPBACK);
    let mut cmd = Command::new("openssl");
    // `-WWW`: s_server never reads stdin, which is at its end here and would
    // make a plain s_server shut down.
    cmd.args(["s_server", "-WWW", "-accept"])
        .arg(format!("{LOOPBACK}:{port}"))
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key);
    let mut proc = Proc::spawn("s_server", &mut cmd, log);
    let ready = poll(Duration::from_secs(10), || {
        if proc.log_text().contains("ACCEPT") {
            return Some(true);
        }
        proc.exited().map(|_| false)
    });
    assert_eq!(ready, Some(true), "s_server did not start:\n{}", tail(&proc.log_text(), 30));
    (proc, port)
}

#[test]
#[ignore = "needs etcd and openssl: run tests/run.sh"]
fn probe_catches_an_etcd_member_that_serves_a_replaced_certificate() {
    require_tools(&["etcd", "openssl"]);
    let tmp = harness::tempdir("certplan-probe-");
    let applied = Variant::as_written("minimal").apply(tmp.path(), "main");
    let root = applied.host_root("solo");
    // What the member loaded: a copy of the installed files.
    let running = tmp.path().join("running");
    copy_dir(&root, &running);

    let ports = (free_port(LOOPBACK), free_port(LOOPBACK));
    let (apiserver, kubelet) = (free_port(LOOPBACK), free_port(LOOPBACK));
    let probe_ports =
        [("etcd-client", ports.0), ("etcd-peer", ports.1), ("apiserver", apiserver), ("kubelet", kubelet)];
    let mut etcd = start_etcd(&applied, &running, &tmp.path().join("data"), ports, &tmp.path().join("etcd-1.log"));

    let (ok, text) = verify_probe(&applied, &root, &probe_ports);
    assert!(ok, "the member serves the installed certificates:\n{text}");
    assert!(probe_line(&text, "etcd-client").contains(" ok: "), "{text}");
    assert!(probe_line(&text, "etcd-peer").contains(" ok: "), "{text}");
    // Nothing listens on the API server's and the kubelet's ports: notes.
    assert!(probe_line(&text, "apiserver").contains(" not-listening: "), "{text}");
    assert!(probe_line(&text, "kubelet").contains(" not-listening: "), "{text}");

    // A new certificate and key on disk; the member still runs on the old.
    apply_rotate(&applied, "cert/etcd-server/solo");
    let (ok, text) = verify_probe(&applied, &root, &probe_ports);
    assert!(!ok, "a member serving the replaced certificate must fail verify:\n{text}");
    assert!(text.contains("serves an older certificate: restart etcd"), "{text}");
    assert!(probe_line(&text, "etcd-client").contains(" stale: "), "{text}");
    assert!(probe_line(&text, "etcd-peer").contains(" ok: "), "only the server certificate changed:\n{text}");

    // Restarted on the new files: ok again.
    etcd.stop();
    copy_dir(&root, &running);
    let _etcd = start_etcd(&applied, &running, &tmp.path().join("data"), ports, &tmp.path().join("etcd-2.log"));
    let (ok, text) = verify_probe(&applied, &root, &probe_ports);
    assert!(ok, "the restarted member serves the installed certificates:\n{text}");
    assert!(probe_line(&text, "etcd-client").contains(" ok: "), "{text}");
}

#[test]
#[ignore = "needs etcd and openssl: run tests/run.sh"]
fn probe_compares_what_s_server_serves_with_the_apiserver_certificate() {
    require_tools(&["openssl"]);
    let tmp = harness::tempdir("certplan-probe-");
    let applied = Variant::as_written("minimal").apply(tmp.path(), "main");
    let foreign = Variant::as_written("minimal").apply(tmp.path(), "foreign");
    let root = applied.host_root("solo");
    let idle: Vec<u16> = (0..3).map(|_| free_port(LOOPBACK)).collect();

    for (name, tree, fresh) in [("installed", &applied, true), ("foreign", &foreign, false)] {
        let (cert, key) = tree.cert_and_key("cert/apiserver");
        let (_server, port) = start_s_server(&cert, &key, &tmp.path().join(format!("s_server-{name}.log")));
        let ports = [("apiserver", port), ("etcd-client", idle[0]), ("etcd-peer", idle[1]), ("kubelet", idle[2])];
        let (ok, text) = verify_probe(&applied, &root, &ports);
        if fresh {
            assert!(ok, "s_server serves the installed API server certificate:\n{text}");
            assert!(probe_line(&text, "apiserver").contains(" ok: "), "{text}");
        } else {
            assert!(!ok, "s_server serves another apply's certificate:\n{text}");
            assert!(probe_line(&text, "apiserver").contains(" stale: "), "{text}");
            assert!(text.contains("restart kube-apiserver"), "{text}");
        }
    }
}
