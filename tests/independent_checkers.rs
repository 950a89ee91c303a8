//! Every certificate and key of every example plan, read by tools certplan
//! did not write: `tests/checkers/check_tree.py` lints each certificate with
//! pkilint's RFC 5280 linter, reads each certificate and key with Python's
//! `cryptography` and with openssl, and checks that each key matches its
//! certificate.
//!
//! The example plans are whatever `plans/*.toml` holds, so a new example is
//! checked without a change here. Each is applied as written and with every
//! key replaced by each of [`KEYS`] (a replacement that leaves the plan as it
//! is written is skipped), one apply per tree, all trees in one temporary
//! directory.
//!
//! These tests need python3 with pkilint and cryptography, and openssl:
//! `tests/run.sh` installs them and runs everything, ignored tests included.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common;
use crate::common::problems::Problems;
use crate::etcd_cluster::harness;

/// The key algorithms every example plan is also applied with.
const KEYS: &[&str] = &["ecdsa-p256", "rsa-2048", "ed25519"];

#[test]
#[ignore = "needs pkilint, cryptography and openssl: run tests/run.sh"]
fn every_example_plan_passes_the_independent_checkers() {
    harness::require_tools(&["python3", "openssl"]);
    let tmp = harness::tempdir("certplan-checkers-");
    let plans = example_plans();
    assert!(!plans.is_empty(), "no example plans in {}", common::repo_root().join("plans").display());

    let mut problems = Problems::new("the independent checkers");
    // One thread per plan: applying and checking are separate processes, and
    // the variants of one plan stay in order.
    let base = tmp.path();
    std::thread::scope(|scope| {
        let running: Vec<_> = plans.iter().map(|name| scope.spawn(move || check_plan(name, base))).collect();
        for thread in running {
            match thread.join() {
                Ok(found) => found.into_iter().for_each(|p| problems.add(p)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    problems.finish();
}

/// The names of the example plans (`classic` for `plans/classic.toml`), sorted.
fn example_plans() -> Vec<String> {
    let dir = common::repo_root().join("plans");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|entry| entry.expect("read plans/").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .filter_map(|path| path.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Applies every variant of plan `name` under `base` and runs the checker on
/// each tree; what the checker reported, one entry per failing tree.
fn check_plan(name: &str, base: &Path) -> Vec<String> {
    let as_written = common::plan_path(name);
    let source = std::fs::read_to_string(&as_written).unwrap_or_else(|e| panic!("read {}: {e}", as_written.display()));
    let named = keys_named(&source);
    assert!(
        !named.is_empty(),
        "plans/{name}.toml has no `key = ` line, so its {KEYS:?} variants would all be the plan as written"
    );

    let mut variants = vec![(name.to_string(), None)];
    for key in KEYS.iter().filter(|key| named != BTreeSet::from([**key])) {
        variants.push((format!("{name}-{key}"), Some(*key)));
    }
    let mut failed = Vec::new();
    for (label, key) in variants {
        let dir = base.join(&label);
        std::fs::create_dir_all(&dir).expect("create a directory for the tree");
        let plan = match key {
            None => as_written.clone(),
            Some(key) => common::write_plan(&dir, &common::plan_with_key(name, key)),
        };
        let out = dir.join("out");
        common::apply(&plan, &out);
        let inspect = dir.join("inspect.json");
        let doc = common::inspect(&plan, &out);
        std::fs::write(&inspect, serde_json::to_vec(&doc).expect("inspect document as JSON"))
            .expect("write inspect.json");
        let checked = run_checker(&out, &inspect);
        if !checked.ok() {
            failed.push(format!("{label}: {}", checked.describe()));
        }
    }
    failed
}

/// The key algorithms on a plan's `key = "..."` lines, the lines
/// `common::plan_with_key` rewrites.
fn keys_named(source: &str) -> BTreeSet<&str> {
    source
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("key = "))
        .filter_map(|value| value.split('"').nth(1))
        .collect()
}

/// `python3 tests/checkers/check_tree.py OUT INSPECT`.
fn run_checker(out: &Path, inspect: &Path) -> harness::Run {
    let script: PathBuf = common::repo_root().join("tests").join("checkers").join("check_tree.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(out).arg(inspect);
    harness::run(&mut cmd, Duration::from_mins(5))
}
