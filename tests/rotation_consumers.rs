//! Staged CA rotation (issue 16) against real consumers of the trees.
//!
//! `tests/rotation.rs` shows with `openssl verify` that any two adjacent
//! steps of a rotation trust each other. Here the consumers themselves say so:
//!
//! - `etcd_members_stay_healthy_through_an_etcd_ca_rotation`: three etcd
//!   members of the kubeadm plan (its own `etcd` CA) start from the tree before
//!   the rotation, each reading its certificates from its own copy of its
//!   host's tree. For each step (`trust`, `issue`, `retire`) the members are
//!   rolled one at a time: stopped, given the host's files of the new step,
//!   restarted on the same data directory. After every single restart, with
//!   members one step apart, every member is healthy, no member logged a
//!   certificate error, and etcdctl reads and writes through every member with
//!   the API server's etcd client certificate and `--etcd-cafile` of the step
//!   before and of the new step. At the end, the client files of the tree
//!   before the rotation are refused.
//! - `kubectl_reaches_the_apiserver_of_either_adjacent_step`: the cluster CA
//!   (`kubernetes`) of the kubeadm plan rotates. For every two adjacent steps,
//!   `openssl s_server` with either step's API server certificate and key and
//!   its `--client-ca-file` (demanding and verifying a client certificate)
//!   serves a file to kubectl with either step's admin kubeconfig and
//!   controller-manager kubeconfig. kubectl with the admin kubeconfig from
//!   before the rotation must fail against the server of `retire`.
//!
//! These tests need etcd, etcdctl (3.4), kubectl and openssl: `tests/run.sh`
//! installs them and runs everything, ignored tests included.

use crate::common;
use crate::etcd_cluster::harness;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use harness::{
    Applied, Proc, Run, WebServer, env_args, flag_value, free_port, host_of_rel, nonce, poll, require_tools,
    rewrite_host_paths, scrub_env, tail,
};

/// The steps of a staged rotation that change the tree, in order, with the
/// `rotation` line `[cas.NAME]` holds at each (`None`: no line). Deleting the
/// line after `retire` changes nothing (`tests/rotation.rs` shows it).
const STEPS: [(&str, Option<&str>); 4] =
    [("before", None), ("trust", Some("trust")), ("issue", Some("issue")), ("retire", Some("retire"))];

/// Where every member and server of these tests listens; the example plans'
/// server certificates name it.
const LOOPBACK: &str = "127.0.0.1";

/// How long three fresh members get to form a healthy cluster.
const START_LIMIT: Duration = Duration::from_secs(45);

/// How long a restarted member gets until every member is healthy again.
const RESTART_LIMIT: Duration = Duration::from_secs(30);

/// How long one kubectl call may take. Not kubectl's `--request-timeout`:
/// kubectl appends `?timeout=...` to the path, which `s_server -WWW` takes as
/// part of the file name (see `tests/kubectl_client.rs`).
const KUBECTL_LIMIT: Duration = Duration::from_secs(15);

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn etcd_members_stay_healthy_through_an_etcd_ca_rotation() {
    require_tools(&["etcd", "etcdctl"]);
    let tmp = harness::tempdir("certplan-rotation-etcd-");
    let rotation = Rotation::new(tmp.path(), "etcd");
    let before = rotation.step(0);
    let applied = rotation.applied();

    let hosts = applied.hosts_of("cert/etcd-server/");
    assert_eq!(
        hosts.len(),
        3,
        "the kubeadm plan has three etcd hosts (cert/etcd-server/<host>); inspect lists {hosts:?}"
    );
    // Each member's flag file, relative to its host's root.
    let env_files: Vec<PathBuf> = hosts
        .iter()
        .map(|host| {
            let rel = host_file(&applied, &format!("flags/etcd/{host}"), "flags", host);
            Path::new(&rel)
                .strip_prefix(format!("hosts/{host}"))
                .expect("a host's file is under hosts/<host>/")
                .to_path_buf()
        })
        .collect();
    let (apiserver_host, apiserver_env) = apiserver_flags(&applied);
    let client_of = |tree: &Tree| EtcdClient::of(tree, &apiserver_host, &apiserver_env);

    let before_client = client_of(&before);
    let mut cluster = EtcdCluster::start(&hosts, &env_files, &before, &before_client, &tmp.path().join("etcd"));

    let mut previous = before;
    for index in 1..STEPS.len() {
        let tree = rotation.step(index);
        let old_client = client_of(&previous);
        let new_client = client_of(&tree);
        for member in 0..cluster.members.len() {
            let marks = cluster.log_marks();
            cluster.roll(member, &tree, &new_client);
            cluster.expect_mixed_state_works(&[&old_client, &new_client], &marks);
        }
        previous = tree;
    }

    // Every member is on `retire` now: the old CA is trusted nowhere, so the
    // client files from before the rotation must be refused (and the test
    // above could have failed).
    let first = &cluster.members[0];
    let log_before = first.log_text().len();
    let attempt =
        before_client.files.etcdctl(&cluster.endpoint(0), &["get", "/certplan-rotation", "--prefix"], ("1s", "2s"));
    assert!(
        !attempt.ok(),
        "with every member on `retire`, etcd accepted the API server's etcd client files from before the \
         rotation (old CA); they must be refused:\n{}",
        attempt.describe()
    );
    let logged = poll(Duration::from_secs(5), || {
        first
            .log_text()
            .get(log_before..)
            .unwrap_or("")
            .lines()
            .find(|l| l.contains("rejected connection"))
            .map(str::to_string)
    });
    assert!(
        logged.is_some(),
        "etcdctl with the client files from before the rotation failed, but {} logged no rejected connection \
         (so it may have failed for another reason than the retired CA):\n{}\n--- member log:\n{}",
        first.host,
        attempt.describe(),
        tail(first.log_text().get(log_before..).unwrap_or(""), 20)
    );
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn kubectl_reaches_the_apiserver_of_either_adjacent_step() {
    require_tools(&["kubectl", "openssl"]);
    let tmp = harness::tempdir("certplan-rotation-kubectl-");
    let rotation = Rotation::new(tmp.path(), "kubernetes");
    let mut trees = vec![rotation.step(0)];
    let applied = rotation.applied();
    trees.extend((1..STEPS.len()).map(|index| rotation.step(index)));

    let (host, apiserver_env) = apiserver_flags(&applied);
    let admin = applied
        .rel_files("kubeconfig/users/admin", "kubeconfig")
        .into_iter()
        .next()
        .expect("kubeconfig/users/admin lists a kubeconfig file");
    let controller_manager = host_file(&applied, "kubeconfig/kube-controller-manager", "kubeconfig", &host);
    let kubeconfigs = [("admin", admin.as_str()), ("controller-manager", controller_manager.as_str())];

    // The document root of every server: one file nobody could guess.
    let www = tmp.path().join("www");
    let logs = tmp.path().join("logs");
    let scratch = tmp.path().join("kubeconfigs");
    for dir in [&www, &logs, &scratch] {
        fs::create_dir_all(dir).expect("create a work directory");
    }
    let file_name = format!("certplan-rotation-{}.txt", nonce());
    let content = format!("served across a CA rotation {}", nonce());
    fs::write(www.join(&file_name), &content).expect("write the probe file");
    let path = format!("/{file_name}");

    // One server per step, each with that step's API server files.
    let servers: Vec<ApiServer> = trees
        .iter()
        .map(|tree| ApiServer::start(tree, &apiserver_args(tree, &host, &apiserver_env), &www, &logs))
        .collect();

    let mut failures = Vec::new();
    let mut calls = 0;
    for pair in 0..trees.len() - 1 {
        for server in [&servers[pair], &servers[pair + 1]] {
            for client in [&trees[pair], &trees[pair + 1]] {
                for (name, rel) in kubeconfigs {
                    let kubeconfig = usable_kubeconfig(client, rel, &scratch);
                    let log_before = server.server.proc.log_text().len();
                    let got = server.server.kubectl(&kubeconfig, &path, KUBECTL_LIMIT);
                    calls += 1;
                    if !got.ok() || got.stdout != content {
                        failures.push(format!(
                            "kubectl with the {name} kubeconfig of `{}` ({rel}) against the API server of `{}` \
                             (https://{LOOPBACK}:{}) should get {path} ({content:?}):\n{}\n--- s_server log:\n{}",
                            client.step,
                            server.step,
                            server.server.port,
                            got.describe(),
                            tail(server.server.proc.log_text().get(log_before..).unwrap_or(""), 15)
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(calls, 24, "3 pairs x 2 servers x 2 clients x 2 kubeconfigs");
    assert!(
        failures.is_empty(),
        "{} of {calls} kubectl calls across adjacent steps of the rotation of ca/kubernetes failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );

    // Not adjacent: `retire` trusts only the new CA and presents a
    // certificate of it; the admin kubeconfig from before knows only the old.
    let old_admin = usable_kubeconfig(&trees[0], &admin, &scratch);
    let retired = &servers[STEPS.len() - 1];
    let got = retired.server.kubectl(&old_admin, &path, KUBECTL_LIMIT);
    assert!(
        !got.ok() && !got.stdout.contains(&content) && got.stderr.contains("x509:"),
        "kubectl with the admin kubeconfig from before the rotation must fail against the API server of \
         `retire` with a certificate (x509) error; the old CA is retired:\n{}\n--- s_server log:\n{}",
        got.describe(),
        tail(&retired.server.proc.log_text(), 15)
    );
}

// ---------------------------------------------------------------------------
// The plan, its steps and their trees

/// The kubeadm plan in a directory of its own, taken through the staged
/// rotation of one CA, every step applied with one clock.
struct Rotation {
    ca: &'static str,
    /// The plan as written, without a `rotation` line.
    source: String,
    plan: PathBuf,
    out: PathBuf,
    work: PathBuf,
    /// `--now` of every apply: the time the test started, so that the
    /// certificates are valid by the consumers' clocks.
    now: String,
}

/// A copy of the tree as one step left it.
struct Tree {
    step: &'static str,
    dir: PathBuf,
}

impl Rotation {
    fn new(work: &Path, ca: &'static str) -> Rotation {
        let source = fs::read_to_string(common::plan_path("kubeadm")).expect("read the kubeadm example plan");
        let plan = common::write_plan(work, &source);
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("a time with no nanoseconds")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format the clock as RFC 3339");
        Rotation { ca, source, plan, out: work.join("out"), work: work.to_path_buf(), now }
    }

    /// Applies step `index` of [`STEPS`] with
    /// `certplan apply PLAN --out OUT --now T --quiet` and returns a copy of
    /// the tree it leaves.
    fn step(&self, index: usize) -> Tree {
        let (step, line) = STEPS[index];
        fs::write(&self.plan, crate::rotation::with_rotation(&self.source, &format!("[cas.{}]", self.ca), line))
            .expect("write the plan");
        let output = common::certplan()
            .arg("apply")
            .arg(&self.plan)
            .arg("--out")
            .arg(&self.out)
            .args(["--now", self.now.as_str(), "--quiet"])
            .env("NO_COLOR", "1")
            .output()
            .expect("run certplan apply");
        assert!(
            output.status.success(),
            "apply of step `{step}` of the rotation of ca/{} fails:\n{}",
            self.ca,
            common::describe(&output)
        );
        let dir = self.work.join("steps").join(format!("{index}-{step}"));
        copy_dir(&self.out, &dir);
        Tree { step, dir }
    }

    /// What inspect says about the tree as it is now. The tests take from it
    /// only where files are, which no step moves.
    fn applied(&self) -> Applied {
        let plan_toml: toml::Table = self.source.parse().expect("the kubeadm plan is TOML");
        Applied {
            out: self.out.clone(),
            plan: self.plan.clone(),
            plan_toml,
            doc: common::inspect(&self.plan, &self.out),
        }
    }
}

/// Copies the directory `from` to `to`, which is created.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("the type of a directory entry").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", entry.path().display(), target.display()));
        }
    }
}

/// The relative path of the file of `role` of artifact `id` on `host`.
fn host_file(applied: &Applied, id: &str, role: &str, host: &str) -> String {
    applied
        .rel_files(id, role)
        .into_iter()
        .find(|rel| host_of_rel(rel) == Some(host))
        .unwrap_or_else(|| panic!("{id} lists no {role} file on {host}"))
}

/// The first control-plane host and its `kube-apiserver.env`, relative to
/// the tree.
fn apiserver_flags(applied: &Applied) -> (String, String) {
    let host = applied
        .hosts_of("flags/kube-apiserver/")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no flags/kube-apiserver/<host> artifact; ids: {:?}", applied.ids()));
    let env = host_file(applied, &format!("flags/kube-apiserver/{host}"), "flags", &host);
    assert!(env.ends_with("/kube-apiserver.env"), "the API server's flag file should be kube-apiserver.env, is {env}");
    (host, env)
}

/// `KUBE_APISERVER_TLS_ARGS` of `tree`, on-host paths pointed into the
/// tree's copy of `host`.
fn apiserver_args(tree: &Tree, host: &str, env: &str) -> Vec<String> {
    let raw = env_args(&tree.dir.join(env), "KUBE_APISERVER_TLS_ARGS");
    rewrite_host_paths(&raw, &tree.dir.join("hosts").join(host))
}

/// The file a flag names, which must exist.
fn file_flag(args: &[String], flag: &str, what: &str) -> PathBuf {
    let path = PathBuf::from(flag_value(args, flag).unwrap_or_else(|| panic!("{what}: no {flag} in {args:?}")));
    assert!(path.is_file(), "{what}: {flag} names {}, which is not in the tree", path.display());
    path.canonicalize().unwrap_or_else(|e| panic!("{what}: {flag}: {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// etcd

/// The API server's etcd client certificate and key and the trust file of
/// its `--etcd-cafile`, from one step's tree.
struct EtcdClient {
    step: &'static str,
    files: harness::EtcdClient,
}

impl EtcdClient {
    fn of(tree: &Tree, host: &str, env: &str) -> EtcdClient {
        let args = apiserver_args(tree, host, env);
        let what = format!("{env} of `{}`", tree.step);
        EtcdClient {
            step: tree.step,
            files: harness::EtcdClient {
                ca: file_flag(&args, "--etcd-cafile", &what),
                cert: file_flag(&args, "--etcd-certfile", &what),
                key: file_flag(&args, "--etcd-keyfile", &what),
            },
        }
    }
}

/// One member: its own copy of its host's files, which changes only when
/// the member is rolled (etcd reads its certificate files again on every
/// handshake), its data directory, its ports, and its process.
struct Member {
    host: String,
    /// `etcd.env`, relative to the host's root.
    env: PathBuf,
    /// The member's copy of `DIR/hosts/<host>/` of the step it is on.
    root: PathBuf,
    data: PathBuf,
    /// Where its copy, data and logs live.
    home: PathBuf,
    client_port: u16,
    peer_port: u16,
    /// The step its files are from.
    step: &'static str,
    starts: usize,
    /// `None` only between a stop and a start; dropping it kills etcd.
    proc: Option<Proc>,
}

impl Member {
    /// Starts etcd with the TLS flags of the member's copy of `etcd.env`
    /// (paths pointed into the copy), on its ports and data directory.
    fn launch(&mut self, initial_cluster: &str, token: &str, state: &str) {
        self.proc = None;
        let raw = env_args(&self.root.join(&self.env), "ETCD_TLS_ARGS");
        let tls = rewrite_host_paths(&raw, &self.root);
        for flag in ["--cert-file", "--key-file", "--trusted-ca-file", "--peer-cert-file", "--peer-key-file"] {
            let file = flag_value(&tls, flag).map(PathBuf::from);
            assert!(
                file.as_ref().is_some_and(|f| f.starts_with(&self.root) && f.is_file()),
                "{} of `{}`: {flag} should name a file of the host: {raw:?}",
                self.env.display(),
                self.step
            );
        }
        self.starts += 1;
        let client_url = format!("https://{LOOPBACK}:{}", self.client_port);
        let peer_url = format!("https://{LOOPBACK}:{}", self.peer_port);
        let mut cmd = Command::new("etcd");
        scrub_env(&mut cmd)
            .args(tls)
            .arg(format!("--name={}", self.host))
            .arg(format!("--data-dir={}", self.data.display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster={initial_cluster}"))
            .arg(format!("--initial-cluster-state={state}"))
            .arg(format!("--initial-cluster-token={token}"));
        let log = self.home.join(format!("etcd-{}-{}.log", self.starts, self.step));
        self.proc = Some(Proc::spawn(&format!("etcd {} on `{}`", self.host, self.step), &mut cmd, &log));
    }

    fn log_text(&self) -> String {
        self.proc.as_ref().map_or_else(String::new, Proc::log_text)
    }

    fn log_path(&self) -> Option<PathBuf> {
        self.proc.as_ref().map(|p| p.log.clone())
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.proc.as_mut().and_then(Proc::exited)
    }
}

/// Running members; dropping it kills every one.
struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
}

impl EtcdCluster {
    /// One member per host, from `tree`, healthy by `client`. Retries with
    /// new ports when a member could not bind.
    fn start(hosts: &[String], env_files: &[PathBuf], tree: &Tree, client: &EtcdClient, work: &Path) -> EtcdCluster {
        let mut failures = Vec::new();
        for attempt in 0..3 {
            let dir = work.join(format!("attempt-{attempt}"));
            let ports: Vec<(u16, u16)> = hosts.iter().map(|_| (free_port(LOOPBACK), free_port(LOOPBACK))).collect();
            let initial_cluster = hosts
                .iter()
                .zip(&ports)
                .map(|(host, (_, peer))| format!("{host}=https://{LOOPBACK}:{peer}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut cluster =
                EtcdCluster { members: Vec::new(), initial_cluster, token: format!("certplan-rotation-{}", nonce()) };
            for ((host, env), (client_port, peer_port)) in hosts.iter().zip(env_files).zip(&ports) {
                let home = dir.join(host);
                let root = home.join("root");
                copy_dir(&tree.dir.join("hosts").join(host), &root);
                let mut member = Member {
                    host: host.clone(),
                    env: env.clone(),
                    root,
                    data: home.join("data"),
                    home,
                    client_port: *client_port,
                    peer_port: *peer_port,
                    step: tree.step,
                    starts: 0,
                    proc: None,
                };
                member.launch(&cluster.initial_cluster, &cluster.token, "new");
                cluster.members.push(member);
            }
            match cluster.wait_healthy(client, START_LIMIT) {
                Ok(()) => return cluster,
                Err(why) if why.contains("address already in use") => failures.push(why),
                Err(why) => panic!("three etcd members on `{}` did not form a healthy cluster: {why}", tree.step),
            }
        }
        panic!("etcd could not bind its ports in 3 attempts:\n{}", failures.join("\n---\n"));
    }

    /// Rolls member `i` to `tree`: stops it, replaces its files with the
    /// host's files of `tree`, starts it again on its data directory and
    /// ports, and waits until every member is healthy by `client`.
    fn roll(&mut self, i: usize, tree: &Tree, client: &EtcdClient) {
        for attempt in 0..3 {
            let member = &mut self.members[i];
            member.proc = None;
            if attempt == 0 {
                fs::remove_dir_all(&member.root).expect("remove the member's files of the step before");
                copy_dir(&tree.dir.join("hosts").join(&member.host), &member.root);
                member.step = tree.step;
            }
            // The data directory holds the membership: etcd ignores the
            // --initial-cluster flags and rejoins as the member it was.
            member.launch(&self.initial_cluster, &self.token, "existing");
            match self.wait_healthy(client, RESTART_LIMIT) {
                Ok(()) => return,
                // Another process took the port while the member was down.
                Err(_) if self.members[i].log_text().contains("address already in use") && attempt < 2 => {
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(why) => panic!(
                    "after {} was restarted on `{}` ({}), the cluster did not become healthy: {why}",
                    self.members[i].host,
                    tree.step,
                    self.situation()
                ),
            }
        }
    }

    /// Waits until `etcdctl endpoint health` with `client` passes on every
    /// member; fails early when a member exits.
    fn wait_healthy(&mut self, client: &EtcdClient, limit: Duration) -> Result<(), String> {
        let endpoints = self.all_endpoints();
        let mut last: Option<Run> = None;
        let outcome = poll(limit, || {
            for member in &mut self.members {
                if let Some(status) = member.exited() {
                    return Some(Err(format!("etcd {} exited ({status})", member.host)));
                }
            }
            let probe = client.files.etcdctl(&endpoints, &["endpoint", "health"], ("3s", "5s"));
            let ok = probe.ok();
            last = Some(probe);
            ok.then_some(Ok(()))
        });
        let last = last.map(|r| r.describe()).unwrap_or_default();
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(why)) => Err(format!("{why}\n{}", self.logs())),
            None => Err(format!(
                "not every member was healthy after {limit:?} (client files of `{}`); last health check:\n{last}\n\
                 certificate errors in the logs:\n{}\n{}",
                client.step,
                self.tls_errors_since(&[]),
                self.logs()
            )),
        }
    }

    /// With the members where they are now: every member is healthy by each
    /// client, and each client writes through every member and reads the
    /// value back through the next; no member logged a certificate error
    /// since `marks`.
    fn expect_mixed_state_works(&self, clients: &[&EtcdClient], marks: &[(PathBuf, usize)]) {
        let situation = self.situation();
        let endpoints = self.all_endpoints();
        for client in clients {
            let who = format!("the API server's etcd client files of `{}`, with members {situation}", client.step);
            let health = client.files.etcdctl(&endpoints, &["endpoint", "health"], ("3s", "5s"));
            let said: Vec<&str> = health.stdout.lines().chain(health.stderr.lines()).collect();
            let unhealthy: Vec<&str> = endpoints
                .split(',')
                .filter(|endpoint| !said.iter().any(|l| l.starts_with(&format!("{endpoint} is healthy"))))
                .collect();
            assert!(
                health.ok() && unhealthy.is_empty(),
                "etcdctl endpoint health with {who}: {unhealthy:?} not healthy:\n{}\n{}",
                health.describe(),
                self.logs()
            );
            let n = self.members.len();
            for i in 0..n {
                let key = format!("/certplan-rotation/{}", nonce());
                let value = format!("value-{}", nonce());
                let put = client.files.etcdctl(&self.endpoint(i), &["put", &key, &value], ("3s", "5s"));
                assert!(
                    put.ok() && put.stdout.trim() == "OK",
                    "etcdctl put through {} with {who}:\n{}\n{}",
                    self.members[i].host,
                    put.describe(),
                    self.logs()
                );
                let next = (i + 1) % n;
                let get =
                    client.files.etcdctl(&self.endpoint(next), &["get", &key, "--print-value-only"], ("3s", "5s"));
                assert!(
                    get.ok() && get.stdout.trim() == value,
                    "etcdctl get through {} of what was put through {} should return {value:?}, with {who}:\n{}\n{}",
                    self.members[next].host,
                    self.members[i].host,
                    get.describe(),
                    self.logs()
                );
            }
        }
        let errors = self.tls_errors_since(marks);
        assert!(
            errors.is_empty(),
            "with members {situation}, members logged certificate errors (a member or client refused a \
             certificate of an adjacent step):\n{errors}\n{}",
            self.logs()
        );
    }

    /// Where each member's log ends now.
    fn log_marks(&self) -> Vec<(PathBuf, usize)> {
        self.members.iter().filter_map(|m| Some((m.log_path()?, m.log_text().len()))).collect()
    }

    /// Certificate errors the members logged after `marks` (the whole of a
    /// log not in `marks`).
    fn tls_errors_since(&self, marks: &[(PathBuf, usize)]) -> String {
        let mut seen: Vec<String> = Vec::new();
        for member in &self.members {
            let text = member.log_text();
            let from = member
                .log_path()
                .and_then(|log| marks.iter().find(|(path, _)| *path == log).map(|(_, len)| *len))
                .unwrap_or(0);
            for line in text.get(from..).unwrap_or("").lines() {
                if ["x509:", "bad certificate", "unknown authority"].iter().any(|needle| line.contains(needle)) {
                    let entry = format!("{} on `{}`: {line}", member.host, member.step);
                    if !seen.contains(&entry) {
                        seen.push(entry);
                    }
                }
            }
        }
        seen.truncate(12);
        seen.join("\n")
    }

    /// The step of each member, such as `cp1@issue, cp2@trust, cp3@trust`.
    fn situation(&self) -> String {
        self.members.iter().map(|m| format!("{}@{}", m.host, m.step)).collect::<Vec<_>>().join(", ")
    }

    /// The tail of every member's log, for failure messages.
    fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let log = m.log_path().map(|p| p.display().to_string()).unwrap_or_default();
                format!("--- etcd {} on `{}` ({log}):\n{}", m.host, m.step, tail(&m.log_text(), 20))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn endpoint(&self, i: usize) -> String {
        format!("https://{LOOPBACK}:{}", self.members[i].client_port)
    }

    fn all_endpoints(&self) -> String {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect::<Vec<_>>().join(",")
    }
}

// ---------------------------------------------------------------------------
// kubectl

/// `openssl s_server -WWW` with one step's API server certificate and key,
/// demanding a client certificate that verifies against that step's
/// `--client-ca-file`; killed when dropped.
struct ApiServer {
    step: &'static str,
    server: WebServer,
}

impl ApiServer {
    fn start(tree: &Tree, args: &[String], www: &Path, logs: &Path) -> ApiServer {
        let what = format!("kube-apiserver.env of `{}`", tree.step);
        let files =
            ["--tls-cert-file", "--tls-private-key-file", "--client-ca-file"].map(|flag| file_flag(args, flag, &what));
        let label = format!("with the API server files of `{}`", tree.step);
        ApiServer { step: tree.step, server: WebServer::start(&label, [&files[0], &files[1], &files[2]], www, logs) }
    }
}

/// The kubeconfig `rel` of `tree` as kubectl can read it here: the file
/// itself when it embeds its certificates, else a copy whose absolute
/// on-host paths point into the tree's copy of its host.
fn usable_kubeconfig(tree: &Tree, rel: &str, scratch: &Path) -> PathBuf {
    let path = tree.dir.join(rel);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut rewritten = false;
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if let Some((key, value)) = trimmed.split_once(':')
            && ["certificate-authority", "client-certificate", "client-key"].contains(&key.trim_start_matches("- "))
            && value.trim().trim_matches(['"', '\'']).starts_with('/')
        {
            let host = host_of_rel(rel).unwrap_or_else(|| panic!("{rel} names a file by path but is not on a host"));
            let on_host = value.trim().trim_matches(['"', '\'']).trim_start_matches('/');
            let here = tree.dir.join("hosts").join(host).join(on_host);
            out.push_str(&format!("{indent}{key}: {}\n", here.display()));
            rewritten = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !rewritten {
        return path;
    }
    let copy = scratch.join(format!("{}-{}", tree.step, rel.replace('/', "_")));
    fs::write(&copy, out).expect("write a kubeconfig with its paths in the tree");
    copy
}
