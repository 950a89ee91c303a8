//! The diagnostics corpus. Every plan under `tests/fixtures/bad/` is a small,
//! realistic mistake; its first lines say which rule it breaks and where the
//! primary label must point:
//!
//! ```toml
//! # expect: san-cidr 52:39
//! # expect: missing-role -
//! ```
//!
//! (`RULE LINE:COLUMN`, 1-based, or `RULE -` for a diagnostic about the plan
//! as a whole). The tests here check that `certplan check --format json`
//! reports exactly those rules at exactly those places, that every rule of
//! the catalogue has a fixture, that warnings pass `check` but not
//! `check --deny warnings`, that no bad plan touches an output tree, how the
//! text diagnostics read (insta snapshots), that one cause gives one
//! diagnostic and a mistake about two places shows both, and that no
//! mutation of a plan makes the compiler panic (proptest).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::SystemTime;

use certplan::diag::{self, Diagnostic, RuleId, Severity};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config as ProptestConfig;

use crate::common::{certplan, plan_path, repo_root, write_plan};

/// The directory of the bad plans.
fn fixtures_dir() -> PathBuf {
    repo_root().join("tests").join("fixtures").join("bad")
}

/// Where a diagnostic points: a 1-based line and column, or nowhere.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Finding {
    rule: RuleId,
    at: Option<(u64, u64)>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "{} {line}:{column}", self.rule),
            None => write!(f, "{} -", self.rule),
        }
    }
}

/// One bad plan and what it must report.
struct Fixture {
    name: String,
    path: PathBuf,
    expected: BTreeSet<Finding>,
}

impl Fixture {
    /// Whether every expected finding is a warning (the plan compiles).
    fn warnings_only(&self) -> bool {
        self.expected.iter().all(|f| f.rule.severity() == Severity::Warning)
    }
}

/// Parses `# expect: RULE LINE:COLUMN` / `# expect: RULE -` header lines; a
/// rule the catalogue does not have fails every test of the corpus.
fn parse_header(name: &str, source: &str) -> BTreeSet<Finding> {
    let mut expected = BTreeSet::new();
    for line in source.lines() {
        let Some(rest) = line.strip_prefix("# expect:") else { break };
        let mut words = rest.split_whitespace();
        let (Some(rule), Some(at), None) = (words.next(), words.next(), words.next()) else {
            panic!("{name}: malformed header line `{line}`; want `# expect: RULE LINE:COL` or `# expect: RULE -`");
        };
        let rule = rule.parse::<RuleId>().unwrap_or_else(|_| {
            panic!("{name}: expects `{rule}`, which is not in the rule catalogue (src/diag/rule_id.rs)")
        });
        let at = if at == "-" {
            None
        } else {
            let (l, c) = at.split_once(':').unwrap_or_else(|| panic!("{name}: bad location `{at}`"));
            let number = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("{name}: bad location `{at}`"));
            Some((number(l), number(c)))
        };
        expected.insert(Finding { rule, at });
    }
    assert!(!expected.is_empty(), "{name}: the first line must be `# expect: RULE LINE:COL`");
    expected
}

/// Every bad plan, sorted by name.
fn fixtures() -> &'static [Fixture] {
    static FIXTURES: OnceLock<Vec<Fixture>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let mut fixtures: Vec<Fixture> = std::fs::read_dir(fixtures_dir())
            .expect("read tests/fixtures/bad")
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .map(|path| {
                let name = path.file_stem().expect("file name").to_string_lossy().into_owned();
                let source = std::fs::read_to_string(&path).expect("read fixture");
                let expected = parse_header(&name, &source);
                Fixture { name, path, expected }
            })
            .collect();
        fixtures.sort_by(|a, b| a.name.cmp(&b.name));
        fixtures
    })
}

/// A diagnostic as `check --format json` prints it.
struct Reported {
    finding: Finding,
    severity: String,
    message: String,
}

/// Runs `certplan check PLAN --format json`.
fn check_json(path: &Path) -> (Output, Result<Vec<Reported>, String>) {
    let output = certplan().arg("check").arg(path).args(["--format", "json"]).output().expect("run certplan check");
    let parsed = serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .map_err(|e| format!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
        .and_then(|json| {
            let items = json.as_array().ok_or("stdout is not a JSON array")?;
            items
                .iter()
                .map(|d| {
                    let id = d["rule"].as_str().unwrap_or("?");
                    let rule = id.parse::<RuleId>().map_err(|_| format!("reports `{id}`, which is no rule"));
                    let at = d["line"].as_u64().zip(d["column"].as_u64());
                    rule.map(|rule| Reported {
                        finding: Finding { rule, at },
                        severity: d["severity"].as_str().unwrap_or("?").to_string(),
                        message: d["message"].as_str().unwrap_or_default().to_string(),
                    })
                })
                .collect()
        });
    (output, parsed)
}

/// Runs `f` over `items` on a few threads, keeping the order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(4, std::num::NonZero::get).clamp(1, 8);
    let chunk = items.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            items.chunks(chunk).map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("worker thread")).collect()
    })
}

#[test]
fn corpus_has_sixty_plans_and_covers_every_rule() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 60, "only {} bad plans under tests/fixtures/bad", fixtures.len());
    // Every header names a rule of the catalogue: `fixtures` parses them.
    let mut by_rule: BTreeMap<RuleId, Vec<&str>> = BTreeMap::new();
    for fixture in fixtures {
        for finding in &fixture.expected {
            by_rule.entry(finding.rule).or_default().push(&fixture.name);
        }
    }
    // Faults of certplan itself (`internal-*`) are what no plan can provoke;
    // rules that read the output tree are tested with one (tests/rotation.rs).
    let uncovered: Vec<&str> = RuleId::ALL
        .iter()
        .filter(|rule| !rule.as_str().starts_with("internal-") && !rule.needs_tree() && !by_rule.contains_key(*rule))
        .map(|rule| rule.as_str())
        .collect();
    assert!(uncovered.is_empty(), "rules without a fixture under tests/fixtures/bad: {uncovered:?}");
}

#[test]
fn every_bad_plan_reports_its_rule_where_the_mistake_is() {
    let results = par_map(fixtures(), |fixture| {
        let (output, reported) = check_json(&fixture.path);
        let mut problems = Vec::new();
        let errors_expected = !fixture.warnings_only();
        let want_code = i32::from(errors_expected);
        if output.status.code() != Some(want_code) {
            problems.push(format!("exit code {:?}, want {want_code}", output.status.code()));
        }
        match reported {
            Err(message) => problems.push(message),
            Ok(reported) => {
                for r in &reported {
                    let want = match r.finding.rule.severity() {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                    };
                    if r.severity != want {
                        let (rule, severity) = (r.finding.rule, &r.severity);
                        problems.push(format!("`{rule}` reported as {severity}, but the catalogue has it as {want}"));
                    }
                }
                let actual: BTreeSet<Finding> = reported.iter().map(|r| r.finding.clone()).collect();
                if actual != fixture.expected {
                    let show =
                        |set: &BTreeSet<Finding>| set.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                    let messages: Vec<String> =
                        reported.iter().map(|r| format!("      {}: {}", r.finding, r.message)).collect();
                    problems.push(format!(
                        "expected [{}], got [{}]\n{}",
                        show(&fixture.expected),
                        show(&actual),
                        messages.join("\n")
                    ));
                }
            }
        }
        (fixture.name.clone(), problems)
    });
    let failures: Vec<String> = results
        .into_iter()
        .filter(|(_, problems)| !problems.is_empty())
        .map(|(name, problems)| format!("  {name}.toml: {}", problems.join("; ")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} bad plans are not reported as their header expects:\n{}",
        failures.len(),
        fixtures().len(),
        failures.join("\n")
    );
}

#[test]
fn warnings_pass_check_but_not_deny_warnings_unless_allowed() {
    let warning_fixtures: Vec<&Fixture> = fixtures().iter().filter(|f| f.warnings_only()).collect();
    let warning_rules: BTreeSet<RuleId> =
        RuleId::ALL.iter().copied().filter(|rule| rule.severity() == Severity::Warning && !rule.needs_tree()).collect();
    let covered: BTreeSet<RuleId> = warning_fixtures.iter().flat_map(|f| f.expected.iter().map(|e| e.rule)).collect();
    assert_eq!(covered, warning_rules, "every warning rule needs a warnings-only fixture");

    let dir = tempfile::tempdir().expect("temp dir");
    for fixture in warning_fixtures {
        let plain = certplan().arg("check").arg(&fixture.path).output().expect("run certplan");
        assert_eq!(plain.status.code(), Some(0), "{}: `check` must pass with warnings only", fixture.name);
        let stderr = String::from_utf8_lossy(&plain.stderr);
        for finding in &fixture.expected {
            assert!(
                stderr.contains(&format!("warning[{}]", finding.rule)),
                "{}: no warning shown:\n{stderr}",
                fixture.name
            );
        }

        let denied =
            certplan().arg("check").arg(&fixture.path).args(["--deny", "warnings"]).output().expect("run certplan");
        assert_eq!(denied.status.code(), Some(1), "{}: `check --deny warnings` must fail", fixture.name);

        // The same plan with each of its warnings allowed for a reason passes
        // even `--deny warnings`, and says nothing.
        let mut source = std::fs::read_to_string(&fixture.path).expect("read fixture");
        for rule in fixture.expected.iter().map(|e| &e.rule).collect::<BTreeSet<_>>() {
            source.push_str(&format!("\n[[allow]]\nrule = \"{rule}\"\nreason = \"accepted in this test\"\n"));
        }
        let allowed_path = dir.path().join(format!("{}.toml", fixture.name));
        std::fs::write(&allowed_path, source).expect("write plan");
        let allowed = certplan()
            .arg("check")
            .arg(&allowed_path)
            .args(["--deny", "warnings", "--format", "json"])
            .output()
            .expect("run certplan");
        assert_eq!(
            allowed.status.code(),
            Some(0),
            "{}: with its warnings allowed, `check --deny warnings` must pass: {}",
            fixture.name,
            String::from_utf8_lossy(&allowed.stdout)
        );
    }
}

/// What a path in a tree is: kind, permissions, modification time and
/// content (file bytes or symlink target).
#[derive(Debug, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    mode: u32,
    mtime: SystemTime,
    content: Vec<u8>,
}

/// Every path under `root` (itself included) with what it is.
fn snapshot_tree(root: &Path) -> BTreeMap<PathBuf, Node> {
    use std::os::unix::fs::PermissionsExt;
    let mut tree = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        let (kind, content) = if meta.file_type().is_symlink() {
            ("symlink", std::fs::read_link(&path).expect("readlink").into_os_string().into_encoded_bytes())
        } else if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                stack.push(entry.expect("entry").path());
            }
            ("dir", Vec::new())
        } else {
            ("file", std::fs::read(&path).expect("read file"))
        };
        let node = Node { kind, mode: meta.permissions().mode(), mtime: meta.modified().expect("mtime"), content };
        tree.insert(path.strip_prefix(root).expect("under root").to_path_buf(), node);
    }
    tree
}

#[test]
fn bad_plans_leave_the_output_tree_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let now = ["--now", "2026-01-01T00:00:00Z"];
    let applied = certplan()
        .arg("apply")
        .arg(plan_path("minimal"))
        .arg("--out")
        .arg(&out)
        .args(now)
        .output()
        .expect("run certplan");
    assert!(
        applied.status.success(),
        "apply of plans/minimal.toml failed: {}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let before = snapshot_tree(&out);
    assert!(before.len() > 5, "apply wrote almost nothing: {:?}", before.keys().collect::<Vec<_>>());
    let absent = dir.path().join("never").join("created");

    // Each fixture is judged on its own: after a run that wrote, the tree is
    // snapshotted again and the directory that should not exist removed.
    let mut before = before;
    let mut failures = Vec::new();
    for fixture in fixtures().iter().filter(|f| !f.warnings_only()) {
        for command in ["apply", "plan"] {
            for target in [&out, &absent] {
                let output = certplan()
                    .arg(command)
                    .arg(&fixture.path)
                    .arg("--out")
                    .arg(target)
                    .args(now)
                    .output()
                    .expect("run certplan");
                if output.status.code() != Some(1) {
                    failures.push(format!(
                        "{}: `certplan {command} --out {}` exited {:?}, want 1",
                        fixture.name,
                        target.display(),
                        output.status.code()
                    ));
                }
            }
            let after = snapshot_tree(&out);
            if after != before {
                let changed: Vec<String> = before
                    .keys()
                    .chain(after.keys())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .filter(|path| before.get(*path) != after.get(*path))
                    .map(|path| path.display().to_string())
                    .collect();
                failures.push(format!(
                    "{}: `certplan {command}` changed {} path(s) of the output tree, such as {:?}",
                    fixture.name,
                    changed.len(),
                    &changed[..changed.len().min(3)]
                ));
                before = after;
            }
            if dir.path().join("never").exists() {
                failures.push(format!("{}: `certplan {command}` created the output directory", fixture.name));
                std::fs::remove_dir_all(dir.path().join("never")).expect("remove created directory");
            }
        }
    }
    assert!(failures.is_empty(), "bad plans touched the output tree:\n{}", failures.join("\n"));
}

/// `certplan check FIXTURE` as a person sees it: stderr, without colour, run
/// from the fixtures directory so the file name is stable.
fn check_text(name: &str) -> String {
    let output = certplan()
        .current_dir(fixtures_dir())
        .arg("check")
        .arg(format!("{name}.toml"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run certplan check");
    assert!(output.stdout.is_empty(), "{name}: text diagnostics go to stderr only");
    String::from_utf8(output.stderr).expect("UTF-8 stderr")
}

macro_rules! text_snapshots {
    ($($test:ident => $fixture:literal,)*) => {$(
        #[test]
        fn $test() {
            insta::assert_snapshot!(stringify!($test), check_text($fixture));
        }
    )*};
}

text_snapshots! {
    text_toml_syntax => "toml-syntax-unclosed-string",
    text_unknown_key => "unknown-key-extra-san",
    text_unknown_value => "unknown-value-role-master",
    text_missing_key => "missing-key-apiserver-url",
    text_wrong_type => "wrong-type-version-float",
    text_invalid_duration => "invalid-duration-one-year-words",
    text_invalid_url => "invalid-url-http",
    text_unknown_version => "unknown-version-old",
    text_duplicate_address => "duplicate-address",
    text_san_cidr => "san-cidr-apiserver",
    text_apiserver_missing_san => "apiserver-missing-san-domain",
    text_url_not_covered => "url-not-covered-user-server",
    text_rsa_too_small => "rsa-too-small-ca",
    text_missing_role => "missing-role-etcd",
    text_allow_unknown_rule => "allow-unknown-rule-typo",
    text_service_cidr_overlap => "warning-service-cidr-overlap",
}

// ---- one cause, one diagnostic; two places, two labels (issue 14) ----

/// `certplan check PLAN --format json` as JSON values, whatever the exit code.
fn check_json_values(path: &Path) -> Vec<serde_json::Value> {
    let output = certplan().arg("check").arg(path).args(["--format", "json"]).output().expect("run certplan check");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)));
    json.as_array().expect("stdout is a JSON array").clone()
}

/// The diagnostics of one rule.
fn of_rule<'d>(diagnostics: &'d [serde_json::Value], rule: &str) -> Vec<&'d serde_json::Value> {
    diagnostics.iter().filter(|d| d["rule"] == rule).collect()
}

/// Regression test for issue 14, defect 4: `key = "rsa-1024"` in `[defaults]`
/// of the classic plan printed one `rsa-too-small` error per artifact.
#[test]
fn a_weak_default_key_is_one_error_that_counts_the_artifacts() {
    use certplan::model::Spec;
    use certplan::plan::KeyAlgorithm;

    let classic = std::fs::read_to_string(plan_path("classic")).expect("read classic plan");
    let weak = classic.replacen("key = \"rsa-2048\"", "key = \"rsa-1024\"", 1);
    assert_ne!(weak, classic, "plans/classic.toml has no `key = \"rsa-2048\"` in `[defaults]`");
    // Every key of the classic plan comes from `[defaults]`.
    let compiled = certplan::pipeline::compile(&classic).expect("the classic plan compiles");
    let keyed = compiled
        .model
        .artifacts
        .iter()
        .filter(|a| match &a.spec {
            Spec::Ca(c) | Spec::Cert(c) => c.key == KeyAlgorithm::Rsa2048,
            Spec::Keypair(k) => k.key == KeyAlgorithm::Rsa2048,
            _ => false,
        })
        .count();
    assert!(keyed > 2, "the classic plan has only {keyed} keys");

    let dir = tempfile::tempdir().expect("temp dir");
    let diagnostics = check_json_values(&write_plan(dir.path(), &weak));
    let weak_keys = of_rule(&diagnostics, "rsa-too-small");
    assert_eq!(weak_keys.len(), 1, "one weak default, one error: {diagnostics:#?}");
    let line = weak.lines().position(|l| l.starts_with("key = \"rsa-1024\"")).expect("the edited line") + 1;
    assert_eq!(weak_keys[0]["line"], line, "the error points at the default: {:#?}", weak_keys[0]);
    let message = weak_keys[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("{keyed} artifacts would have a 1024-bit RSA key: `")),
        "the message names how many artifacts the default gives a weak key ({keyed}): {message}"
    );
}

/// The `related` places of a diagnostic as (line, column, label).
fn related(diagnostic: &serde_json::Value) -> Vec<(u64, u64, String)> {
    diagnostic["related"]
        .as_array()
        .unwrap_or_else(|| panic!("no `related` array: {diagnostic:#?}"))
        .iter()
        .map(|r| {
            let number = |key: &str| r[key].as_u64().unwrap_or_else(|| panic!("`related` without `{key}`: {r}"));
            (number("line"), number("column"), r["label"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// Regression test for issue 14, defect 4: a duplicate host name said where
/// the first one is as a byte offset in a hint.
#[test]
fn a_duplicate_host_shows_both_declarations() {
    let diagnostics = check_json_values(&fixtures_dir().join("duplicate-host.toml"));
    let duplicates = of_rule(&diagnostics, "duplicate-host");
    assert_eq!(duplicates.len(), 1, "{diagnostics:#?}");
    let duplicate = duplicates[0];
    assert_eq!((duplicate["line"].as_u64(), duplicate["column"].as_u64()), (Some(51), Some(8)), "{duplicate:#?}");
    assert_eq!(related(duplicate), [(46, 8, "first declared here".to_string())], "{duplicate:#?}");
    assert!(!duplicate["hint"].as_str().unwrap_or_default().contains("byte"), "{duplicate:#?}");

    let text = check_text("duplicate-host");
    let shown = [
        "46 │ name = \"worker1\"",
        "   │        --------- first declared here",
        "51 │ name = \"worker1\"",
        "   │        ^^^^^^^^^ declared again here",
    ];
    for line in shown {
        assert!(text.contains(line), "the text diagnostic lacks `{line}`:\n{text}");
    }
}

/// A user whose `ca` differs from its set's shows where the set's CA is chosen.
#[test]
fn a_split_set_shows_where_the_set_ca_is_chosen() {
    let diagnostics = check_json_values(&fixtures_dir().join("set-split-ca.toml"));
    let split = of_rule(&diagnostics, "set-split-ca");
    assert_eq!(split.len(), 1, "{diagnostics:#?}");
    let chosen = (68, 6, "the set's CA `ca/kubernetes` is chosen here".to_string());
    assert_eq!(related(split[0]), [chosen], "{:#?}", split[0]);
}

// ---- property test: no plan text makes the compiler panic ----

/// The texts mutations start from: the example plans and the bad plans.
struct Seeds {
    plans: Vec<String>,
    bad: Vec<String>,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let plans: Vec<String> = std::fs::read_dir(repo_root().join("plans"))
            .expect("read plans/")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| std::fs::read_to_string(p).expect("read plan"))
            .collect();
        assert!(plans.len() >= 3, "the example plans are missing");
        let bad = fixtures().iter().map(|f| std::fs::read_to_string(&f.path).expect("read fixture")).collect();
        Seeds { plans, bad }
    })
}

/// A seed: mostly an example plan (so mutations get past parsing), sometimes
/// a bad plan.
fn seed() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        3 => any::<Index>().prop_map(|i| seeds().plans[i.index(seeds().plans.len())].as_str()),
        1 => any::<Index>().prop_map(|i| seeds().bad[i.index(seeds().bad.len())].as_str()),
    ]
}

/// Strings that sit near the edges of what lowering and checking accept.
const INTERESTING: &[&str] = &[
    "",
    " ",
    "10.0.0.0/8",
    "10.96.0.1/32",
    "10.96.0.0/12",
    "10.10.0.5",
    "192.168.214.88",
    "::1",
    "fd00::/108",
    "fd00::1/128",
    "fd00::/127",
    "0.0.0.0/0",
    "255.255.255.255/31",
    "https://[::1]:6443",
    "https://[fd00::1]",
    "https://10.10.0.5:0",
    "https://10.10.0.5:6443/",
    "https://x",
    "https://X.Example.COM.",
    "http://x",
    "https://user@x:6443/",
    "https://x?q",
    "1.12",
    "1.99",
    "1.35",
    "v1.31.2",
    "1.",
    "4294967296.1",
    "rsa-1024",
    "ed25519",
    "0s",
    "1ns",
    "100y",
    "101y",
    "99999999999999999999h",
    "system:masters",
    "system:node:solo",
    "system:node:{host}",
    "system:nodes",
    "system:kube-proxy",
    "system:bootstrappers:x",
    "*.com",
    "*.a.b",
    "a.*.b",
    "*",
    "{host}",
    "/",
    "//",
    "/etc/../..",
    "/etc/kubernetes/",
    "bootstrap",
    "self-signed",
    "static",
    "cfssl",
    "kubeadm",
    "etcd",
    "kubernetes",
    "lab",
    "front-proxy",
    "admin",
    "solo",
    "\\u0000",
    "é",
    "ü.example.com",
    "a-",
    "-a",
    "a..b",
    "0123456789012345678901234567890123456789012345678901234567890123",
];

/// A quoted TOML string.
fn string_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(INTERESTING).prop_map(|s| format!("\"{s}\"")),
        1 => "[a-zA-Z0-9:./*{}_ -]{0,24}".prop_map(|s| format!("\"{s}\"")),
    ]
}

/// A TOML array of strings.
fn array_value() -> impl Strategy<Value = String> {
    prop::collection::vec(string_value(), 0..4).prop_map(|items| format!("[{}]", items.join(", ")))
}

/// Any TOML value.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => string_value(),
        1 => array_value(),
        1 => prop::sample::select(vec![
            "{}",
            "{ serving_cert = \"self-signed\" }",
            "{ client_cert = \"bootstrap\" }",
            "true",
            "false",
            "0",
            "-1",
            "1e308",
            "nan",
            "inf",
            "1979-05-27T07:32:00Z",
        ])
        .prop_map(str::to_string),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|n| format!("{n:?}")),
    ]
}

/// Whole tables appended to a plan, to reach rules the example plans do not.
const SNIPPETS: &[&str] = &[
    "[identities.kubelet]\ncn = \"system:node:{host}\"\no = [\"system:nodes\"]",
    "[identities.kubelet]\no = [\"system:nodes\", \"x\"]",
    "[identities.kube-proxy]\ncn = \"kube-proxy\"\no = [\"system:masters\"]",
    "[identities.kube-controller-manager]\ncn = \"\"",
    "[[allow]]\nrule = \"validity-over-a-year\"\nreason = \"test\"",
    "[[allow]]\nrule = \"nope\"\nreason = \"\"",
    "[[users]]\nname = \"system:node:solo\"\ngroups = [\"system:nodes\"]",
    "[[users]]\nname = \"ops\"\nca = \"nope\"\nserver = \"https://ops.example.com\"\nvalidity = \"100y\"",
    "[[hosts]]\nname = \"extra\"\naddress = \"fd00::5\"\nroles = [\"worker\"]\nkubelet = { client_cert = \"bootstrap\", serving_cert = \"self-signed\" }",
    "[[hosts]]\nname = \"extra\"\naddress = \"10.96.0.1\"\nroles = [\"etcd\", \"control-plane\"]\nextra_sans = [\"10.0.0.0/8\"]",
    "[kubelet]\nclient_cert = \"bootstrap\"\nserving_cert = \"bootstrap\"",
    "[bootstrap]\ntoken_secret = true\ntoken_ttl = \"1ns\"\nextra_groups = [\"system:bootstrappers:a\", \"b\"]",
    "[sets.apiserver]\nsans = [\"kubernetes\"]\nvalidity = \"100y\"",
    "[sets.etcd-peer]\nca = \"nope\"\nextra_sans = [\"*.a.b\", \"10.0.0.0/8\"]",
    "[sets.service-account]\nca = \"x\"\nkey = \"rsa-1024\"",
    "[sets.front-proxy]\nca = \"front-proxy\"\nvalidity = \"1ns\"",
    "[cas.second]\ncn = \"second\"\nvalidity = \"1h\"\nkey = \"rsa-1024\"",
    "[cas.\"\"]\ncn = \" \"",
    "[layout]\npreset = \"cfssl\"\npki_dir = \"/\"\nconfig_dir = \"/\"",
];

/// One edit of a plan's text.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index, Index),
    SwapLines(Index, Index),
    /// Replace the value of a `key = "string"` line with another string.
    ReplaceString(Index, String),
    /// Replace the value of a `key = [array]` line with another array.
    ReplaceArray(Index, String),
    /// Replace the value of any `key = value` line with any value.
    ReplaceValue(Index, String),
    AppendSnippet(&'static str),
    InsertText(Index, String),
    InsertBytes(Index, Vec<u8>),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::DuplicateLine(a, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        6 => (any::<Index>(), string_value()).prop_map(|(a, v)| Mutation::ReplaceString(a, v)),
        2 => (any::<Index>(), array_value()).prop_map(|(a, v)| Mutation::ReplaceArray(a, v)),
        2 => (any::<Index>(), toml_value()).prop_map(|(a, v)| Mutation::ReplaceValue(a, v)),
        3 => prop::sample::select(SNIPPETS).prop_map(Mutation::AppendSnippet),
        1 => (any::<Index>(), "[\\[\\]{}=\",.#'\\\\\n a-z0-9:/*-]{1,8}").prop_map(|(a, s)| Mutation::InsertText(a, s)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(a, b)| Mutation::InsertBytes(a, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// Replaces the value of the `index`-th line whose value starts with one of
/// `starts` (any line with `=` when `starts` is empty).
fn replace_value(lines: &mut [String], index: Index, starts: &[char], value: &str) {
    let candidates: Vec<usize> = (0..lines.len())
        .filter(|&k| {
            lines[k].split_once('=').is_some_and(|(key, rest)| {
                !key.trim_start().starts_with('#') && (starts.is_empty() || rest.trim_start().starts_with(starts))
            })
        })
        .collect();
    if candidates.is_empty() {
        return;
    }
    let k = candidates[index.index(candidates.len())];
    let key = lines[k].split_once('=').map_or("", |(key, _)| key).trim_end().to_string();
    lines[k] = format!("{key} = {value}");
}

fn apply_mutation(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let n = lines.len();
    let boundary = |index: &Index| {
        let mut at = index.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    match mutation {
        Mutation::DeleteLine(i) => {
            lines.remove(i.index(n));
        }
        Mutation::DuplicateLine(i, j) => {
            let line = lines[i.index(n)].clone();
            lines.insert(j.index(n + 1), line);
        }
        Mutation::SwapLines(i, j) => lines.swap(i.index(n), j.index(n)),
        Mutation::ReplaceString(i, value) => replace_value(&mut lines, *i, &['"', '\''], value),
        Mutation::ReplaceArray(i, value) => replace_value(&mut lines, *i, &['['], value),
        Mutation::ReplaceValue(i, value) => replace_value(&mut lines, *i, &[], value),
        Mutation::AppendSnippet(snippet) => {
            lines.push(String::new());
            lines.extend(snippet.lines().map(str::to_string));
        }
        Mutation::InsertText(i, s) => {
            let at = boundary(i);
            return format!("{}{s}{}", &text[..at], &text[at..]);
        }
        Mutation::InsertBytes(i, bytes) => {
            let at = boundary(i);
            return format!("{}{}{}", &text[..at], String::from_utf8_lossy(bytes), &text[at..]);
        }
        Mutation::Truncate(i) => return text[..boundary(i)].to_string(),
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Compiles `source` and renders its diagnostics, reporting a panic or a
/// diagnostic that does not fit the source as an error.
fn compile_without_panic(source: &str) -> Result<(), String> {
    let compiled = catch_unwind(AssertUnwindSafe(|| certplan::pipeline::compile(source)))
        .map_err(|panic| format!("compile panicked: {}", panic_message(panic.as_ref())))?;
    let diagnostics: Vec<Diagnostic> = match &compiled {
        Ok(compiled) => {
            if let Some(error) = compiled.warnings.0.iter().find(|d| d.is_error()) {
                return Err(format!("compiled, but with the error `{}`", error.rule));
            }
            compiled.warnings.0.clone()
        }
        Err(diagnostics) => {
            if !diagnostics.has_errors() {
                return Err("failed without an error diagnostic".into());
            }
            diagnostics.0.clone()
        }
    };
    for d in &diagnostics {
        for span in d.span.iter().chain(d.secondary.iter().map(|(span, _)| span)) {
            if span.start > span.end
                || span.end > source.len()
                || !source.is_char_boundary(span.start)
                || !source.is_char_boundary(span.end)
            {
                return Err(format!(
                    "`{}` has the span {span:?}, which does not fit a {}-byte source",
                    d.rule,
                    source.len()
                ));
            }
        }
    }
    catch_unwind(AssertUnwindSafe(|| {
        let mut text = codespan_reporting::term::termcolor::NoColor::new(Vec::new());
        diag::render_text(&mut text, "plan.toml", source, &diagnostics).expect("render text");
        diag::render_json("plan.toml", source, &diagnostics)
    }))
    .map_err(|panic| format!("rendering panicked: {}", panic_message(panic.as_ref())))?;
    Ok(())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_plans_compile_or_fail_without_panicking(
        seed in seed(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let mut text = seed.to_string();
        for m in &mutations {
            text = apply_mutation(&text, m);
        }
        if let Err(problem) = compile_without_panic(&text) {
            prop_assert!(false, "{problem}\n--- plan ---\n{text}");
        }
    }

    #[test]
    fn random_text_fails_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Err(problem) = compile_without_panic(&text) {
            prop_assert!(false, "{problem}\n--- plan ---\n{text}");
        }
    }
}
