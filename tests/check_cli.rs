//! `certplan check`: the example plans are clean; a CIDR where an address
//! belongs and a misspelt key are errors that name the value and where it is,
//! exit 1, and stop `certplan apply` before it writes anything; several plans
//! in one run are each judged.

use std::path::Path;
use std::process::Output;

use crate::common::{certplan, describe, plan_path, repo_root, write_plan};

fn run_check_in_repo(relative_plan: &str) -> Output {
    certplan().current_dir(repo_root()).args(["check", relative_plan]).output().expect("run certplan check")
}

fn assert_check_passes(name: &str) {
    let plan = format!("plans/{name}.toml");
    let output = run_check_in_repo(&plan);
    assert_eq!(
        output.status.code(),
        Some(0),
        "`certplan check {plan}` should accept the documented example plan, but it did not:\n{}",
        describe(&output)
    );
}

#[test]
fn check_accepts_classic_plan() {
    assert_check_passes("classic");
}

#[test]
fn check_accepts_kubeadm_plan() {
    assert_check_passes("kubeadm");
}

#[test]
fn check_accepts_minimal_plan() {
    assert_check_passes("minimal");
}

/// The classic plan with its `[sets.apiserver] extra_sans` line replaced by
/// `replacement`; returns the text and the 1-based line of the replacement.
fn classic_with_extra_sans_line(replacement: &str) -> (String, usize) {
    let source = std::fs::read_to_string(plan_path("classic")).expect("read classic plan");
    let mut out = String::new();
    let mut line_no = None;
    for (i, line) in source.lines().enumerate() {
        if line.trim_start().starts_with("extra_sans = ") {
            out.push_str(replacement);
            line_no = Some(i + 1);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    let line_no = line_no.expect("plans/classic.toml has an extra_sans line under [sets.apiserver]");
    (out, line_no)
}

/// Whether `message` points at `line` and a column in `cols` (1-based), as
/// `file:LINE:COL` (codespan and most compilers) or `line LINE, column COL`
/// (the toml crate).
fn points_at(message: &str, line: usize, cols: std::ops::RangeInclusive<usize>) -> bool {
    cols.into_iter().any(|col| {
        let colon = format!(":{line}:{col}");
        let words = format!("line {line}, column {col}");
        message.match_indices(&colon).any(|(i, m)| {
            // not the tail of a longer number, such as :148:30 for :48:3
            let after = message[i + m.len()..].chars().next();
            !after.is_some_and(|c| c.is_ascii_digit())
        }) || message.contains(&words)
    })
}

/// Whether `out` was not written to: it does not exist or is an empty dir.
fn untouched(out: &Path) -> Result<(), String> {
    if !out.exists() {
        return Ok(());
    }
    let entries: Vec<String> = walk(out);
    if entries.is_empty() { Ok(()) } else { Err(format!("it wrote {} entries: {:?}", entries.len(), entries)) }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            found.push(path.display().to_string());
            if path.is_dir() {
                found.extend(walk(&path));
            }
        }
    }
    found
}

const CIDR: &str = "192.168.214.1/24";

#[test]
fn check_rejects_cidr_in_apiserver_sans_with_its_position() {
    let replacement = format!("extra_sans = [\"kube-api.example.com\", \"{CIDR}\"]");
    let (source, line) = classic_with_extra_sans_line(&replacement);
    // 1-based columns of the quoted value, from its opening to its closing quote
    let open = replacement.find(&format!("\"{CIDR}\"")).expect("value in line") + 1;
    let close = open + CIDR.len() + 1;

    let dir = tempfile::TempDir::new().expect("temp dir");
    let plan = write_plan(dir.path(), &source);
    let output = certplan().arg("check").arg(&plan).output().expect("run certplan check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert_eq!(
        output.status.code(),
        Some(1),
        "`certplan check` must fail with exit 1 on a CIDR in [sets.apiserver] extra_sans (it is neither an IP nor a DNS SAN):\n{}",
        describe(&output)
    );
    assert!(
        stderr.contains(CIDR),
        "the error on stderr should name the offending value {CIDR:?}{}:\n{}",
        if stdout.contains(CIDR) { " (it is on stdout instead)" } else { "" },
        describe(&output)
    );
    assert!(
        points_at(&stderr, line, open..=close),
        "the error should point at plan.toml line {line}, a column in {open}..={close} (where {CIDR:?} is), as `plan.toml:{line}:{open}`:\n{}",
        describe(&output)
    );
}

#[test]
fn apply_refuses_cidr_and_writes_nothing() {
    let replacement = format!("extra_sans = [\"kube-api.example.com\", \"{CIDR}\"]");
    let (source, _) = classic_with_extra_sans_line(&replacement);
    let dir = tempfile::TempDir::new().expect("temp dir");
    let plan = write_plan(dir.path(), &source);

    // into a directory that does not exist yet
    let out = dir.path().join("out");
    let output = certplan().arg("apply").arg(&plan).arg("--out").arg(&out).output().expect("run certplan apply");
    assert_eq!(
        output.status.code(),
        Some(1),
        "`certplan apply` must fail with exit 1 on a plan with a CIDR SAN:\n{}",
        describe(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(CIDR),
        "`certplan apply` should say which value is wrong ({CIDR}):\n{}",
        describe(&output)
    );
    if let Err(e) = untouched(&out) {
        panic!(
            "`certplan apply` on a plan that does not check clean must write nothing into {}, but {e}",
            out.display()
        );
    }

    // into an existing, empty directory
    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).expect("mkdir");
    let output = certplan().arg("apply").arg(&plan).arg("--out").arg(&existing).output().expect("run certplan apply");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    if let Err(e) = untouched(&existing) {
        panic!("`certplan apply` on a plan that does not check clean must leave {} empty, but {e}", existing.display());
    }
}

/// `extra_san` (without the s) is not a key certplan knows.
#[test]
fn check_rejects_unknown_key_by_name() {
    let (source, line) = classic_with_extra_sans_line("extra_san = [\"kube-api.example.com\"]");
    let dir = tempfile::TempDir::new().expect("temp dir");
    let plan = write_plan(dir.path(), &source);
    let output = certplan().arg("check").arg(&plan).output().expect("run certplan check");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(
        output.status.code(),
        Some(1),
        "`certplan check` must fail with exit 1 on the unknown key `extra_san` (line {line}) instead of ignoring it:\n{}",
        describe(&output)
    );
    // `extra_san` itself, not only as part of `extra_sans`
    let names_it = stderr.match_indices("extra_san").any(|(i, m)| !stderr[i + m.len()..].starts_with('s'));
    assert!(names_it, "the error on stderr should name the unknown key `extra_san`:\n{}", describe(&output));

    let out = dir.path().join("out");
    let output = certplan().arg("apply").arg(&plan).arg("--out").arg(&out).output().expect("run certplan apply");
    assert_eq!(
        output.status.code(),
        Some(1),
        "`certplan apply` must fail with exit 1 on an unknown key:\n{}",
        describe(&output)
    );
    if let Err(e) = untouched(&out) {
        panic!("`certplan apply` on a plan with an unknown key must write nothing, but {e}");
    }
}

/// Several plans in one run, as a pre-commit hook or a CI job passes them:
/// each gets its verdict, in order; a broken plan fails the run without
/// hiding the plans after it; `--format json` prints one array whose
/// diagnostics name their files; a file that cannot be read stops the run
/// before any plan is checked.
#[test]
fn check_takes_several_plans_and_judges_each() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let (source, _) = classic_with_extra_sans_line(&format!("extra_sans = [\"{CIDR}\"]"));
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, &source).expect("write plan");
    let also_broken = dir.path().join("also-broken.toml");
    std::fs::write(&also_broken, &source).expect("write plan");
    let verdicts = |output: &Output| -> Vec<String> {
        let stderr = String::from_utf8_lossy(&output.stderr);
        stderr.lines().filter(|l| l.contains(": ok (") || l.contains(" error(s), ")).map(str::to_string).collect()
    };

    let clean = certplan()
        .current_dir(repo_root())
        .args(["check", "plans/classic.toml", "plans/minimal.toml"])
        .output()
        .expect("run certplan check");
    assert_eq!(clean.status.code(), Some(0), "{}", describe(&clean));
    assert_eq!(verdicts(&clean), ["plans/classic.toml: ok (0 warning(s))", "plans/minimal.toml: ok (0 warning(s))"]);

    let mixed = certplan()
        .current_dir(repo_root())
        .args(["check", "plans/classic.toml"])
        .arg(&broken)
        .arg("plans/minimal.toml")
        .output()
        .expect("run certplan check");
    assert_eq!(mixed.status.code(), Some(1), "one broken plan fails the run:\n{}", describe(&mixed));
    let broken_verdict = format!("{}: 1 error(s), 0 warning(s)", broken.display());
    assert_eq!(
        verdicts(&mixed),
        ["plans/classic.toml: ok (0 warning(s))", broken_verdict.as_str(), "plans/minimal.toml: ok (0 warning(s))"],
        "{}",
        describe(&mixed)
    );
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("error[san-cidr]"), "{}", describe(&mixed));

    let json = certplan()
        .arg("check")
        .arg(&broken)
        .arg(&also_broken)
        .args(["--format", "json"])
        .output()
        .expect("run certplan check");
    assert_eq!(json.status.code(), Some(1), "{}", describe(&json));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document on stdout");
    let files: Vec<&str> =
        doc.as_array().expect("an array of diagnostics").iter().filter_map(|d| d["file"].as_str()).collect();
    let expected = [broken.display().to_string(), also_broken.display().to_string()];
    assert_eq!(files, expected, "one diagnostic per plan, in order:\n{}", describe(&json));

    let missing = certplan()
        .current_dir(repo_root())
        .args(["check", "plans/classic.toml", "no-such-plan.toml"])
        .output()
        .expect("run certplan check");
    assert_eq!(missing.status.code(), Some(1), "{}", describe(&missing));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("cannot read the plan `no-such-plan.toml`"), "{}", describe(&missing));
    assert!(verdicts(&missing).is_empty(), "nothing is checked when a plan cannot be read:\n{}", describe(&missing));
}
