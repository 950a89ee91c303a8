//! The auditor's commands on the example plans: `diff` (a table of plan
//! edits and the JSON fields each must produce, exit codes, the git diff
//! driver), `inspect` (discovery hashes, consumers, tables), `graph` (DOT,
//! Mermaid, JSON) and `verify` (a clean tree, then one test per kind of
//! damage: a deleted file, swapped certificates, a certificate from another
//! CA, expiry, a key that does not match, modes). Monitoring (`verify
//! --format prometheus`, `--warn-within`, `--host`) is `monitoring.rs`.
//!
//! ECDSA plans and a fixed clock keep the trees fast and the output stable.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use sha2::Digest as _;

use crate::common::{artifact, certplan, describe, file_of, inspect, plan_path, plan_with_key, write_plan};

/// The clock every tree here is applied at.
const NOW: &str = "2026-01-01T00:00:00Z";

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", describe(output)))
}

fn run(args: &[&str], paths: &[&Path]) -> Output {
    let mut command = certplan();
    command.args(args);
    for path in paths {
        command.arg(path);
    }
    command.env_remove("NO_COLOR").output().expect("run certplan")
}

// ---------------------------------------------------------------------------
// diff
// ---------------------------------------------------------------------------

/// Writes two plans into a temp dir and runs `certplan diff OLD NEW --format json`.
fn diff_json(old: &str, new: &str) -> (Output, Value) {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let old_path = dir.path().join("old.toml");
    let new_path = dir.path().join("new.toml");
    std::fs::write(&old_path, old).expect("write old");
    std::fs::write(&new_path, new).expect("write new");
    let output = run(&["diff", "--format", "json"], &[&old_path, &new_path]);
    let doc = json(&output);
    (output, doc)
}

/// The element of the array `list` whose `key` is `value`.
fn entry<'a>(list: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    list.as_array().expect("an array").iter().find(|item| item[key] == value)
}

fn changed<'a>(doc: &'a Value, id: &str) -> &'a Value {
    entry(&doc["changed"], "id", id).unwrap_or_else(|| panic!("{id} is not in `changed`: {doc:#}"))
}

fn field<'a>(change: &'a Value, name: &str) -> &'a Value {
    entry(&change["fields"], "field", name)
        .unwrap_or_else(|| panic!("{} has no changed field {name}: {change:#}", change["id"]))
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().expect("array").iter().map(|v| v["id"].as_str().unwrap_or_default().to_string()).collect()
}

fn strings(list: &Value) -> Vec<String> {
    list.as_array().expect("array").iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
}

fn host<'a>(doc: &'a Value, name: &str) -> &'a Value {
    entry(&doc["hosts"], "host", name).unwrap_or_else(|| panic!("host {name} is not in `hosts`: {:#}", doc["hosts"]))
}

/// One row of the diff table: an edit of a plan, and what its diff must say.
struct Case {
    name: &'static str,
    plan: &'static str,
    from: &'static str,
    to: &'static str,
    expect: fn(&Value),
}

fn replace_once(source: &str, from: &str, to: &str, case: &str) -> String {
    assert_eq!(source.matches(from).count(), 1, "case {case}: `{from}` must occur once in the plan");
    source.replacen(from, to, 1)
}

const NODE3: &str =
    "[[hosts]]\nname = \"node3\"\naddress = \"192.168.214.203\"\nroles = [\"worker\"]\n\n[sets.apiserver]";

const CASES: &[Case] = &[
    Case {
        name: "an IP SAN added to the API server",
        plan: "classic",
        from: r#"extra_sans = ["kube-api.example.com", "192.168.214.210"]"#,
        to: r#"extra_sans = ["kube-api.example.com", "192.168.214.210", "192.168.214.211"]"#,
        expect: |doc| {
            assert_eq!(ids(&doc["changed"]), ["cert/apiserver"]);
            let sans = field(changed(doc, "cert/apiserver"), "sans.ip");
            assert_eq!(strings(&sans["added"]), ["192.168.214.211"]);
            assert!(strings(&sans["removed"]).is_empty());
            for master in ["master1", "master2", "master3"] {
                let h = host(doc, master);
                assert_eq!(strings(&h["restart"]), ["kube-apiserver"]);
                assert!(strings(&h["writes"]).contains(&"/etc/kubernetes/ssl/kubernetes.pem".to_string()));
                assert!(
                    !strings(&h["writes"]).contains(&"/etc/kubernetes/ssl/kubernetes-key.pem".to_string()),
                    "a reissued certificate keeps its key"
                );
            }
            assert_eq!(doc["summary"]["hosts"], 3);
        },
    },
    Case {
        name: "a DNS SAN removed from the API server",
        plan: "classic",
        from: r#"extra_sans = ["kube-api.example.com", "192.168.214.210"]"#,
        to: r#"extra_sans = ["192.168.214.210"]"#,
        expect: |doc| {
            let sans = field(changed(doc, "cert/apiserver"), "sans.dns");
            assert_eq!(strings(&sans["removed"]), ["kube-api.example.com"]);
            assert!(strings(&sans["added"]).is_empty());
        },
    },
    Case {
        name: "an admin's groups",
        plan: "classic",
        from: r#"groups = ["system:masters"]"#,
        to: r#"groups = ["kubeadm:cluster-admins"]"#,
        expect: |doc| {
            let admin = changed(doc, "cert/users/admin");
            let o = field(admin, "subject.o");
            assert_eq!(strings(&o["added"]), ["kubeadm:cluster-admins"]);
            assert_eq!(strings(&o["removed"]), ["system:masters"]);
            assert_eq!(strings(&admin["cascade"]), ["kubeconfig/users/admin"]);
            let kubeconfig = changed(doc, "kubeconfig/users/admin");
            assert_eq!(strings(&kubeconfig["because"]), ["cert/users/admin"]);
            assert!(kubeconfig["fields"].as_array().expect("fields").is_empty());
            assert_eq!(doc["summary"]["hosts"], 0, "user credentials live in the cluster directory only");
        },
    },
    Case {
        name: "the leaves' validity",
        plan: "classic",
        from: "validity = \"8760h\" ",
        to: "validity = \"720h\" ",
        expect: |doc| {
            let validity = field(changed(doc, "cert/apiserver"), "validity");
            assert_eq!(validity["old"], 8760 * 3600);
            assert_eq!(validity["new"], 720 * 3600);
            assert!(
                doc["changed"].as_array().expect("changed").iter().all(|c| c["id"] != "ca/kubernetes"),
                "CAs have their own validity"
            );
        },
    },
    Case {
        name: "the CA's subject",
        plan: "classic",
        from: "[cas.kubernetes]\ncn = \"kubernetes\"",
        to: "[cas.kubernetes]\ncn = \"kubernetes-2026\"",
        expect: |doc| {
            let ca = changed(doc, "ca/kubernetes");
            let cn = field(ca, "subject.cn");
            assert_eq!((cn["old"].as_str(), cn["new"].as_str()), (Some("kubernetes"), Some("kubernetes-2026")));
            let cascade = strings(&ca["cascade"]);
            assert!(cascade.contains(&"cert/apiserver".to_string()));
            assert!(cascade.contains(&"cert/etcd-peer/master3".to_string()));
            assert!(cascade.contains(&"kubeconfig/kube-proxy".to_string()), "kubeconfigs embed the CA");
            assert_eq!(strings(&changed(doc, "cert/apiserver")["because"]), ["ca/kubernetes"]);
            assert!(!doc["notes"].as_array().expect("notes").is_empty(), "a CA change needs a note: {doc:#}");
            let restart = strings(&host(doc, "node1")["restart"]);
            assert_eq!(restart, ["kube-proxy", "kubelet"]);
        },
    },
    Case {
        name: "the key algorithm",
        plan: "classic",
        from: "key = \"rsa-2048\" ",
        to: "key = \"ecdsa-p256\" ",
        expect: |doc| {
            let key = field(changed(doc, "cert/kube-proxy"), "key");
            assert_eq!((key["old"].as_str(), key["new"].as_str()), (Some("rsa-2048"), Some("ecdsa-p256")));
            let writes = strings(&host(doc, "node1")["writes"]);
            assert!(
                writes.contains(&"/etc/kubernetes/ssl/kube-proxy-key.pem".to_string()),
                "a new algorithm is a new key"
            );
        },
    },
    Case {
        name: "a worker added",
        plan: "classic",
        from: "[sets.apiserver]",
        to: NODE3,
        expect: |doc| {
            let added = ids(&doc["added"]);
            for id in [
                "cert/kubelet/node3",
                "cert/kubelet-server/node3",
                "kubeconfig/kubelet/node3",
                "flags/kubelet/node3",
                "flags/kube-proxy/node3",
            ] {
                assert!(added.contains(&id.to_string()), "{id} not added: {added:?}");
            }
            let proxy = changed(doc, "cert/kube-proxy");
            assert_eq!(proxy["content"], false, "a new copy does not reissue");
            let files = field(proxy, "files");
            assert!(strings(&files["added"]).contains(&"hosts/node3/etc/kubernetes/ssl/kube-proxy.pem".to_string()));
            assert_eq!(strings(&host(doc, "node3")["restart"]), ["kube-proxy", "kubelet"]);
            assert!(doc["hosts"].as_array().expect("hosts").iter().all(|h| h["host"] != "node1"), "node1 is untouched");
        },
    },
    Case {
        name: "a worker removed",
        plan: "classic",
        from: "[[hosts]]\nname = \"node2\"\naddress = \"192.168.214.202\"\nroles = [\"worker\"]\n",
        to: "",
        expect: |doc| {
            let removed = ids(&doc["removed"]);
            assert!(removed.contains(&"cert/kubelet-server/node2".to_string()), "{removed:?}");
            let node2 = host(doc, "node2");
            assert!(strings(&node2["removes"]).contains(&"/etc/kubernetes/ssl/kubelet.pem".to_string()));
            assert!(strings(&node2["writes"]).is_empty());
            assert!(strings(&node2["restart"]).is_empty(), "nothing runs on a removed host");
        },
    },
    Case {
        name: "the API server URL",
        plan: "classic",
        from: "apiserver_url = \"https://192.168.214.200:6443\"",
        to: "apiserver_url = \"https://192.168.214.199:6443\"",
        expect: |doc| {
            let server = field(changed(doc, "kubeconfig/kube-proxy"), "server");
            assert_eq!(server["new"], "https://192.168.214.199:6443");
            let sans = field(changed(doc, "cert/apiserver"), "sans.ip");
            assert_eq!(strings(&sans["added"]), ["192.168.214.199"]);
            assert_eq!(strings(&sans["removed"]), ["192.168.214.200"]);
        },
    },
    Case {
        name: "the etcd sets moved to the cluster CA",
        plan: "kubeadm",
        from: "[sets.etcd-server]\nca = \"etcd\"",
        to: "[sets.etcd-server]\nca = \"kubernetes\"",
        expect: |doc| {
            let issuer = field(changed(doc, "cert/etcd-server/cp1"), "issuer");
            assert_eq!((issuer["old"].as_str(), issuer["new"].as_str()), (Some("ca/etcd"), Some("ca/kubernetes")));
            let flags = changed(doc, "flags/kube-apiserver/cp1");
            let etcd_ca = field(flags, "vars.KUBE_APISERVER_TLS_ARGS.flags.etcd-cafile");
            assert_eq!(etcd_ca["new"], "/etc/kubernetes/pki/ca.crt");
            assert!(strings(&host(doc, "cp1")["restart"]).contains(&"etcd".to_string()));
        },
    },
    Case {
        name: "the layout preset",
        plan: "minimal",
        from: "[cas.lab]",
        to: "[layout]\npreset = \"cfssl\"\npki_dir = \"/etc/kubernetes/ssl\"\n\n[cas.lab]",
        expect: |doc| {
            let files = field(changed(doc, "cert/apiserver"), "files");
            assert!(
                strings(&files["added"]).iter().any(|p| p.ends_with("/etc/kubernetes/ssl/kubernetes.pem")),
                "{files:#}"
            );
            assert_eq!(changed(doc, "cert/apiserver")["content"], false, "moving a file does not reissue it");
            let solo = host(doc, "solo");
            assert!(!strings(&solo["removes"]).is_empty());
            assert!(strings(&solo["restart"]).contains(&"kube-apiserver".to_string()));
        },
    },
];

#[test]
fn diff_table_of_plan_edits() {
    for case in CASES {
        let old = std::fs::read_to_string(plan_path(case.plan)).expect("read plan");
        let new = replace_once(&old, case.from, case.to, case.name);
        let (output, doc) = diff_json(&old, &new);
        assert_eq!(output.status.code(), Some(1), "case {}: plans differ, so exit 1\n{}", case.name, describe(&output));
        assert_eq!(doc["same"], false, "case {}", case.name);
        (case.expect)(&doc);
    }
}

#[test]
fn diff_of_equal_plans_exits_0() {
    let source = std::fs::read_to_string(plan_path("classic")).expect("read plan");
    let reformatted = format!("# a comment changes nothing\n{source}");
    let (output, doc) = diff_json(&source, &reformatted);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(doc["same"], true);
    assert!(ids(&doc["changed"]).is_empty() && ids(&doc["added"]).is_empty() && ids(&doc["removed"]).is_empty());

    let plan = plan_path("classic");
    let output = run(&["diff"], &[&plan, &plan]);
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("No difference"), "{}", describe(&output));
}

#[test]
fn diff_errors_exit_2() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let broken = write_plan(dir.path(), "[cluster]\nname = 1\n");
    let output = run(&["diff"], &[&plan_path("classic"), &broken]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let output = run(&["diff"], &[&plan_path("classic"), &dir.path().join("missing.toml")]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let output = run(&["diff"], &[&plan_path("classic"), &plan_path("kubeadm"), &plan_path("minimal")]);
    assert_eq!(output.status.code(), Some(2), "three files is neither form: {}", describe(&output));
}

fn san_edit() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let old = std::fs::read_to_string(plan_path("classic")).expect("read plan");
    let new = old.replace("\"192.168.214.210\"]", "\"192.168.214.210\", \"10.1.2.3\"]");
    let (old_path, new_path) = (dir.path().join("old.toml"), dir.path().join("new.toml"));
    std::fs::write(&old_path, old).expect("write");
    std::fs::write(&new_path, new).expect("write");
    (dir, old_path, new_path)
}

#[test]
fn diff_text_is_coloured_only_when_asked_or_on_a_terminal() {
    let (_dir, old, new) = san_edit();
    let plain = run(&["diff"], &[&old, &new]);
    let stdout = String::from_utf8_lossy(&plain.stdout);
    assert!(!stdout.contains('\u{1b}'), "piped output has no colour:\n{stdout}");
    assert!(stdout.contains("~ cert/apiserver") && stdout.contains("IP SANs + 10.1.2.3"), "{stdout}");
    assert!(stdout.contains("restart  kube-apiserver"), "{stdout}");

    let coloured = run(&["diff", "--color", "always"], &[&old, &new]);
    assert!(String::from_utf8_lossy(&coloured.stdout).contains('\u{1b}'));

    let no_color = certplan().args(["diff"]).arg(&old).arg(&new).env("NO_COLOR", "1").output().expect("run");
    assert!(!String::from_utf8_lossy(&no_color.stdout).contains('\u{1b}'));
}

#[test]
fn diff_markdown_is_ready_for_a_pull_request() {
    let (_dir, old, new) = san_edit();
    let output = run(&["diff", "--format", "markdown"], &[&old, &new]);
    assert_eq!(output.status.code(), Some(1));
    let md = String::from_utf8_lossy(&output.stdout);
    assert!(md.starts_with("### certplan diff"), "{md}");
    assert!(md.contains("| ~ | `cert/apiserver` | IP SANs + 10.1.2.3 |"), "{md}");
    assert!(md.contains("| master1 | `/etc/kubernetes/ssl/kubernetes.pem` |  | kube-apiserver |"), "{md}");
}

#[test]
fn diff_takes_git_driver_arguments() {
    let (_dir, old, new) = san_edit();
    let args: Vec<&Path> = vec![
        Path::new("plans/classic.toml"),
        old.as_path(),
        Path::new("0123abc"),
        Path::new("100644"),
        new.as_path(),
        Path::new("4567def"),
        Path::new("100644"),
    ];
    let output = run(&["diff"], &args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "git expects 0 from a driver unless trustExitCode: {}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("a/plans/classic.toml → b/plans/classic.toml"), "{stdout}");
    assert!(stdout.contains("IP SANs + 10.1.2.3"));

    let output = run(&["diff", "--exit-code"], &args);
    assert_eq!(output.status.code(), Some(1), "with --exit-code a driver says they differ");

    let created: Vec<&Path> = vec![
        Path::new("plan.toml"),
        Path::new("/dev/null"),
        Path::new("."),
        Path::new("."),
        new.as_path(),
        Path::new("4567def"),
        Path::new("100644"),
    ];
    let output = run(&["diff", "--format", "json"], &created);
    let doc = json(&output);
    assert!(ids(&doc["added"]).contains(&"ca/kubernetes".to_string()), "a new plan adds everything");
}

fn git(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("run git")
}

#[test]
fn git_diff_shows_the_semantic_diff_through_the_driver() {
    if std::process::Command::new("git").arg("--version").output().is_err() {
        eprintln!("git is not installed; skipping");
        return;
    }
    let dir = tempfile::TempDir::new().expect("temp dir");
    let repo = dir.path();
    assert!(git(repo, &["init", "-q"]).status.success());
    std::fs::write(repo.join(".gitattributes"), "*.toml diff=certplan\n").expect("write");
    let command = format!("{} diff", env!("CARGO_BIN_EXE_certplan"));
    assert!(git(repo, &["config", "diff.certplan.command", &command]).status.success());
    let source = std::fs::read_to_string(plan_path("classic")).expect("read plan");
    std::fs::write(repo.join("cluster.toml"), &source).expect("write");
    assert!(git(repo, &["add", "."]).status.success());
    assert!(git(repo, &["commit", "-q", "-m", "plan"]).status.success());
    std::fs::write(
        repo.join("cluster.toml"),
        source.replace("\"192.168.214.210\"]", "\"192.168.214.210\", \"10.1.2.3\"]"),
    )
    .expect("write");
    let output = git(repo, &["diff"]);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("certplan diff a/cluster.toml → b/cluster.toml"), "{stdout}");
    assert!(stdout.contains("IP SANs + 10.1.2.3"), "{stdout}");
}

// ---------------------------------------------------------------------------
// applied trees
// ---------------------------------------------------------------------------

/// An ECDSA plan applied at [`NOW`] into a fresh directory.
struct Tree {
    dir: tempfile::TempDir,
    plan: PathBuf,
    out: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Self {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let plan = write_plan(dir.path(), &plan_with_key(name, "ecdsa-p256"));
        let out = dir.path().join("out");
        apply_at(&plan, &out);
        Self { dir, plan, out }
    }

    /// Another apply of the same plan: same names, other keys and CA.
    fn twin(&self) -> PathBuf {
        let out = self.dir.path().join("twin");
        apply_at(&self.plan, &out);
        out
    }

    fn doc(&self) -> Value {
        inspect(&self.plan, &self.out)
    }

    fn file(&self, id: &str, role: &str, host: Option<&str>) -> PathBuf {
        file_of(&self.out, artifact(&self.doc(), id), role, host)
    }

    fn verify(&self, extra: &[&str]) -> (Output, Value) {
        let mut args = vec!["verify"];
        args.push(self.plan.to_str().expect("utf-8 path"));
        args.extend(["--out", self.out.to_str().expect("utf-8 path"), "--format", "json"]);
        if !extra.contains(&"--now") {
            args.extend(["--now", "2026-01-02T00:00:00Z"]);
        }
        args.extend(extra);
        let output = run(&args, &[]);
        let doc = json(&output);
        (output, doc)
    }
}

fn apply_at(plan: &Path, out: &Path) {
    let output =
        certplan().arg("apply").arg(plan).arg("--out").arg(out).args(["--now", NOW, "-q"]).output().expect("run");
    assert!(output.status.success(), "apply failed: {}", describe(&output));
}

/// The findings of a verify report about `id` with `check`.
fn findings<'a>(doc: &'a Value, id: &str, check: &str) -> Vec<&'a Value> {
    doc["findings"].as_array().expect("findings").iter().filter(|f| f["id"] == id && f["check"] == check).collect()
}

fn assert_finding(doc: &Value, id: &str, check: &str, path: &Path, out: &Path) {
    let rel = path.strip_prefix(out).expect("under out").to_str().expect("utf-8");
    let found = findings(doc, id, check);
    assert!(
        found.iter().any(|f| f["path"] == rel && f["severity"] == "failure"),
        "expected a `{check}` failure of {id} at {rel}; findings: {:#}",
        doc["findings"]
    );
}

// ---------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------

#[test]
fn verify_accepts_a_fresh_tree() {
    for plan in ["classic", "kubeadm", "minimal"] {
        let tree = Tree::new(plan);
        let (output, doc) = tree.verify(&[]);
        assert_eq!(output.status.code(), Some(0), "{plan}: {:#}", doc["findings"]);
        assert_eq!(doc["ok"], true);
        assert_eq!(doc["summary"]["failures"], 0);
        assert_eq!(doc["summary"]["files"], doc["summary"]["expected_files"]);
        let certs = doc["certificates"].as_array().expect("certificates");
        assert!(certs.iter().all(|c| c["status"] == "ok"), "{plan}: {certs:#?}");
    }
}

#[test]
fn verify_text_is_a_table_like_kubeadm_check_expiration() {
    let tree = Tree::new("minimal");
    let output = run(
        &["verify", tree.plan.to_str().expect("utf-8"), "--out", tree.out.to_str().expect("utf-8"), "--now", NOW],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("CERTIFICATE"), "{stdout}");
    assert!(stdout.contains("RESIDUAL TIME") && stdout.contains("CERTIFICATE AUTHORITY"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("cert/apiserver ") && l.contains("365d") && l.ends_with("ok")),
        "{stdout}"
    );
    assert!(stdout.contains("verify ok"), "{stdout}");
}

#[test]
fn verify_catches_a_deleted_file() {
    let tree = Tree::new("classic");
    let gone = tree.file("cert/kube-scheduler", "cert", Some("master2"));
    std::fs::remove_file(&gone).expect("delete");
    let (output, doc) = tree.verify(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(doc["ok"], false);
    assert_finding(&doc, "cert/kube-scheduler", "missing", &gone, &tree.out);
}

#[test]
fn verify_catches_swapped_certificates() {
    let tree = Tree::new("classic");
    let apiserver = tree.file("cert/apiserver", "cert", Some("master1"));
    let front_proxy = tree.file("cert/front-proxy-client", "cert", Some("master1"));
    let held = std::fs::read(&apiserver).expect("read");
    std::fs::copy(&front_proxy, &apiserver).expect("copy");
    std::fs::write(&front_proxy, held).expect("write");
    let (output, doc) = tree.verify(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert_finding(&doc, "cert/apiserver", "subject", &apiserver, &tree.out);
    assert_finding(&doc, "cert/apiserver", "sans", &apiserver, &tree.out);
    assert_finding(&doc, "cert/apiserver", "eku", &apiserver, &tree.out);
    assert_finding(&doc, "cert/apiserver", "copies-differ", &apiserver, &tree.out);
    assert_finding(&doc, "cert/front-proxy-client", "subject", &front_proxy, &tree.out);
    let key = tree.file("cert/apiserver", "key", Some("master1"));
    assert_finding(&doc, "cert/apiserver", "key-mismatch", &key, &tree.out);
    assert!(findings(&doc, "cert/apiserver", "chain").is_empty(), "both are signed by the cluster CA");
}

#[test]
fn verify_catches_a_certificate_from_another_ca() {
    let tree = Tree::new("classic");
    let twin = tree.twin();
    let target = tree.file("cert/etcd-server/master2", "cert", Some("master2"));
    let foreign = twin.join(target.strip_prefix(&tree.out).expect("under out"));
    std::fs::copy(&foreign, &target).expect("copy");
    let (output, doc) = tree.verify(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert_finding(&doc, "cert/etcd-server/master2", "chain", &target, &tree.out);
    assert!(findings(&doc, "cert/etcd-server/master2", "subject").is_empty(), "same plan, same subject");
    assert!(findings(&doc, "cert/etcd-server/master2", "sans").is_empty(), "same plan, same SANs");
}

#[test]
fn verify_catches_expiry_with_a_fixed_clock() {
    let tree = Tree::new("minimal");
    let (output, doc) = tree.verify(&["--now", "2040-01-01T00:00:00Z"]);
    assert_eq!(output.status.code(), Some(1));
    let apiserver = tree.file("cert/apiserver", "cert", None);
    assert_finding(&doc, "cert/apiserver", "expired", &apiserver, &tree.out);
    assert!(!findings(&doc, "ca/lab", "expired").is_empty(), "the CA expired too: {:#}", doc["findings"]);
    let row = doc["certificates"].as_array().expect("certs").iter().find(|c| c["id"] == "cert/apiserver").cloned();
    let row = row.expect("cert/apiserver row");
    assert_eq!(row["status"], "expired");
    assert!(row["residual_seconds"].as_i64().expect("residual") < 0);
}

#[test]
fn verify_warns_within_a_window_and_exits_1() {
    let tree = Tree::new("minimal");
    let (output, doc) = tree.verify(&["--now", "2026-12-15T00:00:00Z", "--warn-within", "30d"]);
    assert_eq!(output.status.code(), Some(1), "{:#}", doc["findings"]);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["summary"]["failures"], 0, "{:#}", doc["findings"]);
    assert!(doc["summary"]["warnings"].as_u64().expect("warnings") > 0);
    let soon = findings(&doc, "cert/apiserver", "expires-soon");
    assert!(soon.iter().all(|f| f["severity"] == "warning") && !soon.is_empty(), "{:#}", doc["findings"]);
    assert!(findings(&doc, "ca/lab", "expires-soon").is_empty(), "the CA has years left");
}

#[test]
fn verify_catches_a_key_that_is_not_the_certificates() {
    let tree = Tree::new("classic");
    let key = tree.file("cert/etcd-server/master3", "key", Some("master3"));
    let other = tree.file("cert/etcd-peer/master3", "key", Some("master3"));
    std::fs::copy(&other, &key).expect("copy");
    let (output, doc) = tree.verify(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert_finding(&doc, "cert/etcd-server/master3", "key-mismatch", &key, &tree.out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("PRIVATE KEY"), "verify never prints keys");
}

#[test]
fn verify_catches_modes_and_bad_flag_files() {
    let tree = Tree::new("minimal");
    let key = tree.file("cert/apiserver", "key", Some("solo"));
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
    let flags = tree.file("flags/kube-apiserver/solo", "flags", Some("solo"));
    let edited = std::fs::read_to_string(&flags).expect("read").replace("--client-ca-file=", "--client-ca-file=/tmp");
    std::fs::write(&flags, edited).expect("write");
    let (output, doc) = tree.verify(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert_finding(&doc, "cert/apiserver", "mode", &key, &tree.out);
    assert_finding(&doc, "flags/kube-apiserver/solo", "flags", &flags, &tree.out);
}

#[test]
fn verify_needs_a_tree() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let output = run(&["verify"], &[&plan_path("minimal"), Path::new("--out"), &dir.path().join("nowhere")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a directory"), "{}", describe(&output));
}

#[test]
fn verify_output_holds_no_secret() {
    let tree = Tree::new("classic");
    let token_csv = tree.file("token-file/bootstrap", "token-file", Some("master1"));
    let token = std::fs::read_to_string(&token_csv).expect("read").split(',').next().expect("token").to_string();
    let kubeconfig = tree.file("kubeconfig/bootstrap", "kubeconfig", Some("node1"));
    let wrong = std::fs::read_to_string(&kubeconfig).expect("read").replace(&token, "0123456789abcdef0123456789abcdef");
    std::fs::write(&kubeconfig, wrong).expect("write");
    let (output, doc) = tree.verify(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert_finding(&doc, "kubeconfig/bootstrap", "kubeconfig", &kubeconfig, &tree.out);
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!all.contains(&token), "the token leaked");
    assert!(!all.contains("0123456789abcdef0123456789abcdef"), "the wrong token leaked");
    assert!(!all.contains("BEGIN"), "no PEM in the report");
}

// ---------------------------------------------------------------------------
// inspect
// ---------------------------------------------------------------------------

#[test]
fn inspect_reports_discovery_hashes_and_consumers() {
    let tree = Tree::new("kubeadm");
    let doc = tree.doc();
    for ca in ["ca/kubernetes", "ca/etcd", "ca/front-proxy"] {
        let pem = std::fs::read(tree.file(ca, "cert", None)).expect("read CA");
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
        let cert = pem.parse_x509().expect("X.509");
        let want = format!("sha256:{}", hex::encode(sha2::Sha256::digest(cert.public_key().raw)));
        assert_eq!(artifact(&doc, ca)["discovery_hash"], want.as_str(), "{ca}");
    }
    assert_eq!(artifact(&doc, "cert/apiserver")["discovery_hash"], Value::Null);
    let residual = artifact(&doc, "cert/apiserver")["residual_seconds"].as_i64().expect("residual from disk");
    assert!(residual > 0);

    let consumers = |id: &str, path_end: &str| -> Vec<String> {
        let a = artifact(&doc, id);
        let file = a["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with(path_end)));
        strings(&file.unwrap_or_else(|| panic!("{id} has no {path_end}"))["consumers"])
    };
    assert_eq!(consumers("cert/apiserver", "cp1/etc/kubernetes/pki/apiserver.crt"), ["kube-apiserver"]);
    assert_eq!(consumers("cert/etcd-server/cp2", "cp2/etc/kubernetes/pki/etcd/server.key"), ["etcd"]);
    assert_eq!(
        consumers("keypair/service-account", "cp1/etc/kubernetes/pki/sa.key"),
        ["kube-apiserver", "kube-controller-manager"]
    );
    assert!(consumers("ca/kubernetes", "worker1/etc/kubernetes/pki/ca.crt").contains(&"kubelet".to_string()));
    let file = &artifact(&doc, "cert/apiserver")["files"][0];
    assert_eq!(file["host"], "cp1");
}

#[test]
fn inspect_without_a_tree_keeps_the_contract() {
    let output = run(&["inspect", "--format", "json", "--now", NOW], &[&plan_path("classic")]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let doc = json(&output);
    let ca = artifact(&doc, "ca/kubernetes");
    for key in
        ["id", "kind", "set", "host", "issuer", "subject", "sans", "eku", "key", "not_before", "not_after", "files"]
    {
        assert!(ca.get(key).is_some(), "the contract's `{key}` is gone");
    }
    assert_eq!(ca["discovery_hash"], Value::Null, "no tree, no hash");
    assert_eq!(ca["residual_seconds"], Value::Null);
    assert_eq!(artifact(&doc, "cert/apiserver")["validity_seconds"], 8760 * 3600);
    assert_eq!(artifact(&doc, "cert/apiserver")["not_after"], "2027-01-01T00:00:00Z");
}

#[test]
fn inspect_tables_for_people() {
    let tree = Tree::new("classic");
    let plan = tree.plan.to_str().expect("utf-8");
    let out = tree.out.to_str().expect("utf-8");
    let output = run(&["inspect", plan, "--out", out, "--now", "2026-02-01T00:00:00Z"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let header = stdout.lines().next().unwrap_or_default();
    for column in ["ID", "CN", "O", "SANS", "EKU", "ISSUER", "KEY", "VALIDITY", "NOT BEFORE", "NOT AFTER", "RESIDUAL"] {
        assert!(header.contains(column), "no {column} in {header}");
    }
    assert!(
        stdout.lines().any(|l| l.starts_with("cert/apiserver ") && l.contains("kube-apiserver") && l.contains("334d")),
        "{stdout}"
    );
    assert!(stdout.contains("DISCOVERY HASH") && stdout.contains("ca/kubernetes  sha256:"), "{stdout}");
    assert!(stdout.contains("master1: kube-apiserver"), "{stdout}");
    assert!(!stdout.lines().any(|l| l.starts_with("flags/") && l.contains("SANS")), "flag files are not certificates");

    let output = run(&["inspect", plan, "--out", out, "--format", "markdown"], &[]);
    let md = String::from_utf8_lossy(&output.stdout);
    assert!(md.contains("| ID | CN | O | SANS |"), "{md}");
    assert!(md.contains("kubernetes.default.svc<br>"), "{md}");
}

// ---------------------------------------------------------------------------
// graph
// ---------------------------------------------------------------------------

#[test]
fn graph_json_links_cas_certificates_kubeconfigs_and_components() {
    let output = run(&["graph", "--format", "json"], &[&plan_path("kubeadm")]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let doc = json(&output);
    let edge = |from: &str, to: &str, relation: &str| {
        doc["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .find(|e| e["from"] == from && e["to"] == to && e["relation"] == relation)
            .cloned()
            .unwrap_or_else(|| panic!("no {relation} edge {from} → {to}"))
    };
    assert_eq!(edge("ca/etcd", "cert/etcd-peer/cp2", "signs")["set"], "etcd-peer");
    assert_eq!(edge("ca/front-proxy", "cert/front-proxy-client", "signs")["set"], "front-proxy");
    edge("cert/kube-proxy", "kubeconfig/kube-proxy", "embeds");
    edge("ca/kubernetes", "kubeconfig/kube-proxy", "embeds");
    let uses = edge("cert/apiserver", "flags/kube-apiserver/cp3", "uses");
    assert_eq!(strings(&uses["flags"]), ["tls-cert-file", "tls-private-key-file"]);
    edge("kubeconfig/kube-proxy", "flags/kube-proxy/worker2", "uses");
    edge("flags/etcd/cp1", "host/cp1", "runs-on");
    let nodes = doc["nodes"].as_array().expect("nodes");
    assert!(nodes.iter().any(|n| n["id"] == "host/worker2" && n["kind"] == "host"));
    assert!(
        nodes.iter().any(|n| n["id"] == "flags/kubelet/worker1" && n["label"] == "kubelet" && n["host"] == "worker1")
    );
}

#[test]
fn graph_dot_groups_by_set_and_host_and_renders() {
    let output = run(&["graph"], &[&plan_path("classic")]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let dot = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(dot.starts_with("digraph certplan {"), "{dot}");
    for host in ["master1", "master2", "master3", "node1", "node2"] {
        assert!(dot.contains(&format!("subgraph cluster_host_{host} {{")), "no cluster for {host}");
    }
    assert!(dot.contains("subgraph cluster_set_etcd_peer {"));
    assert!(
        dot.contains(
            "\"ca/kubernetes\" -> \"cert/etcd-peer/master1\" [lhead=cluster_set_etcd_peer, label=\"etcd-peer\""
        ),
        "{dot}"
    );
    let Ok(mut child) = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("Graphviz is not installed; not rendering");
        return;
    };
    use std::io::Write as _;
    child.stdin.take().expect("stdin").write_all(dot.as_bytes()).expect("write dot");
    let rendered = child.wait_with_output().expect("dot");
    assert!(rendered.status.success(), "dot rejects the graph: {}", String::from_utf8_lossy(&rendered.stderr));
    assert!(String::from_utf8_lossy(&rendered.stdout).contains("<svg"));
}

#[test]
fn graph_mermaid_is_a_flowchart_with_subgraphs() {
    let output = run(&["graph", "--format", "mermaid"], &[&plan_path("minimal")]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let mermaid = String::from_utf8_lossy(&output.stdout);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains("subgraph host_solo[\"solo (10.10.0.5)\"]"), "{mermaid}");
    assert!(mermaid.contains("-->|etcd-server| set_etcd_server"), "{mermaid}");
    assert_eq!(mermaid.matches("subgraph").count(), mermaid.matches("\n  end").count());
}
