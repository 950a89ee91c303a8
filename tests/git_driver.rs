//! The git diff driver, set up exactly as the book says: the shell lines of
//! `commands/diff.md` ("As a git diff driver") and `recipes/review.md` run as
//! written in a fresh repository, with the `certplan` under test first on
//! `PATH`. Then `git diff`, `git log -p` and `git show` show certplan's PKI
//! diff, the text diff, or git's failure, where the book says they do.

use crate::common::repo::Repo;
use crate::common::{describe, documented, plan_path};

const PLAN: &str = "plans/minimal.toml";

/// The edit most tests make: an IP SAN for the API server.
const SAN_EDIT: &str = "\n[sets.apiserver]\nextra_sans = [\"10.10.0.100\"]\n";

fn minimal() -> String {
    std::fs::read_to_string(plan_path("minimal")).expect("read plans/minimal.toml")
}

/// A repository whose one commit holds the minimal plan at `plans/`, with
/// the driver set up by the diff page's commands.
fn repo_with_driver() -> Repo {
    let repo = Repo::init();
    repo.write(PLAN, &minimal());
    for line in documented("commands/diff.md", "sh", "git config diff.certplan.command 'certplan diff'") {
        repo.sh(&line);
    }
    repo.commit_all("a plan");
    repo
}

fn assert_contains(text: &str, expected: &[&str], what: &str) {
    for line in expected {
        assert!(text.contains(line), "{what} does not show `{line}`:\n{text}");
    }
}

#[test]
fn git_diff_shows_the_pki_diff_of_an_edited_plan() {
    let repo = repo_with_driver();
    repo.append(PLAN, SAN_EDIT);

    let diff = repo.git(&["diff"]);
    assert_contains(
        &diff,
        &[
            "certplan diff a/plans/minimal.toml → b/plans/minimal.toml",
            "~ cert/apiserver",
            "IP SANs + 10.10.0.100",
            "restart  kube-apiserver",
        ],
        "`git diff`",
    );
    assert!(!diff.contains("@@"), "`git diff` shows the text diff, not certplan's:\n{diff}");

    let text = repo.git(&["diff", "--no-ext-diff"]);
    assert!(text.contains("+extra_sans = [\"10.10.0.100\"]") && !text.contains("certplan diff"), "{text}");

    // The driver exits 0 unless told otherwise; git counts the text change.
    let exit_code = repo.git_output(&["diff", "--exit-code"]);
    assert_eq!(exit_code.status.code(), Some(1), "{}", describe(&exit_code));

    repo.commit_all("an IP SAN for the API server");
    let without_driver: [&[&str]; 2] = [&["log", "-p", "-1"], &["show", "HEAD"]];
    for args in without_driver {
        let shown = repo.git(args);
        assert!(
            shown.contains("+extra_sans") && !shown.contains("certplan diff"),
            "`git {}` uses the driver only with --ext-diff:\n{shown}",
            args.join(" ")
        );
    }
    let with_driver: [&[&str]; 2] = [&["log", "-p", "--ext-diff", "--", "plans/"], &["show", "--ext-diff", "HEAD"]];
    for args in with_driver {
        let shown = repo.git(args);
        assert_contains(&shown, &["IP SANs + 10.10.0.100"], &format!("`git {}`", args.join(" ")));
    }
}

/// The page's own example: the last commit turned the minimal plan into the
/// page's `next.toml`, and `git diff HEAD~1` prints what the page shows.
#[test]
fn git_diff_prints_what_the_diff_page_shows() {
    let repo = repo_with_driver();
    repo.write("plans/lab.toml", &minimal());
    repo.commit_all("the lab");
    let next = documented("commands/diff.md", "toml,file=next.toml", "[cluster]");
    repo.write("plans/lab.toml", &(next.join("\n") + "\n"));
    repo.commit_all("the lab grows");

    let shown = documented("commands/diff.md", "console", "$ git diff HEAD~1");
    let (command, expected) = shown.split_first().expect("a command, then its output");
    let args: Vec<&str> =
        command.strip_prefix("$ git ").expect("the console block runs git").split_whitespace().collect();
    let output = repo.git(&args);
    let expected: Vec<&str> =
        expected.iter().map(String::as_str).map(str::trim_end).take_while(|l| *l != "...").collect();
    let actual: Vec<&str> = output.lines().map(str::trim_end).take(expected.len()).collect();
    assert_eq!(actual, expected, "`{command}` does not print what commands/diff.md shows:\n{output}");
}

/// A new plan diffs against `/dev/null` as all added, a deleted one as all
/// removed.
#[test]
fn git_diff_shows_a_new_plan_as_added_and_a_deleted_one_as_removed() {
    let repo = repo_with_driver();
    repo.write("plans/lab.toml", &minimal());
    repo.git(&["add", "plans/lab.toml"]);
    let added = repo.git(&["diff", "--cached"]);
    assert_contains(
        &added,
        &["certplan diff a/plans/lab.toml → b/plans/lab.toml", "0 changed, ", " added, 0 removed;", "+ ca/lab"],
        "`git diff --cached` of a new plan",
    );

    repo.git(&["reset", "-q"]);
    repo.git(&["rm", "-q", PLAN]);
    let removed = repo.git(&["diff", "--cached"]);
    assert_contains(
        &removed,
        &["certplan diff a/plans/minimal.toml → b/plans/minimal.toml", "0 changed, 0 added, ", "- ca/lab"],
        "`git diff --cached` of a deleted plan",
    );
}

/// The exit-code recipe: with `--exit-code` and `trustExitCode`, a comment is
/// no difference and a SAN is one.
#[test]
fn a_trusted_driver_exit_code_tells_a_comment_from_a_pki_change() {
    let repo = repo_with_driver();
    repo.append(PLAN, "# only a comment\n");
    let untrusted = repo.git_output(&["diff", "--exit-code"]);
    assert_eq!(untrusted.status.code(), Some(1), "any change to the text, untrusted:\n{}", describe(&untrusted));
    let same = "No difference: both plans compile to the same PKI.";
    assert!(String::from_utf8_lossy(&untrusted.stdout).contains(same), "{}", describe(&untrusted));

    if !git_trusts_driver_exit_codes(&repo) {
        eprintln!("git before 2.47 ignores diff.certplan.trustExitCode: skipping the rest");
        return;
    }
    for line in documented("commands/diff.md", "sh", "trustExitCode") {
        repo.sh(&line);
    }
    let comment = repo.git_output(&["diff", "--exit-code"]);
    assert_eq!(comment.status.code(), Some(0), "a comment is no change to the PKI:\n{}", describe(&comment));
    assert!(String::from_utf8_lossy(&comment.stdout).contains(same), "{}", describe(&comment));

    repo.append(PLAN, SAN_EDIT);
    let san = repo.git_output(&["diff", "--exit-code"]);
    assert_eq!(san.status.code(), Some(1), "a SAN is a change to the PKI:\n{}", describe(&san));
    assert!(String::from_utf8_lossy(&san.stdout).contains("IP SANs + 10.10.0.100"), "{}", describe(&san));
    assert!(!String::from_utf8_lossy(&san.stderr).contains("external diff died"), "{}", describe(&san));
}

#[test]
fn a_plan_that_does_not_compile_stops_git_diff_after_its_diagnostics() {
    let repo = repo_with_driver();
    repo.append(PLAN, "bogus = \n");
    let output = repo.git_output(&["diff"]);
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in ["error[toml-syntax]", "`plans/minimal.toml` does not compile", "fatal: external diff died"] {
        assert!(stderr.contains(line), "no `{line}` on stderr:\n{}", describe(&output));
    }
    let text = repo.git(&["diff", "--no-ext-diff"]);
    assert!(text.contains("+bogus = "), "`--no-ext-diff` shows the text:\n{text}");
}

/// `recipes/review.md`: the driver set up by its lines, then its last line
/// shows the last commit's change to a plan.
#[test]
fn the_review_recipe_shows_the_last_commits_pki_change() {
    let repo = Repo::init();
    repo.write("plans/prod.toml", &minimal());
    repo.commit_all("prod");
    repo.append("plans/prod.toml", SAN_EDIT);
    repo.commit_all("an IP SAN for the API server");

    let lines = documented("recipes/review.md", "sh", "git diff HEAD~1");
    let (last, setup) = lines.split_last().expect("the recipe has lines");
    for line in setup {
        repo.sh(line);
    }
    let args: Vec<&str> =
        last.strip_prefix("git ").expect("the recipe ends with git diff").split_whitespace().collect();
    let shown = repo.git(&args);
    assert_contains(
        &shown,
        &["certplan diff a/plans/prod.toml → b/plans/prod.toml", "IP SANs + 10.10.0.100"],
        &format!("`{last}`"),
    );
}

/// Whether git honours `diff.<driver>.trustExitCode`: git 2.47 and later.
fn git_trusts_driver_exit_codes(repo: &Repo) -> bool {
    let version = repo.git(&["--version"]);
    let numbers: Vec<u32> =
        version.trim().trim_start_matches("git version ").split('.').take(2).filter_map(|n| n.parse().ok()).collect();
    matches!(numbers.as_slice(), [major, minor] if (*major, *minor) >= (2, 47))
}
