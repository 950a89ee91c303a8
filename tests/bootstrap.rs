//! Kubelet TLS bootstrapping.
//!
//! `plans/bootstrap.toml` has three control-plane hosts and three workers
//! whose kubelets start with a bootstrap token (`[bootstrap] token_secret`),
//! request their client and serving certificates from the API server and
//! rotate them. certplan must issue no per-worker certificate, give each
//! worker exactly its bootstrap kubeconfig, the cluster CA and its flags,
//! write a bootstrap-token Secret and the RBAC that lets bootstrappers create
//! and get approved CSRs, keep the token across runs, renew it past 2/3 of its
//! TTL, rotate it on request, and never print it. `plans/classic.toml` does
//! the same with a `token.csv`.
//!
//! Every manifest and kubeconfig is read with a real YAML parser, token.csv
//! with the csv crate; paths in flag files are resolved under the host's
//! directory and must exist there. Expected file names come from the kubeadm
//! and cfssl columns of book/src/reference/output-tree.md.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::common::{artifact, certplan, inspect, plan_path, plan_with_key, write_plan};

/// The clock of the first apply.
const T0: &str = "2026-01-01T00:00:00Z";
/// The bootstrap plan's `token_ttl`.
const TTL: Duration = Duration::hours(24);
/// Before 2/3 of the TTL: the token is kept.
const T0_15H: &str = "2026-01-01T15:00:00Z";
/// Past 2/3 of the TTL (16h): the token is renewed.
const T0_17H: &str = "2026-01-01T17:00:00Z";
/// A day after [`T0`]: nothing a classic plan holds is due then.
const T0_1D: &str = "2026-01-02T00:00:00Z";

const CONTROL_PLANE: [&str; 3] = ["cp1", "cp2", "cp3"];
const WORKERS: [&str; 3] = ["worker1", "worker2", "worker3"];

/// The kubeadm layout's directories (the preset's defaults).
const CONFIG_DIR: &str = "etc/kubernetes";
const PKI_DIR: &str = "etc/kubernetes/pki";

const BOOTSTRAP_GROUP: &str = "system:bootstrappers";
const NODE_BOOTSTRAPPER: &str = "system:node-bootstrapper";
const NODE_CLIENT: &str = "system:certificates.k8s.io:certificatesigningrequests:nodeclient";
const SELF_NODE_CLIENT: &str = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient";

// ---------------------------------------------------------------------------
// Running the binary, and remembering everything it printed.

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Every command run by a test with what it printed, so that the test can
/// check at the end that no secret it learnt along the way was ever printed.
#[derive(Default)]
struct Transcript(Vec<(String, Output)>);

impl Transcript {
    /// Runs `certplan ARGS...` and records it.
    fn run(&mut self, args: &[&str]) -> Output {
        let output = certplan().args(args).output().expect("run certplan");
        self.0.push((args.join(" "), output.clone()));
        output
    }

    /// Runs `certplan ARGS...`, which must succeed; returns its stdout.
    fn ok(&mut self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "certplan {} failed ({:?}):\n{}\n{}",
            args.join(" "),
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    /// `apply PLAN --out OUT --now NOW [--rotate ID]`.
    fn apply(&mut self, plan: &Path, out: &Path, now: &str, rotate: Option<&str>) -> String {
        let mut args = vec!["apply", utf8(plan), "--out", utf8(out), "--now", now];
        if let Some(id) = rotate {
            args.extend(["--rotate", id]);
        }
        self.ok(&args)
    }

    /// `plan PLAN --out OUT --now NOW --detailed-exitcode [--format json]`:
    /// the exit code and stdout.
    fn plan(&mut self, plan: &Path, out: &Path, now: &str, json: bool) -> (i32, String) {
        let mut args = vec!["plan", utf8(plan), "--out", utf8(out), "--now", now, "--detailed-exitcode"];
        if json {
            args.extend(["--format", "json"]);
        }
        let output = self.run(&args);
        let code = output.status.code().expect("exit code");
        assert!(
            code == 0 || code == 2,
            "certplan {} exited {code}:\n{}\n{}",
            args.join(" "),
            text(&output.stdout),
            text(&output.stderr)
        );
        (code, text(&output.stdout))
    }

    /// Fails if any recorded stdout or stderr contains one of `secrets`.
    fn assert_never_printed(&self, secrets: &[(&str, String)]) {
        for (what, secret) in secrets {
            assert!(!secret.is_empty(), "empty secret {what}");
            for (command, output) in &self.0 {
                for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
                    assert!(
                        !text(bytes).contains(secret.as_str()),
                        "`certplan {command}` printed the {what} on {stream}:\n{}",
                        text(bytes)
                    );
                }
            }
        }
    }
}

/// `check --format json PLAN`: the exit code and the diagnostics.
fn check_json(plan: &Path) -> (i32, Vec<Value>) {
    let output = certplan().arg("check").arg(plan).args(["--format", "json"]).output().expect("run certplan");
    let code = output.status.code().expect("exit code");
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("check --format json is not JSON ({e}):\n{}\n{}", text(&output.stdout), text(&output.stderr))
    });
    (code, doc.as_array().expect("an array of diagnostics").clone())
}

/// The diagnostics of `rule`.
fn with_rule<'a>(diagnostics: &'a [Value], rule: &str) -> Vec<&'a Value> {
    diagnostics.iter().filter(|d| d["rule"] == rule).collect()
}

/// An example plan with `from` replaced by `to` (which must occur).
fn edited(name: &str, from: &str, to: &str) -> String {
    let source = std::fs::read_to_string(plan_path(name)).expect("read plan");
    assert!(source.contains(from), "plans/{name}.toml no longer contains {from:?}");
    source.replacen(from, to, 1)
}

/// `plans/bootstrap.toml` with a `kubelet = {...}` override on one worker.
fn with_worker_override(worker: &str, table: &str) -> String {
    let source = std::fs::read_to_string(plan_path("bootstrap")).expect("read plan");
    let marker = format!("name = \"{worker}\"\n");
    let start = source.find(&marker).unwrap_or_else(|| panic!("no host {worker} in plans/bootstrap.toml"));
    let roles = start + source[start..].find("roles = ").expect("roles of the host");
    let end = roles + source[roles..].find('\n').expect("end of the roles line") + 1;
    format!("{}kubelet = {table}\n{}", &source[..end], &source[end..])
}

// ---------------------------------------------------------------------------
// Reading the output tree.

/// Every file under `out` (but the state directory), relative, sorted.
fn tree(out: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, into: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let rel = path.strip_prefix(root).expect("under root").to_str().expect("UTF-8").to_string();
            if rel == ".certplan" {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, into);
            } else {
                into.push(rel);
            }
        }
    }
    let mut files = Vec::new();
    walk(out, out, &mut files);
    files.sort();
    files
}

/// The files under `hosts/<host>/`, relative to it.
fn host_files(out: &Path, host: &str) -> BTreeSet<String> {
    let root = out.join("hosts").join(host);
    assert!(root.is_dir(), "no directory for host {host}");
    let prefix = format!("hosts/{host}/");
    tree(out).into_iter().filter_map(|f| f.strip_prefix(&prefix).map(str::to_string)).collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).permissions().mode() & 0o7777
}

/// Bytes, mtime and inode: a file that was not touched keeps all three.
fn fingerprint(path: &Path) -> (Vec<u8>, i64, i64, u64) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (read(path), meta.mtime(), meta.mtime_nsec(), meta.ino())
}

/// Where an on-host path (`/etc/...`) of `host` lives in the output tree.
fn on_host(out: &Path, host: &str, path: &str) -> PathBuf {
    assert!(path.starts_with('/'), "on-host path {path:?} of {host} is not absolute");
    out.join("hosts").join(host).join(path.trim_start_matches('/'))
}

/// The flags of a flag file (`NAME="--flag=value ..."` lines): flag name
/// without dashes → every value it is given.
type Flags = BTreeMap<String, Vec<String>>;

fn flags(out: &Path, host: &str, component: &str) -> Flags {
    let path = out.join("hosts").join(host).join(CONFIG_DIR).join(format!("{component}.env"));
    let mut flags = Flags::new();
    for line in read_text(&path).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) =
            line.split_once('=').unwrap_or_else(|| panic!("{}: not NAME=VALUE: {line}", path.display()));
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "{}: bad variable name {name:?}",
            path.display()
        );
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{}: value of {name} is not quoted", path.display()));
        for word in value.split_whitespace() {
            let word = word.strip_prefix("--").unwrap_or_else(|| panic!("{}: {word:?} is not a flag", path.display()));
            let (flag, value) = word.split_once('=').unwrap_or((word, ""));
            flags.entry(flag.to_string()).or_default().push(value.to_string());
        }
    }
    flags
}

/// The one value of `--flag`.
fn flag<'a>(flags: &'a Flags, name: &str, what: &str) -> &'a str {
    match flags.get(name).map(Vec::as_slice) {
        Some([value]) => {
            assert!(!value.is_empty(), "{what}: --{name} has no value");
            value
        }
        Some(values) => panic!("{what}: --{name} given {} times: {values:?}", values.len()),
        None => panic!("{what}: no --{name} in {:?}", flags.keys().collect::<Vec<_>>()),
    }
}

fn yaml(path: &Path) -> Value {
    serde_yaml_ng::from_str(&read_text(path)).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// Every document of a multi-document YAML file.
fn yaml_documents(path: &Path) -> Vec<Value> {
    use serde::Deserialize as _;
    let source = read_text(path);
    serde_yaml_ng::Deserializer::from_str(&source)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn is_lower_alnum(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `^[a-z0-9]{6}\.[a-z0-9]{16}$`.
fn is_bootstrap_token(token: &str) -> bool {
    matches!(token.split_once('.'), Some((id, secret)) if is_lower_alnum(id, 6) && is_lower_alnum(secret, 16))
}

fn at(rfc3339: &str) -> OffsetDateTime {
    OffsetDateTime::parse(rfc3339, &Rfc3339).unwrap_or_else(|e| panic!("{rfc3339:?} is not RFC 3339: {e}"))
}

/// The bootstrap-token Secret, parsed and checked against the Kubernetes
/// bootstrap-token format.
struct TokenSecret {
    id: String,
    secret: String,
    expiration: OffsetDateTime,
    groups: Vec<String>,
}

impl TokenSecret {
    fn token(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }
}

const SECRET_MANIFEST: &str = "cluster/manifests/bootstrap-token.yaml";

/// Reads the Secret written by an apply at `now`, checking every field.
fn token_secret(out: &Path, now: &str) -> TokenSecret {
    let path = out.join(SECRET_MANIFEST);
    let doc = yaml(&path);
    assert_eq!(doc["apiVersion"], "v1", "{doc:#}");
    assert_eq!(doc["kind"], "Secret", "{doc:#}");
    assert_eq!(doc["type"], "bootstrap.kubernetes.io/token", "{doc:#}");
    assert_eq!(doc["metadata"]["namespace"], "kube-system", "{doc:#}");
    let data = doc["stringData"].as_object().unwrap_or_else(|| panic!("no stringData: {doc:#}"));
    for (key, value) in data {
        assert!(value.is_string(), "stringData.{key} must be a string (stringData is map[string]string): {value}");
    }
    let field = |key: &str| -> String {
        data.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("no stringData.{key}: {doc:#}")).to_string()
    };
    let id = field("token-id");
    let secret = field("token-secret");
    assert!(is_lower_alnum(&id, 6), "token-id {id:?} is not [a-z0-9]{{6}}");
    assert!(is_lower_alnum(&secret, 16), "token-secret is not [a-z0-9]{{16}}");
    assert!(is_bootstrap_token(&format!("{id}.{secret}")));
    assert_eq!(
        doc["metadata"]["name"],
        format!("bootstrap-token-{id}"),
        "the Secret's name must be bootstrap-token-<token-id>"
    );
    assert_eq!(field("usage-bootstrap-authentication"), "true");
    assert_eq!(field("usage-bootstrap-signing"), "true");
    let groups: Vec<String> = field("auth-extra-groups").split(',').map(str::to_string).collect();
    for group in &groups {
        assert!(
            group.starts_with("system:bootstrappers:") && group.len() > "system:bootstrappers:".len(),
            "auth-extra-groups: {group:?} must start with system:bootstrappers:"
        );
    }
    let expiration = at(&field("expiration"));
    let expected = at(now) + TTL;
    assert!(
        (expiration - expected).abs() <= Duration::minutes(1),
        "expiration {expiration} should be --now ({now}) + token_ttl (24h) = {expected}"
    );
    TokenSecret { id, secret, expiration, groups }
}

/// A kubeconfig's current context, resolved: (server, CA data, user entry).
fn kubeconfig(path: &Path) -> (String, Vec<u8>, Value) {
    let doc = yaml(path);
    assert_eq!(doc["kind"], "Config", "{}", path.display());
    let current = doc["current-context"].as_str().unwrap_or_else(|| panic!("{}: no current-context", path.display()));
    let named = |list: &str, name: &str| -> Value {
        doc[list]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["name"] == name))
            .unwrap_or_else(|| panic!("{}: no {list} entry {name:?}", path.display()))
            .clone()
    };
    let context = named("contexts", current);
    let cluster = named("clusters", context["context"]["cluster"].as_str().expect("context.cluster"));
    let user = named("users", context["context"]["user"].as_str().expect("context.user"));
    let server = cluster["cluster"]["server"].as_str().expect("cluster.server").to_string();
    let ca = base64::engine::general_purpose::STANDARD
        .decode(cluster["cluster"]["certificate-authority-data"].as_str().expect("certificate-authority-data"))
        .expect("certificate-authority-data is base64");
    (server, ca, user["user"].clone())
}

/// The token of a kubeconfig's current user.
fn kubeconfig_token(path: &Path) -> String {
    let (_, _, user) = kubeconfig(path);
    user["token"].as_str().unwrap_or_else(|| panic!("{}: the user has no token: {user}", path.display())).to_string()
}

/// Checks the kubelet-bootstrap RBAC manifest: valid multi-document YAML of
/// `ClusterRoleBindings`, binding exactly the three roles TLS bootstrapping
/// needs to the right groups.
fn check_bootstrap_rbac(out: &Path) {
    let path = out.join("cluster/manifests/kubelet-bootstrap-rbac.yaml");
    let docs = yaml_documents(&path);
    let mut names = BTreeSet::new();
    let mut bindings = BTreeSet::new();
    for doc in &docs {
        assert_eq!(doc["apiVersion"], "rbac.authorization.k8s.io/v1", "{doc:#}");
        assert_eq!(doc["kind"], "ClusterRoleBinding", "{doc:#}");
        let name = doc["metadata"]["name"].as_str().unwrap_or_else(|| panic!("no metadata.name: {doc:#}"));
        assert!(names.insert(name.to_string()), "two bindings named {name}");
        assert_eq!(doc["roleRef"]["apiGroup"], "rbac.authorization.k8s.io", "{doc:#}");
        assert_eq!(doc["roleRef"]["kind"], "ClusterRole", "{doc:#}");
        let role = doc["roleRef"]["name"].as_str().expect("roleRef.name");
        for subject in doc["subjects"].as_array().unwrap_or_else(|| panic!("no subjects: {doc:#}")) {
            assert_eq!(subject["kind"], "Group", "{doc:#}");
            assert_eq!(subject["apiGroup"], "rbac.authorization.k8s.io", "{doc:#}");
            bindings.insert((role.to_string(), subject["name"].as_str().expect("subject name").to_string()));
        }
    }
    let expected: BTreeSet<(String, String)> =
        [(NODE_BOOTSTRAPPER, BOOTSTRAP_GROUP), (NODE_CLIENT, BOOTSTRAP_GROUP), (SELF_NODE_CLIENT, "system:nodes")]
            .into_iter()
            .map(|(r, g)| (r.to_string(), g.to_string()))
            .collect();
    assert_eq!(bindings, expected, "{}: roles bound to groups", path.display());
}

/// Applies `source` (written into `dir`) at [`T0`] into `dir/out`. Unlike
/// `common::applied::apply_source`, the clock is fixed (token TTLs are measured
/// from it), the caller owns the directory, and nothing is inspected.
fn apply_source_at_t0(dir: &Path, source: &str) -> (PathBuf, PathBuf) {
    let plan = write_plan(dir, source);
    let out = dir.join("out");
    Transcript::default().apply(&plan, &out, T0, None);
    (plan, out)
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

// ---------------------------------------------------------------------------
// plans/bootstrap.toml: what is (not) issued, and where it goes.

#[test]
fn bootstrapping_workers_get_no_kubelet_certificate_only_their_bootstrap_files() {
    let dir = tempdir();
    let plan = plan_path("bootstrap");
    let out = dir.path().join("out");
    Transcript::default().apply(&plan, &out, T0, None);
    let doc = inspect(&plan, &out);

    // No kubelet client or serving certificate, nor a kubelet kubeconfig, is
    // issued for any worker: the kubelets request them.
    let ids: Vec<&str> =
        doc["artifacts"].as_array().expect("artifacts").iter().filter_map(|a| a["id"].as_str()).collect();
    for prefix in ["cert/kubelet/", "cert/kubelet-server/", "kubeconfig/kubelet/"] {
        let found: Vec<&&str> = ids.iter().filter(|id| id.starts_with(prefix)).collect();
        assert!(found.is_empty(), "bootstrapping kubelets need no {prefix}<host> artifact, got {found:?}");
    }
    for id in ["kubeconfig/bootstrap", "manifest/bootstrap-token", "manifest/kubelet-bootstrap-rbac"] {
        assert!(ids.contains(&id), "no artifact {id}");
    }
    assert!(!ids.contains(&"token-file/bootstrap"), "token_csv is off, yet a token-file/bootstrap artifact exists");

    // The bootstrap kubeconfig goes to every bootstrapping worker and nowhere else.
    let bootstrap = artifact(&doc, "kubeconfig/bootstrap");
    assert_eq!(bootstrap["kind"], "kubeconfig");
    let paths: BTreeSet<&str> =
        bootstrap["files"].as_array().expect("files").iter().filter_map(|f| f["path"].as_str()).collect();
    let expected: BTreeSet<String> =
        WORKERS.iter().map(|w| format!("hosts/{w}/{CONFIG_DIR}/bootstrap-kubelet.conf")).collect();
    assert_eq!(paths, expected.iter().map(String::as_str).collect(), "files of kubeconfig/bootstrap");

    // The Secret is a cluster-wide manifest, never copied to a host.
    let secret = artifact(&doc, "manifest/bootstrap-token");
    assert_eq!(secret["kind"], "manifest");
    let paths: Vec<&str> =
        secret["files"].as_array().expect("files").iter().filter_map(|f| f["path"].as_str()).collect();
    assert_eq!(paths, [SECRET_MANIFEST], "files of manifest/bootstrap-token");

    // Each worker gets exactly its bootstrap kubeconfig, the cluster CA
    // certificate, its flag files and kube-proxy's kubeconfig and client
    // certificate (kubeadm names).
    let expected: BTreeSet<String> = [
        format!("{CONFIG_DIR}/bootstrap-kubelet.conf"),
        format!("{CONFIG_DIR}/kubelet.env"),
        format!("{CONFIG_DIR}/kube-proxy.env"),
        format!("{CONFIG_DIR}/kube-proxy.conf"),
        format!("{PKI_DIR}/ca.crt"),
        format!("{PKI_DIR}/kube-proxy.crt"),
        format!("{PKI_DIR}/kube-proxy.key"),
    ]
    .into_iter()
    .collect();
    let cluster_ca = read(&out.join("cluster/pki/ca.crt"));
    for worker in WORKERS {
        let files = host_files(&out, worker);
        let kubelet_files: Vec<&String> = files.iter().filter(|f| f.contains("kubelet-client")).collect();
        assert!(kubelet_files.is_empty(), "kubelet client files on {worker}: {kubelet_files:?}");
        assert_eq!(files, expected, "files under hosts/{worker}");
        assert_eq!(read(&out.join(format!("hosts/{worker}/{PKI_DIR}/ca.crt"))), cluster_ca, "{worker}'s ca.crt");
        let conf = out.join(format!("hosts/{worker}/{CONFIG_DIR}/bootstrap-kubelet.conf"));
        assert_eq!(mode(&conf), 0o600, "a kubeconfig that embeds a token is 0600");
    }
    assert_eq!(mode(&out.join(SECRET_MANIFEST)), 0o600, "the bootstrap-token Secret holds a secret: 0600");
    assert_eq!(mode(&out.join("cluster/manifests")), 0o700, "cluster/manifests holds a secret: 0700");
    assert_eq!(mode(&out.join("cluster/manifests/kubelet-bootstrap-rbac.yaml")), 0o644);

    // CA private keys: only in cluster/pki and on control-plane hosts.
    let all = tree(&out);
    let ca_keys: Vec<String> =
        all.iter().filter(|f| f.starts_with("cluster/pki/") && f.ends_with(".key")).cloned().collect();
    assert!(ca_keys.contains(&"cluster/pki/ca.key".to_string()), "no cluster/pki/ca.key: {ca_keys:?}");
    let ca_key_bytes: Vec<(String, Vec<u8>)> = ca_keys.iter().map(|k| (k.clone(), read(&out.join(k)))).collect();
    let mut cluster_ca_key_at = BTreeSet::new();
    for file in &all {
        let bytes = read(&out.join(file));
        for (key, key_bytes) in &ca_key_bytes {
            let body = String::from_utf8_lossy(key_bytes);
            let body: String = body.lines().filter(|l| !l.starts_with("-----")).collect();
            if bytes == *key_bytes || (!body.is_empty() && text(&bytes).replace('\n', "").contains(&body)) {
                assert!(
                    file.starts_with("cluster/pki/")
                        || CONTROL_PLANE.iter().any(|cp| file.starts_with(&format!("hosts/{cp}/"))),
                    "the CA key {key} is in {file}"
                );
                if key == "cluster/pki/ca.key" {
                    cluster_ca_key_at.insert(file.clone());
                }
            }
        }
        if WORKERS.iter().any(|w| file.starts_with(&format!("hosts/{w}/"))) && text(&bytes).contains("PRIVATE KEY") {
            assert!(file.ends_with("/kube-proxy.key"), "a private key on a worker: {file}");
        }
    }
    let mut expected: BTreeSet<String> =
        CONTROL_PLANE.iter().map(|cp| format!("hosts/{cp}/{PKI_DIR}/ca.key")).collect();
    expected.insert("cluster/pki/ca.key".to_string());
    assert_eq!(cluster_ca_key_at, expected, "where the cluster CA key is");
}

#[test]
fn bootstrap_token_secret_kubeconfig_and_rbac_parse() {
    let dir = tempdir();
    let plan = plan_path("bootstrap");
    let out = dir.path().join("out");
    Transcript::default().apply(&plan, &out, T0, None);

    let secret = token_secret(&out, T0);
    assert_eq!(secret.expiration, at(T0) + TTL, "expiration = --now + token_ttl");
    assert!(!secret.groups.is_empty(), "auth-extra-groups is empty");

    // Every worker's bootstrap kubeconfig dials the API server, trusts the
    // cluster CA and authenticates with <token-id>.<token-secret>.
    let cluster_ca = read(&out.join("cluster/pki/ca.crt"));
    for worker in WORKERS {
        let path = out.join(format!("hosts/{worker}/{CONFIG_DIR}/bootstrap-kubelet.conf"));
        let (server, ca, user) = kubeconfig(&path);
        assert_eq!(server, "https://10.20.0.10:6443", "{worker}: server");
        assert_eq!(ca, cluster_ca, "{worker}: certificate-authority-data is the cluster CA");
        let token = user["token"].as_str().unwrap_or_else(|| panic!("{worker}: no token: {user}"));
        assert!(
            is_bootstrap_token(token),
            "{worker}: the kubeconfig's token does not match [a-z0-9]{{6}}.[a-z0-9]{{16}}"
        );
        assert!(
            token == secret.token(),
            "{worker}: the kubeconfig's token is not <token-id>.<token-secret> of the Secret"
        );
        for field in ["client-certificate-data", "client-key-data", "client-certificate", "client-key"] {
            assert!(user.get(field).is_none(), "{worker}: the bootstrap kubeconfig has {field}");
        }
    }

    check_bootstrap_rbac(&out);

    // The API server's kubelet-client RBAC is valid YAML and names the CN of
    // the certificate it is for.
    let doc = inspect(&plan, &out);
    let cn = artifact(&doc, "cert/apiserver-kubelet-client")["subject"]["cn"].as_str().expect("cn").to_string();
    let docs = yaml_documents(&out.join("cluster/manifests/apiserver-kubelet-rbac.yaml"));
    assert_eq!(docs.len(), 1, "{docs:#?}");
    assert_eq!(docs[0]["kind"], "ClusterRoleBinding");
    assert_eq!(docs[0]["roleRef"]["name"], "system:kubelet-api-admin");
    assert_eq!(docs[0]["subjects"][0]["kind"], "User");
    assert_eq!(docs[0]["subjects"][0]["name"], cn.as_str());
}

#[test]
fn bootstrap_component_flags() {
    let dir = tempdir();
    let out = dir.path().join("out");
    Transcript::default().apply(&plan_path("bootstrap"), &out, T0, None);
    let cluster_ca = read(&out.join("cluster/pki/ca.crt"));
    let cluster_ca_key = read(&out.join("cluster/pki/ca.key"));

    for worker in WORKERS {
        let what = format!("kubelet.env on {worker}");
        let f = flags(&out, worker, "kubelet");
        let bootstrap = flag(&f, "bootstrap-kubeconfig", &what);
        assert_eq!(bootstrap, format!("/{CONFIG_DIR}/bootstrap-kubelet.conf"), "{what}");
        assert!(
            on_host(&out, worker, bootstrap).is_file(),
            "{what}: --bootstrap-kubeconfig={bootstrap} is not on the host"
        );
        // The kubelet writes its kubeconfig itself once its CSR is approved.
        let kubeconfig = flag(&f, "kubeconfig", &what);
        assert_ne!(kubeconfig, bootstrap, "{what}: --kubeconfig must differ from --bootstrap-kubeconfig");
        assert!(
            !on_host(&out, worker, kubeconfig).exists(),
            "{what}: --kubeconfig={kubeconfig} must be left for the kubelet to write"
        );
        let cert_dir = flag(&f, "cert-dir", &what);
        assert!(cert_dir.starts_with('/'), "{what}: --cert-dir={cert_dir}");
        assert_eq!(flag(&f, "rotate-certificates", &what), "true", "{what}");
        assert_eq!(flag(&f, "rotate-server-certificates", &what), "true", "{what}");
        for absent in ["tls-cert-file", "tls-private-key-file"] {
            assert!(!f.contains_key(absent), "{what}: --{absent} with a bootstrapped serving certificate: {f:?}");
        }
        let client_ca = flag(&f, "client-ca-file", &what);
        assert!(on_host(&out, worker, client_ca).is_file(), "{what}: --client-ca-file={client_ca} is not on the host");
    }

    for cp in CONTROL_PLANE {
        let what = format!("kube-controller-manager.env on {cp}");
        let f = flags(&out, cp, "kube-controller-manager");
        let cert = flag(&f, "cluster-signing-cert-file", &what);
        let key = flag(&f, "cluster-signing-key-file", &what);
        assert_eq!(read(&on_host(&out, cp, cert)), cluster_ca, "{what}: --cluster-signing-cert-file={cert}");
        assert_eq!(read(&on_host(&out, cp, key)), cluster_ca_key, "{what}: --cluster-signing-key-file={key}");
        let duration = flag(&f, "cluster-signing-duration", &what);
        assert!(
            duration.strip_suffix("h0m0s").is_some_and(|h| h.parse::<u64>().is_ok_and(|h| h > 0)),
            "{what}: --cluster-signing-duration={duration} is not a Go duration in hours"
        );
        assert!(!f.contains_key("experimental-cluster-signing-duration"), "{what}: 1.31 has no experimental flag");

        let what = format!("kube-apiserver.env on {cp}");
        let f = flags(&out, cp, "kube-apiserver");
        assert_eq!(flag(&f, "enable-bootstrap-token-auth", &what), "true", "{what}");
        let kubelet_ca = flag(&f, "kubelet-certificate-authority", &what);
        // Bootstrapped serving certificates are signed by the cluster signer.
        assert_eq!(
            read(&on_host(&out, cp, kubelet_ca)),
            cluster_ca,
            "{what}: --kubelet-certificate-authority={kubelet_ca}"
        );
        assert!(!f.contains_key("token-auth-file"), "{what}: token_csv is off, yet --token-auth-file is set");
    }
}

// ---------------------------------------------------------------------------
// The token's life: kept, renewed past 2/3 of its TTL, rotated, never printed.

#[test]
fn bootstrap_token_is_kept_renewed_rotated_and_never_printed() {
    let dir = tempdir();
    let plan = plan_path("bootstrap");
    let out = dir.path().join("out");
    let mut t = Transcript::default();
    let secret_path = out.join(SECRET_MANIFEST);
    let kubeconfigs: Vec<PathBuf> =
        WORKERS.iter().map(|w| out.join(format!("hosts/{w}/{CONFIG_DIR}/bootstrap-kubelet.conf"))).collect();
    let worker_tokens = || -> Vec<String> { kubeconfigs.iter().map(|p| kubeconfig_token(p)).collect() };

    t.apply(&plan, &out, T0, None);
    let first = token_secret(&out, T0);
    assert_eq!(worker_tokens(), vec![first.token(); 3]);
    let before = fingerprint(&secret_path);
    let kubeconfigs_before: Vec<_> = kubeconfigs.iter().map(|p| fingerprint(p)).collect();

    // The same clock again, and later but before 2/3 of the TTL: nothing to do.
    for now in [T0, T0_15H] {
        let (code, stdout) = t.plan(&plan, &out, now, true);
        assert_eq!(code, 0, "plan --now {now} after apply: {stdout}");
        t.apply(&plan, &out, now, None);
        assert!(fingerprint(&secret_path) == before, "apply --now {now} touched {SECRET_MANIFEST}");
        let after: Vec<_> = kubeconfigs.iter().map(|p| fingerprint(p)).collect();
        assert!(after == kubeconfigs_before, "apply --now {now} touched a bootstrap kubeconfig");
        assert!(token_secret(&out, T0).token() == first.token(), "apply --now {now} changed the token");
    }

    // Past 2/3 of the TTL: renewed, and the kubeconfigs follow.
    let (code, stdout) = t.plan(&plan, &out, T0_17H, false);
    assert_eq!(code, 2, "plan --now {T0_17H}: {stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("renew manifest/bootstrap-token")),
        "plan --now {T0_17H} should say `renew manifest/bootstrap-token`:\n{stdout}"
    );
    let (_, json) = t.plan(&plan, &out, T0_17H, true);
    let changes: Value = serde_json::from_str(&json).expect("plan JSON");
    let change = changes["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["id"] == "manifest/bootstrap-token")
        .unwrap_or_else(|| panic!("plan JSON names no manifest/bootstrap-token: {json}"));
    assert_eq!(change["action"], "renew", "{change}");
    t.apply(&plan, &out, T0_17H, None);
    let renewed = token_secret(&out, T0_17H);
    assert!(renewed.token() != first.token(), "renewal kept the token");
    assert!(renewed.secret != first.secret, "renewal kept the token secret");
    assert_eq!(renewed.expiration, at(T0_17H) + TTL);
    assert!(worker_tokens() == vec![renewed.token(); 3], "the bootstrap kubeconfigs do not carry the renewed token");
    let (code, stdout) = t.plan(&plan, &out, T0_17H, true);
    assert_eq!(code, 0, "plan after the renewal: {stdout}");

    // Rotation on request.
    t.apply(&plan, &out, T0_17H, Some("manifest/bootstrap-token"));
    let rotated = token_secret(&out, T0_17H);
    assert!(rotated.token() != renewed.token(), "--rotate manifest/bootstrap-token kept the token");
    assert!(rotated.secret != renewed.secret, "--rotate manifest/bootstrap-token kept the token secret");
    assert!(worker_tokens() == vec![rotated.token(); 3], "the bootstrap kubeconfigs do not carry the rotated token");

    // Every other command that reads the plan and the tree.
    let (plan_s, out_s) = (utf8(&plan), utf8(&out));
    t.ok(&["check", plan_s]);
    t.ok(&["check", plan_s, "--format", "json"]);
    t.plan(&plan, &out, T0_17H, false);
    t.ok(&["plan", plan_s, "--out", out_s, "--now", T0_17H, "--rotate", "manifest/bootstrap-token"]);
    t.ok(&[
        "plan",
        plan_s,
        "--out",
        out_s,
        "--now",
        T0_17H,
        "--rotate",
        "manifest/bootstrap-token",
        "--format",
        "json",
    ]);
    for format in ["text", "json", "markdown"] {
        t.ok(&["inspect", plan_s, "--out", out_s, "--now", T0_17H, "--format", format]);
    }

    let ca_key = read_text(&out.join("cluster/pki/ca.key"));
    let ca_key_line =
        ca_key.lines().find(|l| !l.starts_with("-----") && l.len() > 20).expect("a base64 line").to_string();
    let mut secrets = vec![("CA private key".to_string(), ca_key_line)];
    for (n, s) in [("first", &first), ("renewed", &renewed), ("rotated", &rotated)] {
        secrets.push((format!("{n} token secret"), s.secret.clone()));
        secrets.push((format!("{n} token"), s.token()));
    }
    let secrets: Vec<(&str, String)> = secrets.iter().map(|(w, s)| (w.as_str(), s.clone())).collect();
    t.assert_never_printed(&secrets);

    // Nor in the state file.
    let state = read_text(&out.join(".certplan/state.json"));
    for (what, secret) in &secrets {
        assert!(!state.contains(secret.as_str()), "the state file holds the {what}");
    }
}

#[test]
fn extra_groups_reach_the_token_secret() {
    let dir = tempdir();
    let groups = ["system:bootstrappers:fleet-workers", "system:bootstrappers:zone-a"];
    let source = edited(
        "bootstrap",
        "token_ttl = \"24h\"\n",
        &format!("token_ttl = \"24h\"\nextra_groups = [\"{}\", \"{}\"]\n", groups[0], groups[1]),
    );
    let (_, out) = apply_source_at_t0(dir.path(), &source);
    let secret = token_secret(&out, T0);
    assert_eq!(secret.groups, groups, "auth-extra-groups");
}

// ---------------------------------------------------------------------------
// Variants of the bootstrap plan.

#[test]
fn kubernetes_1_18_uses_the_experimental_signing_duration_flag() {
    let dir = tempdir();
    let source = edited("bootstrap", "kubernetes_version = \"1.31\"", "kubernetes_version = \"1.18\"");
    let plan = write_plan(dir.path(), &source);
    let (code, diagnostics) = check_json(&plan);
    assert_eq!(code, 0, "1.18 is a known version: {diagnostics:#?}");
    let (_, out) = apply_source_at_t0(dir.path(), &source);
    let cluster_ca_key = read(&out.join("cluster/pki/ca.key"));
    for cp in CONTROL_PLANE {
        let what = format!("kube-controller-manager.env on {cp} (1.18)");
        let f = flags(&out, cp, "kube-controller-manager");
        let duration = flag(&f, "experimental-cluster-signing-duration", &what);
        assert!(duration.ends_with("h0m0s"), "{what}: {duration}");
        assert!(!f.contains_key("cluster-signing-duration"), "{what}: 1.18 has no --cluster-signing-duration");
        let key = flag(&f, "cluster-signing-key-file", &what);
        assert_eq!(read(&on_host(&out, cp, key)), cluster_ca_key, "{what}");
        assert!(on_host(&out, cp, flag(&f, "cluster-signing-cert-file", &what)).is_file(), "{what}");
    }
}

#[test]
fn kubernetes_1_12_is_an_unknown_version() {
    let dir = tempdir();
    let source = edited("bootstrap", "kubernetes_version = \"1.31\"", "kubernetes_version = \"1.12\"");
    let plan = write_plan(dir.path(), &source);
    let (code, diagnostics) = check_json(&plan);
    assert_ne!(code, 0, "check must fail for 1.12: {diagnostics:#?}");
    let found = with_rule(&diagnostics, "unknown-version");
    assert_eq!(found.len(), 1, "{diagnostics:#?}");
    assert_eq!(found[0]["severity"], "error");
    let line = source.lines().position(|l| l.starts_with("kubernetes_version")).expect("kubernetes_version line") + 1;
    assert_eq!(found[0]["line"], line, "points at kubernetes_version: {:#}", found[0]);
}

#[test]
fn a_self_signed_kubelet_drops_the_kubelet_ca_and_warns() {
    let dir = tempdir();
    let source = with_worker_override("worker2", "{ serving_cert = \"self-signed\" }");
    let plan = write_plan(dir.path(), &source);
    let (code, diagnostics) = check_json(&plan);
    assert_eq!(code, 0, "a warning does not fail check: {diagnostics:#?}");
    let found = with_rule(&diagnostics, "kubelet-serving-unverified");
    assert_eq!(found.len(), 1, "{diagnostics:#?}");
    assert_eq!(found[0]["severity"], "warning");

    let (_, out) = apply_source_at_t0(dir.path(), &source);
    for cp in CONTROL_PLANE {
        let f = flags(&out, cp, "kube-apiserver");
        assert!(
            !f.contains_key("kubelet-certificate-authority"),
            "kube-apiserver on {cp} cannot verify worker2's self-signed certificate, yet has --kubelet-certificate-authority"
        );
        assert_eq!(flag(&f, "enable-bootstrap-token-auth", cp), "true");
    }
    let what = "kubelet.env on worker2 (self-signed)";
    let f = flags(&out, "worker2", "kubelet");
    for absent in ["tls-cert-file", "tls-private-key-file", "rotate-server-certificates"] {
        assert!(!f.contains_key(absent), "{what}: --{absent}: {f:?}");
    }
    assert_eq!(flag(&f, "rotate-certificates", what), "true", "{what}: the client certificate still bootstraps");
    flag(&f, "bootstrap-kubeconfig", what);
    for worker in ["worker1", "worker3"] {
        let f = flags(&out, worker, "kubelet");
        assert_eq!(flag(&f, "rotate-server-certificates", worker), "true", "kubelet.env on {worker}");
    }
}

#[test]
fn a_bootstrapping_worker_without_a_token_fails_check() {
    let dir = tempdir();
    // Static kubelets by default, one worker bootstraps, and no [bootstrap].
    let source = std::fs::read_to_string(plan_path("bootstrap")).expect("read plan");
    let source = source.replace("[kubelet]\nclient_cert = \"bootstrap\"\nserving_cert = \"bootstrap\"\n", "");
    let source = source.replace("[bootstrap]\ntoken_secret = true\ntoken_ttl = \"24h\"\n", "");
    assert!(!source.contains("[kubelet]") && !source.contains("[bootstrap]"), "plans/bootstrap.toml changed shape");
    let marker = "name = \"worker2\"\naddress = \"10.20.1.22\"\nroles = [\"worker\"]\n";
    assert!(source.contains(marker), "plans/bootstrap.toml changed shape");
    let source = source.replace(marker, &format!("{marker}kubelet = {{ client_cert = \"bootstrap\" }}\n"));
    let plan = write_plan(dir.path(), &source);
    let (code, diagnostics) = check_json(&plan);
    assert_ne!(code, 0, "check must fail: {diagnostics:#?}");
    let found = with_rule(&diagnostics, "bootstrap-without-token");
    assert_eq!(found.len(), 1, "one diagnostic, for worker2: {diagnostics:#?}");
    assert_eq!(found[0]["severity"], "error");
    assert!(found[0]["message"].as_str().unwrap_or_default().contains("worker2"), "{:#}", found[0]);

    // Nothing is written for a plan that does not check clean.
    let out = dir.path().join("out");
    let output = certplan().arg("apply").arg(&plan).arg("--out").arg(&out).args(["--now", T0]).output().expect("run");
    assert!(!output.status.success(), "apply of a plan with errors succeeded");
    assert!(!out.join("hosts").exists(), "apply wrote hosts/ for a plan with errors");
}

// ---------------------------------------------------------------------------
// plans/classic.toml: token.csv.

#[test]
fn classic_token_csv_is_stable_parses_and_is_never_printed() {
    let dir = tempdir();
    let plan = write_plan(dir.path(), &plan_with_key("classic", "ecdsa-p256"));
    let out = dir.path().join("out");
    let mut t = Transcript::default();
    t.apply(&plan, &out, T0, None);

    let masters = ["master1", "master2", "master3"];
    let csv_path = |host: &str| out.join(format!("hosts/{host}/etc/kubernetes/token.csv"));
    let bytes = read(&csv_path(masters[0]));
    for host in masters {
        assert_eq!(read(&csv_path(host)), bytes, "token.csv differs on {host}");
        assert_eq!(mode(&csv_path(host)), 0o600, "token.csv on {host}");
        let f = flags(&out, host, "kube-apiserver");
        let what = format!("kube-apiserver.env on {host}");
        let file = flag(&f, "token-auth-file", &what);
        assert_eq!(read(&on_host(&out, host, file)), bytes, "{what}: --token-auth-file={file}");
        assert!(!f.contains_key("enable-bootstrap-token-auth"), "{what}: token_secret is off");
    }
    for node in ["node1", "node2"] {
        assert!(!csv_path(node).exists(), "token.csv on worker {node}");
    }
    assert!(!out.join(SECRET_MANIFEST).exists(), "token_secret is off, yet a Secret was written");

    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes.as_slice());
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("token.csv is CSV")).collect();
    assert_eq!(records.len(), 1, "one row in token.csv");
    let row = &records[0];
    assert_eq!(row.len(), 4, "token,user,uid,groups");
    let token = row[0].to_string();
    assert!(
        token.len() == 32 && token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "the token is not 32 lowercase hex digits"
    );
    assert_eq!(&row[1], "kubelet-bootstrap");
    assert_eq!(&row[2], "10001");
    assert_eq!(&row[3], BOOTSTRAP_GROUP);
    assert!(
        text(&bytes).trim_end() == format!("{token},kubelet-bootstrap,10001,\"{BOOTSTRAP_GROUP}\""),
        "token.csv is not `<token>,kubelet-bootstrap,10001,\"system:bootstrappers\"`"
    );

    // The workers' bootstrap kubeconfigs carry the same token.
    for node in ["node1", "node2"] {
        let path = out.join(format!("hosts/{node}/etc/kubernetes/bootstrap.kubeconfig"));
        assert!(kubeconfig_token(&path) == token, "{node}: the bootstrap kubeconfig's token is not token.csv's");
        assert_eq!(mode(&path), 0o600);
    }
    check_bootstrap_rbac(&out);

    // Stable across re-applies, at the same clock and a day later.
    let before = fingerprint(&csv_path(masters[0]));
    for now in [T0, T0_1D] {
        t.apply(&plan, &out, now, None);
        assert!(fingerprint(&csv_path(masters[0])) == before, "apply --now {now} rewrote token.csv");
    }

    let (plan_s, out_s) = (utf8(&plan), utf8(&out));
    let json = t.ok(&["inspect", plan_s, "--out", out_s, "--now", T0_1D, "--format", "json"]);
    serde_json::from_str::<Value>(&json).expect("inspect JSON");
    assert!(!json.contains(&token), "inspect --format json contains the token");
    t.ok(&["inspect", plan_s, "--out", out_s, "--now", T0_1D]);
    t.ok(&["check", plan_s]);
    t.plan(&plan, &out, T0_1D, false);
    t.plan(&plan, &out, T0_1D, true);
    t.assert_never_printed(&[("token.csv token", token.clone())]);
    assert!(!read_text(&out.join(".certplan/state.json")).contains(&token), "the state file holds the token");
}

#[test]
fn apiserver_kubelet_rbac_follows_an_identity_override() {
    let dir = tempdir();
    let source = std::fs::read_to_string(plan_path("minimal")).expect("read minimal plan")
        + "\n[identities.apiserver-kubelet-client]\ncn = \"lab:apiserver-kubelet\"\n";
    let (_plan, out) = apply_source_at_t0(dir.path(), &source);
    let docs = yaml_documents(&out.join("cluster/manifests/apiserver-kubelet-rbac.yaml"));
    assert_eq!(docs[0]["subjects"][0]["name"], "lab:apiserver-kubelet", "{docs:#?}");
}

#[test]
fn inspect_shows_the_token_only_when_asked() {
    let dir = tempdir();
    let plan = plan_path("bootstrap");
    let out = dir.path().join("out");
    let mut transcript = Transcript::default();
    transcript.apply(&plan, &out, T0, None);
    let token = token_secret(&out, T0).token();

    let plain = transcript.ok(&["inspect", utf8(&plan), "--out", utf8(&out), "--now", T0]);
    assert!(!plain.contains(&token), "inspect without --show-secrets printed the token");

    let shown = transcript.ok(&["inspect", utf8(&plan), "--out", utf8(&out), "--now", T0, "--show-secrets"]);
    let secrets = shown.split_once("\nSecrets").map_or("", |(_, section)| section);
    let line = secrets.lines().find(|l| l.contains("manifest/bootstrap-token")).unwrap_or("");
    assert!(line.contains(&token), "--show-secrets does not show the token of manifest/bootstrap-token:\n{shown}");

    let json = transcript.ok(&["inspect", utf8(&plan), "--out", utf8(&out), "--format", "json", "--show-secrets"]);
    let doc: Value = serde_json::from_str(&json).expect("inspect JSON");
    assert_eq!(doc["secrets"][0]["id"], "manifest/bootstrap-token", "{:#}", doc["secrets"]);
    assert_eq!(doc["secrets"][0]["token"], token.as_str());

    let refused = transcript.run(&["inspect", utf8(&plan), "--show-secrets"]);
    assert_eq!(refused.status.code(), Some(2), "--show-secrets without --out must be a usage error");
}
