//! Secrets at rest (issue 18): with `[secrets] age_recipients`, every file of
//! the output tree that holds a secret is written age-encrypted, as
//! `<path>.age` in age's ASCII armour, and nothing secret is left in the tree
//! in plaintext. A secret whose plaintext did not change keeps its
//! ciphertext, so a repository that commits the tree sees only what an edit
//! requires. `apply` needs the identity only when it must read a secret (to
//! sign with a CA key, or to re-encrypt); `plan` never does. `export` installs
//! one host's files decrypted under a root directory, or as a tar stream,
//! without touching the directories already there.
//!
//! The two identities below are throwaway keys made with `age-keygen` for
//! these tests alone: they protect nothing but the temporary trees the tests
//! write and delete. The test that decrypts with the Debian `age` command is
//! ignored by plain `cargo test` (tests/run.sh installs `age` and runs it);
//! the others decrypt through `certplan export` and `certplan verify`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use crate::common::applied::artifacts;
use crate::common::repo::Repo;
use crate::common::snapshot::{Snapshot, snapshot};
use crate::common::{describe, inspect, plan_path, plan_with_key, repo_root, write_plan};

/// A throwaway test identity (`age-keygen`, made for these tests only) and
/// its recipient: the trees of these tests are encrypted to it
/// (`tests/export_consumers.rs` uses them too).
pub(crate) const IDENTITY: &str = "AGE-SECRET-KEY-1RGKXTNEWJNAJ0SU50J3JTK6AKCGY57CR03M0TLJ940LY5ENRX56QRM4Y90";
pub(crate) const RECIPIENT: &str = "age1p3l2gwurnsawsn7grql0u297cu95nhkquvvjl4wlkppgwchsku7sjvty2f";
/// A second throwaway test identity and its recipient: the wrong key, or
/// the one a recipients change adds.
const SECOND_IDENTITY: &str = "AGE-SECRET-KEY-1M6Y55E6NZVGZC2V793UQU9QY64FZR26GGJHF925FZD3D488MQT3S7HCRPS";
const SECOND_RECIPIENT: &str = "age14lylsq5x27uvflejlep6fj97hr9pvswypdj5j28s045qtvjtwagsa2gz57";

/// How every `.age` file of the tree starts: age's ASCII armour.
const ARMOR: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
/// The roles `inspect` gives the files that hold a secret.
const SECRET_ROLES: &[&str] = &["key", "kubeconfig", "token-file", "secret-manifest"];
/// The state file, relative to the output directory.
const STATE: &str = ".certplan/state.json";
/// The control-plane hosts of the classic plan.
const MASTERS: &[&str] = &["master1", "master2", "master3"];
/// The API server's extra SANs in `plans/classic.toml`.
const SANS: &str = r#"extra_sans = ["kube-api.example.com", "192.168.214.210"]"#;
/// The host whose files the export test installs.
const EXPORTED_HOST: &str = "master1";
/// The directories a fake host root has before anything is installed, with
/// their modes: `/`, `/etc` and `/etc/kubernetes` (a mode of its own).
const PREEXISTING: &[(&str, u32)] = &[("", 0o755), ("etc", 0o755), ("etc/kubernetes", 0o711)];

// ---------------------------------------------------------------------------
// Plans.

/// `source` with a `[secrets]` table naming `recipients`, in place of the
/// one it had, if any.
fn encrypted(source: &str, recipients: &[&str]) -> String {
    let list: Vec<String> = recipients.iter().map(|r| format!("\"{r}\"")).collect();
    format!("{}\n[secrets]\nage_recipients = [{}]\n", plaintext(source), list.join(", "))
}

/// `source` without the `[secrets]` table that [`encrypted`] appends.
fn plaintext(source: &str) -> &str {
    source.split_once("\n[secrets]\n").map_or(source, |(plan, _)| plan)
}

/// Replaces `from` by `to` in a plan, which must contain `from` exactly once.
fn replace_once(source: &str, from: &str, to: &str) -> String {
    assert_eq!(source.matches(from).count(), 1, "the plan must contain {from:?} exactly once");
    source.replacen(from, to, 1)
}

/// The classic plan with one more DNS name among the API server's SANs.
fn with_san(source: &str, name: &str) -> String {
    replace_once(source, SANS, &SANS.replace(']', &format!(", \"{name}\"]")))
}

/// The classic plan with a third worker, `node3`.
fn with_node3(source: &str) -> String {
    replace_once(
        source,
        "[sets.apiserver]",
        "[[hosts]]\nname = \"node3\"\naddress = \"192.168.214.203\"\nroles = [\"worker\"]\n\n[sets.apiserver]",
    )
}

/// The name (without `.toml`) and text of every plan in `plans/`.
fn example_plans() -> Vec<(String, String)> {
    let mut plans: Vec<(String, String)> = fs::read_dir(repo_root().join("plans"))
        .expect("read plans/")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .map(|path| {
            let name = path.file_stem().expect("a file name").to_string_lossy().into_owned();
            (name, fs::read_to_string(path).expect("read an example plan"))
        })
        .collect();
    plans.sort();
    assert!(plans.len() >= 5, "plans/ holds the example plans, found {}", plans.len());
    plans
}

/// `hosts/<host>/<rel>` for each host.
fn on(hosts: &[&str], rel: &str) -> Vec<String> {
    hosts.iter().map(|host| format!("hosts/{host}/{rel}")).collect()
}

// ---------------------------------------------------------------------------
// Running commands.

/// A `certplan` command that sees no age identity from the environment the
/// suite runs in: each test gives one itself, or none.
fn certplan() -> Command {
    let mut command = crate::common::certplan();
    command.env_remove("CERTPLAN_AGE_IDENTITY").env_remove("CERTPLAN_AGE_IDENTITY_FILE").env("NO_COLOR", "1");
    command
}

/// A path as a command-line argument.
fn p(path: &Path) -> &str {
    path.to_str().expect("the tests' paths are UTF-8")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs another program, which must succeed; returns its stdout.
fn run_ok(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(output.status.success(), "`{program} {}` failed:\n{}", args.join(" "), describe(&output));
    text(&output.stdout)
}

/// Whether the tests run as root.
fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A plan applied with encryption on (to [`RECIPIENT`]) into `<tmp>/out` by
/// an `apply` given no identity (a new tree needs none), with both test
/// identities in files beside it.
struct Tree {
    tmp: tempfile::TempDir,
    plan: PathBuf,
    out: PathBuf,
    identity: PathBuf,
    second: PathBuf,
}

impl Tree {
    fn applied(source: &str) -> Self {
        let tmp = tempfile::TempDir::new().expect("create temp dir");
        let identity = tmp.path().join("identity.txt");
        let second = tmp.path().join("second-identity.txt");
        fs::write(&identity, format!("{IDENTITY}\n")).expect("write the test identity");
        fs::write(&second, format!("{SECOND_IDENTITY}\n")).expect("write the second test identity");
        let plan = write_plan(tmp.path(), &encrypted(source, &[RECIPIENT]));
        let out = tmp.path().join("out");
        let tree = Self { tmp, plan, out, identity, second };
        tree.ok("apply", &[]);
        tree
    }

    /// The temporary directory that holds the plan, the tree and the identities.
    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Replaces the plan's text.
    fn edit(&self, source: &str) {
        fs::write(&self.plan, source).expect("write the plan");
    }

    /// `certplan SUB PLAN --out OUT EXTRA...` with `env`, whatever its exit status.
    fn run(&self, sub: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = certplan();
        command.arg(sub).arg(&self.plan).arg("--out").arg(&self.out).args(extra);
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("run certplan")
    }

    /// The same, which must succeed; returns its stdout.
    fn ok(&self, sub: &str, extra: &[&str]) -> String {
        let output = self.run(sub, extra, &[]);
        assert!(output.status.success(), "`certplan {sub} {}` failed:\n{}", extra.join(" "), describe(&output));
        text(&output.stdout)
    }

    /// The exit code of `plan --detailed-exitcode`, given no identity: 0
    /// (nothing to do) or 2 (changes).
    fn plan_code(&self) -> i32 {
        let output = self.run("plan", &["--detailed-exitcode"], &[]);
        let code = output.status.code().expect("an exit code");
        assert!(code == 0 || code == 2, "`certplan plan --detailed-exitcode` failed:\n{}", describe(&output));
        code
    }

    /// `export --host HOST --to <tmp>/roots/LABEL --identity IDENTITY`, which
    /// must succeed; returns the root.
    fn export(&self, host: &str, identity: &Path, label: &str) -> PathBuf {
        let root = self.dir().join("roots").join(label);
        fs::create_dir_all(&root).expect("create the root");
        let output = self.run("export", &["--host", host, "--to", p(&root), "--identity", p(identity)], &[]);
        assert!(output.status.success(), "`certplan export --host {host}` failed:\n{}", describe(&output));
        root
    }
}

// ---------------------------------------------------------------------------
// Reading trees.

/// Every path whose entry differs between two snapshots in any way, or is
/// in one of them only.
fn touched(before: &Snapshot, after: &Snapshot) -> BTreeSet<String> {
    before.keys().chain(after.keys()).filter(|path| before.get(*path) != after.get(*path)).cloned().collect()
}

/// The files (not directories) among `paths`.
fn files_only(paths: &BTreeSet<String>) -> BTreeSet<String> {
    paths.iter().filter(|path| !path.ends_with('/')).cloned().collect()
}

/// The files that differ between two snapshots are exactly `expected`.
fn assert_files_changed(before: &Snapshot, after: &Snapshot, expected: &BTreeSet<String>, what: &str) {
    let changed = files_only(&touched(before, after));
    let unexpected: Vec<&String> = changed.difference(expected).collect();
    let missing: Vec<&String> = expected.difference(&changed).collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "{what}: files changed beyond what it requires: {unexpected:?}; files it should have changed: {missing:?}"
    );
}

/// The bytes of every file under a root, by path relative to it.
fn contents(root: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(root)
        .into_keys()
        .filter(|path| !path.ends_with('/'))
        .map(|path| {
            let bytes = fs::read(root.join(&path)).expect("read file");
            (path, bytes)
        })
        .collect()
}

/// Every file `inspect` lists: its role and mode.
fn listed(doc: &Value) -> BTreeMap<String, (String, u32)> {
    let mut files = BTreeMap::new();
    for artifact in artifacts(doc) {
        for file in artifact["files"].as_array().expect("files array") {
            let path = file["path"].as_str().expect("path").to_string();
            let role = file["role"].as_str().expect("role").to_string();
            let mode = u32::from_str_radix(file["mode"].as_str().expect("mode"), 8).expect("an octal mode");
            files.insert(path, (role, mode));
        }
    }
    files
}

/// The hosts that `inspect` places files on.
fn hosts_of(doc: &Value) -> BTreeSet<String> {
    artifacts(doc)
        .into_iter()
        .flat_map(|artifact| artifact["files"].as_array().expect("files array"))
        .filter_map(|file| file["host"].as_str().map(str::to_string))
        .collect()
}

/// `text` without whitespace and without JSON's `\n` escapes: base64 wrapped
/// or escaped anywhere reads as one word.
fn squeeze(text: &str) -> String {
    text.replace("\\n", "").chars().filter(|c| !c.is_whitespace()).collect()
}

/// The base64 body of the PEM private key in `text`, squeezed.
fn private_key_body(text: &str) -> Option<String> {
    const HEADER_END: &str = "PRIVATE KEY-----";
    let start = text.find(HEADER_END)? + HEADER_END.len();
    let end = start + text[start..].find("-----END")?;
    Some(squeeze(&text[start..end]))
}

/// `age -d -i IDENTITY` of every `.age` file under `out`, by the path
/// without `.age`.
fn age_decrypt_all(out: &Path, identity: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut opened = BTreeMap::new();
    for path in snapshot(out).into_keys().filter(|path| path.ends_with(".age")) {
        let output = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(identity)
            .arg(out.join(&path))
            .output()
            .expect("run age (Debian package `age`: tests/run.sh installs it)");
        assert!(output.status.success(), "`age -d` fails on {path}: {}", text(&output.stderr));
        opened.insert(path.strip_suffix(".age").expect("a .age path").to_string(), output.stdout);
    }
    opened
}

/// Whether `verify` says it read every file it expected:
/// `verify ok: N of N expected files`.
fn every_file_read(stdout: &str) -> bool {
    stdout.lines().filter_map(|line| line.strip_prefix("verify ok: ")).any(|rest| {
        let words: Vec<&str> = rest.split_whitespace().collect();
        matches!(words.as_slice(), [read, "of", expected, "expected", ..] if read == expected)
    })
}

// ---------------------------------------------------------------------------
// Nothing secret in plaintext.

/// The tree holds exactly the files `inspect` lists (and, under
/// `.certplan/`, the state and the lock); every file of a secret role is
/// encrypted (`.age`, armoured, mode 0600) and no other is.
fn check_layout(
    name: &str,
    out: &Path,
    listed: &BTreeMap<String, (String, u32)>,
    files: &BTreeMap<String, Vec<u8>>,
    problems: &mut Vec<String>,
) {
    for (path, (role, _)) in listed {
        let secret = SECRET_ROLES.contains(&role.as_str());
        if secret != path.ends_with(".age") {
            let wrong = if secret { "holds a secret but is not encrypted" } else { "is encrypted but holds no secret" };
            problems.push(format!("{name}: `{path}` (role {role}) {wrong}"));
        }
        if !files.contains_key(path) {
            problems.push(format!("{name}: inspect lists `{path}` but the tree has no such file"));
        }
    }
    for (path, bytes) in files {
        let known = match path.strip_prefix(".certplan/") {
            Some(own) => ["state.json", "lock"].contains(&own),
            None => listed.contains_key(path),
        };
        if !known {
            problems.push(format!("{name}: `{path}` is in the tree but is no artifact's file (nor the state or lock)"));
        }
        if path.ends_with(".age") {
            if !bytes.starts_with(ARMOR.as_bytes()) {
                problems.push(format!("{name}: `{path}` does not start with `{ARMOR}`"));
            }
            let mode = fs::metadata(out.join(path)).expect("stat").mode() & 0o7777;
            if mode != 0o600 {
                problems.push(format!("{name}: `{path}` has mode {mode:04o}, not 0600"));
            }
        }
    }
}

/// What must never be in the tree in plaintext, read from every host's
/// files exported with the identity: pieces of each private key that no
/// public file (a certificate, a public key) also holds, and each token.
/// Returns them as needle → what it is.
fn secrets_of(name: &str, tree: &Tree, doc: &Value, problems: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut public = String::new();
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let mut needles = BTreeMap::new();
    for host in hosts_of(doc) {
        let root = tree.export(&host, &tree.identity, &host);
        for (path, bytes) in contents(&root) {
            let raw = text(&bytes);
            let what = format!("{host}:/{path}");
            if fs::metadata(root.join(&path)).expect("stat").mode() & 0o077 != 0 {
                public.push_str(&squeeze(&raw));
                public.push('\n');
                continue;
            }
            if let Some(body) = private_key_body(&raw) {
                keys.entry(body).or_insert_with(|| format!("the private key of {what}"));
            }
            if path.ends_with("token.csv") {
                for token in raw.lines().filter_map(|row| row.split(',').next()).filter(|token| !token.is_empty()) {
                    needles.insert(token.to_string(), format!("the token of {what}"));
                }
            }
            for token in raw.lines().filter_map(|line| line.trim().strip_prefix("token: ")) {
                needles.insert(token.to_string(), format!("the token of {what}"));
                if let Some((_, secret)) = token.split_once('.') {
                    needles.insert(secret.to_string(), format!("the token secret of {what}"));
                }
            }
        }
    }
    let holds_tokens = listed(doc).values().any(|(role, _)| role == "token-file" || role == "secret-manifest");
    if holds_tokens && needles.is_empty() {
        problems.push(format!("{name}: the plan has tokens but no exported file shows one: the scan would be blind"));
    }
    if keys.is_empty() {
        problems.push(format!("{name}: no exported file holds a private key: the scan would be blind"));
    }
    for (body, what) in keys {
        let pieces: Vec<&str> = (1..4_usize)
            .filter_map(|quarter| body.get(body.len() * quarter / 4..).and_then(|rest| rest.get(..32)))
            .filter(|piece| !public.contains(piece))
            .collect();
        if pieces.is_empty() {
            problems.push(format!("{name}: no piece of {what} tells it from the public files"));
        }
        for piece in pieces {
            needles.insert(piece.to_string(), what.clone());
        }
    }
    needles
}

/// Every example plan applied with recipients: no byte of the tree (the
/// state and the lock included) holds a PEM private key, a kubeconfig's
/// `client-key-data`, a piece of any private key or any token in plaintext;
/// every secret file is `.age`, armoured and mode 0600; no other file is.
#[test]
fn no_secret_is_written_in_plaintext() {
    let mut problems = Vec::new();
    for (name, source) in example_plans() {
        let tree = Tree::applied(&source);
        let doc = inspect(&tree.plan, &tree.out);
        let files = contents(&tree.out);
        check_layout(&name, &tree.out, &listed(&doc), &files, &mut problems);
        let needles = secrets_of(&name, &tree, &doc, &mut problems);
        for (path, bytes) in &files {
            let raw = text(bytes);
            let squeezed = squeeze(&raw);
            for marker in ["PRIVATE KEY", "client-key-data"] {
                if raw.contains(marker) {
                    problems.push(format!("{name}: `{path}` holds `{marker}` in plaintext"));
                }
            }
            for (needle, what) in &needles {
                if raw.contains(needle.as_str()) || squeezed.contains(needle.as_str()) {
                    problems.push(format!("{name}: `{path}` holds {what} in plaintext"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n- {}", problems.len(), problems.join("\n- "));
}

/// Debian's `age -d` opens every `.age` file of every example plan's tree to
/// exactly what the same tree holds once encryption is turned off (with the
/// identity: the same key material, each file back at its plain path); and
/// turned on again (no identity needed), the same plaintexts are sealed.
#[test]
#[ignore = "needs age: run tests/run.sh"]
fn age_decrypts_every_file_to_what_the_plaintext_tree_holds() {
    let mut problems = Vec::new();
    for (name, source) in example_plans() {
        let tree = Tree::applied(&source);
        assert_eq!(tree.plan_code(), 0, "{name}: `plan` right after the first apply has something to do");
        let opened = age_decrypt_all(&tree.out, &tree.identity);
        assert!(!opened.is_empty(), "{name}: the tree holds no .age file");

        // Off: every secret file moves back to its plain path.
        tree.edit(plaintext(&source));
        tree.ok("apply", &["--identity", p(&tree.identity)]);
        assert_eq!(tree.plan_code(), 0, "{name}: `plan` after turning encryption off has something to do");
        let plain = contents(&tree.out);
        for (path, bytes) in &opened {
            match plain.get(path) {
                None => problems.push(format!("{name}: the plaintext tree has no `{path}`")),
                Some(written) if written != bytes => {
                    problems.push(format!("{name}: `age -d` of `{path}.age` differs from the plaintext `{path}`"));
                }
                Some(_) => {}
            }
        }
        for path in plain.keys().filter(|path| path.ends_with(".age")) {
            problems.push(format!("{name}: `{path}` is left after turning encryption off"));
        }

        // On again, with no identity: the same plaintexts, sealed again.
        tree.edit(&encrypted(&source, &[RECIPIENT]));
        tree.ok("apply", &[]);
        assert_eq!(tree.plan_code(), 0, "{name}: `plan` after turning encryption on again has something to do");
        let again = age_decrypt_all(&tree.out, &tree.identity);
        let differ: BTreeSet<&String> =
            opened.keys().chain(again.keys()).filter(|path| opened.get(*path) != again.get(*path)).collect();
        if !differ.is_empty() {
            problems.push(format!("{name}: sealed again, these do not decrypt to what they held: {differ:?}"));
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n- {}", problems.len(), problems.join("\n- "));
}

// ---------------------------------------------------------------------------
// No churn.

/// A second apply writes nothing; a one-SAN change rewrites the API server
/// certificate and the state, no `.age` file; a rotated client certificate
/// re-encrypts its own key and kubeconfig (whose plaintext changed), not its
/// siblings'; a new worker adds its files and re-encrypts none of the
/// copies the other workers already have.
#[test]
fn unchanged_secrets_keep_their_ciphertext() {
    let source = plan_with_key("classic", "ecdsa-p256");
    let tree = Tree::applied(&source);
    let id = ["--identity", p(&tree.identity)];

    // Nothing to do: not a byte, not an mtime, not a directory.
    let first = snapshot(&tree.out);
    let again = tree.ok("apply", &id);
    assert!(again.contains("Nothing to do"), "{again}");
    let written = touched(&first, &snapshot(&tree.out));
    assert!(written.is_empty(), "an apply with nothing to do touched {written:?}");

    // One SAN: the certificate's copies and the state.
    let san = with_san(&source, "api.internal.example.com");
    tree.edit(&encrypted(&san, &[RECIPIENT]));
    let before = snapshot(&tree.out);
    tree.ok("apply", &id);
    let mut expected: BTreeSet<String> = on(MASTERS, "etc/kubernetes/ssl/kubernetes.pem").into_iter().collect();
    expected.insert(STATE.to_string());
    assert_files_changed(&before, &snapshot(&tree.out), &expected, "a one-SAN change");
    assert_eq!(tree.plan_code(), 0, "`plan` after the SAN change has something to do");

    // A new client certificate for node1's kubelet: its kubeconfig embeds
    // it, so that kubeconfig's plaintext and ciphertext change; node2's do not.
    let before = snapshot(&tree.out);
    tree.ok("apply", &[id[0], id[1], "--rotate", "cert/kubelet/node1"]);
    let expected: BTreeSet<String> = [
        "hosts/node1/etc/kubernetes/ssl/kubelet-client.pem",
        "hosts/node1/etc/kubernetes/ssl/kubelet-client-key.pem.age",
        "hosts/node1/etc/kubernetes/kubelet.kubeconfig.age",
        STATE,
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_files_changed(&before, &snapshot(&tree.out), &expected, "rotating cert/kubelet/node1");
    let root = tree.export("node1", &tree.identity, "node1-rotated");
    let cert = fs::read(root.join("etc/kubernetes/ssl/kubelet-client.pem")).expect("read the exported certificate");
    let kubeconfig =
        fs::read_to_string(root.join("etc/kubernetes/kubelet.kubeconfig")).expect("read the exported kubeconfig");
    assert!(kubeconfig.contains(&B64.encode(&cert)), "the re-encrypted kubeconfig does not embed the new certificate");

    // node3: its own files, and the copies of shared kubeconfigs on node1
    // and node2 keep their ciphertext.
    tree.edit(&encrypted(&with_node3(&san), &[RECIPIENT]));
    let before = snapshot(&tree.out);
    tree.ok("apply", &id);
    let changed = files_only(&touched(&before, &snapshot(&tree.out)));
    let (node3, others): (BTreeSet<String>, BTreeSet<String>) =
        changed.into_iter().partition(|path| path.starts_with("hosts/node3/"));
    assert_eq!(others, BTreeSet::from([STATE.to_string()]), "adding node3 changed files of other hosts");
    let old: Vec<&String> = node3.iter().filter(|path| before.contains_key(*path)).collect();
    assert!(old.is_empty(), "adding node3 rewrote {old:?}");
    for copy in ["kube-proxy.kubeconfig.age", "bootstrap.kubeconfig.age", "ssl/kubelet-client-key.pem.age"] {
        let path = format!("hosts/node3/etc/kubernetes/{copy}");
        assert!(node3.contains(&path), "node3 did not get {path}: it got {node3:?}");
    }
    assert_eq!(tree.plan_code(), 0, "`plan` after adding node3 has something to do");

    // An override template that renders what the embedded one does: every
    // kubeconfig is rewritten (its spec names the override), to the same
    // plaintext, so every encrypted kubeconfig keeps its ciphertext.
    let templates = tree.dir().join("templates");
    fs::create_dir_all(&templates).expect("create the template directory");
    fs::copy(crate::common::repo_root().join("templates/kubeconfig.yaml"), templates.join("kubeconfig.yaml"))
        .expect("copy the embedded kubeconfig template");
    let with_templates = [id[0], id[1], "--templates", p(&templates)];
    let before = contents(&tree.out);
    let said = tree.ok("apply", &with_templates);
    assert!(said.contains("rewrite kubeconfig/"), "the override template rewrote no kubeconfig:\n{said}");
    let after = contents(&tree.out);
    let reencrypted: Vec<&String> = after
        .iter()
        .filter(|(path, bytes)| path.ends_with(".age") && before.get(*path) != Some(bytes))
        .map(|(p, _)| p)
        .collect();
    assert!(reencrypted.is_empty(), "kubeconfigs rendered to the same plaintext got new ciphertext: {reencrypted:?}");
}

// ---------------------------------------------------------------------------
// The identity.

/// Without an identity, `plan` works and `apply` refuses a change that
/// signs (naming the CA, writing nothing) but carries out one that reads no
/// secret. The identity works from `CERTPLAN_AGE_IDENTITY` and from
/// `CERTPLAN_AGE_IDENTITY_FILE`; a wrong or mangled one fails without
/// showing it.
#[test]
fn apply_without_identity_refuses_only_when_it_must_sign() {
    let source = plan_with_key("classic", "ecdsa-p256");
    let tree = Tree::applied(&source);

    // A new SAN: the CA must sign.
    tree.edit(&encrypted(&with_san(&source, "one.example.com"), &[RECIPIENT]));
    let before = snapshot(&tree.out);
    assert_eq!(tree.plan_code(), 2, "`plan` needs no identity to show the reissue");
    let refused = tree.run("apply", &[], &[]);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(
        stderr.contains("`ca/kubernetes`") && stderr.contains("--identity"),
        "the refusal names the CA it must sign with, and how to give the identity:\n{stderr}"
    );
    let written = touched(&before, &snapshot(&tree.out));
    assert!(written.is_empty(), "a refused apply touched {written:?}");

    // No more token.csv: files removed, flag files rewritten, no secret read.
    let no_token = replace_once(&source, "token_csv = true", "token_csv = false");
    tree.edit(&encrypted(&no_token, &[RECIPIENT]));
    let before = snapshot(&tree.out);
    tree.ok("apply", &[]);
    assert_eq!(tree.plan_code(), 0, "`plan` after dropping token.csv has something to do");
    let after = snapshot(&tree.out);
    let sealed_again: Vec<&String> = after
        .iter()
        .filter(|(path, stamp)| path.ends_with(".age") && before.get(*path) != Some(*stamp))
        .map(|(path, _)| path)
        .collect();
    assert!(sealed_again.is_empty(), "an apply that reads no secret wrote {sealed_again:?}");
    assert!(
        before.contains_key("hosts/master1/etc/kubernetes/token.csv.age")
            && !after.contains_key("hosts/master1/etc/kubernetes/token.csv.age"),
        "dropping token.csv removes the encrypted token file"
    );
    let again = tree.ok("apply", &[]);
    assert!(again.contains("Nothing to do"), "{again}");

    // The identity from the environment, as text and as a file.
    let by_env = [
        ("two.example.com", "CERTPLAN_AGE_IDENTITY", IDENTITY),
        ("three.example.com", "CERTPLAN_AGE_IDENTITY_FILE", p(&tree.identity)),
    ];
    for (name, variable, value) in by_env {
        tree.edit(&encrypted(&with_san(&no_token, name), &[RECIPIENT]));
        let output = tree.run("apply", &[], &[(variable, value)]);
        assert!(output.status.success(), "the identity from {variable}:\n{}", describe(&output));
        assert_eq!(tree.plan_code(), 0, "`plan` after the apply with {variable} has something to do");
    }

    // The wrong identity, and a mangled one (the right one, last character changed).
    tree.edit(&encrypted(&with_san(&no_token, "four.example.com"), &[RECIPIENT]));
    let before = snapshot(&tree.out);
    let last = if IDENTITY.ends_with('Q') { "P" } else { "Q" };
    let mangled = format!("{}{last}", &IDENTITY[..IDENTITY.len() - 1]);
    let attempts = [
        ("--identity with another identity", tree.run("apply", &["--identity", p(&tree.second)], &[]), SECOND_IDENTITY),
        (
            "CERTPLAN_AGE_IDENTITY with another identity",
            tree.run("apply", &[], &[("CERTPLAN_AGE_IDENTITY", SECOND_IDENTITY)]),
            SECOND_IDENTITY,
        ),
        (
            "CERTPLAN_AGE_IDENTITY mangled",
            tree.run("apply", &[], &[("CERTPLAN_AGE_IDENTITY", mangled.as_str())]),
            mangled.as_str(),
        ),
    ];
    for (how, output, identity) in &attempts {
        assert_eq!(output.status.code(), Some(1), "{how}:\n{}", describe(output));
        let key = identity.trim_start_matches("AGE-SECRET-KEY-1");
        let shown = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(!shown.contains(key), "{how}: the output shows the identity");
    }
    // A key that opens nothing is named as such (as `verify` and `export` do).
    for (how, output, _) in &attempts[..2] {
        assert!(
            text(&output.stderr).contains("decrypt"),
            "{how}: the error does not say the identity cannot decrypt the CA key:\n{}",
            describe(output)
        );
    }
    let written = touched(&before, &snapshot(&tree.out));
    assert!(written.is_empty(), "an apply with a wrong identity touched {written:?}");
}

/// An encrypted CA key that no state records (an apply killed after
/// writing it, a tree restored without its state) is taken over as it is:
/// the apply with the identity keeps its exact ciphertext, and the tree is
/// settled afterwards (a regression: the state recorded the hash of the
/// decrypted key, so the next run took the key for changed on disk).
#[test]
fn an_encrypted_ca_key_without_state_is_adopted_and_stays_settled() {
    let tree = Tree::applied(&plan_with_key("classic", "ecdsa-p256"));
    let ca_key = tree.out.join("cluster/pki/ca-key.pem.age");
    let sealed = fs::read(&ca_key).expect("the encrypted CA key");
    fs::remove_file(tree.out.join(STATE)).expect("remove the state");

    let adopted = tree.ok("apply", &["--identity", p(&tree.identity)]);
    assert!(adopted.contains("keeping that key"), "the apply does not say it keeps the CA key:\n{adopted}");
    assert_eq!(fs::read(&ca_key).expect("the CA key"), sealed, "adopting re-encrypted the CA key");
    assert_eq!(tree.plan_code(), 0, "`plan` after adopting an encrypted CA key has something to do");
    let again = tree.ok("apply", &["--identity", p(&tree.identity)]);
    assert!(again.contains("Nothing to do"), "{again}");
}

/// A second recipient: `plan` shows a `reencrypt` of every encrypted file
/// and nothing else; `apply` (with the first identity) re-encrypts each;
/// then the second identity opens every host's files. Dropping the first
/// recipient, the second identity alone re-encrypts the tree and `verify`
/// reads every file with it; the first opens nothing any more.
#[test]
fn recipients_change_reencrypts_everything() {
    let source = plan_with_key("classic", "ecdsa-p256");
    let tree = Tree::applied(&source);
    let before = snapshot(&tree.out);
    let sealed: BTreeSet<String> = before.keys().filter(|path| path.ends_with(".age")).cloned().collect();

    tree.edit(&encrypted(&source, &[RECIPIENT, SECOND_RECIPIENT]));
    let shown = tree.ok("plan", &[]);
    let line = format!("reencrypt ca/kubernetes: recipients + {SECOND_RECIPIENT}");
    assert!(shown.contains(&line), "`plan` does not show `{line}`:\n{shown}");
    let planned: Value =
        serde_json::from_str(&tree.ok("plan", &["--format", "json"])).expect("plan --format json prints JSON");
    let mut writes = BTreeSet::new();
    for change in planned["changes"].as_array().expect("a changes array") {
        assert_eq!(change["action"], "reencrypt", "{change}");
        assert_eq!(change["reason"], format!("recipients + {SECOND_RECIPIENT}"), "{change}");
        assert!(change["removes"].as_array().is_none_or(Vec::is_empty), "{change}");
        writes.extend(
            change["writes"].as_array().expect("writes").iter().map(|w| w.as_str().expect("a path").to_string()),
        );
    }
    assert_eq!(writes, sealed, "`plan` re-encrypts every encrypted file, and only those");
    assert_eq!(tree.plan_code(), 2);
    let refused = tree.run("apply", &[], &[]);
    assert_eq!(refused.status.code(), Some(1), "re-encrypting needs the identity:\n{}", describe(&refused));

    tree.ok("apply", &["--identity", p(&tree.identity)]);
    assert_eq!(tree.plan_code(), 0, "`plan` after re-encrypting has something to do");
    let after = snapshot(&tree.out);
    let mut expected = sealed.clone();
    expected.insert(STATE.to_string());
    assert_files_changed(&before, &after, &expected, "adding a recipient");
    let kept: Vec<&String> = sealed
        .iter()
        .filter(|path| before.get(*path).map(|s| &s.sha256) == after.get(*path).map(|s| &s.sha256))
        .collect();
    assert!(kept.is_empty(), "kept the ciphertext of one recipient: {kept:?}");
    let doc = inspect(&tree.plan, &tree.out);
    for host in hosts_of(&doc) {
        tree.export(&host, &tree.second, &format!("{host}-second"));
    }

    tree.edit(&encrypted(&source, &[SECOND_RECIPIENT]));
    let shown = tree.ok("plan", &[]);
    let line = format!("reencrypt ca/kubernetes: recipients - {RECIPIENT}");
    assert!(shown.contains(&line), "`plan` does not show `{line}`:\n{shown}");
    tree.ok("apply", &["--identity", p(&tree.second)]);
    assert_eq!(tree.plan_code(), 0, "`plan` after dropping a recipient has something to do");
    let verified = tree.ok("verify", &["--identity", p(&tree.second)]);
    assert!(every_file_read(&verified), "`verify` with the second identity does not read every file:\n{verified}");

    let root = tree.dir().join("roots").join("first-identity");
    fs::create_dir_all(&root).expect("create the root");
    let output = tree.run("export", &["--host", "master1", "--to", p(&root), "--identity", p(&tree.identity)], &[]);
    assert!(
        !output.status.success() && text(&output.stderr).contains("cannot decrypt"),
        "the dropped identity still opens the tree:\n{}",
        describe(&output)
    );
    assert!(contents(&root).is_empty(), "a failed export left files in its root");
}

// ---------------------------------------------------------------------------
// CI.

/// A CI runner: a fresh clone of a repository holding the plan and its
/// encrypted tree (every mtime new), a plan edit, `apply` with the identity
/// from the environment. The files it changes, and so the commit, are the
/// plan, the certificate the edit reissues and the state.
#[test]
fn ci_clone_applies_only_what_the_edit_requires() {
    const PLAN: &str = "plans/classic.toml";
    let source = plan_with_key("classic", "ecdsa-p256");
    let repo = Repo::init();
    repo.git(&["config", "user.name", "certplan tests"]);
    repo.git(&["config", "user.email", "tests@certplan.invalid"]);
    repo.write(PLAN, &encrypted(&source, &[RECIPIENT]));
    let certplan_in = |dir: &Path, identity: Option<&str>, args: &[&str]| -> Output {
        let mut command = repo.command("certplan");
        command
            .current_dir(dir)
            .args(args)
            .env_remove("CERTPLAN_AGE_IDENTITY")
            .env_remove("CERTPLAN_AGE_IDENTITY_FILE");
        if let Some(identity) = identity {
            command.env("CERTPLAN_AGE_IDENTITY", identity);
        }
        command.output().expect("run certplan")
    };
    let first = certplan_in(&repo.path(), None, &["apply", PLAN, "--out", "out"]);
    assert!(first.status.success(), "{}", describe(&first));
    repo.commit_all("the plan and its encrypted tree");

    let runner = tempfile::TempDir::new().expect("create temp dir");
    let clone = runner.path().join("clone");
    repo.git(&["clone", "-q", p(&repo.path()), p(&clone)]);
    let git = |args: &[&str]| -> String {
        let output = repo.command("git").current_dir(&clone).args(args).output().expect("run git");
        assert!(output.status.success(), "`git {}` in the clone failed:\n{}", args.join(" "), describe(&output));
        text(&output.stdout)
    };
    git(&["config", "user.name", "ci"]);
    git(&["config", "user.email", "ci@certplan.invalid"]);
    let fresh = certplan_in(&clone, None, &["plan", PLAN, "--out", "out", "--detailed-exitcode"]);
    assert_eq!(fresh.status.code(), Some(0), "a fresh clone has nothing to do:\n{}", describe(&fresh));

    let edited = encrypted(&with_san(&source, "api.internal.example.com"), &[RECIPIENT]);
    fs::write(clone.join(PLAN), edited).expect("edit the plan in the clone");
    let applied = certplan_in(&clone, Some(IDENTITY), &["apply", PLAN, "--out", "out"]);
    assert!(applied.status.success(), "apply with the identity from the environment:\n{}", describe(&applied));

    let mut expected: BTreeSet<String> =
        on(MASTERS, "etc/kubernetes/ssl/kubernetes.pem").into_iter().map(|path| format!("out/{path}")).collect();
    expected.insert(format!("out/{STATE}"));
    expected.insert(PLAN.to_string());
    let status: BTreeSet<String> =
        git(&["status", "--porcelain"]).lines().map(|line| line.get(3..).unwrap_or(line).to_string()).collect();
    assert_eq!(status, expected, "`git status --porcelain` after the apply");
    git(&["commit", "-q", "-a", "-m", "a SAN for the API server"]);
    let committed: BTreeSet<String> =
        git(&["diff", "--name-only", "HEAD~1", "HEAD"]).lines().map(str::to_string).collect();
    assert_eq!(committed, expected, "the files of the commit");
}

// ---------------------------------------------------------------------------
// Export.

/// A date in the past for the fake host root's directories.
fn host_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_577_934_245)
}

/// Another one for the directories of the build user's tree: a command that
/// copies directory times from the tree would set this one on the host.
#[allow(clippy::duration_suboptimal_units, reason = "a Unix time reads as seconds since the epoch")]
fn tree_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(978_307_200)
}

fn set_mtime(path: &Path, time: SystemTime) {
    fs::File::open(path)
        .and_then(|file| file.set_modified(time))
        .unwrap_or_else(|e| panic!("set the mtime of {}: {e}", path.display()));
}

/// A host root with [`PREEXISTING`]'s directories, owned by root, with their
/// modes and [`host_time`].
fn fake_host_root(root: &Path) -> PathBuf {
    fs::create_dir_all(root.join("etc/kubernetes")).expect("create the fake host root");
    for (dir, mode) in PREEXISTING.iter().rev() {
        let path = root.join(dir);
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).expect("chmod");
        set_mtime(&path, host_time());
    }
    root.to_path_buf()
}

/// The directories that were there keep their owner, mode and mtime (the
/// kernel dates a directory that gains an entry: `/etc/kubernetes` does,
/// `/` and `/etc` do not); new directories are root's, 0755; the files are
/// exactly the host's, root's, with the mode of their role and the bytes
/// `expected` holds for them.
fn check_host_root(
    how: &str,
    root: &Path,
    expected: &BTreeMap<String, (u32, Vec<u8>)>,
    started: SystemTime,
    problems: &mut Vec<String>,
) {
    for (dir, mode) in PREEXISTING {
        let meta = fs::metadata(root.join(dir)).expect("stat");
        if (meta.uid(), meta.gid()) != (0, 0) {
            problems.push(format!("{how}: /{dir} is owned by {}:{}, no longer by root", meta.uid(), meta.gid()));
        }
        if meta.mode() & 0o7777 != *mode {
            problems.push(format!("{how}: /{dir} has mode {:04o}, it had {mode:04o}", meta.mode() & 0o7777));
        }
        let mtime = meta.modified().expect("mtime");
        let kept = mtime == host_time();
        let dated_by_the_kernel = *dir == "etc/kubernetes" && mtime >= started - Duration::from_secs(1);
        if !(kept || dated_by_the_kernel) {
            problems.push(format!("{how}: the mtime of /{dir} was set to {mtime:?}"));
        }
    }
    let found = snapshot(root);
    let new_dirs = found
        .iter()
        .filter_map(|(path, stamp)| Some((path.strip_suffix('/')?, stamp)))
        .filter(|(dir, _)| !PREEXISTING.iter().any(|(old, _)| old == dir));
    for (dir, stamp) in new_dirs {
        if (stamp.mode, stamp.uid, stamp.gid) != (0o755, 0, 0) {
            problems.push(format!(
                "{how}: the new directory /{dir} has mode {:04o} and owner {}:{}, not 0755 and root",
                stamp.mode, stamp.uid, stamp.gid
            ));
        }
    }
    for (path, stamp) in found.iter().filter(|(path, _)| !path.ends_with('/')) {
        let Some((mode, bytes)) = expected.get(path) else {
            problems.push(format!("{how}: /{path} is not a file of {EXPORTED_HOST}"));
            continue;
        };
        if stamp.mode != *mode {
            problems.push(format!("{how}: /{path} has mode {:04o}, its role's is {mode:04o}", stamp.mode));
        }
        if (stamp.uid, stamp.gid) != (0, 0) {
            problems.push(format!("{how}: /{path} is owned by {}:{}, not by root", stamp.uid, stamp.gid));
        }
        if fs::read(root.join(path)).expect("read an installed file") != *bytes {
            problems.push(format!("{how}: /{path} is not what the decrypted tree holds"));
        }
    }
    for path in expected.keys().filter(|path| !found.contains_key(*path)) {
        problems.push(format!("{how}: /{path} was not installed"));
    }
}

/// The install a build user's tree gets: the tree owned by uid 1000, its
/// directories 0700 and dated [`tree_time`], exported as root into fake host
/// roots that already have `/`, `/etc` and `/etc/kubernetes`, once with
/// `--to ROOT` and once as the tar stream of `--to -` into `tar -x`. The
/// host's directories keep owner, mode and mtime; each file arrives with its
/// mode, owned by root, holding what the tree holds decrypted; the tree is
/// left as it was.
#[test]
fn export_installs_without_touching_existing_directories() {
    if !is_root() {
        eprintln!(
            "skipping export_installs_without_touching_existing_directories: it needs root (a tree owned by \
             uid 1000, files installed as root); CI runs the suite as root"
        );
        return;
    }
    let source = plan_with_key("classic", "ecdsa-p256");
    let tree = Tree::applied(&source);
    let doc = inspect(&tree.plan, &tree.out);

    // What the host must get: from the same tree turned plaintext, each
    // file with the mode inspect gives its role.
    let twin = tree.dir().join("plaintext-out");
    run_ok("cp", &["-a", p(&tree.out), p(&twin)]);
    let plain_plan = tree.dir().join("plaintext.toml");
    fs::write(&plain_plan, source).expect("write the plaintext plan");
    let output = certplan()
        .args(["apply", p(&plain_plan), "--out", p(&twin), "--identity", p(&tree.identity)])
        .output()
        .expect("run certplan");
    assert!(output.status.success(), "turning a copy of the tree plaintext:\n{}", describe(&output));
    let plain = contents(&twin.join("hosts").join(EXPORTED_HOST));
    let prefix = format!("hosts/{EXPORTED_HOST}/");
    let mut expected = BTreeMap::new();
    for (path, (_, mode)) in listed(&doc) {
        let Some(rel) = path.strip_prefix(&prefix) else { continue };
        let rel = rel.strip_suffix(".age").unwrap_or(rel);
        let bytes = plain.get(rel).unwrap_or_else(|| panic!("the plaintext tree has no {prefix}{rel}"));
        expected.insert(rel.to_string(), (mode, bytes.clone()));
    }
    assert_eq!(expected.len(), plain.len(), "inspect lists every file of {EXPORTED_HOST}");
    assert!(expected.values().any(|(mode, _)| *mode == 0o600) && expected.values().any(|(mode, _)| *mode == 0o644));

    // The tree as a build user holds it.
    let build = tree.dir().join("build-user-out");
    run_ok("cp", &["-a", p(&tree.out), p(&build)]);
    for dir in snapshot(&build).into_keys().filter(|path| path.ends_with('/')) {
        let dir = build.join(dir);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
        set_mtime(&dir, tree_time());
    }
    run_ok("chown", &["-R", "1000:1000", p(&build)]);
    let build_before = snapshot(&build);

    let started = SystemTime::now();
    let direct = fake_host_root(&tree.dir().join("host-direct"));
    let output = certplan()
        .args(["export", p(&tree.plan), "--out", p(&build), "--host", EXPORTED_HOST])
        .args(["--to", p(&direct), "--identity", p(&tree.identity)])
        .output()
        .expect("run certplan");
    assert!(output.status.success(), "`certplan export --to ROOT`:\n{}", describe(&output));

    // The documented install (bsdtar, which renames each file into place),
    // and GNU tar, which reads the same stream.
    let mut streamed = Vec::new();
    for (name, untar) in [("host-bsdtar", "bsdtar -x --safe-writes"), ("host-tar", "tar -x")] {
        let root = fake_host_root(&tree.dir().join(name));
        let line = format!(
            r#"set -o pipefail; umask 022 && "$0" export "$1" --out "$2" --host "$3" --to - --identity "$4" | {untar} -C "$5""#
        );
        let output = Command::new("bash")
            .args(["-c", &line, env!("CARGO_BIN_EXE_certplan"), p(&tree.plan), p(&build), EXPORTED_HOST])
            .args([p(&tree.identity), p(&root)])
            .env_remove("CERTPLAN_AGE_IDENTITY")
            .env_remove("CERTPLAN_AGE_IDENTITY_FILE")
            .output()
            .expect("run bash");
        assert!(output.status.success(), "`certplan export --to - | {untar}`:\n{}", describe(&output));
        streamed.push((format!("export --to - | {untar}"), root));
    }

    let mut problems = Vec::new();
    check_host_root("export --to ROOT", &direct, &expected, started, &mut problems);
    for (what, root) in &streamed {
        check_host_root(what, root, &expected, started, &mut problems);
    }
    let changed = touched(&build_before, &snapshot(&build));
    if !changed.is_empty() {
        problems.push(format!("export changed the output tree: {changed:?}"));
    }
    assert!(problems.is_empty(), "{} problem(s):\n- {}", problems.len(), problems.join("\n- "));
}

/// Every host of the kubeadm and classic plans, exported from an encrypted
/// tree, passes `certplan verify --host NAME --root ROOT`; and
/// `openssl verify` accepts a control-plane root's API server certificate
/// against its CA file.
#[test]
fn exported_roots_pass_verify_host() {
    let kubeadm = fs::read_to_string(plan_path("kubeadm")).expect("read plans/kubeadm.toml");
    let cases = [
        (kubeadm, "cp1", "etc/kubernetes/pki/ca.crt", "etc/kubernetes/pki/apiserver.crt"),
        (
            plan_with_key("classic", "ecdsa-p256"),
            "master1",
            "etc/kubernetes/ssl/ca.pem",
            "etc/kubernetes/ssl/kubernetes.pem",
        ),
    ];
    let mut problems = Vec::new();
    for (source, control_plane, ca, apiserver) in cases {
        let tree = Tree::applied(&source);
        let doc = inspect(&tree.plan, &tree.out);
        for host in hosts_of(&doc) {
            let root = tree.export(&host, &tree.identity, &host);
            let output = certplan()
                .args(["verify", p(&tree.plan), "--host", host.as_str(), "--root", p(&root)])
                .output()
                .expect("run certplan");
            if !(output.status.success() && text(&output.stdout).contains("verify ok")) {
                problems.push(format!("`certplan verify --host {host}` of its exported root:\n{}", describe(&output)));
            }
        }
        let root = tree.dir().join("roots").join(control_plane);
        let output = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(root.join(ca))
            .arg(root.join(apiserver))
            .output()
            .expect("run openssl");
        if !(output.status.success() && text(&output.stdout).contains(": OK")) {
            problems.push(format!("`openssl verify` of /{apiserver} on {control_plane}:\n{}", describe(&output)));
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n- {}", problems.len(), problems.join("\n- "));
}

/// `inspect --show-secrets` of an encrypted tree needs the identity and says
/// which file it could not open without; with it, the bootstrap token shown
/// is the one the host's `token.csv` holds once exported.
#[test]
fn show_secrets_opens_an_encrypted_tree_with_the_identity() {
    let tree = Tree::applied(&plan_with_key("classic", "ecdsa-p256"));
    let refused = tree.run("inspect", &["--show-secrets"], &[]);
    assert!(!refused.status.success(), "`inspect --show-secrets` without an identity succeeded");
    let said = text(&refused.stderr);
    assert!(said.contains("token.csv.age") && said.contains("--identity"), "the refusal names no file: {said}");
    let shown = tree.ok("inspect", &["--show-secrets", "--format", "json", "--identity", p(&tree.identity)]);
    let doc: Value = serde_json::from_str(&shown).expect("inspect prints JSON");
    let token = doc["secrets"]
        .as_array()
        .and_then(|secrets| secrets.iter().find(|s| s["id"] == "token-file/bootstrap"))
        .and_then(|s| s["token"].as_str())
        .unwrap_or_else(|| panic!("no bootstrap token shown: {doc}"))
        .to_string();
    let root = tree.export("master1", &tree.identity, "show-secrets");
    let csv = fs::read_to_string(root.join("etc/kubernetes/token.csv")).expect("read the exported token.csv");
    assert!(csv.starts_with(&format!("{token},")), "the token shown is not the one installed");
}
