//! Incremental applies: "regenerate only what changed — and say why".
//!
//! Every case applies an example plan at [`T0`], snapshots the output tree
//! (sha256 and mtime of every file), edits the plan and/or damages the tree,
//! runs `plan --detailed-exitcode --format json` and then `apply`, and checks:
//!
//! - the exact set of files whose bytes change, appear, disappear, or are
//!   rewritten with their original bytes (repairs), against sets written out
//!   here from the documented layout (book/src/reference/output-tree.md);
//! - every other file keeps its bytes *and* its mtime;
//! - `plan` exits 2 with changes and 0 without, writes nothing, and names
//!   exactly the artifacts whose files apply touched, with the same writes and
//!   removes;
//! - the state file changes exactly when something else does;
//! - a second run has nothing to do, says so, and writes nothing at all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::SystemTime;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{artifact, certplan, inspect, plan_with_key, write_plan};

/// The clock of the first apply.
const T0: &str = "2026-01-01T00:00:00Z";
/// 300 days after [`T0`]: inside the renewal window of 8760h leaves
/// (`renew_before` = validity / 3), far from that of 87600h CAs.
const T0_PLUS_300D: &str = "2026-10-28T00:00:00Z";
/// The state file, relative to the output directory.
const STATE: &str = ".certplan/state.json";
/// The apply lock, relative to the output directory.
const LOCK: &str = ".certplan/lock";

const MASTERS: &[&str] = &["master1", "master2", "master3"];
const NODES: &[&str] = &["node1", "node2"];
const CPS: &[&str] = &["cp1", "cp2", "cp3"];
/// `pki_dir` and `config_dir` of the classic plan, relative to a host root.
const SSL: &str = "etc/kubernetes/ssl";
const CFG: &str = "etc/kubernetes";
/// `pki_dir` of the kubeadm plan, relative to a host root.
const PKI: &str = "etc/kubernetes/pki";

// ---------------------------------------------------------------------------
// Snapshots of the output tree.

/// What a file looks like: its content hash and its modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    sha256: String,
    mtime: SystemTime,
}

/// Every regular file under a directory, by path relative to it.
type Snapshot = BTreeMap<String, Stamp>;

/// Snapshots every file under `root` (the state file and lock included).
fn snapshot(root: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, into: &mut Snapshot) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            if meta.is_dir() {
                walk(root, &path, into);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                into.insert(
                    relative(root, &path),
                    Stamp { sha256: hex::encode(Sha256::digest(&bytes)), mtime: meta.modified().expect("mtime") },
                );
            }
        }
    }
    let mut snap = Snapshot::new();
    walk(root, root, &mut snap);
    snap
}

/// The mtime of every directory under `root` (itself included): a run that
/// writes nothing creates, renames and deletes nothing either.
fn dir_mtimes(root: &Path) -> BTreeMap<String, SystemTime> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<String, SystemTime>) {
        let meta = std::fs::symlink_metadata(dir).expect("stat dir");
        into.insert(relative(root, dir), meta.modified().expect("mtime"));
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if std::fs::symlink_metadata(&path).expect("stat").is_dir() {
                walk(root, &path, into);
            }
        }
    }
    let mut dirs = BTreeMap::new();
    walk(root, root, &mut dirs);
    dirs
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).expect("under root").to_string_lossy().into_owned()
}

/// How the files of two snapshots differ.
#[derive(Debug, Default)]
struct Diff {
    /// Present only after.
    added: BTreeSet<String>,
    /// Present only before.
    removed: BTreeSet<String>,
    /// Present in both with different bytes.
    changed: BTreeSet<String>,
    /// Present in both with the same bytes but a new mtime: written again.
    rewritten: BTreeSet<String>,
}

impl Diff {
    /// Every path that differs in any way.
    fn touched(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        all.extend(self.added.iter().cloned());
        all.extend(self.removed.iter().cloned());
        all.extend(self.changed.iter().cloned());
        all.extend(self.rewritten.iter().cloned());
        all
    }

    /// The paths written (added, changed or rewritten).
    fn written(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        all.extend(self.added.iter().cloned());
        all.extend(self.changed.iter().cloned());
        all.extend(self.rewritten.iter().cloned());
        all
    }

    /// The same diff without `.certplan/` (state file and lock): only the
    /// files of artifacts.
    fn artifacts_only(&self) -> Diff {
        let keep = |set: &BTreeSet<String>| set.iter().filter(|p| !p.starts_with(".certplan/")).cloned().collect();
        Diff {
            added: keep(&self.added),
            removed: keep(&self.removed),
            changed: keep(&self.changed),
            rewritten: keep(&self.rewritten),
        }
    }
}

/// Diffs two snapshots.
fn diff(before: &Snapshot, after: &Snapshot) -> Diff {
    let mut d = Diff::default();
    for (path, old) in before {
        match after.get(path) {
            None => {
                d.removed.insert(path.clone());
            }
            Some(new) if new.sha256 != old.sha256 => {
                d.changed.insert(path.clone());
            }
            Some(new) if new.mtime != old.mtime => {
                d.rewritten.insert(path.clone());
            }
            Some(_) => {}
        }
    }
    for path in after.keys() {
        if !before.contains_key(path) {
            d.added.insert(path.clone());
        }
    }
    d
}

// ---------------------------------------------------------------------------
// Running the binary.

/// Runs `certplan SUBCOMMAND PLAN --out OUT --now NOW [--rotate ID]... [EXTRA]...`.
fn run(sub: &str, plan: &Path, out: &Path, now: &str, rotate: &[&str], extra: &[&str]) -> Output {
    let mut cmd = certplan();
    cmd.arg(sub).arg(plan).arg("--out").arg(out).args(["--now", now]);
    for id in rotate {
        cmd.args(["--rotate", id]);
    }
    cmd.args(extra).output().expect("run certplan")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `apply`, which must succeed; returns its stdout.
fn apply_ok(plan: &Path, out: &Path, now: &str, rotate: &[&str]) -> String {
    let output = run("apply", plan, out, now, rotate, &[]);
    assert!(
        output.status.success(),
        "certplan apply --now {now} failed ({:?}):\n{}\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// One entry of `plan --format json`'s `changes` array.
#[derive(Debug, Clone)]
struct Planned {
    id: String,
    action: String,
    reason: String,
    new_key: bool,
    writes: Vec<String>,
    removes: Vec<String>,
}

/// `plan --detailed-exitcode --format json`: the exit code and the changes.
fn plan_json(plan: &Path, out: &Path, now: &str, rotate: &[&str]) -> (i32, Vec<Planned>) {
    let output = run("plan", plan, out, now, rotate, &["--detailed-exitcode", "--format", "json"]);
    let code = output.status.code().expect("exit code");
    assert!(
        code == 0 || code == 2,
        "certplan plan --detailed-exitcode exited {code}:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let doc: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("plan --format json is not JSON ({e}):\n{}", text(&output.stdout)));
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().expect("array of paths").iter().map(|p| p.as_str().expect("path").to_string()).collect()
    };
    let changes = doc["changes"]
        .as_array()
        .expect("changes array")
        .iter()
        .map(|c| Planned {
            id: c["id"].as_str().expect("id").to_string(),
            action: c["action"].as_str().expect("action").to_string(),
            reason: c["reason"].as_str().unwrap_or_default().to_string(),
            new_key: c["new_key"].as_bool().unwrap_or(false),
            writes: strings(&c["writes"]),
            removes: strings(&c["removes"]),
        })
        .collect();
    (code, changes)
}

/// Which artifact owns each file, from an inspect document.
fn owners(doc: &Value, into: &mut BTreeMap<String, String>) {
    for a in doc["artifacts"].as_array().expect("artifacts") {
        let id = a["id"].as_str().expect("id");
        for f in a["files"].as_array().expect("files") {
            into.insert(f["path"].as_str().expect("path").to_string(), id.to_string());
        }
    }
}

// ---------------------------------------------------------------------------
// Expected sets, written out from the documented layout.

/// `hosts/<host>/<rel>` for each host.
fn on(hosts: &[&str], rel: &str) -> Vec<String> {
    hosts.iter().map(|h| format!("hosts/{h}/{rel}")).collect()
}

/// Owned strings.
fn paths(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn set(list: &[String]) -> BTreeSet<String> {
    list.iter().cloned().collect()
}

fn set_of(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

/// Replaces `from` by `to` in a plan, which must contain `from` exactly once.
fn replace_once(plan: &str, from: &str, to: &str) -> String {
    assert_eq!(plan.matches(from).count(), 1, "the plan must contain {from:?} exactly once");
    plan.replacen(from, to, 1)
}

/// What a case must do.
#[derive(Debug, Default)]
struct Expect {
    /// The artifacts `plan` lists and `apply` changes.
    ids: Vec<&'static str>,
    /// Files whose bytes change.
    changed: Vec<String>,
    /// Files that appear.
    added: Vec<String>,
    /// Files that disappear.
    removed: Vec<String>,
    /// Files damaged on disk and written again with the bytes of the first apply.
    restored: Vec<String>,
}

/// One incremental apply.
struct Case {
    name: &'static str,
    /// The plan of the first apply.
    original: String,
    /// The plan of the second.
    edited: String,
    /// Damage done to the tree after the first apply.
    damage: fn(&Path),
    /// The clock of the second apply.
    now: &'static str,
    /// `--rotate` ids of the second apply.
    rotate: &'static [&'static str],
    expect: Expect,
}

/// A tree after its first apply, with the edited plan in place.
struct Fixture {
    _tmp: tempfile::TempDir,
    plan: PathBuf,
    out: PathBuf,
    /// `inspect` of the original plan on the first tree.
    before_doc: Value,
    /// The tree right after the first apply, before any damage.
    pristine: Snapshot,
}

/// What a case left, for case-specific checks.
struct Outcome {
    name: &'static str,
    _tmp: tempfile::TempDir,
    out: PathBuf,
    before_doc: Value,
    after_doc: Value,
    pristine: Snapshot,
    after: Snapshot,
    planned: Vec<Planned>,
    stdout: String,
    problems: Vec<String>,
}

impl Outcome {
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.problems.push(problem());
        }
    }

    /// The bytes of a file of the final tree.
    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.out.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Panics with every problem found.
    fn finish(self) {
        assert!(
            self.problems.is_empty(),
            "case `{}`: {} problem(s):\n- {}",
            self.name,
            self.problems.len(),
            self.problems.join("\n- ")
        );
    }
}

fn no_damage(_: &Path) {}

fn show(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "{}".to_string()
    } else {
        format!("{{\n    {}\n  }}", set.iter().cloned().collect::<Vec<_>>().join(",\n    "))
    }
}

impl Case {
    /// First apply at [`T0`], snapshot, damage, write the edited plan.
    fn prepare(&self) -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("out");
        let plan = write_plan(tmp.path(), &self.original);
        apply_ok(&plan, &out, T0, &[]);
        let before_doc = inspect(&plan, &out);
        let pristine = snapshot(&out);
        (self.damage)(&out);
        write_plan(tmp.path(), &self.edited);
        Fixture { _tmp: tmp, plan, out, before_doc, pristine }
    }

    fn run(&self) -> Outcome {
        let fixture = self.prepare();
        self.apply_and_check(fixture)
    }

    /// `plan`, then `apply`, then a second `plan` and `apply` that must have
    /// nothing to do; checks everything common to all cases.
    fn apply_and_check(&self, fx: Fixture) -> Outcome {
        let Fixture { _tmp: tmp, plan, out, before_doc, pristine } = fx;
        let mut problems = Vec::new();
        let expect_ids = set_of(&self.expect.ids);
        let something = !expect_ids.is_empty();

        // plan: exit code, ids; it writes nothing.
        let s0 = snapshot(&out);
        let dirs0 = dir_mtimes(&out);
        let (code, planned) = plan_json(&plan, &out, self.now, self.rotate);
        if snapshot(&out) != s0 || dir_mtimes(&out) != dirs0 {
            problems.push("`plan` modified the output tree".to_string());
        }
        let want_code = if something { 2 } else { 0 };
        if code != want_code {
            problems.push(format!("`plan --detailed-exitcode` exited {code}, expected {want_code}"));
        }
        let planned_ids: BTreeSet<String> = planned.iter().map(|c| c.id.clone()).collect();
        if planned_ids != expect_ids {
            problems.push(format!("`plan` lists artifacts {}, expected {}", show(&planned_ids), show(&expect_ids)));
        }

        // apply.
        let stdout = apply_ok(&plan, &out, self.now, self.rotate);
        let s1 = snapshot(&out);
        let after_doc = inspect(&plan, &out);
        let mut owner = BTreeMap::new();
        owners(&before_doc, &mut owner);
        owners(&after_doc, &mut owner);

        // What this apply did on disk, and which artifacts that is.
        let did = diff(&s0, &s1);
        let did_files = did.artifacts_only();
        let mut disk_ids = BTreeSet::new();
        for path in did_files.touched() {
            match owner.get(&path) {
                Some(id) => {
                    disk_ids.insert(id.clone());
                }
                None => problems.push(format!("`{path}` changed on disk but no artifact owns it")),
            }
        }
        if disk_ids != planned_ids {
            problems.push(format!(
                "`plan` lists artifacts {} but apply changed the files of {}",
                show(&planned_ids),
                show(&disk_ids)
            ));
        }
        let planned_writes: BTreeSet<String> = planned.iter().flat_map(|c| c.writes.iter().cloned()).collect();
        let planned_removes: BTreeSet<String> = planned.iter().flat_map(|c| c.removes.iter().cloned()).collect();
        if planned_writes != did_files.written() {
            problems.push(format!(
                "`plan` says it writes {} but apply wrote {}",
                show(&planned_writes),
                show(&did_files.written())
            ));
        }
        if planned_removes != did_files.removed {
            problems.push(format!(
                "`plan` says it removes {} but apply removed {}",
                show(&planned_removes),
                show(&did_files.removed)
            ));
        }

        // The state file changes exactly when something else does; the lock never.
        let state_changed = did.touched().contains(STATE);
        if state_changed != something {
            problems.push(format!(
                "state file {}, though {}",
                if state_changed { "was written" } else { "was not written" },
                if something { "artifacts changed" } else { "nothing else changed" }
            ));
        }
        if did.touched().contains(LOCK) {
            problems.push("the lock file was written".to_string());
        }
        if !something {
            if !stdout.contains("Nothing to do") {
                problems.push(format!("apply did not print \"Nothing to do\":\n{stdout}"));
            }
            if dir_mtimes(&out) != dirs0 {
                problems.push("a run with nothing to do changed a directory".to_string());
            }
        }

        // Against the tree of the first apply: exactly the expected files differ.
        let whole = diff(&pristine, &s1).artifacts_only();
        let compare = |what: &str, got: &BTreeSet<String>, want: &[String], problems: &mut Vec<String>| {
            let want = set(want);
            if *got != want {
                let extra: BTreeSet<String> = got.difference(&want).cloned().collect();
                let missing: BTreeSet<String> = want.difference(got).cloned().collect();
                problems.push(format!("files {what}: unexpected {}; missing {}", show(&extra), show(&missing)));
            }
        };
        compare("with new bytes", &whole.changed, &self.expect.changed, &mut problems);
        compare("added", &whole.added, &self.expect.added, &mut problems);
        compare("removed", &whole.removed, &self.expect.removed, &mut problems);
        compare(
            "rewritten with their old bytes (mtime changed)",
            &whole.rewritten,
            &self.expect.restored,
            &mut problems,
        );

        // A second run has nothing to do and writes nothing at all.
        let s2_before = snapshot(&out);
        let dirs2_before = dir_mtimes(&out);
        let (code2, planned2) = plan_json(&plan, &out, self.now, &[]);
        if code2 != 0 || !planned2.is_empty() {
            problems.push(format!(
                "after the apply, `plan` still has work (exit {code2}): {:?}",
                planned2.iter().map(|c| format!("{} {}: {}", c.action, c.id, c.reason)).collect::<Vec<_>>()
            ));
        }
        let again = apply_ok(&plan, &out, self.now, &[]);
        if !again.contains("Nothing to do") {
            problems.push(format!("a second apply did not say \"Nothing to do\":\n{again}"));
        }
        let second = diff(&s2_before, &snapshot(&out));
        if !second.touched().is_empty() {
            problems.push(format!("a second apply with nothing to do touched {}", show(&second.touched())));
        }
        if dir_mtimes(&out) != dirs2_before {
            problems.push("a second apply with nothing to do changed a directory".to_string());
        }

        Outcome {
            name: self.name,
            _tmp: tmp,
            out,
            before_doc,
            after_doc,
            pristine,
            after: s1,
            planned,
            stdout,
            problems,
        }
    }
}

// ---------------------------------------------------------------------------
// Plans and edits.

fn classic() -> String {
    plan_with_key("classic", "ecdsa-p256")
}

fn kubeadm() -> String {
    plan_with_key("kubeadm", "ecdsa-p256")
}

fn add_apiserver_san(plan: &str) -> String {
    replace_once(
        plan,
        r#"extra_sans = ["kube-api.example.com", "192.168.214.210"]"#,
        r#"extra_sans = ["kube-api.example.com", "192.168.214.210", "api.internal.example.com"]"#,
    )
}

fn add_node3(plan: &str) -> String {
    replace_once(
        plan,
        "[sets.apiserver]",
        "[[hosts]]\nname = \"node3\"\naddress = \"192.168.214.203\"\nroles = [\"worker\"]\n\n[sets.apiserver]",
    )
}

fn remove_node2(plan: &str) -> String {
    replace_once(plan, "[[hosts]]\nname = \"node2\"\naddress = \"192.168.214.202\"\nroles = [\"worker\"]\n", "")
}

fn rename_etcd_ca(plan: &str) -> String {
    replace_once(plan, r#"cn = "etcd-ca""#, r#"cn = "etcd-ca-2""#)
}

fn change_admin_groups(plan: &str) -> String {
    replace_once(plan, r#"groups = ["kubeadm:cluster-admins"]"#, r#"groups = ["platform-admins"]"#)
}

fn kubelet_server_ecdsa(plan: &str) -> String {
    replace_once(plan, "[sets.apiserver]", "[sets.kubelet-server]\nkey = \"ecdsa-p256\"\n\n[sets.apiserver]")
}

/// The master2 copy of the API server certificate (master1 and master3 keep theirs).
const DELETED: &str = "hosts/master2/etc/kubernetes/ssl/kubernetes.pem";
fn delete_apiserver_cert_copy(out: &Path) {
    std::fs::remove_file(out.join(DELETED)).expect("delete");
}

/// node1's copy of the kube-proxy certificate (node2 keeps its own).
const TAMPERED: &str = "hosts/node1/etc/kubernetes/ssl/kube-proxy.pem";
fn tamper_kube_proxy_cert_copy(out: &Path) {
    let path = out.join(TAMPERED);
    let mut bytes = std::fs::read(&path).expect("read");
    // Flip one base64 character of the body, keeping the length.
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&path, bytes).expect("tamper");
}

/// The kubelet kubeconfig of worker1 (kubeadm): no copy, rendered from intact material.
const DELETED_KUBECONFIG: &str = "hosts/worker1/etc/kubernetes/kubelet.conf";
fn delete_kubelet_conf(out: &Path) {
    std::fs::remove_file(out.join(DELETED_KUBECONFIG)).expect("delete");
}

// ---------------------------------------------------------------------------
// The cases.

#[test]
fn no_edit_classic_does_nothing() {
    Case {
        name: "no edit (classic)",
        original: classic(),
        edited: classic(),
        damage: no_damage,
        now: T0,
        rotate: &[],
        expect: Expect::default(),
    }
    .run()
    .finish();
}

#[test]
fn no_edit_kubeadm_does_nothing() {
    Case {
        name: "no edit (kubeadm)",
        original: kubeadm(),
        edited: kubeadm(),
        damage: no_damage,
        now: T0,
        rotate: &[],
        expect: Expect::default(),
    }
    .run()
    .finish();
}

#[test]
fn added_apiserver_san_reissues_only_the_apiserver_cert() {
    let mut outcome = Case {
        name: "added apiserver SAN (classic)",
        original: classic(),
        edited: add_apiserver_san(&classic()),
        damage: no_damage,
        now: T0,
        rotate: &[],
        expect: Expect {
            ids: vec!["cert/apiserver"],
            // The certificate on each control-plane host; its key is kept.
            changed: on(MASTERS, &format!("{SSL}/kubernetes.pem")),
            ..Expect::default()
        },
    }
    .run();
    let sans = artifact(&outcome.after_doc, "cert/apiserver")["sans"]["dns"].clone();
    outcome.check(sans.as_array().is_some_and(|d| d.iter().any(|s| s == "api.internal.example.com")), || {
        format!("the reissued apiserver cert lacks the new SAN: {sans}")
    });
    let kept = outcome.planned.iter().find(|c| c.id == "cert/apiserver").is_some_and(|c| !c.new_key);
    outcome.check(kept, || "`plan` says cert/apiserver gets a new key".into());
    for key in on(MASTERS, &format!("{SSL}/kubernetes-key.pem")) {
        let same = outcome.pristine.get(&key).map(|s| &s.sha256) == outcome.after.get(&key).map(|s| &s.sha256);
        outcome.check(same, || format!("{key}: the key's bytes changed"));
    }
    outcome.finish();
}

#[test]
fn added_worker_gets_only_its_files() {
    let node3 = |rel: &str| format!("hosts/node3/{rel}");
    let mut outcome = Case {
        name: "added worker (classic)",
        original: classic(),
        edited: add_node3(&classic()),
        damage: no_damage,
        now: T0,
        rotate: &[],
        expect: Expect {
            ids: vec![
                "ca/kubernetes",
                "cert/kube-proxy",
                "kubeconfig/kube-proxy",
                "kubeconfig/bootstrap",
                "cert/kubelet/node3",
                "cert/kubelet-server/node3",
                "kubeconfig/kubelet/node3",
                "flags/kubelet/node3",
                "flags/kube-proxy/node3",
            ],
            added: vec![
                node3(&format!("{SSL}/ca.pem")),
                node3(&format!("{SSL}/kube-proxy.pem")),
                node3(&format!("{SSL}/kube-proxy-key.pem")),
                node3(&format!("{SSL}/kubelet-client.pem")),
                node3(&format!("{SSL}/kubelet-client-key.pem")),
                node3(&format!("{SSL}/kubelet.pem")),
                node3(&format!("{SSL}/kubelet-key.pem")),
                node3(&format!("{CFG}/kube-proxy.kubeconfig")),
                node3(&format!("{CFG}/bootstrap.kubeconfig")),
                node3(&format!("{CFG}/kubelet.kubeconfig")),
                node3(&format!("{CFG}/kubelet.env")),
                node3(&format!("{CFG}/kube-proxy.env")),
            ],
            ..Expect::default()
        },
    }
    .run();
    // Copies of shared artifacts are byte-for-byte those already placed.
    let copies = [
        ("cluster/pki/ca.pem".to_string(), node3(&format!("{SSL}/ca.pem"))),
        (format!("hosts/node1/{SSL}/kube-proxy.pem"), node3(&format!("{SSL}/kube-proxy.pem"))),
        (format!("hosts/node1/{SSL}/kube-proxy-key.pem"), node3(&format!("{SSL}/kube-proxy-key.pem"))),
        (format!("hosts/node1/{CFG}/kube-proxy.kubeconfig"), node3(&format!("{CFG}/kube-proxy.kubeconfig"))),
        (format!("hosts/node1/{CFG}/bootstrap.kubeconfig"), node3(&format!("{CFG}/bootstrap.kubeconfig"))),
    ];
    for (source, copy) in copies {
        let same = outcome.read(&source) == outcome.read(&copy);
        outcome.check(same, || format!("{copy} differs from {source}"));
    }
    outcome.check(!outcome.after.contains_key(&node3(&format!("{SSL}/ca-key.pem"))), || {
        "a worker received the CA key".into()
    });
    outcome.finish();
}

#[test]
fn removed_worker_loses_its_files_and_says_so() {
    let mut outcome = Case {
        name: "removed worker (classic)",
        original: classic(),
        edited: remove_node2(&classic()),
        damage: no_damage,
        now: T0,
        rotate: &[],
        expect: Expect {
            ids: vec![
                "ca/kubernetes",
                "cert/kube-proxy",
                "kubeconfig/kube-proxy",
                "kubeconfig/bootstrap",
                "cert/kubelet/node2",
                "cert/kubelet-server/node2",
                "kubeconfig/kubelet/node2",
                "flags/kubelet/node2",
                "flags/kube-proxy/node2",
            ],
            removed: [
                format!("{SSL}/ca.pem"),
                format!("{SSL}/kube-proxy.pem"),
                format!("{SSL}/kube-proxy-key.pem"),
                format!("{SSL}/kubelet-client.pem"),
                format!("{SSL}/kubelet-client-key.pem"),
                format!("{SSL}/kubelet.pem"),
                format!("{SSL}/kubelet-key.pem"),
                format!("{CFG}/kube-proxy.kubeconfig"),
                format!("{CFG}/bootstrap.kubeconfig"),
                format!("{CFG}/kubelet.kubeconfig"),
                format!("{CFG}/kubelet.env"),
                format!("{CFG}/kube-proxy.env"),
            ]
            .iter()
            .flat_map(|rel| on(&["node2"], rel))
            .collect(),
            ..Expect::default()
        },
    }
    .run();
    for id in [
        "cert/kubelet/node2",
        "cert/kubelet-server/node2",
        "kubeconfig/kubelet/node2",
        "flags/kubelet/node2",
        "flags/kube-proxy/node2",
    ] {
        let reported = outcome.stdout.contains(&format!("remove {id}"));
        outcome.check(reported, || format!("apply did not report `remove {id}`"));
    }
    let counted = outcome.stdout.contains("12 removed");
    let stdout = outcome.stdout.clone();
    outcome.check(counted, || format!("apply did not report 12 files removed:\n{stdout}"));
    outcome.finish();
}

/// The files and artifacts the etcd CA signs or embeds in the kubeadm plan.
fn etcd_rotation() -> Expect {
    let mut changed = paths(&["cluster/pki/etcd/ca.crt", "cluster/pki/etcd/ca.key"]);
    for rel in ["etcd/ca.crt", "etcd/server.crt", "etcd/peer.crt", "apiserver-etcd-client.crt"] {
        changed.extend(on(CPS, &format!("{PKI}/{rel}")));
    }
    Expect {
        ids: vec![
            "ca/etcd",
            "cert/etcd-server/cp1",
            "cert/etcd-server/cp2",
            "cert/etcd-server/cp3",
            "cert/etcd-peer/cp1",
            "cert/etcd-peer/cp2",
            "cert/etcd-peer/cp3",
            "cert/apiserver-etcd-client",
        ],
        // The leaves are reissued by the new CA; their keys are kept (only the
        // CA was asked to rotate), so their key files do not change.
        changed,
        ..Expect::default()
    }
}

#[test]
fn changed_etcd_ca_is_refused_then_rotated_on_request() {
    let case = Case {
        name: "changed etcd CA subject (kubeadm)",
        original: kubeadm(),
        edited: rename_etcd_ca(&kubeadm()),
        damage: no_damage,
        now: T0,
        rotate: &["ca/etcd"],
        expect: etcd_rotation(),
    };
    let fx = case.prepare();
    let before = snapshot(&fx.out);
    let dirs = dir_mtimes(&fx.out);
    let mut refusals = Vec::new();
    for (sub, extra) in [("plan", &["--detailed-exitcode", "--format", "json"][..]), ("apply", &[][..])] {
        let output = run(sub, &fx.plan, &fx.out, T0, &[], extra);
        let stderr = text(&output.stderr);
        if output.status.code() != Some(1) {
            refusals.push(format!("`{sub}` without --rotate exited {:?}, expected 1", output.status.code()));
        }
        if !stderr.contains("--rotate ca/etcd") {
            refusals.push(format!("`{sub}` without --rotate does not name `--rotate ca/etcd`: {stderr}"));
        }
        if snapshot(&fx.out) != before || dir_mtimes(&fx.out) != dirs {
            refusals.push(format!("a refused `{sub}` wrote to the output tree"));
        }
    }
    assert!(refusals.is_empty(), "refusing the etcd CA change:\n- {}", refusals.join("\n- "));

    let mut outcome = case.apply_and_check(fx);
    let cn = artifact(&outcome.after_doc, "ca/etcd")["subject"]["cn"].clone();
    outcome.check(cn == "etcd-ca-2", || format!("the new etcd CA has CN {cn}"));
    // Nothing under the cluster CA or the front-proxy CA changes.
    let mut untouched = Vec::new();
    for a in outcome.after_doc["artifacts"].as_array().expect("artifacts") {
        let issuer = a["issuer"].as_str().unwrap_or("");
        if issuer != "ca/kubernetes" && issuer != "ca/front-proxy" {
            continue;
        }
        for f in a["files"].as_array().expect("files") {
            let path = f["path"].as_str().expect("path");
            if outcome.pristine.get(path) != outcome.after.get(path) {
                untouched.push(format!("{path} ({})", a["id"]));
            }
        }
    }
    outcome.check(untouched.is_empty(), || {
        format!("files under the cluster or front-proxy CA changed: {}", untouched.join(", "))
    });
    // The leaves' keys are the same bytes as before.
    for rel in ["etcd/server.key", "etcd/peer.key", "apiserver-etcd-client.key"] {
        for key in on(CPS, &format!("{PKI}/{rel}")) {
            let same = outcome.pristine.get(&key).map(|s| &s.sha256) == outcome.after.get(&key).map(|s| &s.sha256);
            outcome.check(same, || format!("{key}: a leaf's key bytes changed"));
        }
    }
    outcome.finish();
}

#[test]
fn changed_user_groups_reissue_only_that_user() {
    let mut outcome = Case {
        name: "changed user groups (kubeadm)",
        original: kubeadm(),
        edited: change_admin_groups(&kubeadm()),
        damage: no_damage,
        now: T0,
        rotate: &[],
        expect: Expect {
            ids: vec!["cert/users/admin", "kubeconfig/users/admin"],
            changed: paths(&["cluster/users/admin.crt", "cluster/kubeconfigs/admin.conf"]),
            ..Expect::default()
        },
    }
    .run();
    let o = artifact(&outcome.after_doc, "cert/users/admin")["subject"]["o"].clone();
    outcome.check(o == serde_json::json!(["platform-admins"]), || format!("the reissued admin cert has O = {o}"));
    outcome.finish();
}

/// The one RSA case: the example plan as written (rsa-2048 everywhere), then
/// one set moved to ECDSA.
#[test]
fn changed_key_algorithm_of_one_set_rekeys_only_that_set() {
    let original = std::fs::read_to_string(crate::common::plan_path("classic")).expect("read plan");
    let mut outcome = Case {
        name: "changed key algorithm of kubelet-server (classic, RSA)",
        edited: kubelet_server_ecdsa(&original),
        original,
        damage: no_damage,
        now: T0,
        rotate: &[],
        expect: Expect {
            ids: vec!["cert/kubelet-server/node1", "cert/kubelet-server/node2"],
            changed: [on(NODES, &format!("{SSL}/kubelet.pem")), on(NODES, &format!("{SSL}/kubelet-key.pem"))].concat(),
            ..Expect::default()
        },
    }
    .run();
    for node in NODES {
        let id = format!("cert/kubelet-server/{node}");
        let before = artifact(&outcome.before_doc, &id)["key"].clone();
        let after = artifact(&outcome.after_doc, &id)["key"].clone();
        outcome.check(before == "rsa-2048" && after == "ecdsa-p256", || {
            format!("{id}: key {before} → {after}, expected rsa-2048 → ecdsa-p256")
        });
        let new_key = outcome.planned.iter().find(|c| c.id == id).is_some_and(|c| c.new_key);
        outcome.check(new_key, || format!("`plan` does not say {id} gets a new key"));
    }
    outcome.finish();
}

#[test]
fn deleted_file_is_restored_byte_for_byte() {
    let mut outcome = Case {
        name: "deleted cert copy (classic)",
        original: classic(),
        edited: classic(),
        damage: delete_apiserver_cert_copy,
        now: T0,
        rotate: &[],
        expect: Expect { ids: vec!["cert/apiserver"], restored: paths(&[DELETED]), ..Expect::default() },
    }
    .run();
    let reason =
        outcome.planned.iter().map(|c| format!("{} {}: {}", c.action, c.id, c.reason)).collect::<Vec<_>>().join("; ");
    outcome.check(reason.contains(DELETED), || format!("the plan's reason does not name the deleted file: {reason}"));
    let same = outcome.read(DELETED) == outcome.read("hosts/master1/etc/kubernetes/ssl/kubernetes.pem");
    outcome.check(same, || format!("{DELETED} differs from master1's copy"));
    outcome.finish();
}

#[test]
fn tampered_file_is_restored_byte_for_byte() {
    let mut outcome = Case {
        name: "tampered cert copy (classic)",
        original: classic(),
        edited: classic(),
        damage: tamper_kube_proxy_cert_copy,
        now: T0,
        rotate: &[],
        expect: Expect { ids: vec!["cert/kube-proxy"], restored: paths(&[TAMPERED]), ..Expect::default() },
    }
    .run();
    let reason =
        outcome.planned.iter().map(|c| format!("{} {}: {}", c.action, c.id, c.reason)).collect::<Vec<_>>().join("; ");
    outcome.check(reason.contains(TAMPERED), || format!("the plan's reason does not name the tampered file: {reason}"));
    let same = outcome.read(TAMPERED) == outcome.read("hosts/node2/etc/kubernetes/ssl/kube-proxy.pem");
    outcome.check(same, || format!("{TAMPERED} differs from node2's copy"));
    outcome.finish();
}

#[test]
fn deleted_kubeconfig_is_rendered_again_byte_for_byte() {
    Case {
        name: "deleted kubeconfig (kubeadm)",
        original: kubeadm(),
        edited: kubeadm(),
        damage: delete_kubelet_conf,
        now: T0,
        rotate: &[],
        expect: Expect {
            ids: vec!["kubeconfig/kubelet/worker1"],
            restored: paths(&[DELETED_KUBECONFIG]),
            ..Expect::default()
        },
    }
    .run()
    .finish();
}

#[test]
fn clock_in_renewal_window_renews_leaves_not_cas() {
    let mut changed = Vec::new();
    for stem in [
        "apiserver-etcd-client",
        "apiserver-kubelet-client",
        "etcd",
        "etcd-peer",
        "front-proxy-client",
        "kube-controller-manager",
        "kube-scheduler",
        "kubernetes",
    ] {
        changed.extend(on(MASTERS, &format!("{SSL}/{stem}.pem")));
    }
    for name in ["kube-controller-manager", "kube-scheduler"] {
        changed.extend(on(MASTERS, &format!("{CFG}/{name}.kubeconfig")));
    }
    for stem in ["kube-proxy", "kubelet-client", "kubelet"] {
        changed.extend(on(NODES, &format!("{SSL}/{stem}.pem")));
    }
    for name in ["kube-proxy", "kubelet"] {
        changed.extend(on(NODES, &format!("{CFG}/{name}.kubeconfig")));
    }
    changed.extend(paths(&["cluster/users/admin.pem", "cluster/kubeconfigs/admin.kubeconfig"]));
    let mut outcome = Case {
        name: "clock in the renewal window (classic)",
        original: classic(),
        edited: classic(),
        damage: no_damage,
        now: T0_PLUS_300D,
        rotate: &[],
        expect: Expect {
            ids: vec![
                "cert/etcd-server/master1",
                "cert/etcd-server/master2",
                "cert/etcd-server/master3",
                "cert/etcd-peer/master1",
                "cert/etcd-peer/master2",
                "cert/etcd-peer/master3",
                "cert/apiserver",
                "cert/apiserver-etcd-client",
                "cert/apiserver-kubelet-client",
                "cert/front-proxy-client",
                "cert/kube-controller-manager",
                "cert/kube-scheduler",
                "cert/kube-proxy",
                "cert/kubelet/node1",
                "cert/kubelet/node2",
                "cert/kubelet-server/node1",
                "cert/kubelet-server/node2",
                "cert/users/admin",
                "kubeconfig/kube-controller-manager",
                "kubeconfig/kube-scheduler",
                "kubeconfig/kube-proxy",
                "kubeconfig/kubelet/node1",
                "kubeconfig/kubelet/node2",
                "kubeconfig/users/admin",
            ],
            // Leaf certificates and the kubeconfigs that embed them; keys are
            // kept, the CA (87600h) is not due.
            changed,
            ..Expect::default()
        },
    }
    .run();
    let ca_before = artifact(&outcome.before_doc, "ca/kubernetes")["not_after"].clone();
    let ca_after = artifact(&outcome.after_doc, "ca/kubernetes")["not_after"].clone();
    outcome.check(ca_before == ca_after, || format!("the CA's not_after moved: {ca_before} → {ca_after}"));
    let leaf_before = artifact(&outcome.before_doc, "cert/apiserver")["not_after"].clone();
    let leaf_after = artifact(&outcome.after_doc, "cert/apiserver")["not_after"].clone();
    outcome.check(leaf_after.as_str().unwrap_or("").starts_with("2027-10-28"), || {
        format!("the renewed apiserver cert's not_after: {leaf_before} → {leaf_after}, expected 2027-10-28")
    });
    let actions: Vec<String> = outcome
        .planned
        .iter()
        .filter(|c| c.id.starts_with("cert/") && (c.action != "renew" || c.new_key))
        .map(|c| format!("{} {} (new key: {})", c.action, c.id, c.new_key))
        .collect();
    outcome.check(actions.is_empty(), || format!("certificates not renewed with their key: {actions:?}"));
    outcome.finish();
}

/// A tree whose state is gone (an apply killed before it wrote its state, or
/// CA keys brought from elsewhere): every CA keeps the key it finds, the
/// leaves are issued from it, and the next run has nothing to do.
#[test]
fn ca_keys_without_state_are_adopted_never_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(dir.path(), &kubeadm());
    let out = dir.path().join("out");
    apply_ok(&plan, &out, T0, &[]);
    let ca_keys = ["cluster/pki/ca.key", "cluster/pki/etcd/ca.key", "cluster/pki/front-proxy-ca.key"];
    let before: Vec<Vec<u8>> = ca_keys.iter().map(|k| std::fs::read(out.join(k)).expect("CA key")).collect();
    std::fs::remove_file(out.join(STATE)).expect("remove state");

    let (code, planned) = plan_json(&plan, &out, T0, &[]);
    assert_eq!(code, 2);
    let adopted: BTreeSet<String> = planned.iter().filter(|p| p.action == "adopt").map(|p| p.id.clone()).collect();
    assert_eq!(adopted, set_of(&["ca/etcd", "ca/front-proxy", "ca/kubernetes"]), "{planned:#?}");
    for p in planned.iter().filter(|p| p.action == "adopt") {
        assert!(!p.new_key, "{p:?}");
        assert!(!p.writes.iter().any(|w| ca_keys.contains(&w.as_str())), "{} rewrites a CA key: {:?}", p.id, p.writes);
    }

    apply_ok(&plan, &out, T0, &[]);
    for (key, bytes) in ca_keys.iter().zip(&before) {
        assert_eq!(&std::fs::read(out.join(key)).expect("CA key"), bytes, "{key} changed");
    }
    let (code, planned) = plan_json(&plan, &out, T0, &[]);
    assert_eq!((code, planned.len()), (0, 0), "not converged: {planned:#?}");
    let verify = run("verify", &plan, &out, T0, &[], &[]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
}

/// A CA key file certplan cannot use (garbage, or a key of another
/// algorithm) is refused with its path, and nothing but the lock is written.
#[test]
fn an_unusable_ca_key_without_state_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(dir.path(), &kubeadm());
    // The plan asks for ECDSA P-256; an Ed25519 key is a real key of another kind.
    let ed25519 = std::process::Command::new("openssl").args(["genpkey", "-algorithm", "ed25519"]).output();
    let ed25519 = ed25519.ok().filter(|o| o.status.success()).map(|o| o.stdout).expect("openssl genpkey ed25519");
    for (name, content) in [("garbage", b"not a key\n".to_vec()), ("ed25519", ed25519)] {
        let out = dir.path().join(name);
        std::fs::create_dir_all(out.join("cluster/pki")).expect("mkdir");
        std::fs::write(out.join("cluster/pki/ca.key"), &content).expect("write key");
        let before = snapshot(&out);
        let output = run("apply", &plan, &out, T0, &[], &[]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("cluster/pki/ca.key") && stderr.contains("--rotate ca/kubernetes"), "{name}: {stderr}");
        let mut after = snapshot(&out);
        after.remove(LOCK);
        assert_eq!(after, before, "{name}: the tree changed");
    }
}
