//! kubectl on the generated kubeconfigs, against a TLS server that presents
//! the generated API server certificate.
//!
//! For each example plan: `openssl s_server -WWW` serves a file over HTTPS
//! with the API server's certificate and key, demanding a client certificate
//! of the cluster CA (the CA of the apiserver-client set). `kubectl get --raw`
//! with each generated kubeconfig that holds a client certificate (admin and
//! other users, kube-proxy, every kubelet, controller-manager, scheduler),
//! with only its `server:` URL rewritten to the test server by a name or
//! address in the API server's SANs, gets the file back, and `s_server` logs
//! the identity the kubeconfig presented. A URL host that is not in the SANs
//! fails with kubectl's x509 error.
//!
//! The `openssl_extras` submodule checks the certificates' dates and the
//! private keys the way openssl and Go's `tls.X509KeyPair` read them.
//!
//! These tests need kubectl and openssl: `tests/run.sh` installs them and
//! runs everything, ignored tests included.

use crate::etcd_cluster::harness;

#[path = "consumers/openssl_extras.rs"]
mod openssl_extras;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::{
    Applied, Proc, Run, Variant, free_port, host_of_rel, nonce, parse_oneline_dn, poll, read_lossy, require_tools, run,
    scrub_env, tail,
};

const TOOLS: &[&str] = &["kubectl", "openssl"];

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn classic_rsa_kubeconfigs_reach_the_apiserver_certificate() {
    kubectl_suite(Variant::as_written("classic"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn classic_ecdsa_kubeconfigs_reach_the_apiserver_certificate() {
    kubectl_suite(Variant::with_key("classic", "ecdsa-p256"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn kubeadm_ecdsa_kubeconfigs_reach_the_apiserver_certificate() {
    kubectl_suite(Variant::as_written("kubeadm"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn hierarchy_kubeconfigs_reach_the_apiserver_certificate() {
    kubectl_suite(Variant::as_written("hierarchy"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn kubeadm_rsa_kubeconfigs_reach_the_apiserver_certificate() {
    kubectl_suite(Variant::with_key("kubeadm", "rsa-2048"));
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn minimal_kubeconfigs_reach_the_apiserver_certificate() {
    kubectl_suite(Variant::as_written("minimal"));
}

/// Kubeconfigs that dial an IPv6 literal (`https://[fd00:10::100]:6443`).
#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn dual_stack_kubeconfigs_reach_the_apiserver_certificate() {
    kubectl_suite(Variant::as_written("dual-stack"));
}

/// Who a kubeconfig must authenticate as.
struct Identity {
    id: String,
    /// The subject CN `s_server` must log; `None` for kubeconfigs this suite
    /// has no convention for (they must still work).
    cn: Option<String>,
    /// Groups that must appear among the subject's O values.
    groups: Vec<String>,
}

fn kubectl_suite(variant: Variant) {
    require_tools(TOOLS);
    let tmp = harness::tempdir("certplan-kubectl-");
    let applied = variant.apply(tmp.path(), "main");

    // The API server's certificate and key from one control-plane host, and
    // the cluster CA: the issuer of the admin's client certificate.
    let (server_cert, server_key) = applied.cert_and_key("cert/apiserver");
    let client_ca = applied.ca_cert(&applied.issuer("cert/users/admin"));
    let sans = applied.artifact("cert/apiserver")["sans"].clone();
    let in_sans = |host: &str| {
        ["dns", "ip"].iter().any(|kind| sans[*kind].as_array().is_some_and(|list| list.iter().any(|v| v == host)))
    };
    assert!(
        !in_sans("127.0.0.2") && !in_sans("not-in-sans.example.com"),
        "the negative cases assume 127.0.0.2 and not-in-sans.example.com are not in the API server's SANs: {sans}"
    );

    // The document root: one file with content nobody could guess.
    let www = tmp.path().join("www");
    std::fs::create_dir_all(&www).expect("create www");
    let file_name = format!("certplan-probe-{}.txt", nonce());
    let content = format!("served to a certplan kubeconfig {}", nonce());
    std::fs::write(www.join(&file_name), &content).expect("write probe file");
    let path = format!("/{file_name}");

    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).expect("create logs dir");
    let server = TestServer::start("127.0.0.1", &server_cert, &server_key, &client_ca, &www, &logs);
    // The same certificate on another loopback address, not in the SANs.
    let stray = TestServer::start("127.0.0.2", &server_cert, &server_key, &client_ca, &www, &logs);

    let identities = identities(&applied);
    let ids: Vec<&str> = identities.iter().map(|i| i.id.as_str()).collect();
    for required in ["kubeconfig/users/admin", "kubeconfig/kube-proxy"] {
        assert!(ids.contains(&required), "no {required} kubeconfig among {ids:?} (all ids: {:?})", applied.ids());
    }
    assert!(ids.iter().any(|id| id.starts_with("kubeconfig/kubelet/")), "no kubeconfig/kubelet/<host> among {ids:?}");

    let kubeconfigs = tmp.path().join("kubeconfigs");
    std::fs::create_dir_all(&kubeconfigs).expect("create kubeconfigs dir");
    for identity in &identities {
        let (source, original) = load_kubeconfig(&applied, &identity.id);
        let original_host = url::Url::parse(&original)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
            .unwrap_or_else(|| panic!("{}: server {original:?} is not a URL", identity.id));
        assert!(
            in_sans(&original_host),
            "{}: its server {original} dials {original_host}, which is not in the API server's SANs {sans}",
            identity.id
        );
        for host in ["127.0.0.1", "localhost"] {
            let url = format!("https://{host}:{}", server.port);
            let file = kubeconfigs.join(format!("{}-{host}.kubeconfig", identity.id.replace('/', "_")));
            std::fs::write(&file, rewrite_kubeconfig(&source, &url, &applied, &identity.id)).expect("write kubeconfig");
            let before = server.proc.log_text().len();
            let got = kubectl(&file, &path, &[]);
            assert!(
                got.ok() && got.stdout == content,
                "kubectl with {} (server {url}) should get the file {path} ({content:?}):\n{}\n--- s_server log:\n{}",
                identity.id,
                got.describe(),
                tail(server.proc.log_text().get(before..).unwrap_or(""), 20)
            );
            server.expect_client(before, identity);
        }
    }

    // A server name that is not in the SANs: kubectl refuses the server.
    let (admin, _) = load_kubeconfig(&applied, "kubeconfig/users/admin");
    let wrong_ip = kubeconfigs.join("admin-127.0.0.2.kubeconfig");
    std::fs::write(
        &wrong_ip,
        rewrite_kubeconfig(&admin, &format!("https://127.0.0.2:{}", stray.port), &applied, "kubeconfig/users/admin"),
    )
    .expect("write kubeconfig");
    expect_x509_refusal(&kubectl(&wrong_ip, &path, &[]), "127.0.0.2", &content);

    let right_ip = kubeconfigs.join("kubeconfig_users_admin-127.0.0.1.kubeconfig");
    expect_x509_refusal(
        &kubectl(&right_ip, &path, &["--tls-server-name", "not-in-sans.example.com"]),
        "not-in-sans.example.com",
        &content,
    );
}

/// The kubeconfigs to try and whom each must present.
fn identities(applied: &Applied) -> Vec<Identity> {
    let users = applied.plan_users();
    applied
        .artifacts()
        .iter()
        .filter(|a| a["kind"] == "kubeconfig")
        .filter_map(|a| a["id"].as_str())
        .filter(|id| *id != "kubeconfig/bootstrap")
        .map(|id| {
            let (cn, groups): (Option<String>, Vec<String>) = if let Some(user) = id.strip_prefix("kubeconfig/users/") {
                let groups = users
                    .iter()
                    .find(|(name, _, _)| name == user)
                    .map_or_else(|| panic!("{id}: no user {user} in the plan"), |(_, g, _)| g.clone());
                (Some(user.to_string()), groups)
            } else if let Some(node) = id.strip_prefix("kubeconfig/kubelet/") {
                (Some(format!("system:node:{node}")), vec!["system:nodes".to_string()])
            } else {
                match id {
                    "kubeconfig/kube-proxy" => (Some("system:kube-proxy".into()), vec![]),
                    "kubeconfig/kube-controller-manager" => (Some("system:kube-controller-manager".into()), vec![]),
                    "kubeconfig/kube-scheduler" => (Some("system:kube-scheduler".into()), vec![]),
                    _ => (None, vec![]),
                }
            };
            Identity { id: id.to_string(), cn, groups }
        })
        .collect()
}

/// A kubeconfig's text (its first copy) and the `server:` URL it dials.
fn load_kubeconfig(applied: &Applied, id: &str) -> (String, String) {
    let rel = applied
        .rel_files(id, "kubeconfig")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{id} lists no kubeconfig file"));
    let text = read_lossy(&applied.out.join(&rel));
    let servers: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("server:"))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
        .collect();
    assert_eq!(servers.len(), 1, "{rel}: expected one `server:` line, found {servers:?}:\n{text}");
    assert!(
        text.contains("client-certificate") || id == "kubeconfig/bootstrap",
        "{rel} has no client certificate:\n{text}"
    );
    (text, servers[0].clone())
}

/// The kubeconfig with its `server:` URL replaced by `url`. A kubeconfig of a
/// host that names its certificate files by absolute path (rather than
/// embedding them) has those paths pointed into `DIR/hosts/<host>/`, as the
/// flag files are; the material itself is used as generated.
fn rewrite_kubeconfig(text: &str, url: &str, applied: &Applied, id: &str) -> String {
    let rel = applied.rel_files(id, "kubeconfig").into_iter().next().expect("kubeconfig file");
    let host_root = host_of_rel(&rel).map(|h| applied.host_root(h));
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let rewritten = if trimmed.starts_with("server:") {
            format!("{indent}server: {url}")
        } else if let Some((key, value)) = trimmed.split_once(':')
            && ["certificate-authority", "client-certificate", "client-key", "tokenFile"]
                .contains(&key.trim_start_matches("- "))
            && value.trim().trim_matches(['"', '\'']).starts_with('/')
        {
            let path = value.trim().trim_matches(['"', '\'']);
            let root = host_root.as_ref().unwrap_or_else(|| panic!("{rel} names {path} but is not on a host"));
            format!("{indent}{key}: {}", root.join(path.trim_start_matches('/')).display())
        } else {
            line.to_string()
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    out
}

/// `kubectl get --raw`. No `--request-timeout`: kubectl would append
/// `?timeout=` to the path, which `s_server` -WWW takes as part of the file
/// name; `run` kills kubectl after its own time limit instead.
fn kubectl(kubeconfig: &Path, path: &str, extra: &[&str]) -> Run {
    let mut cmd = Command::new("kubectl");
    scrub_env(&mut cmd).arg(format!("--kubeconfig={}", kubeconfig.display())).args(extra).args(["get", "--raw", path]);
    run(&mut cmd, Duration::from_secs(40))
}

/// kubectl must have refused the server with Go's name-mismatch error.
fn expect_x509_refusal(got: &Run, host: &str, content: &str) {
    assert!(
        !got.ok() && !got.stdout.contains(content),
        "kubectl accepted the API server certificate for {host}, which is not in its SANs:\n{}",
        got.describe()
    );
    assert!(
        got.stderr.contains("x509: certificate is valid for") && got.stderr.contains(&format!("not {host}")),
        "kubectl should fail for {host} with \"x509: certificate is valid for ..., not {host}\":\n{}",
        got.describe()
    );
}

/// `openssl s_server -WWW` on `ip`, killed when dropped.
struct TestServer {
    proc: Proc,
    port: u16,
}

impl TestServer {
    fn start(ip: &str, cert: &Path, key: &Path, ca: &Path, www: &Path, logs: &Path) -> TestServer {
        let mut failures = Vec::new();
        for attempt in 0..5 {
            let port = free_port(ip);
            let mut cmd = Command::new("openssl");
            cmd.current_dir(www)
                .args(["s_server", "-WWW", "-Verify", "1", "-verify_return_error", "-partial_chain"])
                .arg("-accept")
                .arg(format!("{ip}:{port}"))
                .arg("-cert")
                .arg(abs(cert))
                .arg("-key")
                .arg(abs(key))
                .arg("-CAfile")
                .arg(abs(ca));
            let log = logs.join(format!("s_server-{ip}-{attempt}.log"));
            let mut proc = Proc::spawn(&format!("s_server {ip}:{port}"), &mut cmd, &log);
            let ready = poll(Duration::from_secs(10), || {
                if proc.log_text().contains("ACCEPT") {
                    return Some(true);
                }
                proc.exited().map(|_| false)
            });
            if ready == Some(true) {
                return TestServer { proc, port };
            }
            let text = proc.log_text();
            proc.stop();
            if text.contains("in use") {
                failures.push(text);
                continue;
            }
            panic!("openssl s_server on {ip}:{port} did not start:\n{}", tail(&text, 30));
        }
        panic!("openssl s_server could not bind on {ip} in 5 attempts:\n{}", failures.join("\n---\n"));
    }

    /// `s_server` logged (after byte `before` of its log) the verified client
    /// certificate with `identity`'s subject, and no other.
    fn expect_client(&self, before: usize, identity: &Identity) {
        let Some(cn) = &identity.cn else {
            return;
        };
        let subjects = poll(Duration::from_secs(5), || {
            let text = self.proc.log_text();
            let subjects: Vec<Vec<(String, String)>> = text
                .get(before..)
                .unwrap_or("")
                .lines()
                .filter_map(|l| l.strip_prefix("depth=0 "))
                .map(parse_oneline_dn)
                .collect();
            (!subjects.is_empty()).then_some(subjects)
        })
        .unwrap_or_else(|| {
            panic!(
                "s_server logged no verified client certificate for {}:\n{}",
                identity.id,
                tail(self.proc.log_text().get(before..).unwrap_or(""), 20)
            )
        });
        for subject in &subjects {
            let cns: Vec<&str> = values(subject, "CN");
            assert_eq!(cns, vec![cn.as_str()], "{} should present CN={cn}; s_server verified {subject:?}", identity.id);
            let orgs = values(subject, "O");
            for group in &identity.groups {
                assert!(
                    orgs.contains(&group.as_str()),
                    "{} should present O={group}; s_server verified {subject:?}",
                    identity.id
                );
            }
        }
    }
}

fn values<'a>(subject: &'a [(String, String)], attr: &str) -> Vec<&'a str> {
    subject.iter().filter(|(k, _)| k == attr).map(|(_, v)| v.as_str()).collect()
}

fn abs(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|e| panic!("{} does not exist: {e}", p.display()))
}
