//! Helpers shared by every integration test: run the binary, apply a plan into
//! a fresh directory, read the inspect document. A whole applied tree read
//! back (`applied`), its certificates parsed (`cert`), the accumulator of
//! failures the tree checks report with (`problems`) and a git repository
//! isolated from the machine's configuration (`repo`) have a file each.

#![allow(dead_code)]

pub mod applied;
pub mod cert;
pub mod external;
pub mod problems;
pub mod repo;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root, where `plans/` lives.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The target directory the suite was built in: the binary under test is in
/// its `debug/`. Tests that run cargo point it here, so that it reuses what
/// is already built.
pub fn suite_target_dir() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_certplan"));
    binary.parent().and_then(Path::parent).expect("the binary is in TARGET/debug/").to_path_buf()
}

/// The path of an example plan, such as `plan_path("classic")`.
pub fn plan_path(name: &str) -> PathBuf {
    repo_root().join("plans").join(format!("{name}.toml"))
}

/// A `certplan` command from the binary cargo built for this test run.
pub fn certplan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_certplan"))
}

/// Writes `source` to `dir/plan.toml` and returns its path.
pub fn write_plan(dir: &Path, source: &str) -> PathBuf {
    let path = dir.join("plan.toml");
    std::fs::write(&path, source).expect("write plan");
    path
}

/// An example plan's text with every key algorithm replaced by `key`
/// (`rsa-2048`, `ecdsa-p256`, ...). With `ed25519`, the service-account key
/// pair is `ecdsa-p256`: kube-apiserver signs tokens only with RSA or ECDSA
/// (`check` refuses an Ed25519 one).
pub fn plan_with_key(name: &str, key: &str) -> String {
    let source = std::fs::read_to_string(plan_path(name)).expect("read plan");
    let mut out = String::new();
    let mut section = "";
    for line in source.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            section = trimmed;
        }
        if trimmed.starts_with("key = ") {
            let chosen = if key == "ed25519" && section == "[sets.service-account]" { "ecdsa-p256" } else { key };
            out.push_str(&format!("key = \"{chosen}\""));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if key == "ed25519" && !source.contains("[sets.service-account]") {
        out.push_str("\n[sets.service-account]\nkey = \"ecdsa-p256\"\n");
    }
    out
}

/// Runs `certplan apply PLAN --out OUT` and panics with its output on failure.
pub fn apply(plan: &Path, out: &Path) {
    let output = certplan().arg("apply").arg(plan).arg("--out").arg(out).output().expect("run certplan");
    assert!(
        output.status.success(),
        "certplan apply failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `certplan inspect PLAN --out OUT --format json` and parses it.
pub fn inspect(plan: &Path, out: &Path) -> serde_json::Value {
    let output = certplan()
        .args(["inspect"])
        .arg(plan)
        .arg("--out")
        .arg(out)
        .args(["--format", "json"])
        .output()
        .expect("run certplan");
    assert!(output.status.success(), "certplan inspect failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("inspect emits JSON")
}

/// The artifact with this id in an inspect document.
pub fn artifact<'a>(doc: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    doc["artifacts"]
        .as_array()
        .expect("artifacts array")
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no artifact {id} in inspect output"))
}

/// The path (absolute) of the first file of `role` of an artifact, optionally
/// the one under `hosts/<host>/`.
pub fn file_of(out: &Path, artifact: &serde_json::Value, role: &str, host: Option<&str>) -> PathBuf {
    let prefix = host.map(|h| format!("hosts/{h}/"));
    let file = artifact["files"]
        .as_array()
        .expect("files array")
        .iter()
        .find(|f| {
            f["role"] == role && prefix.as_deref().is_none_or(|p| f["path"].as_str().unwrap_or("").starts_with(p))
        })
        .unwrap_or_else(|| panic!("no {role} file for {} (host {host:?})", artifact["id"]));
    out.join(file["path"].as_str().expect("path"))
}

/// The lines of the first fenced block of a book page (`page` under
/// `book/src`) whose info string is `info` and whose text contains `needle`,
/// less the fence's own indentation (a block inside a list item is
/// indented): what a reader copies from the page.
pub fn documented(page: &str, info: &str, needle: &str) -> Vec<String> {
    let path = repo_root().join("book/src").join(page);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut open: Option<(usize, Vec<String>)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some((indent, mut lines)) = open.take() {
            if trimmed.starts_with("```") {
                if lines.iter().any(|l| l.contains(needle)) {
                    return lines;
                }
            } else {
                lines.push(line.get(indent..).unwrap_or(trimmed).to_string());
                open = Some((indent, lines));
            }
        } else if trimmed.strip_prefix("```") == Some(info) {
            open = Some((line.len() - trimmed.len(), Vec::new()));
        }
    }
    panic!("book/src/{page} has no ```{info} block that contains `{needle}`");
}

/// A command's exit status, stdout and stderr, for a failure message.
pub fn describe(output: &Output) -> String {
    format!(
        "exit status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Plan source without the `[[TABLE]]` entries (`hosts`, `users`) whose
/// `name` is one of `names`: an example plan cut down for a test. Each
/// table runs from its header to the next header.
pub fn without_entries(source: &str, table: &str, names: &[&str]) -> String {
    let header = format!("[[{table}]]\n");
    let unwanted = |block: &str| {
        block.starts_with(&header) && names.iter().any(|name| block.contains(&format!("\nname = \"{name}\"\n")))
    };
    let mut blocks: Vec<String> = Vec::new();
    for line in source.split_inclusive('\n') {
        if line.starts_with('[') || blocks.is_empty() {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line);
        }
    }
    blocks.into_iter().filter(|block| !unwanted(block)).collect()
}
