//! `certplan adopt PLAN --out DIR --host NAME=ROOT... [--cluster ROOT]`:
//! the certificates, keys and kubeconfigs of an existing installation, read
//! from copies of its hosts' file systems, become an output tree as if
//! certplan had issued them. What matches the plan leaves the next `plan`
//! nothing to do; what does not is recorded as it is, so that `plan`
//! reissues it, keeping its key, and says why in its own words.
//!
//! Three installations are adopted, each built once per test:
//!
//! - certplan's own tree with its state file deleted: adopted whole, every
//!   file byte for byte, nothing left for `apply`; an edit then reissues only
//!   the certificate it changes.
//! - a kubeadm-shaped tree minted with `openssl` alone: CA keys beside the CA
//!   certificates, keys in the PEM forms kubeadm writes, and the
//!   controller-manager's, scheduler's and admin's client certificates only
//!   inside their kubeconfigs.
//! - a "Kubernetes the hard way" tree minted with `cfssl gencert` and
//!   `cfssljson -bare` from JSON CSRs, with cfssl's file names.
//!
//! In each, the host roots are left exactly as they were (contents, modes,
//! mtimes) and the CA files of the adopted tree are the installation's, byte
//! for byte. Bad input is refused with exit status 1, and nothing written.
//!
//! The cfssl test needs `cfssl` and `cfssljson` (Debian package
//! `golang-cfssl`): plain `cargo test` leaves it out as ignored, as it does
//! every test that needs a Debian tool; tests/run.sh installs the package
//! and runs it, and without the tools it fails and says so.
//!
//! Where the description of `adopt` leaves room, these tests read it so:
//!
//! - Key usage: a certificate is accepted when it has the usages its role
//!   needs; the extra ones kubeadm and cfssl set are accepted (kubeadm's CA:
//!   digitalSignature, keyEncipherment, keyCertSign; cfssl's CA: keyCertSign,
//!   cRLSign; both tools' leaves: digitalSignature, keyEncipherment).
//!   Otherwise a kubeadm or cfssl CA could never be adopted: a CA is never
//!   reissued silently.
//! - Private keys are accepted in the PEM forms kubeadm and cfssl write them
//!   in (`EC PRIVATE KEY`, `RSA PRIVATE KEY`), not only PKCS#8.
//! - Certificates without the `basicConstraints` extension (Go's x509, and so
//!   kubeadm, writes none on leaves) are accepted as leaves.
//! - The admin's client certificate, which kubeadm keeps only in `admin.conf`,
//!   is read from the plan's `cluster/kubeconfigs/admin.conf`, that is
//!   `--cluster ROOT` + `kubeconfigs/admin.conf`; CA keys are looked for
//!   beside the hosts' CA certificates also when `--cluster` is given (its
//!   root then has no `pki/`).
//! - The kubeadm tree's kubeconfigs carry the plan's server (the loopback
//!   address for the controller-manager and scheduler), cluster name and
//!   user names, so each is adopted; the hard-way `token.csv` row has the
//!   plan's user, uid and groups and a token of the guides' form (32 hex
//!   digits), so it is adopted too.
//! - `adopt --format json` lists every adopted artifact in `adopted` by the
//!   id `plan` prints; a note (string or object) about an extra EKU names the
//!   certificate and the usage as `inspect` spells it (`clientAuth`).
//! - The "left for apply" lines of the text output are on stdout, possibly
//!   indented.
//! - A malformed `--host` exits 1 like the other refusals (not clap's 2), and
//!   no refusal creates anything in DIR, not even `.certplan/lock`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::common::applied::artifacts;
use crate::common::problems::Problems;
use crate::common::snapshot::{Snapshot, snapshot};
use crate::common::{artifact, describe, without_entries, write_plan};

/// `plans/kubeadm.toml` cut down to one control plane (`cp1`), one
/// worker (`worker1`) and the `admin` user.
fn kubeadm_plan() -> String {
    let source = std::fs::read_to_string(crate::common::plan_path("kubeadm")).expect("read plans/kubeadm.toml");
    let source = without_entries(&source, "hosts", &["cp2", "cp3", "worker2"]);
    without_entries(&source, "users", &["break-glass"])
}

/// A "hard way" plan as book/src/recipes/migrating.md writes one for a cfssl
/// install: cfssl's file names, RSA keys, the subject fields every CSR of
/// such an install repeats, one master and one node, a token file.
const CFSSL_PLAN: &str = r#"[cluster]
name = "kubernetes"
kubernetes_version = "1.31"
apiserver_url = "https://192.168.214.88:6443"
service_cidr = "10.254.0.0/16"
cluster_domain = "cluster.local"

[defaults]
key = "rsa-2048"
validity = "8760h"
ca_validity = "87600h"
subject = { C = "CN", ST = "BeiJing", L = "BeiJing", OU = "System" }

[layout]
preset = "cfssl"
pki_dir = "/etc/kubernetes/ssl"
config_dir = "/etc/kubernetes"

[cas.kubernetes]
cn = "kubernetes"
o = ["k8s"]

[identities]
kube-controller-manager = { o = ["system:kube-controller-manager"] }
kube-scheduler = { o = ["system:kube-scheduler"] }
kube-proxy = { o = ["k8s"] }

[[hosts]]
name = "master1"
address = "192.168.214.88"
roles = ["control-plane", "etcd"]

[[hosts]]
name = "node1"
address = "192.168.214.201"
roles = ["worker"]

[[users]]
name = "admin"
groups = ["system:masters"]

[bootstrap]
token_csv = true
"#;

/// The hosts of [`kubeadm_plan`].
const CONTROL_PLANE: &str = "cp1";
const WORKER: &str = "worker1";
/// The hosts of [`CFSSL_PLAN`].
const MASTER: &str = "master1";
const NODE: &str = "node1";

/// The table of [`kubeadm_plan`] that the SAN edit extends.
const APISERVER_SET: &str = "[sets.apiserver]\nca = \"kubernetes\"\n";
/// The DNS name that edit adds to the API server's certificate.
const NEW_SAN: &str = "api.adopted.example.com";
/// The address left out of the API server certificate of a variant of the
/// kubeadm installation: the first address of the service CIDR.
const DROPPED_SAN: &str = "10.96.0.1";

/// What the kubeconfigs dial, as book/src/templates/kubeconfig.md says:
/// the plan's `apiserver_url`, or the loopback address for the components
/// beside the API server.
const APISERVER_URL: &str = "https://k8s-api.prod.example.com:6443";
const LOCAL_SERVER: &str = "https://127.0.0.1:6443";
/// The kubeconfigs that dial [`LOCAL_SERVER`].
const LOCAL_KUBECONFIGS: [&str; 2] = ["kubeconfig/kube-controller-manager", "kubeconfig/kube-scheduler"];
/// The client certificates kubeadm keeps only inside their kubeconfigs
/// (`controller-manager.conf`, `scheduler.conf`, `admin.conf`).
const EMBEDDED_ONLY: [&str; 3] = ["cert/kube-controller-manager", "cert/kube-scheduler", "cert/users/admin"];

/// A file of a kubeadm host that no plan places: a static pod manifest
/// (abridged), which must stay out of the adopted tree.
const STATIC_POD_PATH: &str = "etc/kubernetes/manifests/kube-apiserver.yaml";
const STATIC_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - name: kube-apiserver
    command:
    - kube-apiserver
    - --tls-cert-file=/etc/kubernetes/pki/apiserver.crt
    - --tls-private-key-file=/etc/kubernetes/pki/apiserver.key
";

/// The bootstrap token of the hard-way installation's `token.csv`, 32 hex
/// digits as those guides make it (a test value that protects nothing).
const TOKEN: &str = "4f6a0c2e8b1d3f5a7c9e0b2d4f6a8c1e";
/// The row `[bootstrap] token_csv` writes after the token, as
/// book/src/templates/token-csv.md documents it.
const TOKEN_ROW: &str = r#"kubelet-bootstrap,10001,"system:bootstrappers""#;

/// The state file and certplan's bookkeeping directory, relative to DIR.
const STATE: &str = ".certplan/state.json";
const BOOKKEEPING: &str = ".certplan/";
/// The id prefixes of certificate material: what adopt must take over.
const MATERIAL: [&str; 3] = ["ca/", "cert/", "keypair/"];
/// Seconds in a day and in an hour.
const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;
/// No arguments beyond the plan and `--out`.
const NO_ARGS: [&str; 0] = [];

// ---------------------------------------------------------------------------
// Tests.

/// certplan's own tree, its state file deleted, adopted from its host
/// directories and its `cluster/` directory, is adopted whole: every
/// artifact listed as adopted, nothing left for `apply`, every file of the
/// new tree byte for byte the old one's, the old tree untouched;
/// `plan --detailed-exitcode` then has nothing to do and `verify` passes. A
/// SAN added to the API server afterwards reissues that one certificate,
/// keeping its key.
#[test]
fn certplans_own_tree_without_its_state_is_adopted_whole() {
    let work = Work::new(&kubeadm_plan());
    let a = work.dir().join("a");
    let b = work.dir().join("b");
    work.ok("apply", &a, &NO_ARGS);
    fs::remove_file(a.join(STATE)).expect("delete a/.certplan/state.json");
    let before = snapshot(&a);

    let cp1 = a.join("hosts").join(CONTROL_PLANE);
    let worker1 = a.join("hosts").join(WORKER);
    let cluster = a.join("cluster");
    let roots = roots_args(&[(CONTROL_PLANE, cp1.as_path()), (WORKER, worker1.as_path())], Some(cluster.as_path()));
    let adopted = work.adopt_json(&b, &roots);
    let every_id: BTreeSet<String> = artifacts(&work.doc).into_iter().map(id).map(str::to_string).collect();
    assert_eq!(adopted_ids(&adopted), every_id, "adopting certplan's own tree adopts every artifact:\n{adopted:#}");
    assert!(changes(&adopted).is_empty(), "adopting certplan's own tree leaves something for apply:\n{adopted:#}");
    assert_untouched(&before, &snapshot(&a), "adopt, in the tree it read");
    assert_same_files(&a, &b, "the adopted tree b/ against the tree a/ it was read from");

    let (code, output) = work.plan_code(&b);
    assert_eq!(code, 0, "`plan --detailed-exitcode` after adopting certplan's own tree:\n{}", describe(&output));
    work.ok("verify", &b, &NO_ARGS);

    work.edit(&replace_once(&kubeadm_plan(), APISERVER_SET, &format!("{APISERVER_SET}extra_sans = [\"{NEW_SAN}\"]\n")));
    let planned = work.plan_json(&b);
    let material = material_changes(&planned);
    assert_eq!(material.len(), 1, "one SAN more reissues the API server's certificate alone: {material:#?}");
    let apiserver = change_of(&planned, "cert/apiserver");
    assert_eq!(apiserver["action"], "reissue", "{apiserver:#}");
    assert_eq!(apiserver["new_key"], false, "an adopted certificate keeps its key when a SAN is added: {apiserver:#}");
    let reason = apiserver["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(NEW_SAN), "the reason names the new SAN {NEW_SAN}: {apiserver:#}");
    let others: Vec<&str> = changes(&planned)
        .iter()
        .filter_map(|c| c["id"].as_str())
        .filter(|id| *id != "cert/apiserver")
        .filter(|id| !["kubeconfig/", "flags/", "bundle/"].iter().any(|kind| id.starts_with(kind)))
        .collect();
    assert!(others.is_empty(), "a SAN edit changes only the API server's certificate and what embeds it: {others:?}");
}

/// A kubeadm-shaped installation minted with `openssl` alone, each
/// certificate as `inspect` describes the plan's, is adopted: nothing is left
/// to do for any CA, certificate or key pair (the three kubeadm keeps only
/// inside kubeconfigs included); every kubeconfig is adopted; the CA files of
/// the tree are the installation's bytes; nothing but the plan's files is
/// copied; the roots are not touched. The same installation with one address
/// missing from the API server's certificate is adopted too, and adopt and
/// then `plan` show `reissue cert/apiserver` naming that address, keeping the
/// key.
#[test]
fn a_kubeadm_shaped_tree_made_with_openssl_is_adopted() {
    let work = Work::new(&kubeadm_plan());
    let install = KubeadmInstall::mint(&work);
    let before = snapshot(&install.roots);

    let b = work.dir().join("b");
    let adopted = work.adopt_json(&b, &install.args(&install.host(CONTROL_PLANE)));
    assert_eq!(material_changes(&adopted), Vec::<String>::new(), "adopt leaves material for apply:\n{adopted:#}");
    let expected: BTreeSet<String> = artifacts(&work.doc)
        .into_iter()
        .map(id)
        .filter(|name| is_material(name) || name.starts_with("kubeconfig/"))
        .map(str::to_string)
        .collect();
    let listed = adopted_ids(&adopted);
    let missing: Vec<&String> = expected.difference(&listed).collect();
    assert!(missing.is_empty(), "adopt does not list as adopted: {missing:?}\n{adopted:#}");
    let planned = work.plan_json(&b);
    assert_eq!(material_changes(&planned), Vec::<String>::new(), "`plan` after adopting a kubeadm tree:\n{planned:#}");
    check_ca_files(&work.doc, &b, &install.minted);
    assert_only_planned_files(&work.doc, &b);

    let c = work.dir().join("c");
    let output = work.run("adopt", &c, install.args(&install.variant).as_slice());
    assert!(output.status.success(), "adopt of a tree with a SAN missing:\n{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().map(str::trim).find(|line| line.starts_with("reissue cert/apiserver:"));
    assert!(
        line.is_some_and(|line| line.contains(DROPPED_SAN)),
        "adopt lists `reissue cert/apiserver: ...` naming the missing {DROPPED_SAN} among what it leaves for apply:\n{}",
        describe(&output)
    );
    let planned = work.plan_json(&c);
    let material = material_changes(&planned);
    assert_eq!(material.len(), 1, "only the API server's certificate differs from the plan: {material:#?}");
    let apiserver = change_of(&planned, "cert/apiserver");
    assert_eq!(apiserver["action"], "reissue", "{apiserver:#}");
    assert_eq!(apiserver["new_key"], false, "a SAN missing keeps the adopted key: {apiserver:#}");
    assert!(apiserver["reason"].as_str().is_some_and(|r| r.contains(DROPPED_SAN)), "{apiserver:#}");

    assert_untouched(&before, &snapshot(&install.roots), "adopt, in the kubeadm roots it read");
}

/// A "Kubernetes the hard way" installation minted with `cfssl gencert
/// -initca`, `cfssl gencert -profile kubernetes` and `cfssljson -bare` from
/// JSON CSRs (cfssl's kubernetes profile gives every leaf serverAuth and
/// clientAuth) is adopted: nothing left to do for any CA, certificate or key
/// pair, the extra EKU noted, the token file's row adopted, the CA files of
/// the tree the installation's bytes, the roots not touched.
#[test]
#[ignore = "needs cfssl (Debian golang-cfssl): run tests/run.sh"]
fn a_cfssl_hard_way_tree_is_adopted() {
    let work = Work::new(CFSSL_PLAN);
    let install = CfsslInstall::mint(&work);
    let before = snapshot(&install.roots);

    let b = work.dir().join("b");
    let adopted = work.adopt_json(&b, &install.args());
    assert_eq!(material_changes(&adopted), Vec::<String>::new(), "adopt leaves material for apply:\n{adopted:#}");
    let mut expected: BTreeSet<String> =
        artifacts(&work.doc).into_iter().map(id).filter(|name| is_material(name)).map(str::to_string).collect();
    expected.insert("token-file/bootstrap".to_string());
    let listed = adopted_ids(&adopted);
    let missing: Vec<&String> = expected.difference(&listed).collect();
    assert!(missing.is_empty(), "adopt does not list as adopted: {missing:?}\n{adopted:#}");
    assert_eq!(strings(&artifact(&work.doc, "cert/apiserver")["eku"]), ["serverAuth"], "the plan's API server EKU");
    let noted = adopted["notes"].as_array().is_some_and(|notes| {
        notes.iter().map(Value::to_string).any(|note| note.contains("cert/apiserver") && note.contains("clientAuth"))
    });
    assert!(noted, "adopt notes the clientAuth cfssl added to the API server's certificate:\n{adopted:#}");

    let planned = work.plan_json(&b);
    assert_eq!(material_changes(&planned), Vec::<String>::new(), "`plan` after adopting a cfssl tree:\n{planned:#}");
    assert!(
        changes(&planned).iter().all(|c| c["id"] != "token-file/bootstrap"),
        "`plan` replaces the adopted token file:\n{planned:#}"
    );
    check_ca_files(&work.doc, &b, &install.minted);

    assert_untouched(&before, &snapshot(&install.roots), "adopt, in the cfssl roots it read");
}

/// adopt refuses, with exit status 1, a message on stderr that names what is
/// wrong, and nothing written in DIR or the roots: a DIR that already holds
/// a state file; a root that does not exist, or is a file; a `--host` name
/// the plan does not have; a `--host` without `=`.
#[test]
fn adopt_refuses_bad_input_and_writes_nothing() {
    let work = Work::new(&kubeadm_plan());
    let tree = work.dir().join("tree");
    work.ok("apply", &tree, &NO_ARGS);
    let cp1 = tree.join("hosts").join(CONTROL_PLANE);
    let empty = work.dir().join("empty");
    fs::create_dir(&empty).expect("create an empty output directory");
    let missing = work.dir().join("no-such-root");
    let not_a_dir = work.dir().join("not-a-directory");
    fs::write(&not_a_dir, "a file, not a root\n").expect("write a file");
    let host = |name: &str, root: &Path| roots_args(&[(name, root)], None);

    let cases: [(&str, &Path, Vec<String>, &[&str]); 5] = [
        ("a DIR that already holds a state file", tree.as_path(), host(CONTROL_PLANE, cp1.as_path()), &["state"]),
        ("a root that does not exist", empty.as_path(), host(CONTROL_PLANE, missing.as_path()), &["no-such-root"]),
        (
            "a cluster root that is a file",
            empty.as_path(),
            roots_args(&[(CONTROL_PLANE, cp1.as_path())], Some(not_a_dir.as_path())),
            &["not-a-directory"],
        ),
        ("a host the plan does not have", empty.as_path(), host("nosuch", cp1.as_path()), &["nosuch"]),
        (
            "--host without `=`",
            empty.as_path(),
            vec!["--host".to_string(), CONTROL_PLANE.to_string()],
            &[CONTROL_PLANE, "="],
        ),
    ];
    let mut problems = Problems::new("adopt with bad input");
    for (case, out, args, words) in cases {
        let (tree_before, empty_before) = (snapshot(&tree), snapshot(&empty));
        let output = work.run("adopt", out, &args);
        let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
        problems.check(output.status.code() == Some(1), || format!("{case}: exit status 1\n{}", describe(&output)));
        problems.check(words.iter().all(|word| stderr.contains(&word.to_lowercase())), || {
            format!("{case}: stderr names {words:?}\n{}", describe(&output))
        });
        problems.check(snapshot(&tree) == tree_before, || format!("{case}: the applied tree (and its roots) changed"));
        problems.check(snapshot(&empty) == empty_before, || {
            format!("{case}: files appeared in the empty DIR: {:?}", snapshot(&empty).keys().collect::<Vec<_>>())
        });
    }
    problems.finish();
}

// ---------------------------------------------------------------------------
// Running certplan.

/// A plan written into a fresh temporary directory, with what `certplan
/// inspect --format json` says of it; the roots, output trees and scratch
/// files of a test go beside it.
struct Work {
    tmp: tempfile::TempDir,
    plan: PathBuf,
    doc: Value,
}

impl Work {
    fn new(source: &str) -> Self {
        let tmp = tempfile::tempdir().expect("create a temporary directory");
        let plan = write_plan(tmp.path(), source);
        let output = certplan().arg("inspect").arg(&plan).args(["--format", "json"]).output().expect("run certplan");
        assert!(output.status.success(), "`certplan inspect` fails on the test's plan:\n{}", describe(&output));
        let doc = serde_json::from_slice(&output.stdout).expect("`inspect --format json` prints JSON");
        Self { tmp, plan, doc }
    }

    /// The temporary directory that holds the plan.
    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Replaces the plan's text.
    fn edit(&self, source: &str) {
        fs::write(&self.plan, source).expect("rewrite the plan");
    }

    /// `certplan SUB PLAN --out OUT EXTRA...`, whatever its exit status.
    fn run<S: AsRef<OsStr>>(&self, sub: &str, out: &Path, extra: &[S]) -> Output {
        certplan()
            .arg(sub)
            .arg(&self.plan)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap_or_else(|e| panic!("run certplan {sub}: {e}"))
    }

    /// The same, which must succeed.
    fn ok<S: AsRef<OsStr>>(&self, sub: &str, out: &Path, extra: &[S]) -> Output {
        let output = self.run(sub, out, extra);
        assert!(output.status.success(), "`certplan {sub} --out {}` failed:\n{}", out.display(), describe(&output));
        output
    }

    /// The same with `--format json`, parsed.
    fn json(&self, sub: &str, out: &Path, extra: &[String]) -> Value {
        let args: Vec<&str> = extra.iter().map(String::as_str).chain(["--format", "json"]).collect();
        let output = self.ok(sub, out, &args);
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("`certplan {sub} --format json` prints no JSON ({e}):\n{}", describe(&output)))
    }

    /// `certplan adopt PLAN --out OUT ROOTS... --format json`, which must succeed.
    fn adopt_json(&self, out: &Path, roots: &[String]) -> Value {
        self.json("adopt", out, roots)
    }

    /// `certplan plan PLAN --out OUT --format json`.
    fn plan_json(&self, out: &Path) -> Value {
        self.json("plan", out, &[])
    }

    /// The exit status of `plan --detailed-exitcode`, with its output.
    fn plan_code(&self, out: &Path) -> (i32, Output) {
        let output = self.run("plan", out, &["--detailed-exitcode"]);
        (output.status.code().expect("an exit status"), output)
    }
}

/// A `certplan` command that takes nothing from the environment the suite
/// runs in: no age identity, no colour.
/// `plans/hierarchy.toml` applied, then its root key taken offline and its
/// state lost: adopted from the hosts and the cluster directory, the
/// intermediates under the root are taken as they are, the root's key is
/// not asked for, and nothing is left to do.
#[test]
fn a_hierarchy_with_its_root_offline_is_adopted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = crate::common::plan_path("hierarchy");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let applied = certplan().arg("apply").arg(&plan).arg("--out").arg(&a).output().expect("run certplan");
    assert!(applied.status.success(), "{}", describe(&applied));
    fs::remove_file(a.join("cluster/pki/root-ca.key")).expect("take the root key offline");
    fs::remove_file(a.join(".certplan/state.json")).expect("lose the state");
    let hosts: Vec<(String, PathBuf)> = ["cp1", "cp2", "cp3", "worker1", "worker2"]
        .iter()
        .map(|h| ((*h).to_string(), a.join("hosts").join(h)))
        .collect();
    let hosts: Vec<(&str, &Path)> = hosts.iter().map(|(h, p)| (h.as_str(), p.as_path())).collect();
    let adopted = certplan()
        .arg("adopt")
        .arg(&plan)
        .arg("--out")
        .arg(&b)
        .args(roots_args(&hosts, Some(&a.join("cluster"))))
        .output()
        .expect("run certplan adopt");
    assert!(adopted.status.success(), "{}", describe(&adopted));
    let planned =
        certplan().arg("plan").arg(&plan).arg("--out").arg(&b).arg("--detailed-exitcode").output().expect("plan");
    assert_eq!(planned.status.code(), Some(0), "{}", describe(&planned));
    assert!(!b.join("cluster/pki/root-ca.key").exists(), "adopt wrote a root key");
}

fn certplan() -> Command {
    let mut command = crate::common::certplan();
    command.env_remove("CERTPLAN_AGE_IDENTITY").env_remove("CERTPLAN_AGE_IDENTITY_FILE").env("NO_COLOR", "1");
    command
}

/// `--host NAME=ROOT` for each host, then `--cluster ROOT` when given.
fn roots_args(hosts: &[(&str, &Path)], cluster: Option<&Path>) -> Vec<String> {
    let mut args = Vec::new();
    for (name, root) in hosts {
        args.push("--host".to_string());
        args.push(format!("{name}={}", root.display()));
    }
    if let Some(root) = cluster {
        args.push("--cluster".to_string());
        args.push(root.display().to_string());
    }
    args
}

/// Replaces `from` by `to` in a plan, which must contain `from` exactly once.
fn replace_once(source: &str, from: &str, to: &str) -> String {
    assert_eq!(source.matches(from).count(), 1, "the plan must contain {from:?} exactly once");
    source.replacen(from, to, 1)
}

// ---------------------------------------------------------------------------
// Reading JSON documents.

/// An artifact's id.
fn id(artifact: &Value) -> &str {
    artifact["id"].as_str().expect("an artifact has an id")
}

/// The artifacts of one kind (`ca`, `cert`, `keypair`, `kubeconfig`, ...).
fn of_kind<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    artifacts(doc).into_iter().filter(|a| a["kind"] == kind).collect()
}

/// An artifact's files, as `inspect` lists them.
fn files(artifact: &Value) -> &[Value] {
    artifact["files"].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// A file's path in the output tree (`hosts/NAME/...` or `cluster/...`).
fn tree_path(file: &Value) -> &str {
    file["path"].as_str().expect("a file has a path")
}

/// A file's role (`cert`, `key`, `public-key`, `kubeconfig`, ...).
fn role(file: &Value) -> &str {
    file["role"].as_str().expect("a file has a role")
}

/// The strings of a JSON array (none for anything else).
fn strings(value: &Value) -> Vec<&str> {
    value.as_array().map(|items| items.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// Whether an id names certificate material: a CA, a certificate, a key pair.
fn is_material(id: &str) -> bool {
    MATERIAL.iter().any(|kind| id.starts_with(kind))
}

/// The `changes` of a `plan --format json` or `adopt --format json` document.
fn changes(doc: &Value) -> &[Value] {
    doc["changes"].as_array().unwrap_or_else(|| panic!("no `changes` array in {doc:#}"))
}

/// The changes of a document to certificate material, each as `plan` prints
/// it (`ACTION ID: REASON`), with `new_key`.
fn material_changes(doc: &Value) -> Vec<String> {
    changes(doc)
        .iter()
        .filter(|c| c["id"].as_str().is_some_and(is_material))
        .map(|c| {
            let field = |name: &str| c[name].as_str().unwrap_or_default().to_string();
            format!("{} {}: {} (new_key {})", field("action"), field("id"), field("reason"), c["new_key"])
        })
        .collect()
}

/// The change of one artifact.
fn change_of<'a>(doc: &'a Value, id: &str) -> &'a Value {
    changes(doc).iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no change of {id} in {doc:#}"))
}

/// The ids `adopt --format json` lists as adopted.
fn adopted_ids(doc: &Value) -> BTreeSet<String> {
    doc["adopted"]
        .as_array()
        .unwrap_or_else(|| panic!("no `adopted` array in {doc:#}"))
        .iter()
        .map(|entry| {
            entry["id"].as_str().unwrap_or_else(|| panic!("an adopted entry without an id: {entry}")).to_string()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Trees: snapshots and comparisons.

/// Nothing under a root changed between two snapshots.
fn assert_untouched(before: &Snapshot, after: &Snapshot, what: &str) {
    let touched: BTreeSet<&String> =
        before.keys().chain(after.keys()).filter(|path| before.get(*path) != after.get(*path)).collect();
    assert!(touched.is_empty(), "{what} changed what it must only read: {touched:?}");
}

/// The bytes of every file under a root but certplan's own (`.certplan/`),
/// by path relative to it.
fn tree_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(root)
        .into_keys()
        .filter(|path| !path.ends_with('/') && !path.starts_with(BOOKKEEPING))
        .map(|path| {
            let bytes = fs::read(root.join(&path)).expect("read a file");
            (path, bytes)
        })
        .collect()
}

/// Two trees hold the same files with the same bytes (certplan's own
/// bookkeeping aside).
fn assert_same_files(expected: &Path, actual: &Path, what: &str) {
    let (expected, actual) = (tree_files(expected), tree_files(actual));
    let missing: Vec<&String> = expected.keys().filter(|path| !actual.contains_key(*path)).collect();
    let extra: Vec<&String> = actual.keys().filter(|path| !expected.contains_key(*path)).collect();
    let different: Vec<&String> = expected
        .iter()
        .filter(|(path, bytes)| actual.get(*path).is_some_and(|other| other != *bytes))
        .map(|(path, _)| path)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && different.is_empty(),
        "{what}: missing {missing:?}; not in the source {extra:?}; different bytes {different:?}"
    );
}

/// The adopted tree holds no file the plan does not place (certplan's own
/// bookkeeping aside): nothing else of the roots is copied.
fn assert_only_planned_files(doc: &Value, out: &Path) {
    let planned: BTreeSet<&str> = artifacts(doc).into_iter().flat_map(files).map(tree_path).collect();
    let stray: Vec<String> = tree_files(out).into_keys().filter(|path| !planned.contains(path.as_str())).collect();
    assert!(stray.is_empty(), "adopt copied files the plan does not place: {stray:?}");
}

/// Every file of the plan's CAs in the adopted tree holds the installation's
/// bytes: the CA certificate (same serial, same everything) at each `cert`
/// path, its key at each `key` path.
fn check_ca_files(doc: &Value, out: &Path, minted: &BTreeMap<String, Material>) {
    let mut problems = Problems::new("the CA files of the adopted tree");
    for ca in of_kind(doc, "ca") {
        let material = &minted[id(ca)];
        for file in files(ca) {
            let (path, what) = (tree_path(file), role(file));
            match fs::read(out.join(path)) {
                Ok(bytes) => problems.check(bytes == material.file(what), || {
                    format!("`{path}` is not the installation's {what} of {}, byte for byte", id(ca))
                }),
                Err(e) => problems.add(format!("`{path}` ({what} of {}): {e}", id(ca))),
            }
        }
    }
    problems.finish();
}

// ---------------------------------------------------------------------------
// Installations.

/// The PEM files of one minted artifact: a certificate and its key, or a
/// key pair's private and public key.
#[derive(Debug, Default)]
struct Material {
    cert: Vec<u8>,
    key: Vec<u8>,
    public: Vec<u8>,
}

impl Material {
    /// The bytes of its file of `role`.
    fn file(&self, role: &str) -> &[u8] {
        match role {
            "cert" => &self.cert,
            "key" => &self.key,
            "public-key" => &self.public,
            other => panic!("no minted file of role {other}"),
        }
    }
}

/// Where a file of the plan is in an installation: a host's file under
/// `roots/HOST/` at its host path, a `cluster/` file under `cluster` (none
/// without a cluster root).
fn installed_at(roots: &Path, cluster: Option<&Path>, path: &str) -> Option<PathBuf> {
    if let Some(rest) = path.strip_prefix("hosts/") {
        let (host, host_path) = rest.split_once('/').unwrap_or_else(|| panic!("`{path}` is not hosts/NAME/PATH"));
        return Some(roots.join(host).join(host_path));
    }
    let rest = path.strip_prefix("cluster/").unwrap_or_else(|| panic!("`{path}` is under neither hosts/ nor cluster/"));
    cluster.map(|root| root.join(rest))
}

/// Writes a file of an installation, making its directories, with `mode`.
fn write_file(path: &Path, bytes: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().expect("a file has a directory")).expect("create directories");
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("set a file's mode");
}

/// The mode a file of `role` has in an installation: private for keys and
/// kubeconfigs (which hold keys or tokens).
fn mode_of(role: &str) -> u32 {
    if matches!(role, "key" | "kubeconfig" | "token-file") { 0o600 } else { 0o644 }
}

/// Writes every file the plan places for each minted artifact but those of
/// `skip`, with its minted bytes: under `roots/HOST/` for a host, under
/// `cluster` for a `cluster/` file when there is a cluster root.
fn install(doc: &Value, minted: &BTreeMap<String, Material>, roots: &Path, cluster: Option<&Path>, skip: &[&str]) {
    for (name, material) in minted.iter().filter(|(name, _)| !skip.contains(&name.as_str())) {
        for file in files(artifact(doc, name)) {
            if let Some(at) = installed_at(roots, cluster, tree_path(file)) {
                write_file(&at, material.file(role(file)), mode_of(role(file)));
            }
        }
    }
}

/// Copies a directory tree (contents and modes).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create a directory");
    for entry in fs::read_dir(from).expect("read a directory") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy a file");
        }
    }
}

/// Runs `program ARGS` (in `dir` when given), which must succeed; returns
/// its stdout.
fn run_tool(program: &str, args: &[&str], dir: Option<&Path>) -> Vec<u8> {
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(output.status.success(), "`{program} {}` failed:\n{}", args.join(" "), describe(&output));
    output.stdout
}

/// Reads a file the test wrote.
fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A path as a command-line argument.
fn p(path: &Path) -> &str {
    path.to_str().expect("the tests' paths are UTF-8")
}

/// An artifact's `validity_seconds`, a whole number of `unit` seconds.
fn validity_in(artifact: &Value, unit: u64) -> u64 {
    let seconds = artifact["validity_seconds"].as_u64().unwrap_or_else(|| panic!("{} has no validity", id(artifact)));
    assert_eq!(seconds % unit, 0, "the validity of {} is not a whole number of {unit} s", id(artifact));
    seconds / unit
}

// ---------------------------------------------------------------------------
// A kubeadm installation, minted with openssl.

/// A kubeadm-made installation of [`kubeadm_plan`], minted with `openssl`:
/// under `roots/`, `cp1/` and `worker1/` (host roots) with kubeadm's files
/// at the plan's host paths, `cluster/` with `kubeconfigs/admin.conf` alone
/// (kubeadm's `/etc/kubernetes/admin.conf`, which the plan places in
/// `cluster/`), and `cp1-without-service-ip/`, `cp1/` with an API server
/// certificate that lacks [`DROPPED_SAN`].
struct KubeadmInstall {
    roots: PathBuf,
    variant: PathBuf,
    minted: BTreeMap<String, Material>,
}

impl KubeadmInstall {
    fn mint(work: &Work) -> Self {
        let doc = &work.doc;
        let openssl = OpenSsl { dir: work.dir().join("openssl") };
        let minted = openssl.mint(doc);
        let roots = work.dir().join("roots");
        let cluster = roots.join("cluster");
        let cluster = cluster.as_path();
        // Every certificate and key at its host path; kubeadm has no cluster/
        // directory, and three client certificates only in kubeconfigs.
        install(doc, &minted, &roots, None, &EMBEDDED_ONLY);
        // kubeadm keeps each CA's key beside its certificate on the control
        // plane, under the plan's name for it (`ca.key`, `etcd/ca.key`, ...).
        for ca in of_kind(doc, "ca") {
            let key = files(ca).iter().find(|f| role(f) == "key").map(tree_path).expect("a CA has a key file");
            let key_name = key.rsplit('/').next().expect("a file name");
            for cert in files(ca).iter().filter(|f| role(f) == "cert" && f["host"] == CONTROL_PLANE) {
                let at = installed_at(&roots, None, tree_path(cert)).expect("a host file");
                write_file(&at.with_file_name(key_name), &minted[id(ca)].key, 0o600);
            }
        }
        // Kubeconfigs with everything embedded, as kubeadm writes them.
        let cluster_name = doc["cluster"].as_str().expect("inspect names the cluster");
        let ca = &minted[artifact(doc, "cert/apiserver")["issuer"].as_str().expect("the API server's issuer")];
        for kubeconfig in of_kind(doc, "kubeconfig") {
            let cert_id = id(kubeconfig).replacen("kubeconfig/", "cert/", 1);
            let client = minted.get(&cert_id).unwrap_or_else(|| panic!("{} embeds no {cert_id}", id(kubeconfig)));
            let user = artifact(doc, &cert_id)["subject"]["cn"].as_str().expect("a client certificate's CN");
            let server = if LOCAL_KUBECONFIGS.contains(&id(kubeconfig)) { LOCAL_SERVER } else { APISERVER_URL };
            let text = kubeconfig_yaml(cluster_name, server, user, &ca.cert, client);
            for file in files(kubeconfig) {
                let at = installed_at(&roots, Some(cluster), tree_path(file)).expect("a kubeconfig's place");
                write_file(&at, text.as_bytes(), 0o600);
            }
        }
        write_file(&roots.join(CONTROL_PLANE).join(STATIC_POD_PATH), STATIC_POD.as_bytes(), 0o600);

        // The variant: the same control plane, its API server certificate
        // signed again for the same key without one address.
        let variant = roots.join("cp1-without-service-ip");
        copy_tree(&roots.join(CONTROL_PLANE), &variant);
        let apiserver = artifact(doc, "cert/apiserver");
        assert!(strings(&apiserver["sans"]["ip"]).contains(&DROPPED_SAN), "the plan's API server has {DROPPED_SAN}");
        let resigned = openssl.dir.join("cert_apiserver-without-service-ip.crt");
        openssl.sign(apiserver, &openssl.file("cert/apiserver", "key"), Some(DROPPED_SAN), &resigned);
        let cert = files(apiserver).iter().find(|f| role(f) == "cert").map(tree_path).expect("a certificate file");
        let host_path = cert.strip_prefix(&format!("hosts/{CONTROL_PLANE}/")).expect("the API server is on cp1");
        fs::copy(resigned, variant.join(host_path)).expect("replace the variant's API server certificate");
        Self { roots, variant, minted }
    }

    /// A host root.
    fn host(&self, name: &str) -> PathBuf {
        self.roots.join(name)
    }

    /// The roots of `adopt`, with `cp1` as the control plane's.
    fn args(&self, cp1: &Path) -> Vec<String> {
        let (worker1, cluster) = (self.host(WORKER), self.roots.join("cluster"));
        roots_args(&[(CONTROL_PLANE, cp1), (WORKER, worker1.as_path())], Some(cluster.as_path()))
    }
}

/// A kubeconfig as kubeadm writes one (and as book/src/templates/kubeconfig.md
/// shows certplan's): the CA, the client certificate and its key embedded,
/// base64; context `USER@CLUSTER`.
fn kubeconfig_yaml(cluster: &str, server: &str, user: &str, ca: &[u8], client: &Material) -> String {
    let lines = [
        "apiVersion: v1".to_string(),
        "clusters:".to_string(),
        "- cluster:".to_string(),
        format!("    certificate-authority-data: {}", B64.encode(ca)),
        format!("    server: {server}"),
        format!("  name: {cluster}"),
        "contexts:".to_string(),
        "- context:".to_string(),
        format!("    cluster: {cluster}"),
        format!("    user: {user}"),
        format!("  name: {user}@{cluster}"),
        format!("current-context: {user}@{cluster}"),
        "kind: Config".to_string(),
        "preferences: {}".to_string(),
        "users:".to_string(),
        format!("- name: {user}"),
        "  user:".to_string(),
        format!("    client-certificate-data: {}", B64.encode(&client.cert)),
        format!("    client-key-data: {}", B64.encode(&client.key)),
    ];
    lines.join("\n") + "\n"
}

/// Mints certificates and keys with the `openssl` command as kubeadm makes
/// them: keys in kubeadm's PEM forms (`EC PRIVATE KEY`, `RSA PRIVATE KEY`),
/// CAs with kubeadm's key usage (digitalSignature, keyEncipherment,
/// keyCertSign), leaves with digitalSignature and keyEncipherment, the
/// plan's EKUs and SANs, an authority key id and no basicConstraints, each
/// valid for the plan's whole days from now. Scratch files go in `dir`,
/// named after the artifact's id.
struct OpenSsl {
    dir: PathBuf,
}

impl OpenSsl {
    /// The scratch file of an artifact with this extension.
    fn file(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", id.replace('/', "_")))
    }

    /// Every CA, certificate and key pair of the plan.
    fn mint(&self, doc: &Value) -> BTreeMap<String, Material> {
        fs::create_dir_all(&self.dir).expect("create the openssl scratch directory");
        let mut minted = BTreeMap::new();
        for ca in of_kind(doc, "ca") {
            let key = self.new_key(ca);
            let (config, cert) = (self.file(id(ca), "cnf"), self.file(id(ca), "crt"));
            fs::write(&config, openssl_config(ca, None)).expect("write an openssl configuration");
            let days = validity_in(ca, DAY).to_string();
            openssl(&[
                "req",
                "-x509",
                "-new",
                "-key",
                p(&key),
                "-config",
                p(&config),
                "-extensions",
                "ext",
                "-days",
                days.as_str(),
                "-out",
                p(&cert),
            ]);
            minted.insert(id(ca).to_string(), Material { cert: read(&cert), key: read(&key), public: Vec::new() });
        }
        for leaf in of_kind(doc, "cert") {
            let key = self.new_key(leaf);
            let cert = self.file(id(leaf), "crt");
            self.sign(leaf, &key, None, &cert);
            minted.insert(id(leaf).to_string(), Material { cert: read(&cert), key: read(&key), public: Vec::new() });
        }
        for pair in of_kind(doc, "keypair") {
            let key = self.new_key(pair);
            let public = self.file(id(pair), "pub");
            openssl(&["pkey", "-in", p(&key), "-pubout", "-out", p(&public)]);
            minted.insert(id(pair).to_string(), Material { cert: Vec::new(), key: read(&key), public: read(&public) });
        }
        minted
    }

    /// A new private key of the plan's algorithm for an artifact.
    fn new_key(&self, artifact: &Value) -> PathBuf {
        let key = self.file(id(artifact), "key");
        let algorithm = artifact["key"].as_str().unwrap_or_else(|| panic!("{} has no key algorithm", id(artifact)));
        if let Some(bits) = algorithm.strip_prefix("rsa-") {
            openssl(&["genrsa", "-traditional", "-out", p(&key), bits]);
        } else {
            let curve = match algorithm {
                "ecdsa-p256" => "prime256v1",
                "ecdsa-p384" => "secp384r1",
                other => panic!("no openssl key for {other} ({})", id(artifact)),
            };
            openssl(&["ecparam", "-name", curve, "-genkey", "-noout", "-out", p(&key)]);
        }
        key
    }

    /// Signs the certificate `leaf` describes, for the key in `key`, by its
    /// issuer (minted before), into `out`; without the SAN `dropped`.
    fn sign(&self, leaf: &Value, key: &Path, dropped: Option<&str>, out: &Path) {
        let issuer = leaf["issuer"].as_str().unwrap_or_else(|| panic!("{} has no issuer", id(leaf)));
        let (config, csr) = (out.with_extension("cnf"), out.with_extension("csr"));
        fs::write(&config, openssl_config(leaf, dropped)).expect("write an openssl configuration");
        openssl(&["req", "-new", "-key", p(key), "-config", p(&config), "-out", p(&csr)]);
        let (ca_cert, ca_key) = (self.file(issuer, "crt"), self.file(issuer, "key"));
        let days = validity_in(leaf, DAY).to_string();
        openssl(&[
            "x509",
            "-req",
            "-in",
            p(&csr),
            "-CA",
            p(&ca_cert),
            "-CAkey",
            p(&ca_key),
            "-days",
            days.as_str(),
            "-extfile",
            p(&config),
            "-extensions",
            "ext",
            "-out",
            p(out),
        ]);
    }
}

/// Runs `openssl ARGS`, which must succeed.
fn openssl(args: &[&str]) {
    run_tool("openssl", args, None);
}

/// An `openssl req` configuration for an artifact as `inspect` describes
/// it: its subject in `[dn]` (C, ST, L, each O and OU, CN: kubeadm's
/// order) and kubeadm's extensions for it in `[ext]`, without the SAN
/// `dropped`.
fn openssl_config(artifact: &Value, dropped: Option<&str>) -> String {
    let subject = &artifact["subject"];
    let mut config = String::from("[req]\ndistinguished_name = dn\nprompt = no\n\n[dn]\n");
    for (name, field) in [("C", "c"), ("ST", "st"), ("L", "l")] {
        if let Some(value) = subject[field].as_str() {
            config.push_str(&format!("{name} = {value}\n"));
        }
    }
    for (name, field) in [("O", "o"), ("OU", "ou")] {
        for (i, value) in strings(&subject[field]).into_iter().enumerate() {
            config.push_str(&format!("{i}.{name} = {value}\n"));
        }
    }
    let cn = subject["cn"].as_str().unwrap_or_else(|| panic!("{} has no CN", id(artifact)));
    config.push_str(&format!("CN = {cn}\n\n[ext]\n"));
    if artifact["kind"] == "ca" {
        config.push_str("basicConstraints = critical, CA:TRUE\n");
        config.push_str("keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign\n");
        config.push_str("subjectKeyIdentifier = hash\n");
        return config;
    }
    config.push_str("keyUsage = critical, digitalSignature, keyEncipherment\n");
    config.push_str("authorityKeyIdentifier = keyid\n");
    let eku = strings(&artifact["eku"]);
    if !eku.is_empty() {
        config.push_str(&format!("extendedKeyUsage = {}\n", eku.join(", ")));
    }
    let dns = strings(&artifact["sans"]["dns"]).into_iter().map(|name| ("DNS", name));
    let ips = strings(&artifact["sans"]["ip"]).into_iter().map(|ip| ("IP", ip));
    let sans: Vec<String> = dns
        .chain(ips)
        .filter(|(_, value)| Some(*value) != dropped)
        .map(|(kind, value)| format!("{kind}:{value}"))
        .collect();
    if !sans.is_empty() {
        config.push_str(&format!("subjectAltName = {}\n", sans.join(", ")));
    }
    config
}

// ---------------------------------------------------------------------------
// A hard-way installation, minted with cfssl.

/// A "Kubernetes the hard way" installation of [`CFSSL_PLAN`], minted with
/// cfssl: under `roots/`, `master1/` and `node1/` (host roots: every file the
/// plan places on the host, the CA key on the master included, and the
/// master's `token.csv`) and `workstation/`, the directory cfssl ran in as
/// the `cluster/` directory has it (`pki/ca.pem`, `pki/ca-key.pem`,
/// `users/admin.pem`, `users/admin-key.pem`). No kubeconfigs: those are left
/// for `apply`.
struct CfsslInstall {
    roots: PathBuf,
    minted: BTreeMap<String, Material>,
}

impl CfsslInstall {
    fn mint(work: &Work) -> Self {
        let doc = &work.doc;
        let minted = mint_with_cfssl(doc, &work.dir().join("cfssl"));
        let roots = work.dir().join("roots");
        let workstation = roots.join("workstation");
        install(doc, &minted, &roots, Some(workstation.as_path()), &[]);
        let token_file = files(artifact(doc, "token-file/bootstrap")).first().map(tree_path).expect("a token file");
        let at = installed_at(&roots, None, token_file).expect("the token file is on the master");
        write_file(&at, format!("{TOKEN},{TOKEN_ROW}\n").as_bytes(), 0o600);
        Self { roots, minted }
    }

    /// The roots of `adopt`.
    fn args(&self) -> Vec<String> {
        let (master, node, workstation) =
            (self.roots.join(MASTER), self.roots.join(NODE), self.roots.join("workstation"));
        roots_args(&[(MASTER, master.as_path()), (NODE, node.as_path())], Some(workstation.as_path()))
    }
}

/// Fails, saying where they come from, unless `cfssl` and `cfssljson` run.
fn require_cfssl() {
    for (tool, probe) in [("cfssl", "version"), ("cfssljson", "-h")] {
        if let Err(e) = Command::new(tool).arg(probe).stdin(Stdio::null()).output() {
            panic!(
                "cannot run `{tool}` ({e}): this test mints a hard-way tree with cfssl and cfssljson, \
                 from the Debian package golang-cfssl, which tests/run.sh installs"
            );
        }
    }
}

/// Mints every CA, certificate and key pair of a plan with cfssl, each in a
/// directory of `dir` of its own, as the hard-way guides do:
/// `cfssl gencert -initca ca-csr.json | cfssljson -bare ca` for the CA,
/// `cfssl gencert -ca ca.pem -ca-key ca-key.pem -config ca-config.json
/// -profile kubernetes NAME-csr.json | cfssljson -bare NAME` for the others
/// (the service-account key pair too, its public key then taken out with
/// `openssl pkey -pubout`). NAME is the plan's file name (cfssl's names).
fn mint_with_cfssl(doc: &Value, dir: &Path) -> BTreeMap<String, Material> {
    require_cfssl();
    fs::create_dir_all(dir).expect("create the cfssl scratch directory");
    let gencert = |id: &str, bare: &str, csr: &Value, args: &[&str]| -> (PathBuf, Material) {
        let work = dir.join(id.replace('/', "_"));
        fs::create_dir_all(&work).expect("create a cfssl directory");
        let csr_file = format!("{bare}-csr.json");
        fs::write(work.join(&csr_file), serde_json::to_vec_pretty(csr).expect("a CSR")).expect("write a CSR");
        let mut command = vec!["gencert"];
        command.extend_from_slice(args);
        command.push(csr_file.as_str());
        let response = run_tool("cfssl", &command, Some(&work));
        let response_file = format!("{bare}.json");
        fs::write(work.join(&response_file), response).expect("write cfssl's response");
        run_tool("cfssljson", &["-f", response_file.as_str(), "-bare", bare], Some(&work));
        let material = Material {
            cert: read(&work.join(format!("{bare}.pem"))),
            key: read(&work.join(format!("{bare}-key.pem"))),
            public: Vec::new(),
        };
        (work, material)
    };

    let mut minted = BTreeMap::new();
    let mut cas = BTreeMap::new();
    for ca in of_kind(doc, "ca") {
        let bare = bare_name(ca);
        let mut csr = cfssl_csr(ca);
        csr["ca"] = json!({ "expiry": format!("{}h", validity_in(ca, HOUR)) });
        let (work, material) = gencert(id(ca), &bare, &csr, &["-initca"]);
        cas.insert(id(ca).to_string(), (work.join(format!("{bare}.pem")), work.join(format!("{bare}-key.pem"))));
        minted.insert(id(ca).to_string(), material);
    }
    let leaves = of_kind(doc, "cert");
    let hours: BTreeSet<u64> = leaves.iter().map(|leaf| validity_in(leaf, HOUR)).collect();
    assert_eq!(hours.len(), 1, "the fixture signs every leaf with one cfssl profile: one validity, not {hours:?}");
    let expiry = format!("{}h", hours.first().expect("one validity"));
    let config = dir.join("ca-config.json");
    let usages = ["signing", "key encipherment", "server auth", "client auth"];
    let signing = json!({ "signing": {
        "default": { "expiry": expiry },
        "profiles": { "kubernetes": { "usages": usages, "expiry": expiry } }
    }});
    fs::write(&config, serde_json::to_vec_pretty(&signing).expect("JSON")).expect("write ca-config.json");
    let sign = |issuer: &str| -> Vec<String> {
        let (cert, key) = cas.get(issuer).unwrap_or_else(|| panic!("no CA {issuer}"));
        ["-ca", p(cert), "-ca-key", p(key), "-config", p(&config), "-profile", "kubernetes"]
            .into_iter()
            .map(str::to_string)
            .collect()
    };

    for leaf in leaves {
        let args = sign(leaf["issuer"].as_str().expect("an issuer"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (_, material) = gencert(id(leaf), &bare_name(leaf), &cfssl_csr(leaf), &args);
        minted.insert(id(leaf).to_string(), material);
    }
    let first_ca = of_kind(doc, "ca").into_iter().next().expect("the plan has a CA");
    for pair in of_kind(doc, "keypair") {
        let bare = bare_name(pair);
        let csr = json!({
            "CN": "service-accounts",
            "hosts": [],
            "key": cfssl_key(pair),
            "names": cfssl_names(&first_ca["subject"])
        });
        let args = sign(id(first_ca));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (work, mut material) = gencert(id(pair), &bare, &csr, &args);
        let public = work.join(format!("{bare}.pub"));
        let key = work.join(format!("{bare}-key.pem"));
        openssl(&["pkey", "-in", p(&key), "-pubout", "-out", p(&public)]);
        material.cert = Vec::new();
        material.public = read(&public);
        minted.insert(id(pair).to_string(), material);
    }
    minted
}

/// The name `cfssljson -bare` gets for an artifact: its certificate's file
/// name without `.pem`, or a key pair's private key file name without
/// `-key.pem` (the plan's cfssl layout names files as cfssljson does).
fn bare_name(artifact: &Value) -> String {
    let (wanted, suffix) = if artifact["kind"] == "keypair" { ("key", "-key.pem") } else { ("cert", ".pem") };
    let path = files(artifact).iter().find(|f| role(f) == wanted).map(tree_path).expect("a file of the artifact");
    let name = path.rsplit('/').next().expect("a file name");
    name.strip_suffix(suffix)
        .unwrap_or_else(|| {
            panic!("`{path}` is not a cfssljson name (NAME.pem, NAME-key.pem): the layout must be cfssl's")
        })
        .to_string()
}

/// A cfssl CSR for an artifact as `inspect` describes it: CN, SANs as
/// `hosts`, key and subject `names`.
fn cfssl_csr(artifact: &Value) -> Value {
    let subject = &artifact["subject"];
    let hosts: Vec<&str> =
        strings(&artifact["sans"]["dns"]).into_iter().chain(strings(&artifact["sans"]["ip"])).collect();
    json!({
        "CN": subject["cn"],
        "hosts": hosts,
        "key": cfssl_key(artifact),
        "names": cfssl_names(subject)
    })
}

/// cfssl's `key` for the plan's algorithm (`rsa-2048` is RSA of 2048 bits,
/// `ecdsa-p256` ECDSA of 256).
fn cfssl_key(artifact: &Value) -> Value {
    let algorithm = artifact["key"].as_str().unwrap_or_else(|| panic!("{} has no key algorithm", id(artifact)));
    let (algo, size) = algorithm
        .strip_prefix("rsa-")
        .map(|bits| ("rsa", bits))
        .or_else(|| algorithm.strip_prefix("ecdsa-p").map(|bits| ("ecdsa", bits)))
        .unwrap_or_else(|| panic!("cfssl makes no {algorithm} key"));
    json!({ "algo": algo, "size": size.parse::<u32>().expect("a key size") })
}

/// cfssl's `names` for a subject: C, ST, L and the first O and OU in one
/// entry, as the hard-way CSRs write them; each further O or OU an entry.
fn cfssl_names(subject: &Value) -> Vec<Value> {
    let mut first = serde_json::Map::new();
    for (name, field) in [("C", "c"), ("ST", "st"), ("L", "l")] {
        if let Some(value) = subject[field].as_str() {
            first.insert(name.to_string(), json!(value));
        }
    }
    let (o, ou) = (strings(&subject["o"]), strings(&subject["ou"]));
    for (name, values) in [("O", &o), ("OU", &ou)] {
        if let Some(value) = values.first() {
            first.insert(name.to_string(), json!(value));
        }
    }
    let mut names = vec![Value::Object(first)];
    names.extend(o.iter().skip(1).map(|value| json!({ "O": value })));
    names.extend(ou.iter().skip(1).map(|value| json!({ "OU": value })));
    names
}
