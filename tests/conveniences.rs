//! What users expect of a command-line tool: the plan's JSON Schema (and the
//! example plans naming it), `init`, completions, man pages, help with
//! examples, global flags, and templates that can be overridden.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::common::{certplan, plan_path, repo_root};

const EXAMPLES: [&str; 5] = ["classic", "kubeadm", "minimal", "bootstrap", "dual-stack"];
const NOW: &str = "2026-01-01T00:00:00Z";

fn stdout_of(args: &[&str]) -> String {
    let output = certplan().args(args).output().expect("run certplan");
    assert!(output.status.success(), "certplan {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

fn schema() -> serde_json::Value {
    serde_json::from_str(&stdout_of(&["schema"])).expect("schema is JSON")
}

fn plan_json(source: &str) -> serde_json::Value {
    toml::from_str::<serde_json::Value>(source).expect("plan is TOML")
}

#[test]
fn committed_schema_is_up_to_date() {
    let generated = stdout_of(&["schema"]);
    let path = repo_root().join("plans/certplan.schema.json");
    if std::env::var_os("CERTPLAN_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "plans/certplan.schema.json is out of date: run `CERTPLAN_BLESS=1 cargo test conveniences` \
         (or `certplan schema > plans/certplan.schema.json`)"
    );
}

#[test]
fn schema_validates_every_example_plan() {
    let validator = jsonschema::validator_for(&schema()).expect("a valid JSON Schema");
    for name in EXAMPLES {
        let source = std::fs::read_to_string(plan_path(name)).expect("read plan");
        let errors: Vec<String> = validator.iter_errors(&plan_json(&source)).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}.toml does not validate: {errors:#?}");
    }
}

#[test]
fn schema_rejects_misspelt_keys_and_values() {
    let validator = jsonschema::validator_for(&schema()).expect("a valid JSON Schema");
    let source = std::fs::read_to_string(plan_path("classic")).expect("read plan");
    for (from, to) in [
        ("service_cidr =", "service_cdir ="),
        ("[defaults]\nkey =", "[defaults]\nkye ="),
        ("roles = [\"worker\"]", "roles = [\"wroker\"]"),
        ("preset = \"cfssl\"", "preset = \"cfsll\""),
        ("[bootstrap]\ntoken_csv", "[bootstrap]\ntoken_cvs"),
        ("[[users]]\nname = \"admin\"", "[[users]]\nname = \"admin\"\ngroup = \"x\""),
    ] {
        assert!(source.contains(from), "classic.toml has no `{from}`");
        let broken = source.replacen(from, to, 1);
        assert!(!validator.is_valid(&plan_json(&broken)), "the schema accepts `{to}`");
    }
    let missing = source.replacen("service_cidr = \"10.254.0.0/16\"", "", 1);
    assert!(!validator.is_valid(&plan_json(&missing)), "the schema accepts a plan without service_cidr");
}

#[test]
fn example_plans_name_the_schema() {
    for name in EXAMPLES {
        let source = std::fs::read_to_string(plan_path(name)).expect("read plan");
        assert_eq!(
            source.lines().next(),
            Some("#:schema ./certplan.schema.json"),
            "{name}.toml must start with the `#:schema` line editors read"
        );
    }
}

#[test]
fn plan_reference_documents_every_key() {
    let reference = stdout_of(&["schema", "--format", "markdown"]);
    for key in [
        "`cluster.apiserver_url`",
        "`defaults.key`",
        "`layout.preset`",
        "`cas.NAME.cn`",
        "`hosts.roles`",
        "`sets.*.extra_sans`",
        "`identities.*.cn`",
        "`bootstrap.token_ttl`",
        "`kubelet.serving_cert`",
        "`allow.rule`",
        "`templates`",
    ] {
        assert!(reference.contains(&format!("### {key}")), "the plan reference has no section for {key}");
    }
    assert!(reference.contains("  - `\"rsa-2048\"` — RSA, 2048 bits."), "enumerations list their values");
    assert!(reference.contains("- **default:** `\"cluster.local\"`"));
}

fn init(args: &[&str]) -> std::process::Output {
    certplan().arg("init").args(args).output().expect("run certplan init")
}

fn check_passes(dir: &Path, plan: &str, what: &str) {
    let path = dir.join("plan.toml");
    std::fs::write(&path, plan).expect("write plan");
    let output = certplan().arg("check").arg(&path).args(["--deny", "warnings"]).output().expect("run check");
    assert!(
        output.status.success(),
        "`certplan init {what}` wrote a plan that fails `check --deny warnings`:\n{}\n{plan}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn init_writes_plans_that_pass_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let combinations: &[&[&str]] = &[
        &[],
        &["--control-plane", "10.1.0.10"],
        &["--control-plane", "10.1.0.10", "--workers", "10.1.0.20", "10.1.0.21"],
        &["--control-plane", "10.1.0.10", "10.1.0.11", "10.1.0.12", "--workers", "10.1.1.20"],
        &["--control-plane", "10.96.0.10", "--workers", "10.96.0.20"],
        &["--control-plane", "192.168.1.10", "--workers", "192.168.1.10", "192.168.1.11"],
        &["--control-plane", "fd00::10", "--workers", "fd00::20"],
        &["--control-plane", "10.1.0.10", "10.1.0.11", "--apiserver-url", "https://k8s-api.example.com:6443"],
        &["--workers", "10.2.0.21", "--name", "lab", "--kubernetes-version", "1.31"],
    ];
    for preset in ["classic", "kubeadm", "minimal"] {
        for args in combinations {
            let mut all = vec!["--preset", preset];
            all.extend_from_slice(args);
            let output = init(&all);
            let what = all.join(" ");
            assert!(
                output.status.success(),
                "`certplan init {what}` failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let plan = String::from_utf8(output.stdout).expect("utf-8");
            assert!(plan.starts_with('#'), "the starter plan opens with comments");
            check_passes(dir.path(), &plan, &what);
        }
    }
}

#[test]
fn init_refuses_bad_addresses_and_overwrites() {
    let output = init(&["--control-plane", "192.168.214.1/24"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not an IP address") && stderr.contains("not its network"), "{stderr}");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plan.toml");
    let path_arg = path.to_str().expect("utf-8 path");
    assert!(init(&["--output", path_arg, "--quiet"]).status.success());
    let written = std::fs::read_to_string(&path).expect("written");
    std::fs::write(&path, "keep me").expect("overwrite");
    let again = init(&["--output", path_arg]);
    assert_eq!(again.status.code(), Some(1), "init must not replace a file without --force");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "keep me");
    assert!(init(&["--output", path_arg, "--force"]).status.success());
    assert_eq!(std::fs::read_to_string(&path).expect("read"), written);
}

#[test]
fn completions_generate_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_of(&["completions", shell]);
        for sub in ["apply", "check", "init", "schema"] {
            assert!(script.contains(sub), "{shell} completions do not mention `{sub}`");
        }
    }
}

#[test]
fn man_pages_generate() {
    let page = stdout_of(&["man"]);
    assert!(page.starts_with(".ie") || page.contains(".TH certplan"), "not a roff page:\n{page}");
    assert!(page.contains("Exit codes"), "the man page carries the exit codes");
    let dir = tempfile::tempdir().expect("tempdir");
    stdout_of(&["man", "--dir", dir.path().to_str().expect("utf-8 path")]);
    for name in ["certplan.1", "certplan-apply.1", "certplan-init.1", "certplan-schema.1"] {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap_or_else(|_| panic!("no {name}"));
        assert!(text.contains(".TH"), "{name} is not a man page");
    }
}

#[test]
fn every_command_has_examples_and_help_lists_exit_codes() {
    let mut command = certplan::cli::Cli::command();
    command.build();
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let after = sub.get_after_help().map(ToString::to_string).unwrap_or_default();
        assert!(after.contains("Examples:"), "`certplan {} --help` has no examples", sub.get_name());
        assert!(
            after.contains(&format!("certplan {}", sub.get_name())),
            "examples of `{}` do not use it",
            sub.get_name()
        );
    }
    let help = stdout_of(&["--help"]);
    for needle in ["Exit codes:", "NO_COLOR", "--quiet", "--verbose"] {
        assert!(help.contains(needle), "`certplan --help` does not mention {needle}");
    }
}

/// Every file under `dir`, relative, with its content.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
                out.insert(relative, std::fs::read(&path).expect("read file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn apply_with(plan: &Path, out: &Path, templates: Option<&Path>) -> std::process::Output {
    let mut command = certplan();
    command.arg("apply").arg(plan).arg("--out").arg(out).args(["--now", NOW]);
    if let Some(dir) = templates {
        command.arg("--templates").arg(dir);
    }
    command.output().expect("run certplan apply")
}

const MARKER: &str = "# rendered from an overriding flags.env";

/// A templates directory whose `flags.env` is the embedded one plus a marker line.
fn flags_override(dir: &Path) -> PathBuf {
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).expect("mkdir");
    let embedded = std::fs::read_to_string(repo_root().join("templates/flags.env")).expect("read flags.env");
    std::fs::write(templates.join("flags.env"), format!("{MARKER}\n{embedded}")).expect("write override");
    templates
}

/// A file's text without what differs between two runs by design (embedded
/// keys, certificates and tokens).
fn stable_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.contains("-data:") && !l.contains("token"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn overriding_flags_env_changes_only_flag_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let templates = flags_override(dir.path());
    let (plain, custom) = (dir.path().join("plain"), dir.path().join("custom"));
    for (out, with) in [(&plain, None), (&custom, Some(templates.as_path()))] {
        let output = apply_with(&plan_path("classic"), out, with);
        assert!(output.status.success(), "apply failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let (a, b) = (tree(&plain), tree(&custom));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "the override changed which files exist");
    let mut flag_files = 0;
    for (path, before) in &a {
        let after = &b[path];
        if path.ends_with(".env") {
            flag_files += 1;
            let expected = format!("{MARKER}\n{}", String::from_utf8_lossy(before));
            assert_eq!(String::from_utf8_lossy(after), expected, "{path} is not the override's rendering");
        } else if path.ends_with(".yaml") || path.ends_with(".kubeconfig") {
            assert_eq!(stable_text(before), stable_text(after), "{path} changed with a flags.env override");
        } else {
            assert!(!String::from_utf8_lossy(after).contains(MARKER), "{path} carries the marker");
        }
    }
    assert!(flag_files >= 10, "only {flag_files} flag files");
}

#[test]
fn plan_names_a_templates_dir_relative_to_itself_and_the_flag_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    flags_override(dir.path());
    let source = std::fs::read_to_string(plan_path("minimal")).expect("read plan");
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, format!("templates = \"templates\"\n{source}")).expect("write plan");
    let out = dir.path().join("out");
    // Run from elsewhere: the directory is found next to the plan.
    let output = certplan()
        .current_dir(std::env::temp_dir())
        .arg("apply")
        .arg(&plan)
        .arg("--out")
        .arg(&out)
        .args(["--now", NOW])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let env = out.join("hosts/solo/etc/kubernetes/kubelet.env");
    assert!(std::fs::read_to_string(&env).expect("kubelet.env").starts_with(MARKER));

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out2 = dir.path().join("out2");
    assert!(apply_with(&plan, &out2, Some(&empty)).status.success());
    let env = out2.join("hosts/solo/etc/kubernetes/kubelet.env");
    assert!(!std::fs::read_to_string(env).expect("kubelet.env").contains(MARKER), "--templates must win");
}

#[test]
fn deleted_files_are_rendered_again_with_the_current_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let templates = flags_override(dir.path());
    let out = dir.path().join("out");
    assert!(apply_with(&plan_path("minimal"), &out, None).status.success());
    let env = out.join("hosts/solo/etc/kubernetes/kubelet.env");
    std::fs::remove_file(&env).expect("remove");
    assert!(apply_with(&plan_path("minimal"), &out, Some(&templates)).status.success());
    assert!(std::fs::read_to_string(&env).expect("kubelet.env").starts_with(MARKER));
}

/// Applies with a templates directory holding one broken template; the
/// error text, the template's path and the directory (kept until dropped).
fn broken_apply(template: &str, name: &str) -> (String, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let templates = dir.join("templates");
    std::fs::create_dir(&templates).expect("mkdir");
    std::fs::write(templates.join(name), template).expect("write template");
    let out = dir.join("out");
    let output = apply_with(&plan_path("minimal"), &out, Some(&templates));
    assert_eq!(output.status.code(), Some(1), "a broken template must fail apply");
    assert!(!out.join("hosts").exists(), "nothing is written when a template fails");
    (String::from_utf8_lossy(&output.stderr).into_owned(), templates.join(name), tmp)
}

fn kubeconfig_with(line: &str) -> String {
    let embedded = std::fs::read_to_string(repo_root().join("templates/kubeconfig.yaml")).expect("read");
    embedded.replace("    client-key-data: {{ client_key_data }}", &format!("    client-key-data: {line}"))
}

fn line_of(template: &str, needle: &str) -> usize {
    template.lines().position(|l| l.contains(needle)).expect("needle in template") + 1
}

#[test]
fn an_undefined_variable_names_template_line_and_variable() {
    let template = kubeconfig_with("{{ client_key_data_typo }}");
    let (stderr, path, _dir) = broken_apply(&template, "kubeconfig.yaml");
    let line = line_of(&template, "client_key_data_typo");
    assert!(stderr.contains(&path.display().to_string()), "no template path in: {stderr}");
    assert!(stderr.contains(&format!("line {line}")), "no line {line} in: {stderr}");
    assert!(stderr.contains("client_key_data_typo"), "no variable in: {stderr}");
}

#[test]
fn an_unknown_filter_on_a_secret_never_prints_the_secret() {
    let template = kubeconfig_with("{{ client_key_data | nosuchfilter }}");
    let (stderr, path, _dir) = broken_apply(&template, "kubeconfig.yaml");
    let line = line_of(&template, "nosuchfilter");
    assert!(stderr.contains(&path.display().to_string()), "no template path in: {stderr}");
    assert!(stderr.contains(&format!("line {line}")), "no line {line} in: {stderr}");
    assert!(stderr.contains("nosuchfilter"), "no filter name in: {stderr}");
    // Base64 of "-----BEGIN", as every client-key-data value starts.
    for secret in ["LS0tLS1CRUdJTi", "BEGIN", "PRIVATE KEY"] {
        assert!(!stderr.contains(secret), "the error shows key material ({secret}): {stderr}");
    }
}

#[test]
fn a_template_syntax_error_and_a_stray_file_are_named() {
    let (stderr, path, _dir) = broken_apply("{% for x in %}\n", "token.csv");
    assert!(stderr.contains(&path.display().to_string()) && stderr.contains("line 1"), "{stderr}");
    let (stderr, path, _dir) = broken_apply("x", "kubeconfig.yml");
    assert!(stderr.contains(&path.display().to_string()) && stderr.contains("kubeconfig.yaml"), "{stderr}");
}

#[test]
fn quiet_and_verbose_are_global() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let quiet =
        certplan().args(["--quiet", "apply"]).arg(plan_path("minimal")).arg("--out").arg(&out).output().expect("run");
    assert!(quiet.status.success() && quiet.stdout.is_empty(), "{}", String::from_utf8_lossy(&quiet.stdout));
    std::fs::remove_dir_all(&out).expect("clean");
    let verbose =
        certplan().arg("apply").arg(plan_path("minimal")).arg("--out").arg(&out).arg("-v").output().expect("run");
    let stdout = String::from_utf8_lossy(&verbose.stdout);
    assert!(verbose.status.success() && stdout.contains("  wrote hosts/solo/"), "{stdout}");
}

#[test]
fn verbose_plan_lists_files_and_verbose_check_summarises() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let plan = certplan().arg("plan").arg(plan_path("minimal")).arg("--out").arg(&out).arg("-v").output().expect("run");
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(stdout.contains("  would write cluster/pki/ca.key"), "{stdout}");
    assert!(!out.exists(), "plan -v wrote the output tree");
    let check = certplan().arg("check").arg(plan_path("classic")).arg("--verbose").output().expect("run");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success() && stderr.contains("5 host(s); 46 artifact(s)"), "{stderr}");
    let quiet_check = certplan().arg("check").arg(plan_path("classic")).output().expect("run");
    assert!(!String::from_utf8_lossy(&quiet_check.stderr).contains("artifact(s)"), "summary without --verbose");
}

#[test]
fn adding_then_editing_an_override_rewrites_exactly_its_files_and_plan_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let templates = flags_override(dir.path());
    let out = dir.path().join("out");
    let plan = plan_path("classic");
    assert!(apply_with(&plan, &out, None).status.success());
    let before = tree(&out);

    let planned = certplan()
        .args(["plan", "--format", "json", "--detailed-exitcode", "--now", NOW])
        .arg(&plan)
        .arg("--out")
        .arg(&out)
        .arg("--templates")
        .arg(&templates)
        .output()
        .expect("run plan");
    assert_eq!(planned.status.code(), Some(2), "{}", String::from_utf8_lossy(&planned.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&planned.stdout).expect("plan JSON");
    let changes = doc["changes"].as_array().expect("changes");
    assert!(!changes.is_empty());
    for change in changes {
        let id = change["id"].as_str().unwrap_or_default();
        assert!(id.starts_with("flags/"), "{id} changes with a flags.env override: {change}");
        assert_eq!(change["action"], "rewrite", "{change}");
        assert!(change["reason"].as_str().unwrap_or_default().contains("flags.env sha256:"), "{change}");
    }

    assert!(apply_with(&plan, &out, Some(&templates)).status.success());
    let after = tree(&out);
    let changed: Vec<&String> =
        after.iter().filter(|(path, bytes)| before.get(*path) != Some(bytes)).map(|(path, _)| path).collect();
    assert!(!changed.is_empty());
    for path in &changed {
        assert!(path.ends_with(".env") || path.starts_with(".certplan/"), "{path} was rewritten");
    }
    assert_eq!(changed.iter().filter(|p| p.ends_with(".env")).count(), changes.len(), "{changed:?}");

    // The same override again: nothing to do. An edit of it: the flag files again.
    let again = apply_with(&plan, &out, Some(&templates));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("Nothing to do"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let source = std::fs::read_to_string(templates.join("flags.env")).expect("read");
    std::fs::write(templates.join("flags.env"), format!("# edited\n{source}")).expect("write");
    let edited = apply_with(&plan, &out, Some(&templates));
    let stdout = String::from_utf8_lossy(&edited.stdout);
    assert!(stdout.lines().filter(|l| l.starts_with("rewrite flags/")).count() == changes.len(), "{stdout}");
    assert!(
        !stdout.lines().any(|l| !l.starts_with("rewrite flags/") && !l.contains("artifact(s) changed")),
        "{stdout}"
    );
}
