//! Refactors change no output: for every example plan, what certplan prints
//! and writes that does not depend on randomness (inspect and graph
//! documents, the change cascade of `plan --rotate`, a diff between plans,
//! every flag file, every fingerprint in the state) is compared with a
//! golden file under `tests/golden/`. `CERTPLAN_BLESS=1` writes them anew;
//! a change of output is then reviewed in the diff of those files.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{certplan, plan_path, repo_root};

const NOW: &str = "2026-01-01T00:00:00Z";

fn stdout(args: &[&str], plan: &Path, more: &[&str]) -> String {
    let output = certplan().args(args).arg(plan).args(more).output().expect("run certplan");
    assert!(
        output.status.code().is_some_and(|c| c <= 2),
        "certplan {args:?} {} failed: {}",
        plan.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("plans"))
        .expect("read plans/")
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(String::from))
        .filter(|name| repo_root().join("plans").join(format!("{name}.toml")).is_file())
        .collect();
    names.sort();
    names
}

/// Everything deterministic certplan says about one plan.
fn render(name: &str, dir: &Path) -> String {
    let plan = plan_path(name);
    let out = dir.join(name);
    let out_s = out.to_str().expect("utf-8 path");
    let mut text = String::new();
    let mut section = |title: &str, body: &str| {
        text.push_str(&format!("==== {title}\n{}\n", body.trim_end()));
    };
    section("inspect --format json", &stdout(&["inspect", "--now", NOW], &plan, &["--format", "json"]));
    section("graph --format json", &stdout(&["graph"], &plan, &["--format", "json"]));
    section("graph --format dot", &stdout(&["graph"], &plan, &["--format", "dot"]));
    section("plan (empty tree)", &stdout(&["plan", "--now", NOW], &plan, &["--out", out_s]));
    stdout(&["apply", "--quiet", "--now", NOW], &plan, &["--out", out_s]);
    let inspect: serde_json::Value =
        serde_json::from_str(&stdout(&["inspect"], &plan, &["--format", "json"])).expect("inspect JSON");
    let cas: Vec<String> = inspect["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter(|a| a["kind"] == "ca")
        .filter_map(|a| a["id"].as_str().map(String::from))
        .collect();
    for ca in &cas {
        section(
            &format!("plan --rotate {ca}"),
            &stdout(&["plan", "--now", NOW], &plan, &["--out", out_s, "--rotate", ca]),
        );
    }
    let mut flags = BTreeMap::new();
    collect_env_files(&out, &out, &mut flags);
    for (path, body) in flags {
        section(&format!("file {path}"), &body);
    }
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(".certplan/state.json")).expect("read state"))
            .expect("state JSON");
    let fingerprints: BTreeMap<&str, &str> = state["artifacts"]
        .as_object()
        .expect("artifacts")
        .iter()
        .map(|(id, a)| (id.as_str(), a["fingerprint"].as_str().unwrap_or("")))
        .collect();
    let lines: Vec<String> = fingerprints.iter().map(|(id, f)| format!("{id} {f}")).collect();
    section("fingerprints", &lines.join("\n"));
    text.replace(out_s, "OUT")
}

fn collect_env_files(root: &Path, dir: &Path, found: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_env_files(root, &path, found);
        } else if path.extension().is_some_and(|e| e == "env") {
            let rel = path.strip_prefix(root).expect("under root").display().to_string();
            found.insert(rel, std::fs::read_to_string(&path).expect("read flag file"));
        }
    }
}

#[test]
fn outputs_match_the_golden_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bless = std::env::var_os("CERTPLAN_BLESS").is_some();
    let mut rendered: Vec<(String, String)> =
        examples().into_iter().map(|name| (name.clone(), render(&name, dir.path()))).collect();
    let diff =
        stdout(&["diff", "--format", "json"], &plan_path("classic"), &[plan_path("kubeadm").to_str().expect("utf-8")]);
    let root = repo_root().to_str().expect("utf-8 path").to_owned();
    rendered.push(("diff-classic-kubeadm".into(), diff.replace(&root, "REPO")));
    let mut problems = Vec::new();
    for (name, text) in rendered {
        let golden = repo_root().join("tests/golden").join(format!("{name}.txt"));
        if bless {
            std::fs::create_dir_all(golden.parent().expect("a parent")).expect("mkdir golden");
            std::fs::write(&golden, &text).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if want != text {
            let line = want
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(want.lines().count().min(text.lines().count()));
            problems.push(format!(
                "{name}: differs from {} from line {}:\n  golden: {:?}\n  now:    {:?}",
                golden.display(),
                line + 1,
                want.lines().nth(line).unwrap_or("<end>"),
                text.lines().nth(line).unwrap_or("<end>")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "output changed (CERTPLAN_BLESS=1 rewrites the golden files):\n{}",
        problems.join("\n")
    );
}
