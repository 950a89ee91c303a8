//! Installing certplan with cargo, as a user without a package does, and as
//! the GitHub Action and the pre-commit hook do: `cargo install --locked
//! --path .` from the checkout into a temporary root, and the installed
//! binary checks `plans/classic.toml`. The crate that `cargo package` makes
//! holds the source, every file it embeds and the example plans, and none of
//! the tests, the book or the benchmarks.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::common::{describe, repo_root, suite_target_dir};

/// The cargo that built the suite.
fn cargo() -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(repo_root());
    command
}

/// A debug build (`--debug`), so cargo reuses what the suite compiled: its
/// build directory holds the intermediate files (`CARGO_BUILD_BUILD_DIR`),
/// while the final binary goes to a target directory of its own, so the
/// `certplan` the other tests run is never replaced under them.
#[test]
#[ignore = "runs cargo install (a minute or more when cargo has to rebuild): run tests/run.sh"]
fn cargo_install_from_the_checkout_gives_a_working_binary() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let root = dir.path().join("root");
    let output = cargo()
        .args(["install", "--locked", "--path", ".", "--debug", "--root"])
        .arg(&root)
        .env("CARGO_BUILD_BUILD_DIR", suite_target_dir())
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .output()
        .expect("run cargo install");
    assert!(output.status.success(), "cargo install failed:\n{}", describe(&output));

    let installed = root.join("bin/certplan");
    let check = Command::new(&installed)
        .current_dir(repo_root())
        .args(["check", "plans/classic.toml"])
        .output()
        .expect("run the installed certplan");
    assert_eq!(check.status.code(), Some(0), "{}", describe(&check));
    assert_eq!(String::from_utf8_lossy(&check.stderr), "plans/classic.toml: ok (0 warning(s))\n");

    let version = Command::new(&installed).arg("--version").output().expect("run the installed certplan");
    let version = String::from_utf8_lossy(&version.stdout);
    assert_eq!(version.trim(), format!("certplan {}", env!("CARGO_PKG_VERSION")));
}

/// The files of the crate `cargo package` would publish.
fn packaged_files() -> Vec<String> {
    // --allow-dirty: the list is the same with uncommitted edits, which a
    // developer running the suite usually has.
    let output = cargo().args(["package", "--list", "--locked", "--allow-dirty"]).output().expect("run cargo package");
    assert!(output.status.success(), "cargo package --list failed:\n{}", describe(&output));
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect()
}

/// `path` without `.` and `..`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Every file the source embeds with `include_str!`, relative to the
/// repository root.
fn embedded_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                for (at, _) in text.match_indices("include_str!(\"") {
                    let rest = &text[at + "include_str!(\"".len()..];
                    let relative = &rest[..rest.find('"').expect("a closing quote")];
                    let file = normalize(&path.parent().expect("a parent").join(relative));
                    let file = file.strip_prefix(repo_root()).expect("under the repository");
                    out.push(file.to_string_lossy().into_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root().join("src"), &mut out);
    out.sort();
    out.dedup();
    out
}

#[test]
fn the_crate_holds_what_it_builds_from_and_no_tests() {
    let files = packaged_files();
    for needed in ["Cargo.toml", "Cargo.lock", "README.md", "CHANGELOG.md", "src/main.rs", "plans/classic.toml"] {
        assert!(files.iter().any(|f| f == needed), "the crate lacks {needed}: {files:?}");
    }
    let embedded = embedded_files();
    assert!(embedded.iter().any(|f| f.starts_with("templates/")), "the templates are embedded: {embedded:?}");
    for file in &embedded {
        assert!(files.contains(file), "the crate lacks {file}, which the source embeds: {files:?}");
    }
    let left_out = ["tests/", "book/", "bench/", ".cargo/", ".ci/", "action.yml", ".pre-commit-hooks.yaml"];
    for file in &files {
        assert!(!left_out.iter().any(|p| file.starts_with(p)), "the crate carries {file}");
    }
}
