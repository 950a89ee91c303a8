//! A real etcd cluster on the generated certificates.
//!
//! For each example plan: start one etcd member per etcd host of the plan on
//! the loopback address of the hosts' IP family (127.0.0.1, or `[::1]` for the
//! dual-stack plan's IPv6 hosts; free ports, data in a temporary directory), each with its own
//! server and peer certificate and with the TLS flags exactly as the
//! generated `etcd.env` gives them (only the on-host paths rewritten into
//! `DIR/hosts/<host>/`); show that the members form a cluster over peer
//! mutual TLS, that etcdctl with the API server's etcd client certificate
//! (paths from `kube-apiserver.env`) reads and writes, and that strangers are
//! refused: a client certificate of another CA (a second apply of the same
//! plan), a cluster-CA certificate when etcd has its own CA, and no
//! certificate at all.
//!
//! These tests need etcd, etcdctl (3.4) and openssl: `tests/run.sh` installs
//! them and runs everything, ignored tests included.

// The harness shared with `kubectl_client` (declared once, here).
#[path = "consumers/harness.rs"]
pub(crate) mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::{
    Applied, Proc, Run, Variant, assert_same_file, env_args, flag_on, flag_value, free_port, host_of_rel, nonce, poll,
    require_tools, rewrite_host_paths, run, run_with_input, scrub_env, tail,
};

const TOOLS: &[&str] = &["etcd", "etcdctl", "openssl"];

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn classic_rsa_three_members_over_mutual_tls() {
    etcd_suite(Variant::as_written("classic"), 3, false);
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn classic_ecdsa_three_members_over_mutual_tls() {
    etcd_suite(Variant::with_key("classic", "ecdsa-p256"), 3, false);
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn kubeadm_ecdsa_three_members_own_etcd_ca() {
    etcd_suite(Variant::as_written("kubeadm"), 3, true);
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn kubeadm_rsa_three_members_own_etcd_ca() {
    etcd_suite(Variant::with_key("kubeadm", "rsa-2048"), 3, true);
}

/// kubeadm's CAs as intermediates of one offline root.
#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn hierarchy_three_members_trust_their_intermediate() {
    etcd_suite(Variant::as_written("hierarchy"), 3, true);
}

/// etcd's CA is one certplan does not hold: openssl signs the requests.
#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn kubeadm_external_etcd_ca_three_members() {
    etcd_suite(Variant::with_external_ca("kubeadm", "etcd"), 3, true);
}

#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn minimal_single_member() {
    etcd_suite(Variant::as_written("minimal"), 1, false);
}

/// IPv6 host addresses: the members listen, advertise and peer over `[::1]`.
#[test]
#[ignore = "needs etcd, etcdctl, kubectl and openssl: run tests/run.sh"]
fn dual_stack_three_members_over_ipv6() {
    etcd_suite(Variant::as_written("dual-stack"), 3, true);
}

/// The whole etcd story for one plan. `members` is how many etcd hosts the
/// plan has; `own_etcd_ca` whether etcd's CA differs from the cluster CA.
fn etcd_suite(variant: Variant, members: usize, own_etcd_ca: bool) {
    require_tools(TOOLS);
    let tmp = harness::tempdir("certplan-etcd-");
    let applied = variant.apply(tmp.path(), "main");
    // The same plan again, into another directory: same names, other CAs.
    let foreign = variant.apply(tmp.path(), "foreign");

    let specs = member_specs(&applied);
    assert_eq!(
        specs.len(),
        members,
        "{variant:?}: expected {members} etcd hosts (cert/etcd-server/<host>), inspect lists {:?}",
        specs.iter().map(|s| &s.host).collect::<Vec<_>>()
    );
    let client = apiserver_etcd_client(&applied);

    let loopback = loopback_for(&applied, &specs);
    let cluster = Cluster::start(&specs, &client, &tmp.path().join("etcd"), loopback);

    // --- the cluster formed over peer mutual TLS --------------------------
    let list = cluster
        .etcdctl(&client.creds(), &cluster.all_endpoints(), &["member", "list"])
        .expect_ok("etcdctl member list with the API server's etcd client certificate");
    let started: Vec<&str> = list.stdout.lines().filter(|l| l.split(", ").nth(1) == Some("started")).collect();
    assert_eq!(started.len(), members, "member list should show {members} started members:\n{}", list.describe());
    for spec in &specs {
        assert!(
            started.iter().any(|l| l.split(", ").nth(2) == Some(spec.host.as_str())),
            "member {} is not listed as started:\n{}",
            spec.host,
            list.describe()
        );
    }

    let health = cluster
        .etcdctl(&client.creds(), &cluster.all_endpoints(), &["endpoint", "health"])
        .expect_ok("etcdctl endpoint health on every member");
    for endpoint in cluster.all_endpoints().split(',') {
        assert!(
            health
                .stdout
                .lines()
                .chain(health.stderr.lines())
                .any(|l| l.starts_with(&format!("{endpoint} is healthy"))),
            "{endpoint} is not healthy:\n{}",
            health.describe()
        );
    }

    // --- the API server's etcd client certificate reads and writes --------
    let key = format!("/certplan-test/{}", nonce());
    let value = format!("value-{}", nonce());
    let put = cluster
        .etcdctl(&client.creds(), &cluster.endpoint(0), &["put", &key, &value])
        .expect_ok("etcdctl put with the API server's etcd client certificate");
    assert_eq!(put.stdout.trim(), "OK", "{}", put.describe());
    // Read it back from the last member, dialled by name: the write went
    // through raft over the peer links and `localhost` is in the SANs.
    let last = members - 1;
    let get = cluster
        .etcdctl(&client.creds(), &cluster.endpoint_by_name(last), &["get", &key, "--print-value-only"])
        .expect_ok("etcdctl get (via https://localhost) with the API server's etcd client certificate");
    assert_eq!(get.stdout.trim(), value, "{}", get.describe());

    // etcd's HTTP/JSON gateway answers on every member. It dials its own
    // member with the member's *server* certificate as a client certificate,
    // so this also needs clientAuth on etcd-server (even with one member).
    for i in 0..members {
        cluster.expect_gateway_value(i, &client, &key, &value, &tmp.path().join(format!("gateway-{i}.http")));
    }

    // --- strangers are refused --------------------------------------------
    let foreign_client = apiserver_etcd_client(&foreign);
    assert_ne!(
        std::fs::read(&foreign_client.ca).expect("read foreign CA"),
        std::fs::read(&client.ca).expect("read CA"),
        "a second apply into a fresh directory must create new CAs"
    );
    cluster.expect_refused(
        "a client certificate of another CA (the same plan applied into another directory)",
        &Creds { ca: client.ca.clone(), cert_key: Some((foreign_client.cert.clone(), foreign_client.key.clone())) },
        "unknown authority",
    );

    let etcd_ca = applied.issuer(&format!("cert/etcd-server/{}", specs[0].host));
    let cluster_ca = applied.issuer("cert/users/admin");
    if own_etcd_ca {
        assert_ne!(
            etcd_ca, cluster_ca,
            "{variant:?} gives etcd its own CA, but inspect says etcd-server and the admin user share {etcd_ca}"
        );
    }
    if etcd_ca != cluster_ca {
        let (admin_cert, admin_key) = applied.cert_and_key("cert/users/admin");
        cluster.expect_refused(
            &format!("the admin user's certificate (signed by the cluster CA {cluster_ca}, not {etcd_ca})"),
            &Creds { ca: client.ca.clone(), cert_key: Some((admin_cert, admin_key)) },
            "unknown authority",
        );
    }

    cluster.expect_refused(
        "no client certificate",
        &Creds { ca: client.ca.clone(), cert_key: None },
        "didn't provide a certificate",
    );

    // The peer port wants a peer certificate of etcd's peer CA: the foreign
    // apply's peer certificate for the same host is refused there.
    let foreign_peer = foreign.cert_and_key(&format!("cert/etcd-peer/{}", specs[0].host));
    cluster.expect_peer_refused(&specs[0], &foreign_peer);
}

/// The loopback address of the etcd hosts' IP family, where the members of
/// this test listen: `::1` when the plan's etcd hosts have IPv6 addresses.
fn loopback_for(applied: &Applied, specs: &[MemberSpec]) -> &'static str {
    let ipv6 = specs.iter().all(|spec| {
        let id = format!("cert/etcd-server/{}", spec.host);
        let ips = &applied.artifact(&id)["sans"]["ip"];
        ips.as_array().is_some_and(|ips| {
            ips.iter().filter_map(|ip| ip.as_str()).any(|ip| ip.contains(':') && ip != "::1")
                && !ips.iter().filter_map(|ip| ip.as_str()).any(|ip| ip.contains('.') && ip != "127.0.0.1")
        })
    });
    if ipv6 { "::1" } else { "127.0.0.1" }
}

/// `IP:PORT`, with an IPv6 address in brackets.
fn host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
}

/// How one member is configured, from the output tree.
struct MemberSpec {
    host: String,
    /// `ETCD_TLS_ARGS` of the host's `etcd.env`, paths rewritten into
    /// `DIR/hosts/<host>/`.
    tls_args: Vec<String>,
    /// The peer CA (`--peer-trusted-ca-file`): it verifies every peer certificate, this member's own included.
    peer_ca: PathBuf,
}

fn member_specs(applied: &Applied) -> Vec<MemberSpec> {
    let hosts = applied.hosts_of("cert/etcd-server/");
    hosts
        .into_iter()
        .map(|host| {
            let flags_id = format!("flags/etcd/{host}");
            let env_rel = applied
                .try_artifact(&flags_id)
                .map(|a| harness::files_of_role(a, "flags"))
                .and_then(|f| f.into_iter().find(|p| host_of_rel(p) == Some(host.as_str())))
                .unwrap_or_else(|| panic!("no flags file for {flags_id}; artifact ids: {:?}", applied.ids()));
            assert!(
                env_rel.ends_with("/etcd.env"),
                "{flags_id}: the flag file should be <config_dir>/etcd.env, is {env_rel}"
            );
            let env = applied.out.join(&env_rel);
            let raw = env_args(&env, "ETCD_TLS_ARGS");
            // The contract: etcd.env also carries the cluster flags.
            env_args(&env, "ETCD_CLUSTER_ARGS");
            let root = applied.host_root(&host);
            let tls_args = rewrite_host_paths(&raw, &root);

            let flag_file = |flag: &str| -> PathBuf {
                PathBuf::from(
                    flag_value(&tls_args, flag)
                        .unwrap_or_else(|| panic!("{env_rel}: ETCD_TLS_ARGS has no {flag}: {raw:?}")),
                )
            };
            let server = format!("cert/etcd-server/{host}");
            let peer = format!("cert/etcd-peer/{host}");
            let wants = [
                ("--cert-file", applied.file(&server, "cert", Some(&host))),
                ("--key-file", applied.file(&server, "key", Some(&host))),
                // etcd verifies its clients with the CA of the etcd-client set.
                ("--trusted-ca-file", applied.file(&applied.issuer("cert/apiserver-etcd-client"), "cert", Some(&host))),
                ("--peer-cert-file", applied.file(&peer, "cert", Some(&host))),
                ("--peer-key-file", applied.file(&peer, "key", Some(&host))),
                ("--peer-trusted-ca-file", applied.file(&applied.issuer(&peer), "cert", Some(&host))),
            ];
            for (flag, want) in &wants {
                assert_same_file(&flag_file(flag), want, &format!("{env_rel} {flag}"));
            }
            for flag in ["--client-cert-auth", "--peer-client-cert-auth"] {
                assert!(flag_on(&tls_args, flag), "{env_rel}: ETCD_TLS_ARGS should turn on {flag}: {raw:?}");
            }
            let peer_ca = flag_file("--peer-trusted-ca-file");
            MemberSpec { host, tls_args, peer_ca }
        })
        .collect()
}

/// TLS material for etcdctl.
#[derive(Clone)]
struct Creds {
    ca: PathBuf,
    cert_key: Option<(PathBuf, PathBuf)>,
}

/// The API server's etcd client certificate, key and etcd CA, as the
/// API server's flag file on a control-plane host names them.
struct ClientFiles {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl ClientFiles {
    fn creds(&self) -> Creds {
        Creds { ca: self.ca.clone(), cert_key: Some((self.cert.clone(), self.key.clone())) }
    }
}

fn apiserver_etcd_client(applied: &Applied) -> ClientFiles {
    let host = applied
        .hosts_of("flags/kube-apiserver/")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no flags/kube-apiserver/<host> artifact; ids: {:?}", applied.ids()));
    let env_rel = applied
        .rel_files(&format!("flags/kube-apiserver/{host}"), "flags")
        .into_iter()
        .find(|p| host_of_rel(p) == Some(host.as_str()))
        .expect("kube-apiserver flag file on its host");
    assert!(
        env_rel.ends_with("/kube-apiserver.env"),
        "the API server's flag file should be <config_dir>/kube-apiserver.env, is {env_rel}"
    );
    let raw = env_args(&applied.out.join(&env_rel), "KUBE_APISERVER_TLS_ARGS");
    let args = rewrite_host_paths(&raw, &applied.host_root(&host));
    let get = |flag: &str| {
        PathBuf::from(
            flag_value(&args, flag)
                .unwrap_or_else(|| panic!("{env_rel}: KUBE_APISERVER_TLS_ARGS has no {flag}: {raw:?}")),
        )
    };
    let files = ClientFiles { cert: get("--etcd-certfile"), key: get("--etcd-keyfile"), ca: get("--etcd-cafile") };
    let id = "cert/apiserver-etcd-client";
    assert_same_file(&files.cert, &applied.file(id, "cert", Some(&host)), &format!("{env_rel} --etcd-certfile"));
    assert_same_file(&files.key, &applied.file(id, "key", Some(&host)), &format!("{env_rel} --etcd-keyfile"));
    assert!(files.ca.is_file(), "{env_rel} --etcd-cafile names {}, which is not in the tree", files.ca.display());
    files
}

struct Member {
    proc: Proc,
    client_port: u16,
    peer_port: u16,
}

/// Running etcd members; dropping it kills every one of them.
struct Cluster {
    members: Vec<Member>,
    /// The loopback address they listen on.
    loopback: &'static str,
}

/// How long one start attempt may take before the cluster must be healthy.
const START_LIMIT: Duration = Duration::from_secs(45);

impl Cluster {
    /// Starts one member per spec and waits until every one is healthy.
    /// Retries with new ports when a member could not bind.
    fn start(specs: &[MemberSpec], client: &ClientFiles, work: &Path, loopback: &'static str) -> Cluster {
        let mut failures = Vec::new();
        for attempt in 0..5 {
            let dir = work.join(format!("attempt-{attempt}"));
            std::fs::create_dir_all(&dir).expect("create etcd work dir");
            match Self::try_start(specs, client, &dir, loopback) {
                Ok(cluster) => return cluster,
                Err(StartError::PortTaken(why)) => failures.push(why),
                Err(StartError::Failed(why)) => panic!("{why}"),
            }
        }
        panic!("etcd could not bind its ports in 5 attempts:\n{}", failures.join("\n---\n"));
    }

    fn try_start(
        specs: &[MemberSpec],
        client: &ClientFiles,
        dir: &Path,
        loopback: &'static str,
    ) -> Result<Cluster, StartError> {
        let ports: Vec<(u16, u16)> = specs.iter().map(|_| (free_port(loopback), free_port(loopback))).collect();
        let initial_cluster = specs
            .iter()
            .zip(&ports)
            .map(|(s, (_, peer))| format!("{}=https://{}", s.host, host_port(loopback, *peer)))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("certplan-{}", harness::nonce());
        let mut members = Vec::new();
        for (spec, (client_port, peer_port)) in specs.iter().zip(&ports) {
            let client_url = format!("https://{}", host_port(loopback, *client_port));
            let peer_url = format!("https://{}", host_port(loopback, *peer_port));
            let mut cmd = Command::new("etcd");
            scrub_env(&mut cmd)
                .args(&spec.tls_args)
                .arg(format!("--name={}", spec.host))
                .arg(format!("--data-dir={}", dir.join(format!("{}.etcd", spec.host)).display()))
                .arg(format!("--listen-client-urls={client_url}"))
                .arg(format!("--advertise-client-urls={client_url}"))
                .arg(format!("--listen-peer-urls={peer_url}"))
                .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                .arg(format!("--initial-cluster={initial_cluster}"))
                .arg("--initial-cluster-state=new")
                .arg(format!("--initial-cluster-token={token}"));
            let log = dir.join(format!("{}.log", spec.host));
            members.push(Member {
                proc: Proc::spawn(&format!("etcd {}", spec.host), &mut cmd, &log),
                client_port: *client_port,
                peer_port: *peer_port,
            });
        }
        let mut cluster = Cluster { members, loopback };

        let started = std::time::Instant::now();
        let mut last: Option<Run> = None;
        let outcome = poll(START_LIMIT, || {
            for m in &mut cluster.members {
                if let Some(status) = m.proc.exited() {
                    return Some(Startup::Exited(status.to_string()));
                }
            }
            let probe = cluster.etcdctl_with(
                &client.creds(),
                &cluster.all_endpoints(),
                &["endpoint", "health"],
                ("3s", "5s"),
                Duration::from_secs(10),
            );
            let ok = probe.ok();
            last = Some(probe);
            if ok {
                return Some(Startup::Healthy);
            }
            // TLS failures do not heal: once the members have had time to
            // find each other, report them instead of waiting out the limit.
            let tls = cluster.tls_errors();
            (started.elapsed() > TLS_GRACE && !tls.is_empty()).then_some(Startup::TlsErrors(tls))
        });
        let logs = cluster.logs();
        let last = last.map(|r| r.describe()).unwrap_or_default();
        match outcome {
            Some(Startup::Healthy) => Ok(cluster),
            Some(Startup::Exited(status)) if logs.contains("address already in use") => {
                Err(StartError::PortTaken(format!("a member exited ({status}):\n{logs}")))
            }
            Some(Startup::Exited(status)) => Err(StartError::Failed(format!(
                "an etcd member exited ({status}) while the cluster was starting:\n{logs}"
            ))),
            Some(Startup::TlsErrors(lines)) => Err(StartError::Failed(format!(
                "the etcd cluster did not become healthy: TLS errors in the members' logs:\n{lines}\n\
                 last health check (with the API server's etcd client certificate):\n{last}\n{logs}"
            ))),
            None => Err(StartError::Failed(format!(
                "the etcd cluster was not healthy after {START_LIMIT:?}; last health check:\n{last}\n{logs}"
            ))),
        }
    }

    /// Distinct TLS error lines from every member's log.
    fn tls_errors(&self) -> String {
        let mut seen = Vec::new();
        for m in &self.members {
            for line in m.proc.log_text().lines() {
                if ["rejected connection", "x509:", "bad certificate", "remote error: tls"]
                    .iter()
                    .any(|needle| line.contains(needle))
                {
                    // Without the time stamp and the client's port, repeats look alike.
                    let key = format!("{}: {}", m.proc.name, strip_noise(line));
                    if !seen.contains(&key) {
                        seen.push(key);
                    }
                }
            }
        }
        seen.truncate(12);
        seen.join("\n")
    }

    /// The tail of every member's log, for failure messages.
    fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("--- {} ({}):\n{}", m.proc.name, m.proc.log.display(), tail(&m.proc.log_text(), 25)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn endpoint(&self, i: usize) -> String {
        format!("https://{}", host_port(self.loopback, self.members[i].client_port))
    }

    /// Member `i` dialled by name rather than by address (`localhost` is
    /// 127.0.0.1; members on `[::1]` are dialled by address).
    fn endpoint_by_name(&self, i: usize) -> String {
        if self.loopback != "127.0.0.1" {
            return self.endpoint(i);
        }
        format!("https://localhost:{}", self.members[i].client_port)
    }

    fn all_endpoints(&self) -> String {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect::<Vec<_>>().join(",")
    }

    fn etcdctl(&self, creds: &Creds, endpoints: &str, args: &[&str]) -> Run {
        self.etcdctl_with(creds, endpoints, args, ("3s", "5s"), Duration::from_secs(30))
    }

    /// etcdctl that gives up quickly, for connections that must be refused.
    fn etcdctl_quick(&self, creds: &Creds, endpoints: &str, args: &[&str]) -> Run {
        self.etcdctl_with(creds, endpoints, args, ("1s", "2s"), Duration::from_secs(20))
    }

    /// etcdctl (API v3) with `creds`, dial and command time-outs `timeouts`,
    /// killed after `limit`.
    fn etcdctl_with(
        &self,
        creds: &Creds,
        endpoints: &str,
        args: &[&str],
        timeouts: (&str, &str),
        limit: Duration,
    ) -> Run {
        let mut cmd = Command::new("etcdctl");
        scrub_env(&mut cmd)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoints}"))
            .arg(format!("--dial-timeout={}", timeouts.0))
            .arg(format!("--command-timeout={}", timeouts.1))
            .arg(format!("--cacert={}", creds.ca.display()));
        if let Some((cert, key)) = &creds.cert_key {
            cmd.arg(format!("--cert={}", cert.display())).arg(format!("--key={}", key.display()));
        }
        cmd.args(args);
        run(&mut cmd, limit)
    }

    /// A range request for `key` through member `i`'s gRPC gateway
    /// (`POST /v3/kv/range`, over `openssl s_client` with the API server's
    /// etcd client certificate) returns `value`.
    fn expect_gateway_value(&self, i: usize, client: &ClientFiles, key: &str, value: &str, request: &Path) {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let body = format!("{{\"key\":\"{}\"}}", b64(key));
        let http = format!(
            "POST /v3/kv/range HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            host_port(self.loopback, self.members[i].client_port),
            body.len()
        );
        std::fs::write(request, http).expect("write gateway request");
        let mut cmd = Command::new("openssl");
        // `-partial_chain`: the trusted CA may be an intermediate (plans/hierarchy.toml),
        // an anchor for Go's verifier as for this one.
        cmd.args(["s_client", "-quiet", "-ign_eof", "-verify_return_error", "-partial_chain", "-connect"])
            .arg(host_port(self.loopback, self.members[i].client_port))
            .arg("-CAfile")
            .arg(&client.ca)
            .arg("-cert")
            .arg(&client.cert)
            .arg("-key")
            .arg(&client.key);
        let got = run_with_input(&mut cmd, request, Duration::from_secs(20));
        let member = &self.members[i].proc;
        assert!(
            got.stdout.contains(&format!("\"value\":\"{}\"", b64(value))),
            "the gRPC gateway of {} did not return {key} = {value} (it dials its member with the etcd server \
             certificate as a client certificate, which needs clientAuth):\n{}\n--- member log:\n{}",
            member.name,
            got.describe(),
            tail(&member.log_text(), 10)
        );
    }

    /// etcdctl with `creds` must fail against member 0, and member 0 must log
    /// that it rejected the connection because of `reason`.
    fn expect_refused(&self, what: &str, creds: &Creds, reason: &str) {
        let member = &self.members[0];
        let before = member.proc.log_text().len();
        let attempt = self.etcdctl_quick(creds, &self.endpoint(0), &["get", "/certplan-test", "--prefix"]);
        assert!(!attempt.ok(), "etcd accepted {what}; it must refuse it:\n{}", attempt.describe());
        let logged = poll(Duration::from_secs(5), || {
            let text = member.proc.log_text();
            let new = text.get(before..).unwrap_or("").to_string();
            new.lines().find(|l| l.contains("rejected connection") && l.contains(reason)).map(str::to_string)
        });
        assert!(
            logged.is_some(),
            "etcdctl failed with {what}, but {} did not log a rejected connection for \"{reason}\":\n{}\n{}",
            member.proc.name,
            attempt.describe(),
            tail(member.proc.log_text().get(before..).unwrap_or(""), 20)
        );
    }

    /// A TLS client presenting `cert_key` (a peer certificate of another CA)
    /// to member 0's (`spec`'s) peer port is refused; the peer port's own
    /// certificate verifies against the peer CA for the loopback address.
    fn expect_peer_refused(&self, spec: &MemberSpec, cert_key: &(PathBuf, PathBuf)) {
        let member = &self.members[0];
        let peer_port = member.peer_port;
        let before = member.proc.log_text().len();
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-partial_chain", "-connect"])
            .arg(host_port(self.loopback, peer_port))
            .arg("-CAfile")
            .arg(&spec.peer_ca)
            .args(["-verify_ip", self.loopback, "-verify_return_error"])
            .arg("-cert")
            .arg(&cert_key.0)
            .arg("-key")
            .arg(&cert_key.1);
        let attempt = run(&mut cmd, Duration::from_secs(15));
        assert!(
            attempt.stdout.contains("Verify return code: 0 (ok)"),
            "the peer port of {} should present a certificate that verifies against {} for {}:\n{}",
            member.proc.name,
            spec.peer_ca.display(),
            self.loopback,
            attempt.describe()
        );
        let logged = poll(Duration::from_secs(5), || {
            let text = member.proc.log_text();
            text.get(before..)
                .unwrap_or("")
                .lines()
                .find(|l| l.contains("rejected connection") && l.contains("unknown authority"))
                .map(str::to_string)
        });
        assert!(
            logged.is_some(),
            "{} accepted a peer certificate of another CA on its peer port (no rejected connection logged):\n{}\n{}",
            member.proc.name,
            attempt.describe(),
            tail(member.proc.log_text().get(before..).unwrap_or(""), 20)
        );
    }
}

/// How a start attempt ended.
enum Startup {
    Healthy,
    Exited(String),
    TlsErrors(String),
}

/// How long members get to find each other before TLS errors in their logs
/// count as final.
const TLS_GRACE: Duration = Duration::from_secs(6);

/// A log line without its time stamp and ephemeral ports, so that repeats of
/// one error compare equal.
fn strip_noise(line: &str) -> String {
    let line = line.get(27..).filter(|_| line.starts_with("20")).unwrap_or(line);
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        // A port: four or more digits after a colon (`::1` stays).
        if c == ':' {
            let digits: String = chars.clone().take_while(char::is_ascii_digit).collect();
            if digits.len() >= 4 {
                for _ in 0..digits.len() {
                    chars.next();
                }
                out.push('*');
            }
        }
    }
    out
}

enum StartError {
    PortTaken(String),
    Failed(String),
}
