//! The GitHub Action (`action.yml`): a composite action whose steps run here
//! as a runner runs them. Each step's `run` script goes to `bash --noprofile
//! --norc -eo pipefail`, its `env` expanded from the inputs and the `github`
//! context, in a checkout of a pull request against a local `origin`; `gh`
//! is a stand-in that records what it is asked to post. The install step is
//! `cargo install`, which `tests/cargo_install.rs` runs; here `certplan` is
//! the one under test, first on `PATH`. The workflow of the CI recipe
//! (`book/src/recipes/ci.md`) passes only inputs the action declares.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Output;

use serde_yaml_ng::Value;

use crate::common::describe;
use crate::common::repo::{Repo, path_with_certplan};
use crate::common::{documented, plan_path, repo_root};

fn action() -> Value {
    let text = std::fs::read_to_string(repo_root().join("action.yml")).expect("read action.yml");
    serde_yaml_ng::from_str(&text).expect("action.yml is YAML")
}

fn steps(action: &Value) -> &[Value] {
    action["runs"]["steps"].as_sequence().expect("runs.steps is a list")
}

fn step<'a>(action: &'a Value, id: &str) -> &'a Value {
    steps(action).iter().find(|s| s["id"].as_str() == Some(id)).unwrap_or_else(|| panic!("no step `{id}`"))
}

fn inputs(action: &Value) -> Vec<&str> {
    action["inputs"].as_mapping().expect("inputs").keys().map(|k| k.as_str().expect("an input name")).collect()
}

/// The expression of a value that is one `${{ ... }}`.
fn expression(value: &str) -> Option<&str> {
    value.strip_prefix("${{")?.strip_suffix("}}").map(str::trim)
}

#[test]
fn action_is_composite_and_its_scripts_read_inputs_from_env() {
    let action = action();
    assert_eq!(action["runs"]["using"], "composite");
    let declared = inputs(&action);
    let mut used = Vec::new();
    for each in steps(&action) {
        let id = each["id"].as_str().expect("every step has an id");
        assert_eq!(each["shell"], "bash", "step `{id}`: a composite step names its shell");
        let run = each["run"].as_str().expect("a run script");
        assert!(!run.contains("${{"), "step `{id}`: an expression in the script text becomes shell code");
        for value in each["env"].as_mapping().into_iter().flat_map(|env| env.values()) {
            let value = value.as_str().expect("env values are strings");
            if let Some(input) = expression(value).and_then(|e| e.strip_prefix("inputs.")) {
                assert!(declared.contains(&input), "step `{id}` reads the undeclared input `{input}`");
                used.push(input);
            }
        }
    }
    for input in &declared {
        assert!(used.contains(input), "the input `{input}` is declared and never read");
    }
    let install = step(&action, "install");
    assert_eq!(install["working-directory"], "${{ github.action_path }}");
    assert!(install["run"].as_str().is_some_and(|r| r.contains("cargo install --locked --path .")));
    assert_eq!(step(&action, "diff")["if"], "github.event_name == 'pull_request'");
}

/// The edit the pull request makes to `plans/lab.toml`.
const SAN_EDIT: &str = "\n[sets.apiserver]\nextra_sans = [\"10.10.0.100\"]\n";

/// `gh`, standing in for GitHub's CLI: it records each call in `$GH_LOG`,
/// keeps the body it was given in `$GH_LOG.body`, and lists the ids in
/// `$GH_EXISTING` as the comments that carry the action's marker.
const FAKE_GH: &str = r#"#!/bin/sh
printf '%s\n' "$*" >> "$GH_LOG"
for arg in "$@"; do
  case $arg in
    body=@*) cp "${arg#body=@}" "$GH_LOG.body" ;;
  esac
done
case " $* " in
  *" --paginate "*) [ -z "$GH_EXISTING" ] || printf '%s\n' "$GH_EXISTING" ;;
esac
"#;

/// A pull request as a runner sees it: `origin` holds `main` and the pull
/// request's branch `pr`; the workspace is a shallow checkout of `pr`, as
/// actions/checkout leaves one; `runner` holds `RUNNER_TEMP`, the job
/// summary and `gh`.
struct PullRequest {
    /// Kept for the workspace's remote `origin`.
    _origin: Repo,
    workspace: Repo,
    runner: tempfile::TempDir,
}

impl PullRequest {
    /// `main` has three plans and a `Cargo.toml`; `edit` makes the pull
    /// request's commit.
    fn new(edit: impl FnOnce(&Repo)) -> Self {
        let origin = Repo::init();
        let minimal = std::fs::read_to_string(plan_path("minimal")).expect("read plan");
        origin.write("plans/lab.toml", &minimal);
        origin.write("plans/old.toml", &minimal);
        origin.write("plans/prod.toml", &std::fs::read_to_string(plan_path("classic")).expect("read plan"));
        origin.write("Cargo.toml", "[package]\nname = \"not-a-plan\"\n");
        origin.commit_all("the cluster");
        origin.git(&["checkout", "-q", "-b", "pr"]);
        edit(&origin);
        origin.commit_all("the pull request");
        origin.git(&["checkout", "-q", "main"]);

        let workspace = Repo::init();
        let url = format!("file://{}", origin.path().display());
        workspace.git(&["remote", "add", "origin", &url]);
        workspace.git(&["fetch", "-q", "--depth=1", "origin", "pr"]);
        workspace.git(&["checkout", "-q", "--detach", "FETCH_HEAD"]);

        let runner = tempfile::TempDir::new().expect("temp dir");
        std::fs::create_dir(runner.path().join("temp")).expect("mkdir");
        std::fs::create_dir(runner.path().join("bin")).expect("mkdir");
        let gh = runner.path().join("bin/gh");
        std::fs::write(&gh, FAKE_GH).expect("write gh");
        std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).expect("chmod gh");
        Self { _origin: origin, workspace, runner }
    }

    /// The pull request of most tests: an IP SAN for `lab`, a comment in
    /// `prod`, a new plan, a deleted one, and `Cargo.toml` edited.
    fn typical() -> Self {
        Self::new(|repo| {
            repo.append("plans/lab.toml", SAN_EDIT);
            repo.append("plans/prod.toml", "# reviewed\n");
            repo.write("plans/new.toml", &std::fs::read_to_string(plan_path("minimal")).expect("read plan"));
            repo.git(&["rm", "-q", "plans/old.toml"]);
            repo.append("Cargo.toml", "version = \"1.0.0\"\n");
        })
    }

    fn summary(&self) -> PathBuf {
        self.runner.path().join("summary.md")
    }

    fn gh_log(&self) -> PathBuf {
        self.runner.path().join("gh.log")
    }

    /// What the expressions of the steps' `env` are in this run: the
    /// inputs' defaults unless `inputs` gives them, and the `github` context
    /// of pull request 7 against `main`.
    fn context(&self, action: &Value, inputs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut context = BTreeMap::new();
        for (name, input) in action["inputs"].as_mapping().expect("inputs") {
            let name = name.as_str().expect("an input name");
            let default = input["default"].as_str().unwrap_or_default();
            let value = if expression(default).is_some() { "a-token" } else { default };
            context.insert(format!("inputs.{name}"), value.to_string());
        }
        for (name, value) in inputs {
            assert!(context.contains_key(&format!("inputs.{name}")), "the action has no input `{name}`");
            context.insert(format!("inputs.{name}"), (*value).to_string());
        }
        context.insert("github.base_ref".into(), "main".into());
        context.insert("github.event.pull_request.number".into(), "7".into());
        context.insert("github.action_path".into(), repo_root().display().to_string());
        context
    }

    /// Runs a step's script as the runner would, with `gh` answering that
    /// the comments `existing` carry the marker.
    fn run(&self, id: &str, inputs: &[(&str, &str)], existing: &str) -> Output {
        let action = action();
        let spec = step(&action, id);
        let context = self.context(&action, inputs);
        let script = self.runner.path().join(format!("{id}.sh"));
        std::fs::write(&script, spec["run"].as_str().expect("a run script")).expect("write script");

        let mut command = self.workspace.command("bash");
        command.args(["--noprofile", "--norc", "-eo", "pipefail"]).arg(&script);
        for (name, value) in spec["env"].as_mapping().into_iter().flatten() {
            let name = name.as_str().expect("an env name");
            let value = value.as_str().expect("an env value");
            let value = match expression(value) {
                Some(e) => context.get(e).unwrap_or_else(|| panic!("step `{id}`: what is `{e}` on a runner?")).as_str(),
                None => value,
            };
            command.env(name, value);
        }
        let path = std::env::join_paths(
            std::iter::once(self.runner.path().join("bin")).chain(std::env::split_paths(&path_with_certplan())),
        )
        .expect("PATH");
        command
            .env("PATH", path)
            .env("RUNNER_TEMP", self.runner.path().join("temp"))
            .env("GITHUB_STEP_SUMMARY", self.summary())
            .env("GITHUB_REPOSITORY", "example/cluster")
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_RUN_ID", "1")
            .env("GH_LOG", self.gh_log())
            .env("GH_EXISTING", existing);
        command.output().expect("run bash")
    }

    /// What `gh` was asked, one call a line; empty when it was not called.
    fn gh_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.gh_log()).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

#[test]
fn check_step_checks_every_plan_the_patterns_match() {
    let pr = PullRequest::typical();
    let output = pr.run("check", &[], "");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let verdicts: Vec<&str> = stderr.lines().filter(|l| l.contains(": ok (")).collect();
    assert_eq!(
        verdicts,
        [
            "plans/lab.toml: ok (0 warning(s))",
            "plans/new.toml: ok (0 warning(s))",
            "plans/prod.toml: ok (0 warning(s))"
        ]
    );

    let listed = pr.run("check", &[("plans", "plans/lab.toml\nplans/n*.toml")], "");
    assert_eq!(listed.status.code(), Some(0), "{}", describe(&listed));
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(stderr.contains("plans/lab.toml: ok") && stderr.contains("plans/new.toml: ok"), "{stderr}");
    assert!(!stderr.contains("prod.toml"), "{stderr}");

    let nothing = pr.run("check", &[("plans", "clusters/**/*.toml")], "");
    assert_eq!(nothing.status.code(), Some(1), "a pattern that matches nothing fails:\n{}", describe(&nothing));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("cannot read the plan `clusters/**/*.toml`"));

    let minimal = std::fs::read_to_string(plan_path("minimal")).expect("read plan");
    pr.workspace.write("plans/long.toml", &format!("{minimal}\n[sets.apiserver]\nvalidity = \"400d\"\n"));
    let warned = pr.run("check", &[], "");
    assert_eq!(warned.status.code(), Some(1), "warnings are denied:\n{}", describe(&warned));
    assert!(String::from_utf8_lossy(&warned.stderr).contains("warning[validity-over-a-year]"));
}

#[test]
fn diff_step_comments_the_pki_diff_of_each_changed_plan() {
    let pr = PullRequest::typical();
    let output = pr.run("diff", &[], "");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let report = std::fs::read_to_string(pr.summary()).expect("the step writes the job summary");
    assert!(report.starts_with("<!-- certplan diff -->\n"), "{report}");
    let sections: Vec<&str> = report.lines().filter(|l| l.starts_with("### certplan diff: ")).collect();
    assert_eq!(
        sections,
        [
            "### certplan diff: `a/plans/lab.toml` → `b/plans/lab.toml`",
            "### certplan diff: `a/plans/new.toml` → `b/plans/new.toml`",
            "### certplan diff: `a/plans/old.toml` → `b/plans/old.toml`",
            "### certplan diff: `a/plans/prod.toml` → `b/plans/prod.toml`",
        ],
        "one section per changed plan, and no Cargo.toml:\n{report}"
    );
    for line in [
        "| ~ | `cert/apiserver` | IP SANs + 10.10.0.100 |",
        "| + | `ca/lab` | added (ca) |",
        "| − | `ca/lab` | removed (ca) |",
        "No difference: both plans compile to the same PKI.",
    ] {
        assert!(report.lines().any(|l| l == line), "no line `{line}` in the report:\n{report}");
    }

    let calls = pr.gh_calls();
    assert_eq!(calls.len(), 2, "gh lists the comments, then posts one: {calls:?}");
    assert!(calls[0].starts_with("api --paginate repos/example/cluster/issues/7/comments --jq "), "{calls:?}");
    assert!(calls[1].starts_with("api --method POST repos/example/cluster/issues/7/comments -F body=@"), "{calls:?}");
    let posted = std::fs::read_to_string(format!("{}.body", pr.gh_log().display())).expect("a posted body");
    assert_eq!(posted, report, "the comment is the job summary");
}

#[test]
fn diff_step_edits_its_comment_on_later_pushes() {
    let pr = PullRequest::typical();
    let output = pr.run("diff", &[], "1234");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let calls = pr.gh_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls[1].starts_with("api --method PATCH repos/example/cluster/issues/comments/1234 -F body=@"),
        "{calls:?}"
    );
}

#[test]
fn diff_step_without_comment_writes_only_the_summary() {
    let pr = PullRequest::typical();
    let output = pr.run("diff", &[("comment", "false")], "");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(pr.gh_calls().is_empty(), "gh is not called: {:?}", pr.gh_calls());
    let report = std::fs::read_to_string(pr.summary()).expect("the summary");
    assert!(report.contains("IP SANs + 10.10.0.100"), "{report}");
}

#[test]
fn a_pull_request_that_changes_no_plan_gets_no_comment() {
    let pr = PullRequest::new(|repo| repo.append("Cargo.toml", "version = \"1.0.0\"\n"));
    let output = pr.run("diff", &[], "");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = std::fs::read_to_string(pr.summary()).expect("the summary");
    assert!(report.contains("No plan changed."), "{report}");
    let calls = pr.gh_calls();
    assert_eq!(calls.len(), 1, "gh only looks for an earlier comment: {calls:?}");
}

#[test]
fn the_ci_recipe_workflow_uses_the_action_as_declared() {
    let action = action();
    let declared = inputs(&action);
    let text = documented("recipes/ci.md", "yaml", "# .github/workflows/pki.yml").join("\n");
    let workflow: Value = serde_yaml_ng::from_str(&text).expect("the workflow is YAML");
    assert!(workflow["on"].get("pull_request").is_some(), "the workflow runs on pull requests");
    assert_eq!(workflow["permissions"]["pull-requests"], "write", "the comment needs it");
    let uses: Vec<&Value> = workflow["jobs"]
        .as_mapping()
        .expect("jobs")
        .values()
        .flat_map(|job| job["steps"].as_sequence().expect("steps"))
        .filter(|s| s["uses"].as_str().is_some_and(|u| u.contains("/certplan@")))
        .collect();
    assert_eq!(uses.len(), 1, "one step uses the action");
    for input in uses[0]["with"].as_mapping().into_iter().flat_map(|with| with.keys()) {
        let input = input.as_str().expect("an input name");
        assert!(declared.contains(&input), "the workflow passes `{input}`, which action.yml does not declare");
    }
}
