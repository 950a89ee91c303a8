//! Exported roots against the real consumers (issue 18).
//!
//! The kubeadm plan (three etcd members with an etcd CA of their own) and the
//! classic plan (one CA for everything) are applied with
//! `[secrets] age_recipients`, on the real clock (the consumers check the
//! certificates' validity by theirs). The tree OUT they leave holds no private
//! key in plaintext: a scan of every file, `.certplan/` included, finds no
//! `PRIVATE KEY`. `certplan export --identity` then writes every host of the
//! plan, decrypted, into a root of its own, `ROOTS/hosts/<host>/`, and all
//! that follows reads those roots only, never OUT:
//!
//! - no root holds an age file, and each holds a private key in PEM;
//! - `openssl verify -x509_strict` accepts every certificate of a root
//!   against the CA certificates of that same root, and the root holds no
//!   certificate file that inspect does not list;
//! - three etcd members, each started with the TLS flags of its own root's
//!   `etcd.env` (on-host paths pointed into that root), form a cluster:
//!   etcdctl with the API server's etcd client files, as a control-plane
//!   root's `kube-apiserver.env` names them, finds every member healthy,
//!   writes through each member and reads the value back through the next;
//! - `openssl s_server -WWW` with the API server certificate, key and
//!   `--client-ca-file` that `kube-apiserver.env` names, demanding a client
//!   certificate, serves a file to kubectl with the controller-manager
//!   kubeconfig of that root and the kubelet and kube-proxy kubeconfigs of a
//!   worker's root (each found through its component's `--kubeconfig` flag),
//!   and logs the identity each of them presented.
//!
//! The admin kubeconfig is a cluster file, not a host's: no export holds it,
//! so it is not used here (`tests/kubectl_client.rs` uses it from a plaintext
//! tree).
//!
//! The trees are encrypted to the throwaway test recipient of
//! `tests/secrets.rs` and opened with its identity. These tests need etcd,
//! etcdctl (3.4), kubectl and openssl: `tests/run.sh` installs them and runs
//! everything, ignored tests included.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common;
use crate::etcd_cluster::harness;
use crate::secrets::{IDENTITY, RECIPIENT};

use harness::{
    Applied, EtcdClient, Proc, Run, WebServer, env_args, flag_value, free_port, host_of_rel, nonce, parse_oneline_dn,
    poll, require_tools, rewrite_host_paths, run, scrub_env, tail,
};

const TOOLS: &[&str] = &["etcd", "etcdctl", "kubectl", "openssl"];

/// Where every member and server of these tests listens; the example plans'
/// etcd and API server certificates name it.
const LOOPBACK: &str = "127.0.0.1";

/// How long three fresh members get to form a healthy cluster.
const START_LIMIT: Duration = Duration::from_secs(45);

/// How long one kubectl call may take. Not kubectl's `--request-timeout`:
/// kubectl appends `?timeout=...` to the path, which `s_server -WWW` takes as
/// part of the file name (see `tests/kubectl_client.rs`).
const KUBECTL_LIMIT: Duration = Duration::from_secs(15);

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn kubeadm_exported_roots_serve_etcd_kubectl_and_openssl() {
    exported_roots_suite("kubeadm");
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn classic_exported_roots_serve_etcd_kubectl_and_openssl() {
    exported_roots_suite("classic");
}

/// The whole story for one example plan, named without `.toml`.
fn exported_roots_suite(plan: &str) {
    require_tools(TOOLS);
    let tmp = harness::tempdir("certplan-export-consumers-");
    let tree = Encrypted::apply(tmp.path(), plan);
    tree.expect_no_plaintext_key();

    let hosts = tree.hosts();
    for host in &hosts {
        tree.export(host);
    }
    tree.expect_decrypted_roots(&hosts);

    let mut problems = Vec::new();
    for host in &hosts {
        tree.verify_certificates(host, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "{plan}: `openssl verify -x509_strict` of the exported roots: {} problem(s):\n- {}",
        problems.len(),
        problems.join("\n- ")
    );

    let apiserver_host =
        tree.applied.hosts_of("flags/kube-apiserver/").into_iter().next().unwrap_or_else(|| {
            panic!("{plan}: no flags/kube-apiserver/<host> artifact; ids: {:?}", tree.applied.ids())
        });
    let apiserver = tree.flags(&apiserver_host, "kube-apiserver");
    etcd_from_roots(&tree, &apiserver, &tmp.path().join("etcd"));
    kubectl_from_roots(&tree, &apiserver, &tmp.path().join("kubectl"));
}

// ---------------------------------------------------------------------------
// The encrypted tree and its exported roots

/// An example plan applied with encryption on into OUT, and the roots its
/// hosts are exported into.
struct Encrypted {
    /// `plans/<name>.toml`, for messages.
    name: String,
    /// The plan (with its `[secrets]` table), OUT and what inspect says.
    applied: Applied,
    /// A file holding the test identity.
    identity: PathBuf,
    /// ROOTS: each host is exported into `ROOTS/hosts/<host>/`.
    roots: PathBuf,
    /// Where the test writes what is neither OUT nor a root.
    work: PathBuf,
}

impl Encrypted {
    /// Writes `plans/<name>.toml` with a `[secrets]` table naming the test
    /// recipient into `work/plan.toml` and applies it into `work/out` with
    /// `--now` the time of the call. A new tree needs no identity.
    fn apply(work: &Path, name: &str) -> Encrypted {
        let source =
            fs::read_to_string(common::plan_path(name)).unwrap_or_else(|e| panic!("read plans/{name}.toml: {e}"));
        assert!(!source.contains("[secrets]"), "plans/{name}.toml already has a [secrets] table");
        let source = format!("{source}\n[secrets]\nage_recipients = [\"{RECIPIENT}\"]\n");
        let plan = common::write_plan(work, &source);
        let identity = work.join("identity.txt");
        fs::write(&identity, format!("{IDENTITY}\n")).expect("write the test identity");
        let out = work.join("out");
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("a time with no nanoseconds")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format the clock as RFC 3339");
        let output = certplan()
            .arg("apply")
            .arg(&plan)
            .arg("--out")
            .arg(&out)
            .args(["--now", now.as_str(), "--quiet"])
            .output()
            .expect("run certplan apply");
        assert!(
            output.status.success(),
            "apply of plans/{name}.toml with age recipients fails:\n{}",
            common::describe(&output)
        );
        let plan_toml: toml::Table = source.parse().expect("the plan is TOML");
        let doc = common::inspect(&plan, &out);
        Encrypted {
            name: name.to_string(),
            applied: Applied { out, plan, plan_toml, doc },
            identity,
            roots: work.join("roots"),
            work: work.to_path_buf(),
        }
    }

    /// Every host inspect places a file on, sorted.
    fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .applied
            .artifacts()
            .iter()
            .filter_map(|artifact| artifact["files"].as_array())
            .flatten()
            .filter_map(|file| file["host"].as_str().map(str::to_string))
            .collect();
        hosts.sort();
        hosts.dedup();
        assert!(hosts.len() >= 4, "{}: expected control-plane and worker hosts, inspect lists {hosts:?}", self.name);
        hosts
    }

    /// The root `host` is exported into: `ROOTS/hosts/<host>`.
    fn root(&self, host: &str) -> PathBuf {
        self.roots.join("hosts").join(host)
    }

    /// `certplan export PLAN --out OUT --host HOST --to ROOT --identity ID`,
    /// which must succeed.
    fn export(&self, host: &str) {
        let root = self.root(host);
        fs::create_dir_all(&root).unwrap_or_else(|e| panic!("create {}: {e}", root.display()));
        let output = certplan()
            .arg("export")
            .arg(&self.applied.plan)
            .arg("--out")
            .arg(&self.applied.out)
            .args(["--host", host])
            .arg("--to")
            .arg(&root)
            .arg("--identity")
            .arg(&self.identity)
            .output()
            .expect("run certplan export");
        assert!(
            output.status.success(),
            "{}: `certplan export --host {host} --to {}` fails:\n{}",
            self.name,
            root.display(),
            common::describe(&output)
        );
    }

    /// OUT holds encrypted files, and no file of it, `.certplan/` included,
    /// holds `PRIVATE KEY`: whatever the consumers read below comes from the
    /// decrypted exports.
    fn expect_no_plaintext_key(&self) {
        let files = files_under(&self.applied.out);
        let sealed = files.iter().filter(|file| file.extension().is_some_and(|ext| ext == "age")).count();
        assert!(
            sealed > 0,
            "{}: OUT holds no .age file: the plan's [secrets] table did not turn encryption on",
            self.name
        );
        let plaintext: Vec<String> = files
            .iter()
            .filter(|file| contains(&read(file), b"PRIVATE KEY"))
            .map(|file| file.display().to_string())
            .collect();
        assert!(
            plaintext.is_empty(),
            "{}: with age recipients, these files of OUT hold `PRIVATE KEY` in plaintext: {plaintext:?}",
            self.name
        );
    }

    /// No root holds an age file (by name or by content), and each holds at
    /// least one private key in PEM.
    fn expect_decrypted_roots(&self, hosts: &[String]) {
        for host in hosts {
            let files = files_under(&self.root(host));
            let sealed: Vec<String> = files
                .iter()
                .filter(|file| {
                    file.extension().is_some_and(|ext| ext == "age")
                        || contains(&read(file), b"BEGIN AGE ENCRYPTED FILE")
                })
                .map(|file| file.display().to_string())
                .collect();
            assert!(sealed.is_empty(), "{}: the exported root of {host} holds age files: {sealed:?}", self.name);
            assert!(
                files.iter().any(|file| contains(&read(file), b"PRIVATE KEY-----")),
                "{}: the exported root of {host} holds no private key in plaintext; its files: {files:?}",
                self.name
            );
        }
    }

    /// `openssl verify -x509_strict -CAfile CAS CERT...` of every certificate
    /// inspect lists on `host`, read from its exported root, where CAS is
    /// the concatenation of the root's CA certificates (files of `ca`
    /// artifacts); and the root holds no other certificate file.
    fn verify_certificates(&self, host: &str, problems: &mut Vec<String>) {
        let prefix = format!("hosts/{host}/");
        let mut anchors = Vec::new();
        let mut certs = Vec::new();
        for artifact in self.applied.artifacts() {
            for rel in harness::files_of_role(artifact, "cert").into_iter().filter(|rel| rel.starts_with(&prefix)) {
                let path = self.roots.join(&rel);
                if artifact["kind"] == "ca" {
                    anchors.push(path.clone());
                }
                certs.push(path);
            }
        }
        if anchors.is_empty() {
            problems.push(format!("{host}: inspect lists no CA certificate on the host"));
            return;
        }
        let unlisted: Vec<String> = files_under(&self.root(host))
            .into_iter()
            .filter(|file| read(file).starts_with(b"-----BEGIN CERTIFICATE"))
            .filter(|file| !certs.contains(file))
            .map(|file| file.display().to_string())
            .collect();
        if !unlisted.is_empty() {
            problems.push(format!("{host}: certificate files in the root that inspect does not list: {unlisted:?}"));
        }

        let cas = self.work.join("cas").join(format!("{host}.pem"));
        fs::create_dir_all(cas.parent().expect("a parent")).expect("create the CA bundle directory");
        let mut bundle = Vec::new();
        for anchor in &anchors {
            bundle.extend(read(anchor));
        }
        fs::write(&cas, bundle).expect("write the root's CA certificates into one file");
        let mut cmd = Command::new("openssl");
        cmd.args(["verify", "-x509_strict", "-CAfile"]).arg(&cas).args(&certs);
        let got = run(&mut cmd, Duration::from_mins(1));
        let refused: Vec<String> = certs
            .iter()
            .map(|cert| cert.display().to_string())
            .filter(|cert| !got.stdout.lines().any(|line| line.strip_suffix(": OK") == Some(cert.as_str())))
            .collect();
        if !got.ok() || !refused.is_empty() {
            problems.push(format!(
                "{host}: not accepted against the root's CA certificates {anchors:?}: {refused:?}\n{}",
                got.describe()
            ));
        }
    }

    /// `<COMPONENT>_TLS_ARGS` of the flag file of `component` in `host`'s
    /// exported root, its on-host paths pointed into that root.
    fn flags(&self, host: &str, component: &str) -> Flags {
        let id = format!("flags/{component}/{host}");
        let rel = self
            .applied
            .try_artifact(&id)
            .map(|artifact| harness::files_of_role(artifact, "flags"))
            .and_then(|files| files.into_iter().find(|rel| host_of_rel(rel) == Some(host)))
            .unwrap_or_else(|| panic!("{}: no flag file for {id}; artifact ids: {:?}", self.name, self.applied.ids()));
        let env = self.roots.join(&rel);
        let variable = format!("{}_TLS_ARGS", component.to_ascii_uppercase().replace('-', "_"));
        let root = self.root(host);
        let args = rewrite_host_paths(&env_args(&env, &variable), &root);
        Flags { host: host.to_string(), what: format!("{variable} of {}", env.display()), args, root }
    }
}

/// One component's TLS flags from a host's exported root.
struct Flags {
    host: String,
    /// The variable and the flag file, for messages.
    what: String,
    args: Vec<String>,
    /// The host's exported root, which every file they name must be in.
    root: PathBuf,
}

impl Flags {
    /// The file `flag` names: it must exist inside the root (symbolic links
    /// resolved). Returned absolute.
    fn file(&self, flag: &str) -> PathBuf {
        let value =
            flag_value(&self.args, flag).unwrap_or_else(|| panic!("{}: no {flag} in {:?}", self.what, self.args));
        let path = PathBuf::from(&value)
            .canonicalize()
            .unwrap_or_else(|e| panic!("{}: {flag} names {value}, which is not in the exported root: {e}", self.what));
        let root = self.root.canonicalize().expect("the exported root exists");
        assert!(
            path.starts_with(&root) && path.is_file(),
            "{}: {flag} names {value}, which is not a file of the exported root {}",
            self.what,
            root.display()
        );
        path
    }
}

/// A `certplan` command that sees no age identity from the environment the
/// suite runs in: each call gives one itself, or needs none.
fn certplan() -> Command {
    let mut command = common::certplan();
    command.env_remove("CERTPLAN_AGE_IDENTITY").env_remove("CERTPLAN_AGE_IDENTITY_FILE").env("NO_COLOR", "1");
    command
}

/// Every file under `dir` (not directories), sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let entry = entry.expect("a directory entry");
            if entry.file_type().expect("the type of a directory entry").is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    files
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

// ---------------------------------------------------------------------------
// etcd

/// Three members from the etcd hosts' roots; etcdctl with the client files
/// of the control-plane root `apiserver` is from: every member healthy, a
/// write through each member read back through the next.
fn etcd_from_roots(tree: &Encrypted, apiserver: &Flags, work: &Path) {
    let hosts = tree.applied.hosts_of("flags/etcd/");
    assert_eq!(
        hosts.len(),
        3,
        "{}: the plan has three etcd hosts (flags/etcd/<host>); inspect lists {hosts:?}",
        tree.name
    );
    let members: Vec<Flags> = hosts.iter().map(|host| tree.flags(host, "etcd")).collect();
    for member in &members {
        for flag in [
            "--cert-file",
            "--key-file",
            "--trusted-ca-file",
            "--peer-cert-file",
            "--peer-key-file",
            "--peer-trusted-ca-file",
        ] {
            member.file(flag);
        }
    }
    let client = EtcdClient {
        ca: apiserver.file("--etcd-cafile"),
        cert: apiserver.file("--etcd-certfile"),
        key: apiserver.file("--etcd-keyfile"),
    };
    let cluster = EtcdCluster::start(&hosts, &members, &client, work);

    let endpoints = cluster.all_endpoints();
    let health = client.etcdctl(&endpoints, &["endpoint", "health"], ("3s", "5s"));
    let said: Vec<&str> = health.stdout.lines().chain(health.stderr.lines()).collect();
    let unhealthy: Vec<&str> = endpoints
        .split(',')
        .filter(|endpoint| !said.iter().any(|line| line.starts_with(&format!("{endpoint} is healthy"))))
        .collect();
    assert!(
        health.ok() && unhealthy.is_empty(),
        "{}: etcdctl endpoint health with the client files of {}'s exported root: {unhealthy:?} not healthy:\n{}\n{}",
        tree.name,
        apiserver.host,
        health.describe(),
        cluster.logs()
    );

    let n = hosts.len();
    for (i, host) in hosts.iter().enumerate() {
        let key = format!("/certplan-export/{}", nonce());
        let value = format!("value-{}", nonce());
        let put = client.etcdctl(&cluster.endpoint(i), &["put", &key, &value], ("3s", "5s"));
        assert!(
            put.ok() && put.stdout.trim() == "OK",
            "{}: etcdctl put through {} with the client files of {}'s exported root:\n{}\n{}",
            tree.name,
            host,
            apiserver.host,
            put.describe(),
            cluster.logs()
        );
        let next = (i + 1) % n;
        let get = client.etcdctl(&cluster.endpoint(next), &["get", &key, "--print-value-only"], ("3s", "5s"));
        assert!(
            get.ok() && get.stdout.trim() == value,
            "{}: etcdctl get through {} of what was put through {} should return {value:?}:\n{}\n{}",
            tree.name,
            hosts[next],
            host,
            get.describe(),
            cluster.logs()
        );
    }
}

/// Running members; dropping it kills every one.
struct EtcdCluster {
    members: Vec<Proc>,
    client_ports: Vec<u16>,
}

impl EtcdCluster {
    /// One member per host, each with the TLS flags of its own root, on
    /// free loopback ports, healthy by `client`. Retries with new ports when
    /// a member could not bind.
    fn start(hosts: &[String], flags: &[Flags], client: &EtcdClient, work: &Path) -> EtcdCluster {
        let mut failures = Vec::new();
        for attempt in 0..3 {
            let dir = work.join(format!("attempt-{attempt}"));
            fs::create_dir_all(&dir).expect("create the etcd work directory");
            let ports: Vec<(u16, u16)> = hosts.iter().map(|_| (free_port(LOOPBACK), free_port(LOOPBACK))).collect();
            let initial_cluster = hosts
                .iter()
                .zip(&ports)
                .map(|(host, (_, peer))| format!("{host}=https://{LOOPBACK}:{peer}"))
                .collect::<Vec<_>>()
                .join(",");
            let token = format!("certplan-export-{}", nonce());
            let mut members = Vec::new();
            for ((host, member), (client_port, peer_port)) in hosts.iter().zip(flags).zip(&ports) {
                let client_url = format!("https://{LOOPBACK}:{client_port}");
                let peer_url = format!("https://{LOOPBACK}:{peer_port}");
                let mut cmd = Command::new("etcd");
                scrub_env(&mut cmd)
                    .args(&member.args)
                    .arg(format!("--name={host}"))
                    .arg(format!("--data-dir={}", dir.join(format!("{host}.etcd")).display()))
                    .arg(format!("--listen-client-urls={client_url}"))
                    .arg(format!("--advertise-client-urls={client_url}"))
                    .arg(format!("--listen-peer-urls={peer_url}"))
                    .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                    .arg(format!("--initial-cluster={initial_cluster}"))
                    .arg("--initial-cluster-state=new")
                    .arg(format!("--initial-cluster-token={token}"));
                members.push(Proc::spawn(&format!("etcd {host}"), &mut cmd, &dir.join(format!("{host}.log"))));
            }
            let mut cluster = EtcdCluster { members, client_ports: ports.iter().map(|(client, _)| *client).collect() };
            match cluster.wait_healthy(client) {
                Ok(()) => return cluster,
                Err(why) if why.contains("address already in use") => failures.push(why),
                Err(why) => panic!("three etcd members started from the exported roots did not form a cluster: {why}"),
            }
        }
        panic!("etcd could not bind its ports in 3 attempts:\n{}", failures.join("\n---\n"));
    }

    /// Waits until `etcdctl endpoint health` with `client` passes on every
    /// member; fails early when a member exits.
    fn wait_healthy(&mut self, client: &EtcdClient) -> Result<(), String> {
        let endpoints = self.all_endpoints();
        let mut last: Option<Run> = None;
        let outcome = poll(START_LIMIT, || {
            for member in &mut self.members {
                if let Some(status) = member.exited() {
                    return Some(Err(format!("{} exited ({status})", member.name)));
                }
            }
            let probe = client.etcdctl(&endpoints, &["endpoint", "health"], ("3s", "5s"));
            let ok = probe.ok();
            last = Some(probe);
            ok.then_some(Ok(()))
        });
        let last = last.map(|r| r.describe()).unwrap_or_default();
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(why)) => Err(format!("{why}\n{}", self.logs())),
            None => Err(format!(
                "not every member was healthy after {START_LIMIT:?}; last health check:\n{last}\n{}",
                self.logs()
            )),
        }
    }

    /// The tail of every member's log, for failure messages.
    fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("--- {} ({}):\n{}", m.name, m.log.display(), tail(&m.log_text(), 20)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn endpoint(&self, i: usize) -> String {
        format!("https://{LOOPBACK}:{}", self.client_ports[i])
    }

    fn all_endpoints(&self) -> String {
        (0..self.client_ports.len()).map(|i| self.endpoint(i)).collect::<Vec<_>>().join(",")
    }
}

// ---------------------------------------------------------------------------
// kubectl

/// `openssl s_server -WWW` with the API server files of the control-plane
/// root `apiserver` is from; kubectl with the controller-manager kubeconfig
/// of that root and the kubelet and kube-proxy kubeconfigs of a worker's
/// root gets a file from it, each presenting its own identity.
fn kubectl_from_roots(tree: &Encrypted, apiserver: &Flags, work: &Path) {
    let www = work.join("www");
    let logs = work.join("logs");
    for dir in [&www, &logs] {
        fs::create_dir_all(dir).expect("create a work directory");
    }
    let file_name = format!("certplan-export-{}.txt", nonce());
    let content = format!("served from an exported root {}", nonce());
    fs::write(www.join(&file_name), &content).expect("write the probe file");
    let path = format!("/{file_name}");

    let files = ["--tls-cert-file", "--tls-private-key-file", "--client-ca-file"].map(|flag| apiserver.file(flag));
    let label = format!("of {}'s exported root", apiserver.host);
    let server = WebServer::start(&label, [&files[0], &files[1], &files[2]], &www, &logs);

    let worker = tree
        .applied
        .hosts_of("flags/kubelet/")
        .into_iter()
        .find(|host| tree.applied.try_artifact(&format!("flags/kube-apiserver/{host}")).is_none())
        .unwrap_or_else(|| panic!("{}: no worker (a kubelet host without an API server)", tree.name));
    let kubeconfigs = [
        (
            tree.flags(&apiserver.host, "kube-controller-manager").file("--kubeconfig"),
            "system:kube-controller-manager".to_string(),
        ),
        (tree.flags(&worker, "kubelet").file("--kubeconfig"), format!("system:node:{worker}")),
        (tree.flags(&worker, "kube-proxy").file("--kubeconfig"), "system:kube-proxy".to_string()),
    ];

    let mut failures = Vec::new();
    for (kubeconfig, cn) in &kubeconfigs {
        let text = String::from_utf8_lossy(&read(kubeconfig)).into_owned();
        assert!(
            text.contains("client-certificate-data:") && text.contains("client-key-data:"),
            "{}: {} should embed its client certificate and key (this test points no path of a kubeconfig into \
             the root):\n{text}",
            tree.name,
            kubeconfig.display()
        );
        let before = server.proc.log_text().len();
        let got = server.kubectl(kubeconfig, &path, KUBECTL_LIMIT);
        let since = |proc: &Proc| proc.log_text().get(before..).unwrap_or("").to_string();
        if !got.ok() || got.stdout != content {
            failures.push(format!(
                "kubectl with {} should get {path} ({content:?}):\n{}\n--- s_server log:\n{}",
                kubeconfig.display(),
                got.describe(),
                tail(&since(&server.proc), 15)
            ));
            continue;
        }
        let presented = poll(Duration::from_secs(5), || {
            since(&server.proc)
                .lines()
                .filter_map(|line| line.strip_prefix("depth=0 "))
                .map(parse_oneline_dn)
                .any(|subject| subject.iter().any(|(attr, value)| attr == "CN" && value == cn))
                .then_some(())
        });
        if presented.is_none() {
            failures.push(format!(
                "kubectl with {} got the file, but s_server logged no verified client certificate with CN={cn}:\n{}",
                kubeconfig.display(),
                tail(&since(&server.proc), 15)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} of {} kubectl calls against the API server certificate of {}'s exported root failed:\n\n{}",
        tree.name,
        failures.len(),
        kubeconfigs.len(),
        apiserver.host,
        failures.join("\n\n")
    );
}
