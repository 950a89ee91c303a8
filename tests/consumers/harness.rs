//! Shared harness for the real-consumer tests (etcd, etcdctl, kubectl,
//! openssl): tool checks, processes that die with the test, free ports,
//! commands with a time limit, flag files, kubeconfigs and inspect look-ups.
//!
//! Declared once, from `etcd_cluster.rs` (`#[path = "consumers/harness.rs"]
//! pub(crate) mod harness;`); `kubectl_client.rs`, `rotation_consumers.rs` and
//! `export_consumers.rs` use it from there.
//! Not every function is used by every caller.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;

/// What to tell someone whose machine lacks a consumer binary.
pub const RUN_SH: &str = "run tests/run.sh: it installs etcd-server, etcd-client, openssl, \
     (when kubectl is missing) kubernetes-client and the Python checkers pkilint, cryptography and prometheus-client, \
     then runs every test";

/// Panics, loudly, unless every tool is an executable on PATH.
pub fn require_tools(tools: &[&str]) {
    let missing: Vec<&str> = tools.iter().copied().filter(|tool| which(tool).is_none()).collect();
    assert!(
        missing.is_empty(),
        "this test needs {} but {} not found on PATH: {RUN_SH}",
        tools.join(", "),
        missing.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
            + if missing.len() == 1 { " was" } else { " were" },
    );
}

/// The executable `name` on PATH, if there is one.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// A temporary directory removed when the test ends (also on panic).
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().expect("create a temporary directory")
}

/// Removes variables that would change what a consumer binary does behind
/// the test's back: etcd and etcdctl read every flag from `ETCD_*` and
/// `ETCDCTL_*`, Go programs honour proxy variables.
pub fn scrub_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let name_str = name.to_string_lossy();
        let upper = name_str.to_ascii_uppercase();
        if upper.starts_with("ETCD_")
            || upper.starts_with("ETCDCTL_")
            || upper == "HTTP_PROXY"
            || upper == "HTTPS_PROXY"
            || upper == "ALL_PROXY"
            || upper == "KUBECONFIG"
        {
            cmd.env_remove(&name);
        }
    }
    cmd.env("NO_PROXY", "*").env("no_proxy", "*")
}

// ---------------------------------------------------------------------------
// Processes

/// A child process that is killed (by its id) and reaped when dropped, so a
/// failing test leaves nothing running. Its stdout and stderr go to `log`.
pub struct Proc {
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// Starts `cmd` with stdin closed and stdout + stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Proc {
        let out = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({cmd:?}): {e}; {RUN_SH}"));
        Proc { name: name.to_string(), log: log.to_path_buf(), child: Some(child) }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().expect("poll child"))
    }

    /// Everything the process has logged so far.
    pub fn log_text(&self) -> String {
        read_lossy(&self.log)
    }

    /// Kills the process by its id (SIGKILL: an etcd member that lost its
    /// peers may not act on SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The result of a command run with a time limit.
pub struct Run {
    pub what: String,
    /// `None` when the command ran out of time and was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// A description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{}\n  status: {}\n  stdout: {}\n  stderr: {}",
            self.what,
            match self.status {
                Some(s) => s.to_string(),
                None => "killed after running out of time".to_string(),
            },
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }

    /// Panics with the command's output unless it exited 0.
    pub fn expect_ok(self, doing: &str) -> Run {
        assert!(self.ok(), "{doing} failed:\n{}", self.describe());
        self
    }
}

/// Runs `cmd` with stdin closed, capturing its output, killing it (by id)
/// after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Run {
    run_with_stdin(cmd, Stdio::null(), limit)
}

/// Runs `cmd` with stdin read from the file `input`; otherwise as [`run`].
pub fn run_with_input(cmd: &mut Command, input: &Path, limit: Duration) -> Run {
    let file = File::open(input).unwrap_or_else(|e| panic!("open {}: {e}", input.display()));
    run_with_stdin(cmd, Stdio::from(file), limit)
}

fn run_with_stdin(cmd: &mut Command, stdin: Stdio, limit: Duration) -> Run {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}; {RUN_SH}"));
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    Run { what, status, stdout, stderr }
}

/// A file's text, lossily; empty when it cannot be read.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits up to `limit` for `check` to return `Some`; the last `None` fails.
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A port on `ip` that was free a moment ago: bind port 0, read the port,
/// release it. Never hands out the same port twice in this test process;
/// callers still retry when a server fails to bind (another process may take
/// the port in between).
pub fn free_port(ip: &str) -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut guard = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let handed = guard.get_or_insert_with(HashSet::new);
    for _ in 0..1000 {
        let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0 to find a port: {e}"));
        let port = listener.local_addr().expect("local addr").port();
        drop(listener);
        if handed.insert(port) {
            return port;
        }
    }
    panic!("no free port on {ip}");
}

/// A value unique to this call, for probe keys and file contents.
pub fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_nanos();
    format!("{:x}-{:x}-{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

// ---------------------------------------------------------------------------
// Plans

/// One plan the consumer tests run: an example plan as written, or with every
/// key algorithm replaced.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub plan: &'static str,
    pub key: Option<&'static str>,
    /// The `[cas.NAME]` made external: a CA certplan does not hold, made by
    /// openssl for each apply, which signs the requests the apply leaves.
    pub external: Option<&'static str>,
}

impl Variant {
    pub const fn as_written(plan: &'static str) -> Variant {
        Variant { plan, key: None, external: None }
    }

    pub const fn with_key(plan: &'static str, key: &'static str) -> Variant {
        Variant { plan, key: Some(key), external: None }
    }

    pub const fn with_external_ca(plan: &'static str, ca: &'static str) -> Variant {
        Variant { plan, key: None, external: Some(ca) }
    }

    /// The plan's TOML source.
    pub fn source(&self) -> String {
        match self.key {
            None => std::fs::read_to_string(common::plan_path(self.plan)).expect("read plan"),
            Some(key) => common::plan_with_key(self.plan, key),
        }
    }

    /// Applies the plan into `<base>/<name>/out` and reads its inspect
    /// document.
    pub fn apply(&self, base: &Path, name: &str) -> Applied {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).expect("create apply dir");
        let plan = match (self.key, self.external) {
            (None, None) => common::plan_path(self.plan),
            (_, Some(ca)) => {
                let source = common::external::with_external(&self.source(), ca, "external-ca.crt");
                common::write_plan(&dir, &source)
            }
            (Some(key), None) => common::write_plan(&dir, &common::plan_with_key(self.plan, key)),
        };
        let out = dir.join("out");
        // Each apply gets a CA of its own, as each certplan apply does.
        let external = self.external.map(|ca| {
            let plan_toml: toml::Table = self.source().parse().expect("plan is TOML");
            let cn = plan_toml["cas"][ca]["cn"].as_str().expect("the CA has a cn").to_string();
            common::external::make_ca(&dir, "external-ca", &cn)
        });
        common::apply(&plan, &out);
        if let Some(ca) = &external {
            // The first apply left requests; the CA signs them; the second completes the tree.
            let signed = common::external::sign_all(ca, &out);
            assert!(signed > 0, "the apply with an external CA left no request in {}", out.display());
            common::apply(&plan, &out);
        }
        let doc = common::inspect(&plan, &out);
        let source = std::fs::read_to_string(&plan).expect("read plan");
        let plan_toml: toml::Table = source.parse().expect("plan is TOML");
        Applied { out, plan, plan_toml, doc }
    }
}

/// An applied plan: its output tree and what inspect says about it.
pub struct Applied {
    pub out: PathBuf,
    pub plan: PathBuf,
    pub plan_toml: toml::Table,
    pub doc: Value,
}

impl Applied {
    pub fn artifact(&self, id: &str) -> &Value {
        common::artifact(&self.doc, id)
    }

    pub fn try_artifact(&self, id: &str) -> Option<&Value> {
        self.artifacts().iter().find(|a| a["id"] == id)
    }

    pub fn artifacts(&self) -> &Vec<Value> {
        self.doc["artifacts"].as_array().expect("artifacts array")
    }

    /// Every artifact id, for messages.
    pub fn ids(&self) -> Vec<&str> {
        self.artifacts().iter().filter_map(|a| a["id"].as_str()).collect()
    }

    /// The hosts named by artifacts `<prefix><host>`, sorted.
    pub fn hosts_of(&self, prefix: &str) -> Vec<String> {
        let mut hosts: Vec<String> =
            self.ids().into_iter().filter_map(|id| id.strip_prefix(prefix)).map(str::to_string).collect();
        hosts.sort();
        hosts
    }

    /// The relative paths of an artifact's files of `role`.
    pub fn rel_files(&self, id: &str, role: &str) -> Vec<String> {
        files_of_role(self.artifact(id), role)
    }

    /// The absolute path of an artifact's file of `role` (on `host` if given).
    pub fn file(&self, id: &str, role: &str, host: Option<&str>) -> PathBuf {
        common::file_of(&self.out, self.artifact(id), role, host)
    }

    /// The issuer id of an artifact.
    pub fn issuer(&self, id: &str) -> String {
        self.artifact(id)["issuer"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} has no issuer in inspect output"))
            .to_string()
    }

    /// A CA's certificate: its master copy under `cluster/` when listed,
    /// else its first copy.
    pub fn ca_cert(&self, ca_id: &str) -> PathBuf {
        let files = self.rel_files(ca_id, "cert");
        let rel = files
            .iter()
            .find(|p| p.starts_with("cluster/"))
            .or(files.first())
            .unwrap_or_else(|| panic!("{ca_id} lists no cert file"));
        self.out.join(rel)
    }

    /// The certificate and key of `id` from one host (the first listed),
    /// or from `cluster/` for artifacts that live there.
    pub fn cert_and_key(&self, id: &str) -> (PathBuf, PathBuf) {
        let cert_rel =
            self.rel_files(id, "cert").into_iter().next().unwrap_or_else(|| panic!("{id} lists no cert file"));
        let cert = self.out.join(&cert_rel);
        let key = if let Some(host) = host_of_rel(&cert_rel) {
            self.file(id, "key", Some(host))
        } else {
            let dir = Path::new(&cert_rel).parent().expect("parent");
            let key_rel = self
                .rel_files(id, "key")
                .into_iter()
                .find(|k| !k.starts_with("hosts/") && Path::new(k).starts_with(dir))
                .or_else(|| self.rel_files(id, "key").into_iter().next())
                .unwrap_or_else(|| panic!("{id} lists no key file"));
            self.out.join(key_rel)
        };
        (cert, key)
    }

    /// The root of a host's tree: `DIR/hosts/<host>`.
    pub fn host_root(&self, host: &str) -> PathBuf {
        self.out.join("hosts").join(host)
    }

    /// A string from the plan, such as `["cluster", "name"]`.
    pub fn plan_str(&self, path: &[&str]) -> Option<String> {
        let mut v: Option<&toml::Value> = None;
        let mut table = &self.plan_toml;
        for (i, key) in path.iter().enumerate() {
            let next = table.get(*key)?;
            if i + 1 < path.len() {
                table = next.as_table()?;
            } else {
                v = Some(next);
            }
        }
        v.and_then(|v| v.as_str()).map(str::to_string)
    }

    /// The plan's `[[users]]` as (name, groups, validity).
    pub fn plan_users(&self) -> Vec<(String, Vec<String>, Option<String>)> {
        self.plan_toml
            .get("users")
            .and_then(|u| u.as_array())
            .map(|users| {
                users
                    .iter()
                    .map(|u| {
                        let name = u["name"].as_str().expect("user name").to_string();
                        let groups = u
                            .get("groups")
                            .and_then(|g| g.as_array())
                            .map(|g| g.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                            .unwrap_or_default();
                        let validity = u.get("validity").and_then(|v| v.as_str()).map(str::to_string);
                        (name, groups, validity)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The relative paths of an artifact's files of `role` (one helper for every test).
pub use crate::common::applied::files_of_role;

/// `master1` for `hosts/master1/etc/...`.
pub fn host_of_rel(rel: &str) -> Option<&str> {
    let rest = rel.strip_prefix("hosts/")?;
    rest.split('/').next().filter(|h| !h.is_empty())
}

// ---------------------------------------------------------------------------
// Flag files

/// Parses a systemd `EnvironmentFile`: `NAME="value"` lines (double or single
/// quotes, or none), comments and blank lines ignored.
pub fn parse_env_file(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read flag file {}: {e}", path.display()));
    let mut vars = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}:{}: not NAME=value: {line:?}\n{text}", path.display(), n + 1));
        let value = value.trim();
        let value = if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"')) || (value.starts_with('\'') && value.ends_with('\'')))
        {
            value[1..value.len() - 1].replace("\\\"", "\"").replace("\\\\", "\\")
        } else {
            value.to_string()
        };
        vars.insert(name.trim().to_string(), value);
    }
    vars
}

/// The arguments of variable `name` of a flag file, split on white space as
/// systemd splits `$NAME` in `ExecStart`.
pub fn env_args(path: &Path, name: &str) -> Vec<String> {
    let vars = parse_env_file(path);
    let value = vars.get(name).unwrap_or_else(|| {
        panic!("{} has no {name}; it has {:?}:\n{}", path.display(), vars.keys().collect::<Vec<_>>(), read_lossy(path))
    });
    value.split_whitespace().map(str::to_string).collect()
}

/// Rewrites every absolute on-host path in `args` (`--flag=/abs` or a bare
/// `/abs` argument) to the same path inside `host_root`; nothing else changes.
pub fn rewrite_host_paths(args: &[String], host_root: &Path) -> Vec<String> {
    let on_host = |p: &str| host_root.join(p.trim_start_matches('/')).to_string_lossy().into_owned();
    args.iter()
        .map(|arg| {
            if arg.starts_with('/') {
                on_host(arg)
            } else if let Some((flag, value)) = arg.split_once('=')
                && flag.starts_with('-')
                && value.starts_with('/')
            {
                format!("{flag}={}", on_host(value))
            } else {
                arg.clone()
            }
        })
        .collect()
}

/// The value of `flag` in `args` (`--flag=value` or `--flag value`).
pub fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let prefix = format!("{flag}=");
    for (i, arg) in args.iter().enumerate() {
        if let Some(v) = arg.strip_prefix(&prefix) {
            return Some(v.to_string());
        }
        if arg == flag {
            return args.get(i + 1).filter(|v| !v.starts_with("--")).cloned();
        }
    }
    None
}

/// Whether boolean `flag` is on: `--flag`, `--flag=true`.
pub fn flag_on(args: &[String], flag: &str) -> bool {
    args.iter().any(|a| a == flag || *a == format!("{flag}=true"))
}

/// Panics unless `a` and `b` name the same existing file.
pub fn assert_same_file(a: &Path, b: &Path, what: &str) {
    let ca = a.canonicalize().unwrap_or_else(|e| panic!("{what}: {} does not exist: {e}", a.display()));
    let cb = b.canonicalize().unwrap_or_else(|e| panic!("{what}: {} does not exist: {e}", b.display()));
    assert_eq!(ca, cb, "{what}: the flag file names {} but inspect lists {}", a.display(), b.display());
}

// ---------------------------------------------------------------------------
// Certificates as openssl sees them

/// `openssl <args>`, which must succeed; its stdout.
pub fn openssl_ok(args: &[&str]) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    run(&mut cmd, Duration::from_secs(30)).expect_ok("openssl").stdout
}

/// The subject of a certificate as `(attribute, value)` pairs, in order, as
/// openssl prints it (`-nameopt sep_multiline`-free, RFC 2253 style split).
pub fn subject_pairs(cert: &Path) -> Vec<(String, String)> {
    let out = openssl_ok(&["x509", "-in", &cert.to_string_lossy(), "-noout", "-subject", "-nameopt", "oneline"]);
    parse_oneline_dn(out.trim().trim_start_matches("subject=").trim())
}

/// Splits an openssl `oneline` name (`C = CN, O = k8s, CN = admin`).
pub fn parse_oneline_dn(dn: &str) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = dn.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ',' if chars.peek() == Some(&' ') => {
                chars.next();
                parts.push(std::mem::take(&mut current));
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
        .into_iter()
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The files a client presents to etcd and trusts it with (the API
/// server's `--etcd-certfile`, `--etcd-keyfile` and `--etcd-cafile`).
pub struct EtcdClient {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl EtcdClient {
    /// etcdctl (API v3) with these files at `endpoints`, with dial and
    /// command time-outs `timeouts`; killed after 20 seconds.
    pub fn etcdctl(&self, endpoints: &str, args: &[&str], timeouts: (&str, &str)) -> Run {
        let mut cmd = Command::new("etcdctl");
        scrub_env(&mut cmd)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoints}"))
            .arg(format!("--dial-timeout={}", timeouts.0))
            .arg(format!("--command-timeout={}", timeouts.1))
            .arg(format!("--cacert={}", self.ca.display()))
            .arg(format!("--cert={}", self.cert.display()))
            .arg(format!("--key={}", self.key.display()))
            .args(args);
        run(&mut cmd, Duration::from_secs(20))
    }
}

/// `openssl s_server -WWW` on a free loopback port, serving `www`, with a
/// server certificate and key, demanding a client certificate that verifies
/// against a CA file, as the API server does; killed when dropped.
pub struct WebServer {
    pub proc: Proc,
    pub port: u16,
}

impl WebServer {
    /// Starts it as `label` (in messages and log names) with `cert`, `key`
    /// and the client CA file `ca`; retries with another port when one is
    /// taken.
    pub fn start(label: &str, [cert, key, ca]: [&Path; 3], www: &Path, logs: &Path) -> WebServer {
        let mut failures = Vec::new();
        for attempt in 0..3 {
            let port = free_port("127.0.0.1");
            let mut cmd = Command::new("openssl");
            cmd.current_dir(www)
                .args(["s_server", "-WWW", "-Verify", "1", "-verify_return_error", "-partial_chain", "-accept"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("-cert")
                .arg(cert)
                .arg("-key")
                .arg(key)
                .arg("-CAfile")
                .arg(ca);
            let log = logs.join(format!("s_server-{}-{attempt}.log", label.replace(['/', ' ', '`', '\''], "_")));
            let mut proc = Proc::spawn(&format!("s_server {label} on port {port}"), &mut cmd, &log);
            let ready = poll(Duration::from_secs(10), || {
                if proc.log_text().contains("ACCEPT") {
                    return Some(true);
                }
                proc.exited().map(|_| false)
            });
            if ready == Some(true) {
                return WebServer { proc, port };
            }
            let text = proc.log_text();
            proc.stop();
            assert!(text.contains("in use"), "openssl s_server {label} did not start:\n{}", tail(&text, 30));
            failures.push(text);
        }
        panic!("openssl s_server {label} could not bind in 3 attempts:\n{}", failures.join("\n---\n"));
    }

    /// `kubectl get --raw PATH` with `kubeconfig`, its server replaced by
    /// this one's URL (`--server`); the TLS settings are the kubeconfig's.
    pub fn kubectl(&self, kubeconfig: &Path, path: &str, limit: Duration) -> Run {
        let mut cmd = Command::new("kubectl");
        scrub_env(&mut cmd)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--server=https://127.0.0.1:{}", self.port))
            .args(["get", "--raw", path]);
        run(&mut cmd, limit)
    }
}
