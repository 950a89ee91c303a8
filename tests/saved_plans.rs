//! Saved plans: "what was reviewed is what is applied".
//!
//! Every case applies the minimal plan at [`T0`], adds a SAN to the API
//! server and saves `plan --save`. Applied as saved, exactly the saved
//! change is made (the API server certificate reissued, nothing else
//! touched) and the tree then matches the plan. Refused — after the plan is
//! edited again, after a file of the tree is deleted, when a renewal comes
//! due, when `--out` names another directory — it exits 1, says what moved,
//! and leaves every file and directory of the tree as it was (bytes and
//! mtimes).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use serde_json::Value;

use crate::common::{certplan, plan_path, write_plan};

/// The clock of the first apply, of `plan --save`, and of most applies.
const T0: &str = "2026-01-01T00:00:00Z";
/// 300 days after [`T0`]: inside the renewal window of the minimal plan's
/// 8760h leaves (`renew_before` = validity / 3).
const T0_PLUS_300D: &str = "2026-10-28T00:00:00Z";
/// The SAN the reviewed edit adds.
const SAN: &str = "api.lab.example.com";
/// The state file, relative to the output directory.
const STATE: &str = ".certplan/state.json";

/// A tree applied from the minimal plan, then that plan edited (one more SAN
/// for the API server) and its plan saved with `plan --save`.
struct Saved {
    /// Holds the plan, the tree and the saved plan.
    _dir: tempfile::TempDir,
    plan: PathBuf,
    out: PathBuf,
    file: PathBuf,
}

impl Saved {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = std::fs::read_to_string(plan_path("minimal")).expect("read the minimal plan");
        let plan = write_plan(dir.path(), &source);
        let out = dir.path().join("out");
        let file = dir.path().join("reviewed.json");
        succeeded("apply", &run(certplan().arg("apply").arg(&plan).arg("--out").arg(&out).args(["--now", T0])));
        std::fs::write(&plan, format!("{source}\n[sets.apiserver]\nextra_sans = [\"{SAN}\"]\n")).expect("edit");
        let saved =
            run(certplan().arg("plan").arg(&plan).arg("--out").arg(&out).args(["--now", T0]).arg("--save").arg(&file));
        succeeded("plan --save", &saved);
        let stdout = text(&saved.stdout);
        assert!(
            stdout.lines().any(|line| line.starts_with("reissue cert/apiserver: ") && line.contains(SAN)),
            "plan --save shows the change it saves:\n{stdout}"
        );
        let told = format!("Saved to `{0}`: `certplan apply {0}` makes exactly these changes.", file.display());
        assert!(
            stdout.lines().any(|line| line == told),
            "plan --save says where it saved, and how to apply:\n{stdout}"
        );
        Self { _dir: dir, plan, out, file }
    }

    /// `certplan apply SAVED EXTRA...`.
    fn apply(&self, extra: &[&str]) -> Output {
        run(certplan().arg("apply").arg(&self.file).args(extra))
    }

    /// The saved plan, parsed.
    fn document(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.file).expect("read the saved plan")).expect("JSON")
    }
}

fn run(command: &mut Command) -> Output {
    command.env("NO_COLOR", "1").output().expect("run certplan")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({:?}):\n{}{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Asserts that a command was refused (exit 1) with `expected` in its error.
fn refused(output: &Output, expected: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "refused with status 1:\n{}{stderr}", text(&output.stdout));
    assert!(stderr.contains(expected), "the error says `{expected}`:\n{stderr}");
}

/// What an entry of the tree looks like: a file's bytes (`None` for a
/// directory) and its mtime.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    bytes: Option<Vec<u8>>,
    mtime: SystemTime,
}

/// Every file and directory under `root` (the root, the state file and the
/// lock included), by path relative to `root`.
fn snapshot(root: &Path) -> BTreeMap<String, Stamp> {
    fn walk(root: &Path, path: &Path, into: &mut BTreeMap<String, Stamp>) {
        let meta = std::fs::symlink_metadata(path).expect("stat");
        let relative = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
        let bytes = (!meta.is_dir()).then(|| std::fs::read(path).expect("read file"));
        into.insert(relative, Stamp { bytes, mtime: meta.modified().expect("mtime") });
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).expect("read dir") {
                walk(root, &entry.expect("dir entry").path(), into);
            }
        }
    }
    let mut entries = BTreeMap::new();
    walk(root, root, &mut entries);
    entries
}

/// The files of the tree's artifacts (not `.certplan/`) whose bytes or
/// mtime differ between two snapshots, or that are in one only.
fn files_touched(before: &BTreeMap<String, Stamp>, after: &BTreeMap<String, Stamp>) -> BTreeSet<String> {
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    paths
        .into_iter()
        .filter(|path| !path.starts_with(".certplan/"))
        .filter(|path| [before.get(*path), after.get(*path)].iter().flatten().any(|stamp| stamp.bytes.is_some()))
        .filter(|path| before.get(*path) != after.get(*path))
        .cloned()
        .collect()
}

#[test]
fn a_saved_plan_is_applied_as_it_was_reviewed() {
    let saved = Saved::new();
    let doc = saved.document();
    assert_eq!(doc["kind"], "certplan-saved-plan");
    assert_eq!(doc["out"], saved.out.to_str().expect("UTF-8 path"), "the output directory as given");
    let changes = doc["changes"].as_array().expect("changes");
    let decided: Vec<(&str, &str)> =
        changes.iter().map(|c| (c["id"].as_str().unwrap_or(""), c["action"].as_str().unwrap_or(""))).collect();
    assert_eq!(decided, [("cert/apiserver", "reissue")], "the saved plan holds the one change reviewed");
    let writes: BTreeSet<String> = changes[0]["writes"]
        .as_array()
        .expect("writes")
        .iter()
        .map(|path| path.as_str().expect("a path").to_string())
        .collect();
    assert!(!writes.is_empty(), "a reissue writes the certificate's copies");

    // `--out` may repeat the saved directory, spelt another way.
    let before = snapshot(&saved.out);
    let same_out = saved.out.join(".");
    let applied = saved.apply(&["--now", T0, "--out", same_out.to_str().expect("UTF-8 path")]);
    succeeded("apply SAVED", &applied);
    let stdout = text(&applied.stdout);
    assert!(stdout.starts_with("reissue cert/apiserver: "), "apply makes the saved change:\n{stdout}");
    assert!(stdout.contains("1 artifact(s) changed"), "and only that one:\n{stdout}");
    let after = snapshot(&saved.out);
    assert_eq!(files_touched(&before, &after), writes, "exactly the saved change's files are written");
    assert_ne!(before.get(STATE), after.get(STATE), "the state records the change");

    let pending = ["--now", T0, "--detailed-exitcode", "--out"];
    let plan = run(certplan().arg("plan").arg(&saved.plan).args(pending).arg(&saved.out));
    assert_eq!(plan.status.code(), Some(0), "the tree matches the plan now:\n{}", text(&plan.stdout));

    // Its own apply moved the tree: the saved plan cannot be applied twice.
    let before = snapshot(&saved.out);
    refused(
        &saved.apply(&["--now", T0]),
        "error: the output tree changed since the plan was saved: its state is another",
    );
    assert_eq!(snapshot(&saved.out), before, "a refused apply writes nothing");
}

#[test]
fn a_saved_plan_is_refused_when_the_plan_is_edited_again() {
    let saved = Saved::new();
    let source = std::fs::read_to_string(&saved.plan).expect("read plan");
    std::fs::write(&saved.plan, source.replace(SAN, "api2.lab.example.com")).expect("edit again");
    let before = snapshot(&saved.out);
    let expected = format!("error: the plan `{}` changed since it was saved (sha256 ", saved.plan.display());
    refused(&saved.apply(&["--now", T0]), &expected);
    assert_eq!(snapshot(&saved.out), before, "a refused apply writes nothing");
}

#[test]
fn a_saved_plan_is_refused_when_a_file_of_the_tree_is_deleted() {
    let saved = Saved::new();
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(saved.out.join(STATE)).expect("read state")).expect("JSON");
    let artifacts = state["artifacts"].as_object().expect("artifacts");
    let (id, kubeconfig) = artifacts.iter().find(|(id, _)| id.starts_with("kubeconfig/")).expect("a kubeconfig");
    let victim = kubeconfig["files"].as_object().and_then(|files| files.keys().next());
    let victim = victim.unwrap_or_else(|| panic!("{id} records no file"));
    std::fs::remove_file(saved.out.join(victim)).expect("delete");
    let before = snapshot(&saved.out);
    let expected =
        format!("error: the output tree changed since the plan was saved: `{victim}` was intact and is deleted now");
    refused(&saved.apply(&["--now", T0]), &expected);
    assert_eq!(snapshot(&saved.out), before, "a refused apply writes nothing");
}

#[test]
fn a_saved_plan_is_refused_when_a_renewal_comes_due() {
    let saved = Saved::new();
    let before = snapshot(&saved.out);
    let late = saved.apply(&["--now", T0_PLUS_300D]);
    refused(&late, "error: the changes decided now are not the saved ones: now also `renew ");
    assert_eq!(snapshot(&saved.out), before, "a refused apply writes nothing");
}

#[test]
fn a_saved_plan_applies_to_its_own_directory_only() {
    let saved = Saved::new();
    let elsewhere = saved.out.with_file_name("elsewhere");
    let before = snapshot(&saved.out);
    let output = saved.apply(&["--now", T0, "--out", elsewhere.to_str().expect("UTF-8 path")]);
    refused(&output, &format!("error: the saved plan was made with `--out {}`, not with", saved.out.display()));
    refused(&saved.apply(&["--now", T0, "--rotate", "ca/lab"]), "the saved plan was made without `--rotate`");
    assert_eq!(snapshot(&saved.out), before, "a refused apply writes nothing");
    assert!(!elsewhere.exists(), "nor anything elsewhere");

    let plain = run(certplan().arg("apply").arg(&saved.plan).args(["--now", T0]));
    refused(&plain, "`certplan apply PLAN` needs `--out DIR`");
}
