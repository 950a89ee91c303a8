//! Expiry monitoring as an operator meets it, on `plans/minimal.toml`
//! applied at [`NOW`]: the metrics of `verify --format prometheus` (and
//! `inspect --format prometheus`) read by Prometheus' Python client's own
//! parser (`tests/checkers/parse_metrics.py`) and compared with what
//! openssl reads from the certificates; the exit status of `verify
//! --warn-within`, for cron jobs and Nagios-style checks; and `verify
//! --host --root` on a copy of one host's files, intact and tampered with.
//!
//! The parser test needs python3 with prometheus-client, and openssl:
//! `tests/run.sh` installs them and runs everything, ignored tests included.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::common::{certplan, describe, plan_path, repo_root};
use crate::etcd_cluster::harness;

/// The clock the tree is applied and checked at.
const NOW: &str = "2026-01-01T00:00:00Z";

/// The leaf certificates of the plan live 365 days from [`NOW`]:
/// `2027-01-01T00:00:00Z` in Unix seconds.
const LEAF_NOT_AFTER: i64 = 1_798_761_600;

const EXPIRY: &str = "certplan_certificate_expiry_timestamp_seconds";
const VALID: &str = "certplan_certificate_valid";
const LAST_APPLY: &str = "certplan_tree_last_apply_timestamp_seconds";
const PENDING: &str = "certplan_plan_pending_changes";

/// `plans/minimal.toml` applied at [`NOW`] into a fresh directory.
struct Lab {
    dir: tempfile::TempDir,
    plan: PathBuf,
    out: PathBuf,
}

impl Lab {
    fn new() -> Self {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let lab = Self { plan: plan_path("minimal"), out: dir.path().join("out"), dir };
        lab.apply(&lab.out);
        lab
    }

    fn apply(&self, out: &Path) {
        let output = certplan()
            .arg("apply")
            .arg(&self.plan)
            .arg("--out")
            .arg(out)
            .args(["--now", NOW, "-q"])
            .output()
            .expect("run");
        assert!(output.status.success(), "apply failed: {}", describe(&output));
    }

    /// `certplan COMMAND PLAN ARGS... --now NOW`, without colour.
    fn run(&self, command: &str, args: &[&str]) -> Output {
        certplan()
            .arg(command)
            .arg(&self.plan)
            .args(args)
            .args(["--now", NOW])
            .env("NO_COLOR", "1")
            .output()
            .expect("run certplan")
    }

    fn out_arg(&self) -> &str {
        self.out.to_str().expect("a UTF-8 path")
    }

    /// A copy of the files the tree holds for host `solo`, as they would be
    /// installed under a root directory.
    fn solo_root(&self) -> PathBuf {
        let root = self.dir.path().join("root");
        copy_tree(&self.out.join("hosts/solo"), &root);
        root
    }
}

/// Copies a directory tree; `fs::copy` keeps each file's mode.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("copy to {}: {e}", target.display()));
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", describe(output)))
}

/// The findings of a verify report with `check`, as (id, path) pairs.
fn findings(doc: &Value, check: &str) -> BTreeSet<(String, String)> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == check)
        .map(|f| (f["id"].as_str().unwrap_or("").to_string(), f["path"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// The labels of one series, as the metrics write them.
fn series(id: &str, host: &str, path: &str) -> String {
    format!(r#"{{id="{id}",host="{host}",path="{path}",issuer="ca/lab"}}"#)
}

// ---------------------------------------------------------------------------
// --format prometheus
// ---------------------------------------------------------------------------

/// What `tests/checkers/parse_metrics.py` made of the metrics in `file`.
fn parse_metrics(file: &Path) -> Vec<Value> {
    let script = repo_root().join("tests/checkers/parse_metrics.py");
    let run = harness::run(Command::new("python3").arg(script).arg(file), Duration::from_mins(1))
        .expect_ok("parsing the metrics with prometheus_client");
    serde_json::from_str::<Value>(&run.stdout)
        .expect("parse_metrics.py prints JSON")
        .as_array()
        .expect("families")
        .clone()
}

/// The value of the one sample of family `name` with these labels (all of
/// them, `{}` for none), if there is one.
fn sample(families: &[Value], name: &str, labels: &Value) -> Option<f64> {
    let family = families.iter().find(|f| f["name"] == name)?;
    let found: Vec<f64> = family["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter(|s| s["labels"] == *labels)
        .map(|s| s["value"].as_f64().expect("a number"))
        .collect();
    assert!(found.len() <= 1, "{name}{labels} has {} samples", found.len());
    found.first().copied()
}

fn labels(id: &str, host: &str, path: &str) -> Value {
    serde_json::json!({ "id": id, "host": host, "path": path, "issuer": "ca/lab" })
}

/// `NotAfter` as `openssl x509 -enddate` prints it: `Dec 30 00:00:00 2035 GMT`.
fn openssl_enddate(cert: &Path) -> String {
    let run = harness::run(
        Command::new("openssl").args(["x509", "-noout", "-enddate", "-in"]).arg(cert),
        Duration::from_secs(30),
    )
    .expect_ok("openssl x509 -enddate");
    run.stdout.trim().strip_prefix("notAfter=").unwrap_or_else(|| panic!("openssl printed {}", run.stdout)).to_string()
}

/// Unix seconds as openssl prints a time.
fn as_openssl_prints(seconds: f64) -> String {
    let format =
        time::macros::format_description!("[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT");
    #[allow(clippy::cast_possible_truncation, reason = "whole Unix seconds, read back from a float")]
    let seconds = seconds as i64;
    let when = time::OffsetDateTime::from_unix_timestamp(seconds).expect("a time");
    when.format(&format).expect("format a time")
}

#[test]
fn verify_prints_a_series_per_certificate_file() {
    let lab = Lab::new();
    let output = lab.run("verify", &["--out", lab.out_arg(), "--format", "prometheus"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let metrics = stdout(&output);
    for name in [EXPIRY, VALID, LAST_APPLY, PENDING] {
        assert_eq!(metrics.matches(&format!("# HELP {name} ")).count(), 1, "{metrics}");
        assert_eq!(metrics.matches(&format!("# TYPE {name} gauge\n")).count(), 1, "{metrics}");
    }
    let ca_on_host = series("ca/lab", "solo", "/etc/kubernetes/pki/ca.crt");
    let ca_in_cluster = series("ca/lab", "", "cluster/pki/ca.crt");
    let apiserver = series("cert/apiserver", "solo", "/etc/kubernetes/pki/apiserver.crt");
    let admin = series("cert/users/admin", "", "cluster/users/admin.crt");
    for labels in [&ca_on_host, &ca_in_cluster, &apiserver, &admin] {
        assert!(metrics.contains(&format!("{VALID}{labels} 1\n")), "{labels}:\n{metrics}");
    }
    assert!(metrics.contains(&format!("{EXPIRY}{apiserver} {LEAF_NOT_AFTER}\n")), "{metrics}");
    assert!(metrics.contains(&format!("{PENDING} 0\n")), "{metrics}");
    let valid_prefix = format!("{VALID}{{");
    let valid: Vec<&str> = metrics.lines().filter(|l| l.starts_with(valid_prefix.as_str())).collect();
    assert_eq!(valid.len(), 14, "one series per file that holds a certificate:\n{metrics}");
    assert!(valid.iter().all(|l| l.ends_with(" 1")), "nothing is invalid:\n{metrics}");
    assert!(!metrics.contains("BEGIN"), "no PEM in the metrics");
}

#[test]
#[ignore = "needs python prometheus_client: run tests/run.sh"]
fn prometheus_client_reads_the_metrics_and_openssl_agrees() {
    harness::require_tools(&["python3", "openssl"]);
    let lab = Lab::new();
    let file = lab.dir.path().join("certplan.prom");
    let output = lab.run("verify", &["--out", lab.out_arg(), "--format", "prometheus"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    std::fs::write(&file, &output.stdout).expect("write the metrics");
    let families = parse_metrics(&file);
    let names: Vec<&str> = families.iter().map(|f| f["name"].as_str().unwrap_or("")).collect();
    assert_eq!(names, [EXPIRY, VALID, LAST_APPLY, PENDING]);
    assert!(families.iter().all(|f| f["type"] == "gauge" && f["help"].as_str().is_some_and(|h| !h.is_empty())));

    // The CA's expiry, in the cluster directory and on its host, is its NotAfter as openssl reads it.
    for (host, path, cert) in [
        ("", "cluster/pki/ca.crt", lab.out.join("cluster/pki/ca.crt")),
        ("solo", "/etc/kubernetes/pki/ca.crt", lab.out.join("hosts/solo/etc/kubernetes/pki/ca.crt")),
    ] {
        let expiry = sample(&families, EXPIRY, &labels("ca/lab", host, path))
            .unwrap_or_else(|| panic!("no expiry of ca/lab at {path}: {families:#?}"));
        assert_eq!(as_openssl_prints(expiry), openssl_enddate(&cert), "ca/lab at {path}");
    }
    let apiserver = labels("cert/apiserver", "solo", "/etc/kubernetes/pki/apiserver.crt");
    let leaf_file = lab.out.join("hosts/solo/etc/kubernetes/pki/apiserver.crt");
    let leaf_expiry = sample(&families, EXPIRY, &apiserver).expect("the API server's expiry");
    assert_eq!(as_openssl_prints(leaf_expiry), openssl_enddate(&leaf_file));

    // Every file holding a certificate is valid: 14 files, the CA's two copies among them.
    let valid = &families[1]["samples"];
    assert_eq!(valid.as_array().expect("samples").len(), 14, "{valid:#}");
    assert!(valid.as_array().expect("samples").iter().all(|s| s["value"] == 1.0 || s["value"] == 1), "{valid:#}");
    assert_eq!(sample(&families, PENDING, &serde_json::json!({})), Some(0.0));
    let state = std::fs::metadata(lab.out.join(".certplan/state.json")).expect("the state file");
    let applied = state.modified().expect("mtime").duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "whole Unix seconds, read back from a float"
    )]
    let last_apply = sample(&families, LAST_APPLY, &serde_json::json!({})).expect("last apply") as u64;
    assert_eq!(last_apply, applied, "the state file's modification time");

    // A deleted certificate file: its series says 0 and has no expiry, the others stay 1.
    std::fs::remove_file(&leaf_file).expect("delete the API server's certificate");
    let output = lab.run("verify", &["--out", lab.out_arg(), "--format", "prometheus"]);
    assert_eq!(output.status.code(), Some(1), "verify fails, and still prints the metrics: {}", describe(&output));
    std::fs::write(&file, &output.stdout).expect("write the metrics");
    let families = parse_metrics(&file);
    assert_eq!(sample(&families, VALID, &apiserver), Some(0.0), "{families:#?}");
    assert_eq!(sample(&families, EXPIRY, &apiserver), None, "no expiry for a missing file");
    let etcd = labels("cert/etcd-server/solo", "solo", "/etc/kubernetes/pki/etcd/server.crt");
    assert_eq!(sample(&families, VALID, &etcd), Some(1.0));
    let pending = sample(&families, PENDING, &serde_json::json!({})).expect("pending changes");
    assert!(pending >= 1.0, "apply would put the certificate back: {pending}");

    // inspect prints the same metrics, and exits 0 whatever they say.
    let inspected = lab.run("inspect", &["--out", lab.out_arg(), "--format", "prometheus"]);
    assert_eq!(inspected.status.code(), Some(0), "{}", describe(&inspected));
    assert_eq!(stdout(&inspected), stdout(&output));
}

#[test]
fn a_bad_mode_or_a_copy_that_differs_only_fails_that_file() {
    let lab = Lab::new();
    let host_copy = series("ca/lab", "solo", "/etc/kubernetes/pki/ca.crt");
    let master_copy = series("ca/lab", "", "cluster/pki/ca.crt");
    let metrics = || {
        let output = lab.run("verify", &["--out", lab.out_arg(), "--format", "prometheus"]);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        stdout(&output)
    };

    // The master copy's mode is wrong; the host's copy holds the same certificate and is fine.
    let master = lab.out.join("cluster/pki/ca.crt");
    std::fs::set_permissions(&master, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let found = metrics();
    assert!(found.contains(&format!("{VALID}{master_copy} 0\n")), "{found}");
    assert!(found.contains(&format!("{VALID}{host_copy} 1\n")), "{found}");
    std::fs::set_permissions(&master, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");

    // The host's copy is another tree's CA: it differs from the master copy.
    let twin = lab.dir.path().join("twin");
    lab.apply(&twin);
    let on_host = "hosts/solo/etc/kubernetes/pki/ca.crt";
    std::fs::copy(twin.join(on_host), lab.out.join(on_host)).expect("copy another tree's CA");
    let found = metrics();
    assert!(found.contains(&format!("{VALID}{host_copy} 0\n")), "{found}");
    assert!(found.contains(&format!("{VALID}{master_copy} 1\n")), "{found}");
}

#[test]
fn inspect_metrics_need_a_tree() {
    let lab = Lab::new();
    let output = lab.run("inspect", &["--format", "prometheus"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("name it with `--out`"), "{}", describe(&output));
    let output = certplan().args(["diff", "--format", "prometheus", "a.toml", "b.toml"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2), "diff has no metrics: {}", describe(&output));
}

// ---------------------------------------------------------------------------
// --warn-within
// ---------------------------------------------------------------------------

#[test]
fn warn_within_exits_1_when_a_certificate_expires_within_it() {
    let lab = Lab::new();
    for window in ["1d", "364d"] {
        let output = lab.run("verify", &["--out", lab.out_arg(), "--warn-within", window]);
        assert_eq!(output.status.code(), Some(0), "{window}: {}", describe(&output));
        assert!(stdout(&output).contains("\nverify ok: 41 of 41 expected files"), "{}", describe(&output));
    }

    let output = lab.run("verify", &["--out", lab.out_arg(), "--warn-within", "400d"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(output.stderr.is_empty(), "the report says it all: {}", describe(&output));
    let report = stdout(&output);
    let lines: Vec<&str> = report.lines().collect();
    let at =
        lines.iter().position(|l| *l == "  cert/apiserver").unwrap_or_else(|| panic!("no cert/apiserver:\n{report}"));
    assert_eq!(
        lines[at + 1],
        "    expires-soon hosts/solo/etc/kubernetes/pki/apiserver.crt: it expires on 2027-01-01T00:00:00Z, in 365d; \
         installed as `/etc/kubernetes/pki/apiserver.crt` on solo",
        "the certificate, its file, its host and the date:\n{report}"
    );
    assert!(report.contains("\nWarnings\n"), "{report}");
    assert!(!report.contains("  ca/lab\n"), "the CA has ten years left:\n{report}");
    assert!(
        report
            .contains("\nverify EXPIRES SOON: 41 of 41 expected files, 13 certificates, 0 failure(s), 12 warning(s),"),
        "{report}"
    );

    let output = lab.run("verify", &["--out", lab.out_arg(), "--warn-within", "400d", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let doc = json(&output);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["summary"]["failures"], 0);
    let soon = findings(&doc, "expires-soon");
    assert_eq!(soon.len(), 12, "every leaf, not the CA: {soon:?}");
    assert!(soon.contains(&("cert/users/admin".to_string(), "cluster/users/admin.crt".to_string())), "{soon:?}");
}

// ---------------------------------------------------------------------------
// --host --root
// ---------------------------------------------------------------------------

/// `--host solo --root ROOT`, then `more`.
fn host_args<'a>(root: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--host", "solo", "--root", root];
    args.extend_from_slice(more);
    args
}

#[test]
fn verify_host_checks_the_files_installed_under_a_root() {
    let lab = Lab::new();
    let root = lab.solo_root();
    let root_arg = root.to_str().expect("a UTF-8 path");

    let output = lab.run("verify", &host_args(root_arg, &["--format", "json"]));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let doc = json(&output);
    assert_eq!(doc["ok"], true, "{:#}", doc["findings"]);
    assert_eq!(doc["summary"]["files"], 35, "what the plan places on solo");
    assert_eq!(doc["summary"]["expected_files"], 35);
    let ids: Vec<&str> =
        doc["certificates"].as_array().expect("certificates").iter().filter_map(|c| c["id"].as_str()).collect();
    assert!(ids.contains(&"ca/lab") && ids.contains(&"cert/apiserver"), "{ids:?}");
    assert!(!ids.contains(&"cert/users/admin"), "the admin's certificate is in the cluster directory only: {ids:?}");

    // Metrics name the files by their path on the host, and there is no tree to report on.
    let output = lab.run("verify", &host_args(root_arg, &["--format", "prometheus"]));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let metrics = stdout(&output);
    assert!(metrics.contains(&format!("{VALID}{} 1\n", series("ca/lab", "solo", "/etc/kubernetes/pki/ca.crt"))));
    assert!(!metrics.contains("cluster/pki/ca.crt") && !metrics.contains(LAST_APPLY), "{metrics}");

    // Expiry as in the tree, named by the path on the host.
    let output = lab.run("verify", &host_args(root_arg, &["--warn-within", "400d"]));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let expected = "    expires-soon /etc/kubernetes/pki/etcd/server.crt: it expires on 2027-01-01T00:00:00Z, in 365d; \
                    installed as `/etc/kubernetes/pki/etcd/server.crt` on solo";
    assert!(stdout(&output).lines().any(|l| l == expected), "{}", describe(&output));

    // Tampered with: a key that is another certificate's, and a certificate of another apply (another CA).
    let pki = root.join("etc/kubernetes/pki");
    std::fs::copy(pki.join("etcd/peer.key"), pki.join("apiserver.key")).expect("copy a wrong key");
    let twin = lab.dir.path().join("twin");
    lab.apply(&twin);
    let foreign = twin.join("hosts/solo/etc/kubernetes/pki/front-proxy-client.crt");
    std::fs::copy(foreign, pki.join("front-proxy-client.crt")).expect("copy a certificate of another tree");
    let output = lab.run("verify", &host_args(root_arg, &["--format", "json"]));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let doc = json(&output);
    let pair = |id: &str, path: &str| (id.to_string(), path.to_string());
    assert!(
        findings(&doc, "key-mismatch").contains(&pair("cert/apiserver", "/etc/kubernetes/pki/apiserver.key")),
        "{:#}",
        doc["findings"]
    );
    assert!(
        findings(&doc, "chain")
            .contains(&pair("cert/front-proxy-client", "/etc/kubernetes/pki/front-proxy-client.crt")),
        "{:#}",
        doc["findings"]
    );
    let output = lab.run("verify", &host_args(root_arg, &[]));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report = stdout(&output);
    assert!(report.contains(" /etc/kubernetes/pki/apiserver.key: it is not the private key of"), "{report}");
    assert!(report.contains("\nverify FAILED: 35 of 35 expected files, 12 certificates,"), "{report}");
}

#[test]
fn verify_host_names_what_is_wrong_with_its_arguments() {
    let lab = Lab::new();
    let root = lab.solo_root();
    let root_arg = root.to_str().expect("a UTF-8 path");

    let output = lab.run("verify", &["--host", "nosuch", "--root", root_arg]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the plan has no host `nosuch`; its hosts are solo"),
        "{}",
        describe(&output)
    );
    let missing = lab.dir.path().join("nowhere");
    let output = lab.run("verify", &["--host", "solo", "--root", missing.to_str().expect("a UTF-8 path")]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a directory: `--root`"), "{}", describe(&output));

    // The argument parser: `--host` wants `--root`, and no `--out` beside them.
    for args in [vec!["--host", "solo"], vec!["--host", "solo", "--root", root_arg, "--out", lab.out_arg()]] {
        let output = lab.run("verify", &args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", describe(&output));
    }
}
