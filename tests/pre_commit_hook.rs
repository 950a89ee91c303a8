//! The pre-commit hook (`.pre-commit-hooks.yaml`): a manifest pre-commit
//! accepts, whose hook checks the plans a commit touches and nothing else.
//! Without pre-commit, the hook's command line runs as pre-commit builds it
//! (the entry, its args, then file names). With pre-commit (`tests/run.sh`
//! installs it), pre-commit itself runs the hook in a repository, declared
//! as a `repo: local` hook with `language: system`, so it runs the `certplan`
//! under test instead of building one with cargo (the `language: rust` build
//! is `cargo install --path .`, which `tests/cargo_install.rs` runs).

use serde_yaml_ng::{Mapping, Value};

use crate::common::repo::Repo;
use crate::common::{certplan, describe, documented, plan_path, repo_root};

/// The keys of a hook in a manifest, as pre-commit validates them
/// (`MANIFEST_HOOK_DICT` in pre-commit's `clientlib.py`, pre-commit 4).
const HOOK_KEYS: &[&str] = &[
    "id",
    "name",
    "entry",
    "language",
    "alias",
    "files",
    "exclude",
    "types",
    "types_or",
    "exclude_types",
    "additional_dependencies",
    "args",
    "always_run",
    "fail_fast",
    "pass_filenames",
    "description",
    "language_version",
    "log_file",
    "minimum_pre_commit_version",
    "require_serial",
    "stages",
    "verbose",
];

/// The `certplan-check` hook of the manifest (a mapping).
fn hook() -> Value {
    let text =
        std::fs::read_to_string(repo_root().join(".pre-commit-hooks.yaml")).expect("read .pre-commit-hooks.yaml");
    let manifest: Value = serde_yaml_ng::from_str(&text).expect(".pre-commit-hooks.yaml is YAML");
    let hooks = manifest.as_sequence().expect("the manifest is a list of hooks");
    let hook = hooks.iter().find(|h| h["id"].as_str() == Some("certplan-check")).expect("a hook `certplan-check`");
    assert!(hook.is_mapping(), "a hook is a mapping");
    hook.clone()
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_sequence().expect("a list").iter().map(|v| v.as_str().expect("a string")).collect()
}

#[test]
fn hook_manifest_is_one_pre_commit_accepts() {
    let hook = hook();
    for key in hook.as_mapping().expect("a mapping").keys() {
        let key = key.as_str().expect("keys are strings");
        assert!(HOOK_KEYS.contains(&key), "pre-commit does not know the hook key `{key}`");
    }
    for required in ["id", "name", "entry", "language"] {
        assert!(hook.get(required).is_some(), "a hook needs `{required}`");
    }
    assert_eq!(hook["entry"], "certplan check");
    assert_eq!(hook["language"], "rust", "pre-commit builds certplan from this repository with cargo");
    assert_eq!(strings(&hook["types"]), ["toml"]);
    assert_eq!(hook["files"], "(^|/)plans/", "the TOML files under a `plans/` directory, not Cargo.toml");
    assert_eq!(hook["pass_filenames"].as_bool(), Some(true));
}

/// The command pre-commit runs for some files: the entry split into words
/// (pre-commit splits it as a shell would; it has no quotes), the args, then
/// the file names.
fn hook_command(files: &[&str]) -> Vec<String> {
    let hook = hook();
    let entry = hook["entry"].as_str().expect("entry is a string");
    assert!(!entry.contains(['"', '\'']), "an entry without quotes splits on spaces");
    let mut words: Vec<String> = entry.split_whitespace().map(str::to_string).collect();
    words.extend(strings(&hook["args"]).into_iter().map(str::to_string));
    words.extend(files.iter().copied().map(str::to_string));
    words
}

#[test]
fn hook_command_checks_every_plan_it_is_given() {
    let plans = [
        "plans/bootstrap.toml",
        "plans/classic.toml",
        "plans/dual-stack.toml",
        "plans/kubeadm.toml",
        "plans/minimal.toml",
    ];
    let words = hook_command(&plans);
    assert_eq!(words[0], "certplan");
    let output = certplan().current_dir(repo_root()).args(&words[1..]).output().expect("run certplan");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for plan in plans {
        assert!(stderr.contains(&format!("{plan}: ok (0 warning(s))")), "no verdict on {plan}:\n{stderr}");
    }
}

/// A plan whose API server certificate is valid for 400 days: a warning,
/// which the hook's `--deny warnings` makes a failure.
fn plan_with_a_warning() -> String {
    let plan = std::fs::read_to_string(plan_path("minimal")).expect("read plan");
    format!("{plan}\n[sets.apiserver]\nvalidity = \"400d\"\n")
}

#[test]
#[ignore = "needs pre-commit: run tests/run.sh"]
fn pre_commit_runs_the_hook_on_the_plans_a_commit_touches() {
    let repo = Repo::init();
    repo.write("plans/lab.toml", &std::fs::read_to_string(plan_path("minimal")).expect("read plan"));
    repo.write("clusters/prod/plans/prod.toml", &std::fs::read_to_string(plan_path("classic")).expect("read plan"));
    // TOML that is no plan, and a file under `plans/` that is no TOML: the
    // hook leaves them alone.
    repo.write("Cargo.toml", "[package]\nname = \"not-a-plan\"\n");
    repo.write("plans/README.md", "The cluster plans.\n");
    repo.write(".pre-commit-config.yaml", &local_config());
    repo.git(&["add", "-A"]);

    let all = pre_commit(&repo, &["run", "--all-files", "--verbose"]);
    assert_eq!(all.status.code(), Some(0), "{}", describe(&all));
    let stdout = printed(&all);
    for verdict in ["plans/lab.toml: ok", "clusters/prod/plans/prod.toml: ok"] {
        assert!(stdout.contains(verdict), "no `{verdict}`:\n{}", describe(&all));
    }
    assert!(!stdout.contains("Cargo.toml") && !stdout.contains("README"), "{}", describe(&all));

    // What is staged: a plan with a warning, denied.
    repo.commit_all("plans");
    repo.write("plans/lab.toml", &plan_with_a_warning());
    repo.git(&["add", "plans/lab.toml"]);
    let staged = pre_commit(&repo, &["run"]);
    assert_eq!(staged.status.code(), Some(1), "a denied warning fails the hook:\n{}", describe(&staged));
    let stdout = printed(&staged);
    for line in ["warning[validity-over-a-year]", "plans/lab.toml: 0 error(s), 1 warning(s)"] {
        assert!(stdout.contains(line), "no `{line}`:\n{}", describe(&staged));
    }
    assert!(!stdout.contains("prod.toml"), "only what is staged is checked:\n{}", describe(&staged));
}

/// `.pre-commit-config.yaml` with the manifest's hook as a local one that
/// runs `certplan` from `PATH`.
fn local_config() -> String {
    let mut hook = hook();
    hook["language"] = "system".into();
    let mut local = Mapping::new();
    local.insert("repo".into(), "local".into());
    local.insert("hooks".into(), Value::Sequence(vec![hook]));
    let mut config = Mapping::new();
    config.insert("repos".into(), Value::Sequence(vec![Value::Mapping(local)]));
    serde_yaml_ng::to_string(&config).expect("a config as YAML")
}

/// Runs pre-commit in the repository. `HOME` points into the repository's
/// directory, so pre-commit's cache is there; Python still finds a
/// pre-commit installed in the user's own site directory.
fn pre_commit(repo: &Repo, args: &[&str]) -> std::process::Output {
    let mut command = repo.command("python3");
    command.args(["-m", "pre_commit"]).args(args).env("PRE_COMMIT_HOME", repo.home().join("pre-commit"));
    let user_base = std::env::var_os("PYTHONUSERBASE")
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".local").into_os_string()));
    if let Some(base) = user_base {
        command.env("PYTHONUSERBASE", base);
    }
    let output = command.output().expect("run python3 -m pre_commit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("No module named pre_commit"), "pre-commit is not installed: run tests/run.sh");
    output
}

/// What pre-commit printed: its report and the hook's output.
fn printed(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The CI recipe's `.pre-commit-config.yaml` names hooks the manifest has.
#[test]
fn the_ci_recipe_config_names_the_hook() {
    let text = documented("recipes/ci.md", "yaml", "# .pre-commit-config.yaml").join("\n");
    let config: Value = serde_yaml_ng::from_str(&text).expect("the config is YAML");
    let hooks: Vec<&str> = config["repos"]
        .as_sequence()
        .expect("repos")
        .iter()
        .flat_map(|repo| repo["hooks"].as_sequence().expect("hooks"))
        .map(|h| h["id"].as_str().expect("a hook id"))
        .collect();
    assert_eq!(hooks, ["certplan-check"]);
}
